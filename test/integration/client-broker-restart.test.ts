/**
 * The client survives broker restarts. Method: a real `runnel broker` child process on a
 * fixed port (so the restarted broker has the same address) and a fresh data dir; a producer
 * and a consumer keep running while the broker is stopped cleanly (SIGTERM) and later killed
 * (SIGKILL) and started again each time. The acknowledged-set oracle: every record the
 * producer saw acknowledged must be read back exactly once, in offset order per partition,
 * both by the consumer that ran through the restarts and by a fresh one.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type ConsumerRecord, type RecordMetadata, type RunnelClient } from '../../src/client/index.js';
import { BackgroundTask } from '../support/background-task.js';
import { startBrokerProcess, tearDownBrokerProcess, type BrokerProcess } from '../support/broker-process.js';
import { pickStablePort } from '../support/ports.js';
import { rawClients } from '../support/raw-grpc.js';
import { readRecordsWithin } from '../support/read-within.js';
import { waitFor } from '../support/wait-for.js';

let dataDir: string | undefined;
let broker: BrokerProcess | undefined;
let client: RunnelClient | undefined;
let isBrokerStopped = false;

afterEach(async () => {
  // A stopped (SIGSTOP) broker still dies of SIGKILL; SIGCONT first lets it be killed cleanly.
  if (broker !== undefined && isBrokerStopped) process.kill(broker.pid, 'SIGCONT');
  isBrokerStopped = false;
  await tearDownBrokerProcess({ client, broker, dataDir });
  [client, broker, dataDir] = [undefined, undefined, undefined];
});

/** Every record once, dense offsets from 0 and in order per partition; returns the values. */
function checkReplay(records: ConsumerRecord[], partitionCount: number): Set<string> {
  const nextOffset = new Array<number>(partitionCount).fill(0);
  const values = new Set<string>();
  for (const record of records) {
    expect(record.offset).toBe(nextOffset[record.partition]);
    nextOffset[record.partition]!++;
    const value = record.value!.toString();
    expect(values.has(value)).toBe(false);
    values.add(value);
  }
  return values;
}

