/**
 * A retried produce is not duplicated. Method: the client reaches a real broker (in this
 * process) through a small TCP proxy that can swallow the broker's replies and cut the
 * connection. A batch is sent while replies are swallowed; once the broker has appended it
 * (seen through a direct connection), the proxy cuts the connection, so the producer never
 * learns the outcome and sends the batch again with the same producer id and sequence. The
 * broker must answer the duplicate with the original offset and append nothing.
 */
import * as net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type RunnelClient } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { readRecordsWithin } from '../support/read-within.js';
import { waitFor } from '../support/wait-for.js';

/** Forwards 127.0.0.1:port ↔ target; can drop what the target sends and cut every connection. */
class ReplySwallowingProxy {
  isSwallowingReplies = false;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  private constructor(server: net.Server) {
    this.server = server;
  }

  static async start(targetPort: number): Promise<ReplySwallowingProxy> {
    let proxy!: ReplySwallowingProxy;
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, '127.0.0.1');
      proxy.sockets.add(client);
      proxy.sockets.add(upstream);
      client.on('data', (bytes) => upstream.write(bytes));
      upstream.on('data', (bytes) => {
        if (!proxy.isSwallowingReplies) client.write(bytes);
      });
      const closeBoth = () => {
        client.destroy();
        upstream.destroy();
        proxy.sockets.delete(client);
        proxy.sockets.delete(upstream);
      };
      client.on('close', closeBoth);
      upstream.on('close', closeBoth);
      client.on('error', closeBoth);
      upstream.on('error', closeBoth);
    });
    proxy = new ReplySwallowingProxy(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let broker: TestBroker;
let proxy: ReplySwallowingProxy;
let direct: RunnelClient;
let proxied: RunnelClient;

beforeEach(async () => {
  broker = await startBroker();
  proxy = await ReplySwallowingProxy.start(broker.port);
  direct = createClient({ brokers: [broker.address] });
  proxied = createClient({ brokers: [proxy.address] });
});

afterEach(async () => {
  await proxied?.close({ timeoutMs: 1_000 });
  await direct?.close();
  await proxy?.close();
  await broker?.close();
});

async function logEndOffset(topic: string): Promise<number> {
  const [offset] = await direct.admin.listOffsets({ topic, partitions: [0], spec: 'latest' });
  return offset!.offset;
}

describe('idempotent producer against a real broker', () => {
  it('resends a batch whose reply was lost with the same sequence, and the broker does not append it twice', async () => {
    const topic = `idempotence-${process.pid}`;
    await direct.admin.createTopic({ name: topic, partitions: 1 });
    const producer = proxied.producer({ lingerMs: 0, retry: { backoffMsMin: 50, backoffMsMax: 200 } });
    expect((await producer.send({ topic, value: 'first' })).offset).toBe(0);

    proxy.isSwallowingReplies = true;
    const lost = producer.send({ topic, value: 'reply lost' });
    await waitFor(async () => (await logEndOffset(topic)) === 2, { timeoutMs: 10_000, describe: () => 'the broker never appended the batch' });
    proxy.isSwallowingReplies = false;
    proxy.cutAll();

    expect((await lost).offset).toBe(1);
    expect(producer.metrics().batchRetries).toBeGreaterThanOrEqual(1);
    expect(await logEndOffset(topic)).toBe(2);
    expect((await producer.send({ topic, value: 'after' })).offset).toBe(2);

    const consumer = direct.consumer();
    consumer.assign([{ topic, partition: 0 }]);
    await consumer.seek({ topic, partition: 0 }, 'earliest');
    const records = await readRecordsWithin(consumer, 3, { timeoutMs: 10_000, expected: "'first', 'reply lost', 'after' at offsets 0-2" });
    expect(records.map((record) => record.value?.toString())).toEqual(['first', 'reply lost', 'after']);
    expect(await logEndOffset(topic)).toBe(3);
  });
});
