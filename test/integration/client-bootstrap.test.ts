/**
 * Several bootstrap addresses, one of them dead (nothing listens on port 1): the client must
 * settle on the one that answers, for every kind of call. Method: a real broker in this
 * process, a client whose random source makes it try the dead address first, and retry and
 * delivery budgets short enough that a client stuck on the dead address fails the test.
 * Then a broker that goes away under a client: an idempotent producer's records waiting for
 * InitProducerId fail at the producer's delivery timeout, measured on the wall clock, and so
 * do records waiting for a topic's metadata, which are retried past the client's retry budget
 * meanwhile, each retry told to `onRetry`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type ConsumerRecord, type RetryingRecords, type RunnelClient } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { startHungServer } from '../support/hung-server.js';
import { readRecordsWithin } from '../support/read-within.js';

const DEAD_ADDRESS = '127.0.0.1:1';

let broker: TestBroker;
let client: RunnelClient;

beforeEach(async () => {
  broker = await startBroker();
});

afterEach(async () => {
  await client?.close({ timeoutMs: 1_000 });
  await broker?.close();
});

/** A client trying the dead address first (random 0 picks the list's first entry). */
function clientDeadFirst(): RunnelClient {
  return createClient({ brokers: [DEAD_ADDRESS, broker.address], random: () => 0, retry: { timeoutMs: 5_000 } });
}

async function firstRecord(iterable: AsyncIterable<ConsumerRecord>): Promise<ConsumerRecord> {
  for await (const record of iterable) return record;
  throw new Error('the consumer ended without a record');
}

describe('client with a dead bootstrap address', () => {
  it('sends admin calls, ListOffsets and produce streams to the live broker once the dead one failed', async () => {
    client = clientDeadFirst();
    await client.admin.createTopic({ name: 'boot', partitions: 2 });
    // ListOffsets and the produce stream used to stay on the dead address (the first entry)
    // while retried unary calls moved on: they failed after their whole budget.
    await expect(client.admin.listOffsets({ topic: 'boot', spec: 'latest' })).resolves.toHaveLength(2);
    const producer = client.producer({ deliveryTimeoutMs: 5_000, lingerMs: 0 });
    await expect(producer.send({ topic: 'boot', partition: 1, value: 'v' })).resolves.toMatchObject({ partition: 1, offset: 0 });
  });

  it('moves a Subscribe stream that failed on the dead address to the live broker', async () => {
    const setup = createClient({ brokers: [broker.address] });
    await setup.admin.createTopic({ name: 'boot-sub', partitions: 1 });
    await setup.producer().send({ topic: 'boot-sub', value: 'first' });
    await setup.close();

    client = clientDeadFirst();
    const consumer = client.consumer();
    consumer.assign([{ topic: 'boot-sub', partition: 0 }]);
    await consumer.seek({ topic: 'boot-sub', partition: 0 }, 0);
    const record = await firstRecord(consumer);
    expect(record.value?.toString()).toBe('first');
  });
});

describe('client with a hung bootstrap address', () => {
  it('moves a Subscribe stream the hung address never took to the live broker once requestTimeoutMs passed', async () => {
    // Goal: an address that accepts connections and never answers (a stopped broker, a
    // frozen host) costs one stream deadline, not the consumer's retry budget. The consumer
    // gave such a stream up as CANCELLED, which did not count against the address, so every
    // reopened stream went to the hung address again and the partition failed at the end of
    // the budget. Method: the hung address first in the list (random 0), a 500 ms stream
    // deadline, a 30 s retry budget, a seek by offset (no unary call that could move the
    // client on), and the record must come within 10 s.
    const hung = await startHungServer();
    try {
      const setup = createClient({ brokers: [broker.address] });
      await setup.admin.createTopic({ name: 'boot-hung', partitions: 1 });
      await setup.producer().send({ topic: 'boot-hung', value: 'first' });
      await setup.close();

      client = createClient({ brokers: [hung.address, broker.address], random: () => 0, requestTimeoutMs: 500, retry: { timeoutMs: 30_000 } });
      const consumer = client.consumer();
      const tp = { topic: 'boot-hung', partition: 0 };
      consumer.assign([tp]);
      await consumer.seek(tp, 0);
      const records = await readRecordsWithin(consumer, 1, { timeoutMs: 10_000, expected: "'first' at offset 0, from the live broker" });
      expect(records.map((record) => record.value?.toString())).toEqual(['first']);
      expect(hung.acceptedCount()).toBeGreaterThan(0); // the first stream did go to the hung address
    } finally {
      await client?.close({ timeoutMs: 0 });
      await hung.close();
    }
  });
});

