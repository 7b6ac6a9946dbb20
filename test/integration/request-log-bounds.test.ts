/**
 * Log lines a client can set off with every request stay bounded. Goal: however many requests
 * hit the same failure, the broker's log gets one line per kind per minute (with a count of the
 * others on the next), so a misbehaving client cannot fill the operator's disk or drown the
 * useful lines. Method: a real broker and gRPC server with a recording logger and one method
 * made to fail as a bug would (the in-process case), and a `runnel broker` child process sent
 * hundreds of raw HTTP/2 calls carrying a header grpc-js refuses to parse; the lines are
 * counted after the calls are answered (and, for the child, after it stopped, so its
 * asynchronous log is flushed).
 */
import * as http2 from 'node:http2';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/common/clock.js';
import { loadBrokerConfig } from '../../src/config/broker-config.js';
import { Broker } from '../../src/broker/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { startServer } from '../../src/server/index.js';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { rawClients, reasonOf, unary } from '../support/raw-grpc.js';
import { makeBatch } from '../../src/storage/test-helpers.js';
import { recordingLogger } from '../support/recording-logger.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const REQUEST_COUNT = 300;

/** A broker and its gRPC server whose log lines are recorded, and raw clients of it; all closed after the test. */
async function startRecordedServer(): Promise<{ broker: Broker; logger: ReturnType<typeof recordingLogger>; clients: ReturnType<typeof rawClients> }> {
  const config = { ...loadBrokerConfig({}), dataDir: tempDir('runnel-log-bounds-'), host: '127.0.0.1', port: 0 };
  const broker = await Broker.open({ config, logger: silentLogger });
  cleanups.push(() => broker.close());
  const logger = recordingLogger();
  const server = await startServer({ broker, host: '127.0.0.1', port: 0, logger, clock: systemClock, produceTimeoutMs: 5_000, inFlightRequestsPerConnectionMax: 100, produceBytesInFlightMax: 64 << 20 });
  cleanups.push(() => server.close(1_000));
  const clients = rawClients(`127.0.0.1:${server.port}`);
  cleanups.push(() => clients.close());
  return { broker, logger, clients };
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Sends REQUEST_COUNT ListTopics, one after another, each expected to fail with `reason`. */
async function expectListTopicsFailing(clients: ReturnType<typeof rawClients>, reason: string): Promise<void> {
  for (let i = 0; i < REQUEST_COUNT; i++) {
    const failure = await unary(clients.admin, 'ListTopics', {}).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(reasonOf(failure).reason).toBe(reason);
  }
}

describe('log lines a client can repeat', () => {
  it('logs an unexpected error that every request hits once, not once per request', async () => {
    const { broker, logger, clients } = await startRecordedServer();
    // As a bug would: a plain Error, not a BrokerError.
    broker.listTopics = () => {
      throw new TypeError('cannot read properties of undefined');
    };
    await expectListTopicsFailing(clients, 'INTERNAL_ERROR');
    const lines = logger.calls.filter((call) => call.message === 'unexpected error in a request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'error', fields: { method: 'ListTopics' } });
  });

  it('keeps two different unexpected errors of one method apart, so a rare one is not hidden behind a frequent one', async () => {
    const { broker, logger, clients } = await startRecordedServer();
    // Two bugs behind one method: one hit by every request but the last, one by the last only.
    let calls = 0;
    const frequentBug = (): never => {
      throw new TypeError('cannot read properties of undefined');
    };
    const rareBug = (): never => {
      throw new RangeError('invalid array length');
    };
    broker.listTopics = () => (++calls < REQUEST_COUNT ? frequentBug() : rareBug());
    await expectListTopicsFailing(clients, 'INTERNAL_ERROR');
    const lines = logger.calls.filter((call) => call.message === 'unexpected error in a request');
    expect(lines.map((line) => line.fields.err)).toEqual(['TypeError: cannot read properties of undefined', 'RangeError: invalid array length']);
  });

  it('logs a refused request at debug, once per method and reason however many requests a client repeats', async () => {
    const { broker, logger, clients } = await startRecordedServer();
    for (let i = 0; i < REQUEST_COUNT; i++) {
      const failure = await unary(clients.admin, 'DescribeTopic', { name: 'no-such-topic' }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(reasonOf(failure).reason).toBe('TOPIC_NOT_FOUND');
    }
    expect(logger.calls.filter((call) => call.level !== 'debug' && call.message !== 'gRPC server listening')).toEqual([]);
    const refused = logger.calls.filter((call) => call.message === 'request refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]?.fields).toMatchObject({ method: 'DescribeTopic', reason: 'TOPIC_NOT_FOUND' });
  });

  it('logs a partition of a Produce refused, or failing unexpectedly, as a whole call is: once per reason, however many requests repeat it', async () => {
    const { broker, logger, clients } = await startRecordedServer();
    await broker.createTopic({ name: 'one', partitions: 1, replicationFactor: 1, configs: {} });
    const produceReasons = async (partition: number): Promise<string[]> => {
      const reasons: string[] = [];
      for (let i = 0; i < REQUEST_COUNT; i++) {
        const response = await unary<unknown, Any>(clients.log, 'Produce', { acks: 'ACKS_ALL', topics: [{ topic: 'one', partitions: [{ partition, recordBatch: makeBatch() }] }] });
        reasons.push(String(response.topics[0].partitions[0].error?.reason));
      }
      return [...new Set(reasons)];
    };
    expect(await produceReasons(7)).toEqual(['PARTITION_NOT_FOUND']);
    const refused = logger.calls.filter((call) => call.message === 'request refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 'debug', fields: { method: 'Produce', reason: 'PARTITION_NOT_FOUND' } });
    // As a bug would: a plain Error, answered INTERNAL_ERROR with "see the broker log".
    broker.produce = () => Promise.reject(new TypeError('cannot read properties of undefined'));
    expect(await produceReasons(0)).toEqual(['INTERNAL_ERROR']);
    const unexpected = logger.calls.filter((call) => call.message === 'unexpected error in a request');
    expect(unexpected).toHaveLength(1);
    expect(unexpected[0]).toMatchObject({ level: 'error', fields: { method: 'Produce', err: 'TypeError: cannot read properties of undefined' } });
  });

  it('logs what grpc-js says of a header it cannot parse once, however many calls carry it', async () => {
    const dataDir = tempDir('runnel-log-bounds-');
    const broker = await startBrokerProcess({ dataDir });
    cleanups.push(() => stopAllBrokerProcesses());
    const session = http2.connect(`http://${broker.address}`);
    cleanups.push(() => void session.close());
    for (let i = 0; i < REQUEST_COUNT; i++) {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/runnel.v1.AdminService/ListTopics',
          'content-type': 'application/grpc',
          te: 'trailers',
          'x!bad': String(i), // a legal HTTP/2 name, an illegal gRPC metadata key
        });
        stream.on('error', reject);
        stream.on('close', () => resolve());
        stream.resume();
        stream.end(Buffer.alloc(5)); // one empty message
      });
    }
    expect(await broker.stop()).toBe(0);
    // Stopped is its last line: every line before it is in.
    await waitFor(() => broker.logs.some((line) => line.includes('"broker stopped')), { timeoutMs: 10_000, describe: () => `no stop line in ${broker.logs.join('\n')}` });
    const grpcLines = broker.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.component === 'grpc');
    expect(grpcLines.length, grpcLines.map((entry) => String(entry.detail)).join('\n')).toBeGreaterThanOrEqual(1);
    expect(grpcLines.length, grpcLines.map((entry) => String(entry.detail)).join('\n')).toBeLessThanOrEqual(1);
    expect(grpcLines[0]).toMatchObject({ level: 40, msg: 'grpc-js reported an error' });
    expect(String(grpcLines[0]?.detail)).toContain('x!bad');
  });
});