describe('client across broker restarts', () => {
  it('keeps producing and consuming through a clean restart and a SIGKILL, losing and duplicating nothing', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-restart-'));
    // Outside the ephemeral range, so nothing else is given the port while the broker is down.
    const port = await pickStablePort();
    broker = await startBrokerProcess({ dataDir, port });
    client = createClient({ brokers: [broker.address], clientId: 'restart-test' });
    const topic = `restart-${process.pid}`;
    const partitionCount = 3;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });

    // The consumer reads from the start, through every restart, until closed.
    const consumer = client.consumer();
    const partitions = Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition }));
    consumer.assign(partitions);
    for (const tp of partitions) await consumer.seek(tp, 'earliest');
    const throughRestarts: ConsumerRecord[] = [];
    const consuming = new BackgroundTask('the consumer reading through the restarts', async () => {
      for await (const record of consumer) throughRestarts.push(record);
    });

    // The producer sends windows of 200 records (awaited) with a 5 ms pause between them (a
    // throttle that keeps the test's volume moderate, not a wait for a condition), so batches
    // are in flight whenever the broker goes away, until told to stop.
    const producer = client.producer({ lingerMs: 2 });
    const acknowledged = new Map<number, RecordMetadata>();
    let sent = 0;
    let isStopRequested = false;
    const producing = new BackgroundTask('the producer loop', async () => {
      while (!isStopRequested) {
        const window: Promise<void>[] = [];
        for (let count = 0; count < 200; count++) {
          const index = sent++;
          window.push(
            producer.send({ topic, key: `key-${index % 50}`, value: String(index) }).then((metadata) => {
              acknowledged.set(index, metadata);
            }),
          );
        }
        await Promise.all(window);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await producer.flush();
    });
    // A failed send ends the loop: the wait fails at once with that error, not at its deadline.
    const ackedAtLeast = async (count: number, what: string) =>
      waitFor(
        () => {
          producing.throwIfFailed();
          return acknowledged.size >= count;
        },
        { timeoutMs: 90_000, describe: () => `${acknowledged.size} of ${count} acknowledged ${what}` },
      );

    try {
      await ackedAtLeast(3_000, 'before the clean stop');
      expect(await broker.stop()).toBe(0);
      broker = await startBrokerProcess({ dataDir, port });
      await ackedAtLeast(acknowledged.size + 3_000, 'after the clean restart');
      await broker.kill('SIGKILL');
      broker = await startBrokerProcess({ dataDir, port });
      await ackedAtLeast(acknowledged.size + 3_000, 'after the SIGKILL');
      isStopRequested = true;
      await producing.finish();

      const total = sent;
      const metrics = producer.metrics();
      if (process.env.RUNNEL_TEST_VERBOSE === '1') console.log('producer metrics after restarts', metrics, 'records', total);
      expect(acknowledged.size).toBe(total);
      const offsets = new Set([...acknowledged.values()].map((metadata) => `${metadata.partition}:${metadata.offset}`));
      expect(offsets.size).toBe(total);

      await waitFor(
        () => {
          consuming.throwIfFailed();
          return throughRestarts.length >= total;
        },
        { timeoutMs: 60_000, describe: () => `${throughRestarts.length} of ${total} consumed` },
      );
      await consumer.close();
      await consuming.finish();
      expect(checkReplay(throughRestarts, partitionCount).size).toBe(total);

      const fresh = client.consumer();
      fresh.assign(partitions);
      for (const tp of partitions) await fresh.seek(tp, 'earliest');
      const replayed = await readRecordsWithin(fresh, total, { timeoutMs: 60_000, expected: `all ${total} acknowledged records, offsets 0 on in each of ${partitionCount} partitions` });
      expect(checkReplay(replayed, partitionCount).size).toBe(total);
      for (const record of replayed) {
        const metadata = acknowledged.get(Number(record.value!.toString()))!;
        expect([record.partition, record.offset]).toEqual([metadata.partition, metadata.offset]);
      }
      const latest = await client.admin.listOffsets({ topic, spec: 'latest' });
      expect(latest.reduce((sum, offset) => sum + offset.offset, 0)).toBe(total); // nothing appended twice
    } finally {
      // After a failure above both loops may still be running, the producer's perhaps waiting
      // for a window a stopped broker will never acknowledge: stop them (closing the producer
      // fails what it still holds after a second) and wait for them to end, so nothing runs
      // on, or rejects, after the test. Their own failures are not what this test reports then.
      isStopRequested = true;
      await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
      await consumer.close();
      await producing.settled();
      await consuming.settled();
    }
  });

  it('retries an admin call made while the broker is down until it is back', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-restart-'));
    const port = await pickStablePort();
    broker = await startBrokerProcess({ dataDir, port });
    client = createClient({ brokers: [broker.address] });
    await client.admin.createTopic({ name: 'while-down', partitions: 1 });
    await broker.stop();
    broker = undefined;
    const listed = client.admin.listTopics();
    broker = await startBrokerProcess({ dataDir, port });
    expect((await listed).map((topic) => topic.name)).toContain('while-down');
  });

  it('fails a consumer of a hung broker at its retry budget, each stream given requestTimeoutMs, and reads once the broker runs again', async () => {
    // Goal: a broker process that is stopped (SIGSTOP: a frozen host, a debugger) still has
    // its port accept TCP connections, and grpc-js waits for its HTTP/2 handshake without a
    // deadline, so a Subscribe stream opened then used to wait forever, reported nothing and
    // never failed. Method: one record, the broker SIGSTOPped, then a consumer with a 500 ms
    // request deadline and a 2 s retry budget; its iterator must throw BROKER_UNAVAILABLE,
    // without onRecovered; after SIGCONT a seek reads the record.
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-hung-'));
    broker = await startBrokerProcess({ dataDir });
    client = createClient({ brokers: [broker.address], requestTimeoutMs: 500 });
    await client.admin.createTopic({ name: 'hung', partitions: 1 });
    await client.producer().send({ topic: 'hung', partition: 0, value: 'only' });
    await client.close();
    process.kill(broker.pid, 'SIGSTOP');
    isBrokerStopped = true;

    const events: string[] = [];
    client = createClient({ brokers: [broker.address], requestTimeoutMs: 500 });
    const consumer = client.consumer({
      autoOffsetReset: 'none',
      retry: { timeoutMs: 2_000 },
      onRetry: (error) => events.push(`retry ${error.reason}`),
      onRecovered: () => events.push('recovered'),
    });
    const tp = { topic: 'hung', partition: 0 };
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const failure = await readRecordsWithin(consumer, 1, { timeoutMs: 15_000, expected: 'a failure, not a record' }).then(
      (records) => new Error(`read ${records.length} record(s) from a stopped broker`),
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringContaining('did not take the subscription to hung-0 within 500 ms') });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((event) => event === 'retry BROKER_UNAVAILABLE')).toBe(true);

    process.kill(broker.pid, 'SIGCONT');
    isBrokerStopped = false;
    await consumer.seek(tp, 0);
    const records = await readRecordsWithin(consumer, 1, { timeoutMs: 15_000, expected: "'only' at offset 0" });
    expect(records.map((record) => record.value?.toString())).toEqual(['only']);
  });

  it('has the broker send the Subscribe response headers before any data, so a stream of a quiet partition is known taken', async () => {
    // The consumer's deadline above waits for these headers: a broker that sent none until
    // its first data would see every stream of a quiet partition given up and reopened.
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-headers-'));
    broker = await startBrokerProcess({ dataDir });
    client = createClient({ brokers: [broker.address], requestTimeoutMs: 500 });
    await client.admin.createTopic({ name: 'quiet', partitions: 1 });
    const raw = rawClients(broker.address);
    try {
      const call = raw.log.subscribe();
      let hasHeaders = false;
      const dataCount = { value: 0 };
      call.on('metadata', () => (hasHeaders = true));
      call.on('data', () => dataCount.value++);
      call.on('error', () => undefined);
      call.write({ start: { topic: 'quiet', partition: 0, offset: '0', creditBytes: 65_536, format: 'RECORD_FORMAT_BATCHES' } });
      await waitFor(() => hasHeaders, { timeoutMs: 10_000, describe: () => 'no Subscribe response headers from the broker' });
      expect(dataCount.value).toBe(0);
      call.cancel();
    } finally {
      raw.close();
    }
  });
});