describe('client whose broker went away', () => {
  it('fails a record waiting for a producer id at the delivery timeout, not at the end of the retry budget', async () => {
    // The topic's metadata is cached (a producer without idempotence sent first), so the
    // idempotent producer's records wait only for InitProducerId, which retries for the
    // client's 60 s. They used to wait that long whatever deliveryTimeoutMs said.
    const gone = await startBroker();
    client = createClient({ brokers: [gone.address] });
    try {
      await client.admin.createTopic({ name: 'gone', partitions: 1 });
      await client.producer({ acks: 'leader', lingerMs: 0 }).send({ topic: 'gone', value: 'cached' });
    } finally {
      await gone.close();
    }
    const producer = client.producer({ deliveryTimeoutMs: 2_000, lingerMs: 0 });
    const startMs = Date.now();
    const failure = await producer.send({ topic: 'gone', value: 'v' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const elapsedMs = Date.now() - startMs;
    expect(failure).toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringMatching(/^records not acknowledged within the delivery timeout/) });
    expect(elapsedMs).toBeGreaterThanOrEqual(1_900);
    expect(elapsedMs).toBeLessThan(10_000);
  });

  it('fails a record waiting for its topic\'s metadata at the delivery timeout, past the client\'s retry budget, telling onRetry meanwhile', async () => {
    // A new producer's first record needs the topic's partition count (GetMetadata). With the
    // broker gone, that load used to give up at the end of the client's retry budget (1 s
    // here, 5 s in the CLI) and fail the record then, with no onRetry call.
    const gone = await startBroker();
    const address = gone.address;
    await gone.close();
    client = createClient({ brokers: [address], retry: { timeoutMs: 1_000 } });
    const retries: RetryingRecords[] = [];
    const producer = client.producer({ acks: 'leader', deliveryTimeoutMs: 3_000, lingerMs: 0, onRetry: (_error, retrying) => retries.push(retrying) });
    const startMs = Date.now();
    const failure = await producer.send({ topic: 'never-loaded', value: 'v' }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const elapsedMs = Date.now() - startMs;
    expect(failure).toMatchObject({ reason: 'BROKER_UNAVAILABLE', topic: 'never-loaded', message: expect.stringMatching(/^records not acknowledged within the delivery timeout/) });
    expect(elapsedMs).toBeGreaterThanOrEqual(2_900);
    expect(elapsedMs).toBeLessThan(10_000);
    expect(retries.length).toBeGreaterThan(1);
    expect(retries[0]).toMatchObject({ topic: 'never-loaded', partition: undefined, recordCount: 1, attempts: 0 });
    expect(retries[0]!.deliveryDeadlineMs - startMs).toBeGreaterThanOrEqual(2_900);
    expect(retries[0]!.deliveryDeadlineMs - startMs).toBeLessThanOrEqual(3_100);
  });
});

describe('a broker listening on IPv6', () => {
  it('binds a host given without brackets (--host ::1) and tells clients a bracketed address they can dial', async () => {
    await broker.close(); // this test's own broker listens on ::1
    broker = await startBroker({ config: { host: '::1' } });
    client = createClient({ brokers: [`[::1]:${broker.port}`], retry: { timeoutMs: 5_000 } });
    await client.admin.createTopic({ name: 'v6', partitions: 1 });
    const sent = await client.producer().send({ topic: 'v6', value: Buffer.from('over IPv6') });
    expect(sent.offset).toBe(0);
    const metadata = await client.admin.getMetadata();
    expect(metadata.brokers.map((known) => `${known.host}:${known.port}`)).toEqual([`[::1]:${broker.port}`]);
  });
});
