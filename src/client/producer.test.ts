import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { BrokerError, isBrokerError } from '../errors/index.js';
import { decodeBatch, HEADERS_PER_RECORD_MAX, partitionForKey } from '../protocol/index.js';
import { Producer, type FailedRecords, type ProducerOptions, type RetryingRecords } from './producer.js';
import { BATCH_HEAP_BYTES, OBSERVED_RECORD_HEAP_BYTES, PendingSend, RECORD_HEAP_BYTES } from './producer-batch.js';
import { FakePartitionLog, FakeProducerTransport, settle, type PartitionAnswer, type SentPartition } from './test-helpers.js';
import type { RecordMetadata } from './types.js';

/** A deterministic random source: a fixed cycle of values. */
function cyclingRandom(values: number[]): () => number {
  let index = 0;
  return () => values[index++ % values.length]!;
}

/** Whether `promise` has settled, to ask later (its rejection counts as handled). */
function settledFlag(promise: Promise<unknown>): () => boolean {
  let isSettled = false;
  promise.then(
    () => (isSettled = true),
    () => (isSettled = true),
  );
  return () => isSettled;
}

function makeProducer(topics: Record<string, number>, options: ProducerOptions = {}) {
  const clock = new ManualClock();
  const transport = new FakeProducerTransport(topics);
  const producer = new Producer(transport, { clock, random: cyclingRandom([0.1, 0.6, 0.3, 0.9]), ...options });
  return { clock, transport, producer, channel: transport.channel };
}

/** Answers every pending request from per-partition fake logs, in order. */
function answerAll(channel: FakeProducerTransport['channel'], logs: Map<string, FakePartitionLog>): void {
  while (channel.pending.length > 0) {
    channel.replyNext((sent) => logFor(logs, sent).append(sent.bytes));
  }
}

function logFor(logs: Map<string, FakePartitionLog>, sent: SentPartition): FakePartitionLog {
  const key = `${sent.topic}-${sent.partition}`;
  let log = logs.get(key);
  if (log === undefined) {
    log = new FakePartitionLog();
    logs.set(key, log);
  }
  return log;
}

const value = (index: number) => Buffer.from(`value-${index}`);

describe('Producer batching', () => {
  it('keeps records sent within the linger time in one batch and sends it when the linger passes', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 5 });
    const handles = [0, 1, 2].map((index) => producer.send({ topic: 't', value: value(index) }));
    await settle();
    expect(channel.sent).toHaveLength(0);
    clock.advance(4);
    await settle();
    expect(channel.sent).toHaveLength(0);
    clock.advance(1);
    await settle();
    expect(channel.sent).toHaveLength(1);
    expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(3);
    channel.replyNext(() => ({ baseOffset: 40 }));
    const results = await Promise.all(handles);
    expect(results.map((result) => result.offset)).toEqual([40, 41, 42]);
  });

  it('sends a batch as soon as it reaches batchBytes, without waiting for the linger', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 1_000, batchBytes: 200 });
    for (let index = 0; index < 6; index++) void producer.send({ topic: 't', partition: 0, value: Buffer.alloc(50) });
    await settle();
    // 50 + 24 bytes of overhead each: a batch holds two records before reaching 200 bytes.
    expect(channel.sent.length).toBeGreaterThanOrEqual(1);
    expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(2);
  });

  it('encodes each batch once and gives every record of it its own offset and timestamp', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const first = producer.send({ topic: 't', value: 'a', timestamp: 1_000 });
    const second = producer.send({ topic: 't', value: 'b', key: 'k', headers: { h: 'v' } });
    await settle();
    expect(channel.sent).toHaveLength(1);
    const decoded = decodeBatch(channel.sent[0]!.partitions[0]!.bytes);
    expect(decoded.records.map((record) => record.value?.toString())).toEqual(['a', 'b']);
    expect(decoded.records[1]!.headers).toEqual([{ key: 'h', value: Buffer.from('v') }]);
    channel.replyNext(() => ({ baseOffset: 7 }));
    const metadata: RecordMetadata[] = [await first, await second];
    expect(metadata).toEqual([
      { topic: 't', partition: 0, offset: 7, timestamp: 1_000 },
      { topic: 't', partition: 0, offset: 8, timestamp: clock.nowMs() },
    ]);
  });

  it('resolves with the log-append time when the broker stamps one', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a', timestamp: 5 });
    await settle();
    channel.replyNext(() => ({ baseOffset: 0, logAppendTimeMs: 99 }));
    expect((await handle).timestamp).toBe(99);
  });

  it('puts no more than one batch of a partition in one request and groups partitions of a channel', async () => {
    const { producer, channel } = makeProducer({ t: 3 }, { lingerMs: 0, batchBytes: 100 });
    for (let index = 0; index < 3; index++) {
      void producer.send({ topic: 't', partition: 0, value: Buffer.alloc(80) });
      void producer.send({ topic: 't', partition: 1, value: Buffer.alloc(80) });
    }
    await settle();
    for (const sent of channel.sent) {
      const partitions = sent.partitions.map((partition) => partition.partition);
      expect(new Set(partitions).size).toBe(partitions.length);
    }
    expect(channel.sent[0]!.partitions.map((partition) => partition.partition).sort()).toEqual([0, 1]);
  });

  it('sends a large batch in a request of its own rather than on top of other partitions\' batches', async () => {
    // 7 MiB and 60 MiB together would pass the gRPC message limit (65 MiB): the stream would
    // refuse the request, and every retry built the same way again.
    const { producer, channel } = makeProducer({ t: 2 }, { lingerMs: 0, batchBytes: 64 * 1024 * 1024, bufferBytes: 128 * 1024 * 1024 });
    void producer.send({ topic: 't', partition: 0, value: Buffer.alloc(7 * 1024 * 1024) });
    void producer.send({ topic: 't', partition: 1, value: Buffer.alloc(60 * 1024 * 1024) });
    await settle();
    expect(channel.sent.map((sent) => sent.partitions.map((partition) => partition.partition))).toEqual([[0], [1]]);
  });
});

describe('Producer with many partitions and a full channel', () => {
  it('does not walk the partitions waiting for room on the channel at every drain, and sends each of them once room comes', async () => {
    const PARTITIONS = 2_000;
    const { producer, channel, transport } = makeProducer({ t: PARTITIONS }, { lingerMs: 0 });
    let channelLookups = 0;
    const channelFor = transport.channelFor.bind(transport);
    transport.channelFor = () => (channelLookups++, channelFor());
    const handles: Promise<RecordMetadata>[] = [];
    // 32 requests in flight, unanswered: the channel's cap (CHANNEL_IN_FLIGHT_MAX).
    for (let index = 0; channel.inFlightCount < 32; index++) {
      handles.push(producer.send({ topic: 't', partition: index, value: value(index) }));
      await settle();
    }
    const requestsBefore = channel.sent.length;
    // A record for every partition: each batch waits for room.
    for (let partition = 0; partition < PARTITIONS; partition++) handles.push(producer.send({ topic: 't', partition, value: value(partition) }));
    await settle();
    expect(channel.sent.length).toBe(requestsBefore);
    // 200 more bursts of sends, each drained on its own, while the channel stays full. Each
    // drain used to look up the channel of all 2,000 waiting partitions (400,000 lookups).
    channelLookups = 0;
    for (let burst = 0; burst < 200; burst++) {
      handles.push(producer.send({ topic: 't', partition: burst, value: value(burst) }));
      await settle();
    }
    expect(channel.sent.length).toBe(requestsBefore);
    expect(channelLookups).toBeLessThan(PARTITIONS);
    // Room comes with each answer: every record is sent and acknowledged once, in order per partition.
    const logs = new Map<string, FakePartitionLog>();
    for (let round = 0; round < 1_000 && channel.pending.length > 0; round++) {
      channel.replyNext((sent) => logFor(logs, sent).append(sent.bytes));
      await settle();
    }
    const results = await Promise.all(handles);
    expect(results).toHaveLength(32 + PARTITIONS + 200);
    expect(channel.pending).toHaveLength(0);
    for (const [key, log] of logs) {
      const partition = Number(key.slice('t-'.length));
      const expected = [...(partition < 32 ? [value(partition)] : []), value(partition), ...(partition < 200 ? [value(partition)] : [])];
      expect(log.records.map((record) => record.value), key).toEqual(expected);
    }
    expect(logs.size).toBe(PARTITIONS);
  });
});

describe('Producer partitioning', () => {
  it('puts a keyed record on the partition Kafka would (murmur2 of the key)', async () => {
    const { producer, channel } = makeProducer({ t: 7 }, { lingerMs: 0 });
    const keys = ['a', 'b', 'customer-42', 'ключ', ''];
    const handles = keys.map((key) => producer.send({ topic: 't', key, value: 'v' }));
    await settle();
    answerAll(channel, new Map());
    const partitions = (await Promise.all(handles)).map((metadata) => metadata.partition);
    expect(partitions).toEqual(keys.map((key) => partitionForKey(Buffer.from(key, 'utf8'), 7)));
  });

  it('keeps null-key records on one partition until its batch closes, then moves to another', async () => {
    const { producer, channel } = makeProducer({ t: 4 }, { lingerMs: 1_000, batchBytes: 3 * 30 });
    // Each record is 6 + 24 bytes: three fill a batch.
    const handles = Array.from({ length: 9 }, (_, index) => producer.send({ topic: 't', value: `v${index}0000` }));
    await settle();
    answerAll(channel, new Map());
    const partitions = (await Promise.all(handles)).map((metadata) => metadata.partition);
    expect(partitions.slice(0, 3).every((partition) => partition === partitions[0])).toBe(true);
    expect(partitions.slice(3, 6).every((partition) => partition === partitions[3])).toBe(true);
    expect(partitions.slice(6, 9).every((partition) => partition === partitions[6])).toBe(true);
    expect(partitions[3]).not.toBe(partitions[0]);
    expect(partitions[6]).not.toBe(partitions[3]);
  });

  it('uses an explicit partition as given and fails one outside the topic after one metadata refresh', async () => {
    const { producer, channel, transport } = makeProducer({ t: 2 }, { lingerMs: 0 });
    const inside = producer.send({ topic: 't', partition: 1, key: 'x', value: 'v' });
    const outside = producer.send({ topic: 't', partition: 2, value: 'v' });
    await settle();
    answerAll(channel, new Map());
    expect((await inside).partition).toBe(1);
    await expect(outside).rejects.toMatchObject({ reason: 'PARTITION_NOT_FOUND' });
    expect(transport.loadCalls).toBe(1);
  });

  it('refuses a partition no topic can have (1.5, "1", -1) at once, without a metadata refresh', async () => {
    const { producer, transport } = makeProducer({ t: 2 }, { lingerMs: 0 });
    for (const partition of [1.5, '1', -1]) {
      await expect(producer.send({ topic: 't', partition: partition as number, value: 'v' })).rejects.toMatchObject({
        reason: 'INVALID_REQUEST',
        message: expect.stringContaining("a record's partition must be an integer ≥ 0"),
      });
    }
    expect(transport.loadCalls).toBe(0);
  });

  it('refuses a lingerMs as long as the delivery timeout, under which every batch would fail as it closes', () => {
    expect(() => makeProducer({ t: 1 }, { lingerMs: 1_000, deliveryTimeoutMs: 1_000 })).toThrow(/deliveryTimeoutMs \(1000\) must be longer than lingerMs \(1000\)/);
    expect(() => makeProducer({ t: 1 }, { lingerMs: 999, deliveryTimeoutMs: 1_000 })).not.toThrow();
  });

  it('finds a partition added since the metadata was cached by refreshing once', async () => {
    const { producer, channel, transport } = makeProducer({ t: 2 }, { lingerMs: 0 });
    transport.brokerPartitionCounts.set('t', 3);
    const handle = producer.send({ topic: 't', partition: 2, value: 'v' });
    await settle();
    answerAll(channel, new Map());
    expect((await handle).partition).toBe(2);
  });

  it('loads an unknown topic once and fails its records with TOPIC_NOT_FOUND when it does not exist', async () => {
    const { producer, transport } = makeProducer({}, { lingerMs: 0 });
    const handles = [producer.send({ topic: 'missing', value: 'a' }), producer.send({ topic: 'missing', value: 'b' })];
    await settle();
    expect(transport.loadCalls).toBe(1);
    for (const handle of handles) await expect(handle).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 2 });
  });
});

describe('Producer waiting for a topic\'s metadata', () => {
  const unreachable = new BrokerError('BROKER_UNAVAILABLE', 'No connection established');

  it('loads a topic\'s metadata again while its records wait within their delivery timeout, telling onRetry, then delivers them', async () => {
    // A new producer whose broker is down: GetMetadata retries for the client's retry budget
    // (5 s in the CLI), but the records waiting for it are bounded by their delivery timeout.
    const retries: (RetryingRecords & { reason: string })[] = [];
    const { clock, producer, channel, transport } = makeProducer(
      {},
      { lingerMs: 0, deliveryTimeoutMs: 30_000, retry: { backoffMsMin: 100, backoffMsMax: 1_000 }, onRetry: (error, retrying) => retries.push({ ...retrying, reason: error.reason }) },
    );
    transport.brokerPartitionCounts.set('t', 1);
    transport.loadError = unreachable;
    transport.loadRetriesPerCall = 2; // each load: two retried failures, then the budget is used up
    const sentMs = clock.nowMs();
    const first = producer.send({ topic: 't', value: 'a' });
    const isFirstSettled = settledFlag(first);
    await settle();
    expect(transport.loadCalls).toBe(1);
    // Both retried failures and the given-up load, each for the topic's waiting records (no partition yet).
    expect(retries).toEqual(Array(3).fill({ reason: 'BROKER_UNAVAILABLE', topic: 't', partition: undefined, recordCount: 1, attempts: 0, deliveryDeadlineMs: sentMs + 30_000 }));
    for (let step = 0; step < 3; step++) {
      clock.advance(1_000); // the longest backoff
      await settle();
    }
    expect(transport.loadCalls).toBe(4);
    const second = producer.send({ topic: 't', value: 'b' });
    await settle();
    expect(isFirstSettled()).toBe(false);
    expect(channel.sent).toHaveLength(0);
    expect(retries).toHaveLength(12);
    expect(producer.metrics().waitingRecords).toBe(2);

    transport.loadError = undefined; // the broker is back
    clock.advance(1_000);
    await settle();
    expect(transport.loadCalls).toBe(5);
    expect(channel.sent).toHaveLength(1);
    // The batch they joined keeps the first record's deadline, counted from its send.
    channel.failAll();
    await settle();
    expect(retries.at(-1)).toMatchObject({ topic: 't', partition: 0, recordCount: 2, attempts: 1, deliveryDeadlineMs: sentMs + 30_000 });
    clock.advance(1_000);
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(first).resolves.toMatchObject({ partition: 0, offset: 0 });
    await expect(second).resolves.toMatchObject({ partition: 0, offset: 1 });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0, ackedRecords: 2, failedRecords: 0 });
  });

  it('fails records waiting for metadata at their own delivery deadline, with the last load failure, and stops loading once none waits', async () => {
    const retries: RetryingRecords[] = [];
    const failures: FailedRecords[] = [];
    const { clock, producer, transport } = makeProducer(
      {},
      {
        lingerMs: 0,
        deliveryTimeoutMs: 3_000,
        retry: { backoffMsMin: 100, backoffMsMax: 1_000 },
        onRetry: (_error, retrying) => retries.push(retrying),
        onError: (_error, failed) => failures.push(failed),
      },
    );
    transport.brokerPartitionCounts.set('t', 1);
    transport.loadError = unreachable;
    const sentMs = clock.nowMs();
    const first = producer.send({ topic: 't', value: 'a' });
    first.catch(() => undefined); // checked below
    await settle();
    clock.advance(1_000);
    const second = producer.send({ topic: 't', value: 'b' });
    const isSecondSettled = settledFlag(second);
    await settle();
    clock.advance(2_000);
    await settle();
    expect(isSecondSettled()).toBe(false);
    // Every load failure so far was reported for the waiting records, with the oldest one's deadline.
    expect(retries.length).toBeGreaterThan(2);
    expect(retries.every((retrying) => retrying.topic === 't' && retrying.partition === undefined && retrying.deliveryDeadlineMs === sentMs + 3_000)).toBe(true);
    clock.advance(1); // the first record's deadline: 3,000 ms after its send
    await settle();
    await expect(first).rejects.toMatchObject({
      reason: 'BROKER_UNAVAILABLE',
      topic: 't',
      message: 'records not acknowledged within the delivery timeout; last error: No connection established',
    });
    expect(isSecondSettled()).toBe(false); // its own deadline is a second later
    clock.advance(1_000);
    await settle();
    await expect(second).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringMatching(/delivery timeout/) });
    expect(failures).toEqual([
      { topic: 't', partition: undefined, recordCount: 1 },
      { topic: 't', partition: undefined, recordCount: 1 },
    ]);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0, failedRecords: 2 });
    const loadsAtDeadline = transport.loadCalls;
    clock.advance(10_000);
    await settle();
    expect(transport.loadCalls).toBe(loadsAtDeadline);

    // A failure that is not retriable fails the waiting records at once; a later record loads afresh.
    transport.loadError = new BrokerError('UNAUTHENTICATED', 'who are you');
    await expect(producer.send({ topic: 't', value: 'c' })).rejects.toMatchObject({ reason: 'UNAUTHENTICATED' });
    expect(transport.loadCalls).toBe(loadsAtDeadline + 1);
  });

  it('fails records waiting for metadata the broker never answers at their delivery deadline with REQUEST_TIMED_OUT', async () => {
    const { clock, producer, transport } = makeProducer({}, { lingerMs: 0, deliveryTimeoutMs: 2_000 });
    transport.holdLoads = true;
    const handle = producer.send({ topic: 't', value: 'a' });
    handle.catch(() => undefined); // checked below
    await settle();
    clock.advance(2_001);
    await settle();
    await expect(handle).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT', message: expect.stringMatching(/delivery timeout.*topic t's metadata/) });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0 });
  });
});

describe('Producer idempotence and retries', () => {
  it('asks for a producer id once and numbers each partition’s batches from sequence 0', async () => {
    const { producer, channel, transport } = makeProducer({ t: 2 }, { lingerMs: 0 });
    const logs = new Map<string, FakePartitionLog>();
    for (let round = 0; round < 3; round++) {
      void producer.send({ topic: 't', partition: 0, value: 'a' });
      void producer.send({ topic: 't', partition: 0, value: 'b' });
      void producer.send({ topic: 't', partition: 1, value: 'c' });
      await settle();
      answerAll(channel, logs);
    }
    expect(transport.initCalls).toEqual([undefined]);
    const headers = channel.sent.flatMap((sent) => sent.partitions);
    const sequences = (partition: number) => headers.filter((sent) => sent.partition === partition).map((sent) => sent.header.baseSequence);
    expect(sequences(0)).toEqual([0, 2, 4]);
    expect(sequences(1)).toEqual([0, 1, 2]);
    expect(new Set(headers.map((sent) => sent.header.producerId))).toEqual(new Set([1000]));
  });

  it('keeps at most five batches of a partition unacknowledged', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    void producer.send({ topic: 't', value: value(0) });
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    for (let index = 1; index <= 8; index++) {
      void producer.send({ topic: 't', value: value(index) });
      await settle();
    }
    expect(channel.pending).toHaveLength(5);
    channel.replyNext(() => ({ baseOffset: 1 }));
    await settle();
    expect(channel.pending).toHaveLength(5);
    expect(channel.sent).toHaveLength(7);
  });

  it('sends one batch of a partition at a time until the broker acknowledged one, so a refused first batch cannot let a later one in first', async () => {
    // The broker takes any sequence from a producer it does not know yet: a second batch sent
    // while the first is refused (here LIMIT_REACHED) would be appended before it.
    const { clock, producer, channel } = makeProducer({ t: 2 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const handles: Promise<RecordMetadata>[] = [];
    for (let index = 0; index < 3; index++) {
      handles.push(producer.send({ topic: 't', partition: 0, value: value(index) }));
      void producer.send({ topic: 't', partition: 1, value: value(index) });
      await settle();
    }
    // One request with the first batch of each partition; nothing else yet.
    expect(channel.pending).toHaveLength(1);
    expect(channel.pending[0]!.partitions.map((sent) => sent.partition)).toEqual([0, 1]);
    channel.replyNext((sent) => (sent.partition === 0 ? { error: 'LIMIT_REACHED' } : logFor(logs, sent).append(sent.bytes)));
    await settle();
    expect(channel.pending.flatMap((request) => request.partitions.map((sent) => sent.partition))).toEqual([1, 1]); // partition 1 is known now
    clock.advance(2_000);
    await settle();
    answerAll(channel, logs);
    await settle();
    answerAll(channel, logs);
    expect((await Promise.all(handles)).map((metadata) => metadata.offset)).toEqual([0, 1, 2]);
    expect(log.records.map((record) => record.value?.toString())).toEqual(['value-0', 'value-1', 'value-2']);
  });

  it('resends a batch after a broken stream with the same sequence, and the duplicate resolves with the original offsets', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const handle = producer.send({ topic: 't', value: 'once' });
    await settle();
    const firstSend = channel.sent[0]!.partitions[0]!;
    log.append(firstSend.bytes); // the broker appended it, but the reply is lost
    channel.failAll();
    clock.advance(2_000);
    await settle();
    expect(channel.sent).toHaveLength(2);
    const resent = channel.sent[1]!.partitions[0]!;
    expect(resent.header.baseSequence).toBe(firstSend.header.baseSequence);
    expect(resent.bytes.equals(firstSend.bytes)).toBe(true);
    channel.replyNext((sent) => log.append(sent.bytes));
    expect((await handle).offset).toBe(0);
    expect(log.records).toHaveLength(1);
  });

  it('resends after a backoff whose timer fires a millisecond before the clock says it is due', async () => {
    // Node's timers run on a monotonic clock and may fire ~1 ms before Date.now() reaches
    // the due time; the partition must not go back to sleep with no timer armed.
    class EarlyClock extends ManualClock {
      override setTimer(delayMs: number, callback: () => void): () => void {
        return super.setTimer(Math.max(0, delayMs - 1), callback);
      }
    }
    const clock = new EarlyClock();
    const transport = new FakeProducerTransport({ t: 1 });
    const producer = new Producer(transport, { clock, random: () => 0.5, lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    transport.channel.failAll();
    await settle();
    clock.advance(10_000);
    await settle();
    expect(transport.channel.sent).toHaveLength(2);
    transport.channel.replyNext(() => ({ baseOffset: 0 }));
    expect((await handle).offset).toBe(0);
  });

  it('resends later in-flight batches in order after a retriable failure, without duplicates', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const handles = [producer.send({ topic: 't', value: value(0) })];
    await settle();
    answerAll(channel, logs); // the log now knows this producer: sequence 0 done
    for (let index = 1; index < 4; index++) {
      handles.push(producer.send({ topic: 't', value: value(index) }));
      await settle();
    }
    expect(channel.pending).toHaveLength(3);
    // Batch 1 is refused before the write; 2 and 3 then break the sequence (OUT_OF_ORDER).
    channel.replyNext(() => ({ error: 'LIMIT_REACHED' }));
    channel.replyNext((sent) => log.append(sent.bytes));
    channel.replyNext((sent) => log.append(sent.bytes));
    await settle();
    expect(channel.sent).toHaveLength(4); // backoff pending
    clock.advance(2_000);
    await settle();
    expect(channel.sent.slice(4).map((sent) => sent.partitions[0]!.header.baseSequence)).toEqual([1, 2, 3]);
    answerAll(channel, logs);
    const offsets = (await Promise.all(handles)).map((metadata) => metadata.offset);
    expect(offsets).toEqual([0, 1, 2, 3]);
    expect(log.records.map((record) => record.value?.toString())).toEqual(['value-0', 'value-1', 'value-2', 'value-3']);
    expect(transport.initCalls).toHaveLength(1); // the OUT_OF_ORDER replies were expected: no epoch bump
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 4, failedRecords: 0 });
  });

  it('sends nothing new while the oldest unacknowledged batch is five batches back, so a resend stays within the broker\'s duplicate window', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const handles = [producer.send({ topic: 't', value: value(0) })];
    await settle();
    answerAll(channel, logs);
    for (let index = 1; index <= 9; index++) {
      handles.push(producer.send({ topic: 't', value: value(index) }));
      await settle();
    }
    expect(channel.pending).toHaveLength(5); // batches 1..5; 6..9 wait
    // Batch 1 was appended, but its reply came too late (ACK_TIMEOUT); 2..5 are acknowledged.
    channel.replyNext((sent) => {
      log.append(sent.bytes);
      return { error: 'ACK_TIMEOUT' };
    });
    for (let index = 2; index <= 5; index++) channel.replyNext((sent) => log.append(sent.bytes));
    await settle();
    clock.advance(2_000);
    await settle();
    // Only batch 1 goes again: batch 6 would put it six batches back, out of the broker's window.
    expect(channel.pending.map((sent) => sent.partitions[0]!.header.baseSequence)).toEqual([1]);
    answerAll(channel, logs); // a duplicate: the original offset
    for (let round = 0; round < 5 && channel.pending.length > 0; round++) {
      answerAll(channel, logs);
      await settle();
    }
    expect((await Promise.all(handles)).map((metadata) => metadata.offset)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(log.records.map((record) => record.value?.toString())).toEqual(Array.from({ length: 10 }, (_, index) => `value-${index}`));
    expect(transport.initCalls).toHaveLength(1); // no epoch bump
  });

  it('fails only the records of a batch with a non-retriable error and renumbers the batches after it', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const first = producer.send({ topic: 't', value: 'first' });
    await settle();
    answerAll(channel, logs);
    const tooBig = producer.send({ topic: 't', value: 'too-big' });
    await settle();
    const after = producer.send({ topic: 't', value: 'after' });
    await settle();
    channel.replyNext(() => ({ error: 'RECORD_TOO_LARGE' }));
    channel.replyNext((sent) => log.append(sent.bytes)); // OUT_OF_ORDER: sequence 2 after 0
    await settle();
    answerAll(channel, logs);
    expect((await first).offset).toBe(0);
    await expect(tooBig).rejects.toMatchObject({ reason: 'RECORD_TOO_LARGE' });
    expect((await after).offset).toBe(1);
    const lastSend = channel.sent.at(-1)!.partitions[0]!;
    expect(lastSend.header.baseSequence).toBe(1);
    expect(log.records.map((record) => record.value?.toString())).toEqual(['first', 'after']);
  });

  it('fails a batch the broker never answers at its delivery timeout, and resends the others on a new stream', async () => {
    // A broker that accepts the stream but never replies (SIGSTOPped): no reply, no error.
    const { clock, producer, channel } = makeProducer({ t: 2 }, { lingerMs: 0, deliveryTimeoutMs: 1_000, retry: { backoffMsMin: 10, backoffMsMax: 10 } });
    const stuck = producer.send({ topic: 't', partition: 0, value: 'stuck' });
    await settle();
    clock.advance(500);
    const later = producer.send({ topic: 't', partition: 1, value: 'later' });
    await settle();
    expect(channel.pending).toHaveLength(2);
    clock.advance(501);
    await settle();
    await expect(stuck).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT', message: expect.stringMatching(/delivery timeout/) });
    expect(channel.resetCount).toBe(1);
    // The later batch still had time: resent after its backoff, and delivered.
    clock.advance(10);
    await settle();
    expect(channel.pending.map((sent) => sent.partitions[0]!.partition)).toEqual([1]);
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(later).resolves.toMatchObject({ partition: 1, offset: 0 });
  });

  it('fails a batch whose backoff ends past its delivery deadline instead of resending it, leaving the stream and other partitions alone', async () => {
    // Resent, it would be past due on the wire: its reply timer would give up on the stream a
    // millisecond later, failing every other request on it (and marking the broker unreachable).
    for (const options of [{}, { acks: 'leader' as const }]) {
      const { clock, producer, channel } = makeProducer({ t: 2 }, { lingerMs: 0, deliveryTimeoutMs: 1_000, retry: { backoffMsMin: 100, backoffMsMax: 100 }, ...options });
      const expiring = producer.send({ topic: 't', partition: 0, value: 'expiring' });
      await settle();
      clock.advance(950);
      channel.replyNext(() => ({ error: 'DISK_FULL', message: 'disk full while trying to append' }));
      const healthy = producer.send({ topic: 't', partition: 1, value: 'healthy' });
      await settle();
      expect(channel.pending.map((sent) => sent.partitions[0]!.partition)).toEqual([1]);
      clock.advance(100); // the backoff ends 50 ms past the deadline
      await settle();
      await expect(expiring).rejects.toMatchObject({ reason: 'DISK_FULL', message: expect.stringMatching(/delivery timeout/) });
      clock.advance(10);
      await settle();
      expect(channel.sent.flatMap((sent) => sent.partitions.map((partition) => partition.partition))).toEqual([0, 1]); // never resent
      expect(channel.resetCount).toBe(0);
      expect(channel.pending.map((sent) => sent.partitions[0]!.partition)).toEqual([1]);
      channel.replyNext(() => ({ baseOffset: 0 }));
      await expect(healthy).resolves.toMatchObject({ partition: 1, offset: 0 });
    }
  });

  it('retries a batch refused with DISK_FULL within its delivery timeout (retention may free space), unlike admin changes', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 10_000, retry: { backoffMsMin: 100, backoffMsMax: 100 } });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    channel.replyNext(() => ({ error: 'DISK_FULL', message: 'disk full while trying to append' }));
    clock.advance(100);
    await settle();
    expect(channel.sent).toHaveLength(2);
    channel.replyNext(() => ({ baseOffset: 4 }));
    await expect(handle).resolves.toMatchObject({ offset: 4 });
  });

  it('fails records waiting for a producer id at their delivery timeout, naming the last InitProducerId failure', async () => {
    // An unreachable broker: InitProducerId retries for the client's retry budget (60 s by
    // default); the records waiting for it must still fail at their own delivery deadline.
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 3_000 });
    transport.holdInit = true;
    transport.initRetryError = new BrokerError('BROKER_UNAVAILABLE', 'No connection established');
    const first = producer.send({ topic: 't', value: 'a' });
    await settle();
    clock.advance(1_000);
    const second = producer.send({ topic: 't', value: 'b' });
    const isSecondSettled = settledFlag(second);
    await settle();
    clock.advance(2_001);
    await settle();
    await expect(first).rejects.toMatchObject({
      reason: 'BROKER_UNAVAILABLE',
      message: 'records not acknowledged within the delivery timeout; last error: No connection established',
    });
    expect(isSecondSettled()).toBe(false); // its own deadline is a second later
    clock.advance(1_000);
    await settle();
    await expect(second).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringMatching(/delivery timeout/) });
    expect(channel.sent).toHaveLength(0);
    expect(transport.initCalls).toHaveLength(1);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 2 });
    // Once the id comes, later records go out under it.
    transport.answerHeldInits();
    const third = producer.send({ topic: 't', value: 'c' });
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(third).resolves.toMatchObject({ offset: 0 });
  });

  it('fails records waiting for an epoch bump at their delivery timeout, REQUEST_TIMED_OUT when InitProducerId never answered', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 1_000 });
    const waiting = producer.send({ topic: 't', value: 'a' });
    await settle();
    transport.holdInit = true; // a broker that stops answering after the first id
    channel.replyNext(() => ({ error: 'OUT_OF_ORDER_SEQUENCE' })); // unexplained: asks for an epoch bump
    await settle();
    expect(transport.initCalls).toHaveLength(2);
    clock.advance(1_001);
    await settle();
    await expect(waiting).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT', message: expect.stringMatching(/delivery timeout.*next producer epoch/) });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 1 });
  });

  it('asks for a producer id again while records wait within their delivery timeout, after InitProducerId used up its retry budget', async () => {
    // InitProducerId retries for the client's retry budget, 5 s in the CLI: a broker down for
    // longer when the first record comes must not fail it before its delivery timeout.
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 30_000, retry: { backoffMsMin: 100, backoffMsMax: 1_000 } });
    transport.initError = new BrokerError('BROKER_UNAVAILABLE', 'No connection established'); // the budget is used up
    const handle = producer.send({ topic: 't', value: 'a' });
    const isSettled = settledFlag(handle);
    await settle();
    expect(transport.initCalls).toHaveLength(1);
    for (let second = 0; second < 10; second++) {
      clock.advance(1_000); // the longest backoff
      await settle();
    }
    expect(isSettled()).toBe(false);
    expect(transport.initCalls).toHaveLength(11);
    transport.initError = undefined; // the broker is back
    clock.advance(1_000);
    await settle();
    expect(transport.initCalls).toHaveLength(12);
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(handle).resolves.toMatchObject({ offset: 0 });
    expect(producer.metrics()).toMatchObject({ producerId: 1000, ackedRecords: 1, failedRecords: 0 });
  });

  it('stops asking for a producer id once the records waiting for it failed at their delivery timeout, and asks afresh for the next record', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 3_000, retry: { backoffMsMin: 100, backoffMsMax: 1_000 } });
    transport.initError = new BrokerError('BROKER_UNAVAILABLE', 'No connection established');
    const handle = producer.send({ topic: 't', value: 'a' });
    handle.catch(() => undefined); // checked below
    await settle();
    for (let step = 0; step < 4; step++) {
      clock.advance(1_000);
      await settle();
    }
    await expect(handle).rejects.toMatchObject({
      reason: 'BROKER_UNAVAILABLE',
      message: 'records not acknowledged within the delivery timeout; last error: No connection established',
    });
    const callsAtDeadline = transport.initCalls.length;
    clock.advance(10_000);
    await settle();
    expect(transport.initCalls).toHaveLength(callsAtDeadline);
    // A non-retriable failure still fails the records at once.
    transport.initError = new BrokerError('INVALID_REQUEST', 'refused');
    const refused = producer.send({ topic: 't', value: 'b' });
    await expect(refused).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect(transport.initCalls).toHaveLength(callsAtDeadline + 1);
    transport.initError = undefined;
    const delivered = producer.send({ topic: 't', value: 'c' });
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(delivered).resolves.toMatchObject({ offset: 0 });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 1, failedRecords: 2 });
  });

  it('bumps the epoch and restarts sequences at 0 when a batch whose outcome is unknown times out', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 1_000, retry: { backoffMsMin: 100, backoffMsMax: 100 } });
    const lost = producer.send({ topic: 't', value: 'lost' });
    await settle();
    channel.failAll();
    clock.advance(1_000);
    await settle();
    channel.failAll(); // past the delivery timeout now: fails for good, maybe appended
    await expect(lost).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE' });
    const next = producer.send({ topic: 't', value: 'next' });
    await settle();
    expect(transport.initCalls).toEqual([undefined, { producerId: 1000, producerEpoch: 0 }]);
    const header = channel.sent.at(-1)!.partitions[0]!.header;
    expect(header.producerEpoch).toBe(1);
    expect(header.baseSequence).toBe(0);
    channel.replyNext(() => ({ baseOffset: 5 }));
    expect((await next).offset).toBe(5);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 1, failedRecords: 1 });
  });

  it('bumps the epoch when the broker reports an unexplained sequence gap, then delivers the batch', async () => {
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    channel.replyNext(() => ({ error: 'OUT_OF_ORDER_SEQUENCE' }));
    await settle();
    expect(transport.initCalls).toHaveLength(2);
    const header = channel.sent.at(-1)!.partitions[0]!.header;
    expect([header.producerEpoch, header.baseSequence]).toEqual([1, 0]);
    channel.replyNext(() => ({ baseOffset: 3 }));
    expect((await handle).offset).toBe(3);
  });

  describe('resolves batches that may have been appended before an epoch bump', () => {
    // The partition's first batch is acknowledged first (until then one batch at a time is in
    // flight), so A and B go out together as sequences 1 and 2. The connection breaks with both
    // unanswered just as A reaches its delivery deadline: A fails (outcome unknown), which asks
    // for an epoch bump, while B waits out a backoff. B's first attempt may be in the log: it
    // must be resent under the old epoch and sequence until the broker says whether it is.
    async function breakWhileAExpires(isAppended: boolean) {
      const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 1_000, retry: { backoffMsMin: 100, backoffMsMax: 100 } });
      const log = new FakePartitionLog();
      const first = producer.send({ topic: 't', value: 'first' });
      await settle();
      channel.replyNext((sent) => log.append(sent.bytes));
      expect((await first).offset).toBe(0);
      const batchA = producer.send({ topic: 't', value: 'A' });
      await settle();
      clock.advance(500);
      const batchB = producer.send({ topic: 't', value: 'B' });
      await settle();
      expect(channel.pending.map((sent) => sent.partitions[0]!.header.baseSequence)).toEqual([1, 2]);
      if (isAppended) for (const sent of channel.pending) log.append(sent.partitions[0]!.bytes); // replies lost
      clock.advance(500); // A's deadline
      channel.failAll();
      await expect(batchA).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringMatching(/delivery timeout/) });
      await settle();
      const sendsOfB = () => channel.sent.flatMap((request) => request.partitions).filter((sent) => decodeBatch(sent.bytes).records[0]!.value?.toString() === 'B');
      /** The broker is back: five backoff steps, each answering every request with the log's verdict. */
      const answerRounds = async (): Promise<void> => {
        for (let round = 0; round < 5; round++) {
          clock.advance(100);
          await settle();
          while (channel.pending.length > 0) channel.replyNext((sent) => log.append(sent.bytes));
          await settle();
        }
      };
      return { clock, producer, channel, transport, log, batchB, sendsOfB, answerRounds };
    }

    it('acknowledges a batch the broker had appended with its original offset, never under a new sequence', async () => {
      const { producer, channel, transport, log, batchB, sendsOfB, answerRounds } = await breakWhileAExpires(true);
      await answerRounds();
      expect((await batchB).offset).toBe(2);
      expect(sendsOfB().map((sent) => [sent.header.producerEpoch, sent.header.baseSequence])).toEqual([[0, 2], [0, 2]]);
      expect(log.records.map((record) => record.value?.toString())).toEqual(['first', 'A', 'B']);
      // The bump still happens (A's sequence may be a gap), and new records start the new epoch at 0.
      const next = producer.send({ topic: 't', value: 'next' });
      await settle();
      expect(transport.initCalls).toHaveLength(2);
      expect(channel.pending.map((sent) => [sent.partitions[0]!.header.producerEpoch, sent.partitions[0]!.header.baseSequence])).toEqual([[1, 0]]);
      channel.replyNext((sent) => log.append(sent.bytes));
      expect((await next).offset).toBe(3);
      expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 3, failedRecords: 1 });
    });

    it('gives a batch the broker had not appended (OUT_OF_ORDER_SEQUENCE under the old epoch) a new sequence after the bump, and delivers it once', async () => {
      const { producer, channel, transport, log, batchB, sendsOfB, answerRounds } = await breakWhileAExpires(false);
      await answerRounds();
      expect((await batchB).offset).toBe(1);
      expect(sendsOfB().map((sent) => [sent.header.producerEpoch, sent.header.baseSequence])).toEqual([[0, 2], [0, 2], [1, 0]]);
      expect(transport.initCalls).toHaveLength(2);
      expect(log.records.map((record) => record.value?.toString())).toEqual(['first', 'B']);
      expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 2, failedRecords: 1 });
    });

    it('fails a batch whose outcome stays unknown at its delivery deadline, never resending it under a new sequence, then bumps', async () => {
      const { clock, producer, channel, transport, log, batchB, sendsOfB } = await breakWhileAExpires(true);
      const failure = expect(batchB).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringMatching(/delivery timeout/) });
      for (let round = 0; round < 6; round++) {
        clock.advance(100);
        await settle();
        channel.failAll(); // the broker is still down
        await settle();
      }
      await failure;
      expect(sendsOfB().every((sent) => sent.header.producerEpoch === 0 && sent.header.baseSequence === 2)).toBe(true);
      const next = producer.send({ topic: 't', value: 'next' });
      await settle();
      expect(transport.initCalls).toHaveLength(2);
      expect(channel.pending.map((sent) => [sent.partitions[0]!.header.producerEpoch, sent.partitions[0]!.header.baseSequence])).toEqual([[1, 0]]);
      channel.replyNext((sent) => log.append(sent.bytes));
      expect((await next).offset).toBe(3);
      expect(log.records.map((record) => record.value?.toString())).toEqual(['first', 'A', 'B', 'next']);
    });
  });

  it('refreshes metadata once on TOPIC_NOT_FOUND and then fails the batch', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    channel.replyNext(() => ({ error: 'TOPIC_NOT_FOUND' }));
    clock.advance(2_000);
    await settle();
    expect(transport.loadCalls).toBe(1);
    channel.replyNext(() => ({ error: 'TOPIC_NOT_FOUND' }));
    await expect(handle).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
  });

  it('fails every record with PRODUCER_FENCED and refuses new ones', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    channel.replyNext(() => ({ error: 'PRODUCER_FENCED' }));
    await expect(handle).rejects.toMatchObject({ reason: 'PRODUCER_FENCED' });
    await expect(producer.send({ topic: 't', value: 'b' })).rejects.toMatchObject({ reason: 'PRODUCER_FENCED' });
    await expect(producer.flush()).rejects.toMatchObject({ reason: 'PRODUCER_FENCED' });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 2 });
  });

  it('does not number batches without idempotence (acks leader)', async () => {
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, acks: 'leader' });
    void producer.send({ topic: 't', value: 'a' });
    await settle();
    expect(transport.initCalls).toHaveLength(0);
    expect(channel.sent[0]!.partitions[0]!.header.producerId).toBe(-1);
    expect(channel.sent[0]!.request.acks).toBe('ACKS_LEADER');
  });

  it('keeps send order without idempotence only with one batch in flight per partition: with more, a batch resent after LIMIT_REACHED lands behind the next', async () => {
    // As Kafka's max.in.flight.requests.per.connection > 1 without idempotence (documented on
    // inFlightBatchesPerPartitionMax).
    for (const [inFlightMax, stored] of [
      [5, ['b', 'a']],
      [1, ['a', 'b']],
    ] as const) {
      const { clock, producer, channel } = makeProducer({ t: 1 }, { acks: 'leader', lingerMs: 0, inFlightBatchesPerPartitionMax: inFlightMax, retry: { backoffMsMin: 10, backoffMsMax: 10 } });
      const log = new FakePartitionLog();
      const logs = new Map([['t-0', log]]);
      const handles = [producer.send({ topic: 't', value: 'a' })];
      await settle();
      handles.push(producer.send({ topic: 't', value: 'b' }));
      await settle();
      channel.replyNext(() => ({ error: 'LIMIT_REACHED' })); // a, refused before the write
      for (let round = 0; round < 5; round++) {
        answerAll(channel, logs);
        await settle();
        clock.advance(10);
        await settle();
      }
      await Promise.all(handles);
      expect(log.records.map((record) => record.value?.toString())).toEqual(stored);
    }
  });

  it('rejects idempotence with acks other than all, and more than five batches in flight with it', () => {
    const transport = new FakeProducerTransport();
    expect(() => new Producer(transport, { acks: 'none', idempotent: true })).toThrow(BrokerError);
    expect(() => new Producer(transport, { inFlightBatchesPerPartitionMax: 6 })).toThrow(/at most 5/);
  });

  it('refuses a batchBytes larger than any broker takes in one batch (64 MiB), which would fail every record of its batches', () => {
    // Such a batch did not fit one gRPC message (retried as BROKER_UNAVAILABLE until the
    // delivery timeout) or, gzipped, inflated past the broker's bound (RECORD_TOO_LARGE).
    const transport = new FakeProducerTransport();
    const bufferBytes = 256 * 1024 * 1024;
    expect(() => new Producer(transport, { batchBytes: 64 * 1024 * 1024 + 1, bufferBytes })).toThrow(/batchBytes must be at most/);
    expect(() => new Producer(transport, { batchBytes: 64 * 1024 * 1024, bufferBytes })).not.toThrow();
  });
});

describe('Producer buffer, flush and close', () => {
  it('holds records beyond bufferBytes until acknowledged batches free space, in order', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0, batchBytes: 100, bufferBytes: 100 });
    const handles = Array.from({ length: 4 }, (_, index) => producer.send({ topic: 't', value: Buffer.alloc(60, index) }));
    await settle();
    expect(producer.metrics().waitingRecords).toBe(3);
    const log = new FakePartitionLog();
    for (let round = 0; round < 4; round++) {
      answerAll(channel, new Map([['t-0', log]]));
      await settle();
    }
    expect((await Promise.all(handles)).map((metadata) => metadata.offset)).toEqual([0, 1, 2, 3]);
    expect(producer.metrics().bufferUsedBytes).toBe(0);
  });

  it('bounds the records waiting for buffer space too: past bufferBytes more (4 MiB at least) a send fails at once', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0, batchBytes: 64 * 1024, bufferBytes: 8 * 1024 * 1024 });
    const value = Buffer.alloc(64 * 1024);
    // Nobody waits for space: about 8 MiB fit the buffer, about 8 MiB more may wait, the rest fails.
    const outcomes = Array.from({ length: 400 }, () =>
      producer.send({ topic: 't', value }).then(
        () => 'acked',
        (error: unknown) => (error as BrokerError).reason,
      ),
    );
    await settle();
    const { waitingRecords } = producer.metrics();
    expect(waitingRecords).toBeGreaterThan(100);
    expect(waitingRecords).toBeLessThan(300);
    const log = new FakePartitionLog();
    for (let round = 0; round < 600 && channel.sent.length > 0; round++) {
      answerAll(channel, new Map([['t-0', log]]));
      await settle();
    }
    const settled = await Promise.all(outcomes);
    const acked = settled.filter((outcome) => outcome === 'acked').length;
    expect(settled.filter((outcome) => outcome !== 'acked').every((outcome) => outcome === 'LIMIT_REACHED')).toBe(true);
    expect(acked).toBeGreaterThan(200);
    expect(acked).toBeLessThan(400);
    expect(settled.slice(0, acked).every((outcome) => outcome === 'acked')).toBe(true); // the first ones in, in order
  });

  it('counts records waiting for their topic’s metadata against the buffer, also for records of other topics', async () => {
    // Each 1000-byte record holds 1000 + RECORD_HEAP_BYTES; eight of them pass 10,000 bytes.
    const { producer, transport } = makeProducer({ known: 1 }, { lingerMs: 0, batchBytes: 1_000, bufferBytes: 10_000 });
    transport.brokerPartitionCounts.set('t', 1);
    const heldBytes = 1_000 + RECORD_HEAP_BYTES;
    const handles: Promise<RecordMetadata>[] = [];
    for (let index = 0; index < 7; index++) handles.push(producer.send({ topic: 't', value: Buffer.alloc(1_000) }));
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 7 * heldBytes, waitingRecords: 7 });
    expect(producer.hasBufferSpace).toBe(true);
    handles.push(producer.send({ topic: 't', value: Buffer.alloc(1_000) }));
    expect(producer.hasBufferSpace).toBe(false);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 8 * heldBytes, waitingRecords: 8 });
    // A record of a topic with known metadata does not take the space the waiting ones hold.
    handles.push(producer.send({ topic: 'known', value: Buffer.alloc(1_000) }));
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 8 * heldBytes, waitingRecords: 9 });
    const space = producer.waitForBufferSpace();
    await settle();
    // Metadata loaded: records were placed in send order as far as the buffer allows.
    expect(producer.metrics().waitingRecords).toBeGreaterThan(0);
    for (let round = 0; round < 10 && transport.channel.sent.length < handles.length; round++) {
      answerAll(transport.channel, new Map());
      await settle();
    }
    await space;
    expect((await Promise.all(handles)).map((metadata) => metadata.topic)).toEqual([...Array<string>(8).fill('t'), 'known']);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0 });
  });

  it('charges the buffer with a record’s heap until its batch is encoded, then only with the encoded bytes', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 10 });
    const handles = Array.from({ length: 10 }, (_, index) => producer.send({ topic: 't', value: Buffer.alloc(100, index) }));
    expect(producer.metrics().bufferUsedBytes).toBe(BATCH_HEAP_BYTES + 10 * (100 + RECORD_HEAP_BYTES));
    clock.advance(10);
    await settle();
    const sent = channel.sent[0]!.partitions[0]!;
    // The records are dropped once encoded: the bytes and a timestamp per record remain.
    expect((handles[0] as PendingSend).batch!.records).toHaveLength(0);
    expect(producer.metrics().bufferUsedBytes).toBe(BATCH_HEAP_BYTES + sent.bytes.length + 10 * 8);
    channel.replyNext(() => ({ baseOffset: 20 }));
    const metadata = await Promise.all(handles);
    expect(metadata.map((result) => result.offset)).toEqual(Array.from({ length: 10 }, (_, index) => 20 + index));
    expect(metadata.every((result) => result.timestamp === clock.nowMs() - 10)).toBe(true);
    expect(producer.metrics().bufferUsedBytes).toBe(0);
  });

  it('charges an observed record’s promise until its batch completes', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const observed = producer.send({ topic: 't', value: 'a' });
    void producer.send({ topic: 't', value: 'b' });
    const unobservedBytes = producer.metrics().bufferUsedBytes;
    const result = observed.then((metadata) => metadata.offset);
    expect(producer.metrics().bufferUsedBytes).toBe(unobservedBytes + OBSERVED_RECORD_HEAP_BYTES);
    await settle();
    expect(producer.metrics().bufferUsedBytes).toBe(BATCH_HEAP_BYTES + channel.sent[0]!.partitions[0]!.bytes.length + 2 * 8 + OBSERVED_RECORD_HEAP_BYTES);
    channel.replyNext(() => ({ baseOffset: 3 }));
    expect(await result).toBe(3);
    expect(producer.metrics().bufferUsedBytes).toBe(0);
  });

  it('admits waiting records as soon as encoding frees buffer space, before any acknowledgement', async () => {
    // 40-byte records hold ~300 bytes until encoded and ~50 after: a sender blocked on a full
    // buffer continues once the batches are encoded and sent, not only after their acks.
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0, batchBytes: 4_096, bufferBytes: 16_384 });
    const handles: Promise<RecordMetadata>[] = [];
    while (producer.hasBufferSpace) handles.push(producer.send({ topic: 't', value: Buffer.alloc(40) }));
    handles.push(producer.send({ topic: 't', value: Buffer.alloc(40) }));
    expect(producer.metrics().waitingRecords).toBeGreaterThan(0);
    const space = producer.waitForBufferSpace();
    await settle();
    expect(channel.sent.length).toBeGreaterThan(0);
    expect(channel.pending).toHaveLength(channel.sent.length); // nothing acknowledged yet
    await space;
    expect(producer.metrics().waitingRecords).toBe(0);
    expect(producer.hasBufferSpace).toBe(true);
    for (let round = 0; round < 10 && channel.pending.length > 0; round++) {
      answerAll(channel, new Map());
      await settle();
    }
    expect(new Set((await Promise.all(handles)).map((metadata) => metadata.offset)).size).toBe(handles.length);
  });

  it('bounds records waiting for their topic\'s metadata as it bounds records waiting for space', async () => {
    // The topic is not known yet and its metadata never comes: a sender that ignores
    // hasBufferSpace must hear LIMIT_REACHED past the buffer and as much again (4 MiB at least).
    const { transport, producer } = makeProducer({}, { bufferBytes: 1024 * 1024, deliveryTimeoutMs: 600_000 });
    transport.brokerPartitionCounts.set('t', 1);
    transport.holdLoads = true;
    const outcomes: string[] = [];
    for (let i = 0; i < 80; i++) {
      producer.send({ topic: 't', value: Buffer.alloc(100 * 1024) }).then(
        () => outcomes.push('acked'),
        (error: unknown) => outcomes.push(isBrokerError(error) ? error.reason : String(error)),
      );
    }
    await settle();
    const refused = outcomes.filter((outcome) => outcome === 'LIMIT_REACHED').length;
    expect(outcomes.every((outcome) => outcome === 'LIMIT_REACHED')).toBe(true);
    // 5 MiB of 100 KiB records (plus what each holds besides its bytes) wait; the rest is refused.
    expect(80 - refused).toBeGreaterThanOrEqual(45);
    expect(80 - refused).toBeLessThanOrEqual(51);
    expect(producer.hasBufferSpace).toBe(false);
  });

  describe('sends open batches early while the buffer is exhausted', () => {
    // 100-byte records: each holds 100 + RECORD_HEAP_BYTES until encoded, and its batch would
    // close by size only at 16 of them (2,000 estimated bytes), more than the buffer holds.
    const options: ProducerOptions = { lingerMs: 60_000, batchBytes: 2_000, bufferBytes: 4_000, bufferWaitMsMax: 1_000 };

    it('delivers records that wait for buffer space without waiting out the linger, then lingers again', async () => {
      const { clock, producer, channel } = makeProducer({ t: 1 }, options);
      const outcomes: (number | string | undefined)[] = [];
      for (let index = 0; index < 40; index++) {
        outcomes.push(undefined);
        producer.send({ topic: 't', value: Buffer.alloc(100, index) }).then(
          (metadata) => (outcomes[index] = metadata.offset),
          (error: unknown) => (outcomes[index] = isBrokerError(error) ? error.reason : String(error)),
        );
      }
      expect(producer.metrics().waitingRecords).toBeGreaterThan(30);
      // The clock stands still: every batch goes out because records wait, not by its linger.
      const log = new FakePartitionLog();
      for (let round = 0; round < 100 && outcomes.includes(undefined); round++) {
        answerAll(channel, new Map([['t-0', log]]));
        await settle();
      }
      expect(outcomes).toEqual(Array.from({ length: 40 }, (_, index) => index));
      expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0 });
      // Nobody waits any more: a record sent now lingers again.
      const requestCount = channel.sent.length;
      const late = settledFlag(producer.send({ topic: 't', value: 'late' }));
      await settle();
      clock.advance(59_999);
      await settle();
      expect(channel.sent).toHaveLength(requestCount);
      clock.advance(1);
      await settle();
      expect(channel.sent).toHaveLength(requestCount + 1);
      answerAll(channel, new Map([['t-0', log]]));
      await settle();
      expect(late()).toBe(true);
    });

    it('sends the open batch for a caller of waitForBufferSpace() while the buffer is exactly full', async () => {
      // Ten records fill the buffer to the byte: none waits in the queue, the caller does.
      const { producer, channel } = makeProducer({ t: 1 }, { ...options, bufferBytes: BATCH_HEAP_BYTES + 10 * (100 + RECORD_HEAP_BYTES) });
      const handles = Array.from({ length: 10 }, (_, index) => producer.send({ topic: 't', value: Buffer.alloc(100, index) }));
      expect(producer.hasBufferSpace).toBe(false);
      expect(producer.metrics().waitingRecords).toBe(0);
      const space = settledFlag(producer.waitForBufferSpace());
      await settle();
      expect(channel.sent).toHaveLength(1);
      expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(10);
      expect(space()).toBe(true); // encoding freed space, before any acknowledgement
      answerAll(channel, new Map());
      expect((await Promise.all(handles)).map((metadata) => metadata.offset)).toEqual(Array.from({ length: 10 }, (_, index) => index));
    });

    it('lets an open batch that could not go yet (its partition has no room in flight) keep taking records meanwhile', async () => {
      // One batch in flight: the records let in when the first batch is encoded and sent
      // cannot go before its ack, so they stay open for those let in at the ack, in one batch.
      const { producer, channel } = makeProducer({ t: 1 }, { ...options, acks: 'leader', inFlightBatchesPerPartitionMax: 1 });
      const handles = Array.from({ length: 20 }, (_, index) => producer.send({ topic: 't', value: Buffer.alloc(100, index) }));
      const firstCount = 20 - producer.metrics().waitingRecords;
      await settle();
      expect(channel.sent).toHaveLength(1);
      expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(firstCount);
      const letInAtEncoding = 20 - firstCount - producer.metrics().waitingRecords;
      expect(letInAtEncoding).toBeGreaterThan(0);
      channel.replyNext(() => ({ baseOffset: 0 }));
      await settle();
      expect(channel.sent).toHaveLength(2);
      expect(channel.sent[1]!.partitions[0]!.header.recordCount).toBeGreaterThan(letInAtEncoding);
      const log = new FakePartitionLog();
      for (let round = 0; round < 20 && channel.pending.length > 0; round++) {
        answerAll(channel, new Map([['t-0', log]]));
        await settle();
      }
      expect(await Promise.all(handles)).toHaveLength(20);
    });

    it('keeps lingering while the buffer has room, however much of it is used', async () => {
      const { clock, producer, channel } = makeProducer({ t: 1 }, options);
      const handles = Array.from({ length: 9 }, (_, index) => producer.send({ topic: 't', value: Buffer.alloc(100, index) }));
      expect(producer.hasBufferSpace).toBe(true);
      await settle();
      clock.advance(59_999);
      await settle();
      expect(channel.sent).toHaveLength(0);
      clock.advance(1);
      await settle();
      expect(channel.sent).toHaveLength(1);
      expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(9);
      answerAll(channel, new Map());
      expect(await Promise.all(handles)).toHaveLength(9);
    });
  });

  it('fails a record with LIMIT_REACHED when no buffer space frees within bufferWaitMsMax', async () => {
    const { clock, producer } = makeProducer({ t: 1 }, { lingerMs: 0, batchBytes: 100, bufferBytes: 100, bufferWaitMsMax: 50 });
    void producer.send({ topic: 't', value: Buffer.alloc(60) });
    const waiting = producer.send({ topic: 't', value: Buffer.alloc(60) });
    await settle();
    clock.advance(50);
    await expect(waiting).rejects.toMatchObject({ reason: 'LIMIT_REACHED' });
  });

  it('flush sends lingering batches at once and rejects with a failure nobody awaited', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 60_000 });
    void producer.send({ topic: 't', value: 'a' });
    const flushed = producer.flush();
    await settle();
    expect(channel.sent).toHaveLength(1);
    channel.replyNext(() => ({ error: 'CORRUPT_MESSAGE' }));
    const error = await flushed.catch((caught: unknown) => caught);
    expect(isBrokerError(error, 'CORRUPT_MESSAGE')).toBe(true);
    await expect(producer.flush()).resolves.toBeUndefined();
  });

  it('flush and close wait for a record sent before them that waits for its topic’s metadata again after it was let in', async () => {
    // The first load says the topic has one partition: the record for partition 1 goes back
    // to wait for a refresh (partitions may have been added), while the record sent after it
    // is batched. Flush and close must still wait for the first one; close must not fail it.
    for (const end of ['flush', 'close'] as const) {
      const { producer, channel, transport } = makeProducer({}, { lingerMs: 0 });
      transport.brokerPartitionCounts.set('t', 1);
      const onNew = producer.send({ topic: 't', partition: 1, value: 'on the added partition' });
      const onOld = producer.send({ topic: 't', partition: 0, value: 'on the first partition' });
      let answerRefresh: (partitionCount: number) => void = () => undefined;
      transport.loadPartitionCount = () => new Promise<number>((resolve) => (answerRefresh = resolve));
      const isEnded = settledFlag(end === 'flush' ? producer.flush() : producer.close());
      await settle();
      channel.replyNext(() => ({ baseOffset: 0 }));
      await expect(onOld).resolves.toMatchObject({ partition: 0, offset: 0 });
      await settle();
      expect(isEnded()).toBe(false);
      transport.partitionCounts.set('t', 2);
      answerRefresh(2);
      await settle();
      channel.replyNext(() => ({ baseOffset: 0 }));
      await expect(onNew).resolves.toMatchObject({ partition: 1, offset: 0 });
      await settle();
      expect(isEnded()).toBe(true);
    }
  });

  it('close delivers what is held, closes the transport and refuses new records', async () => {
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 60_000 });
    const handle = producer.send({ topic: 't', value: 'a' });
    const closed = producer.close();
    await settle();
    channel.replyNext(() => ({ baseOffset: 1 }));
    await closed;
    expect((await handle).offset).toBe(1);
    expect(transport.isClosed).toBe(true);
    await expect(producer.send({ topic: 't', value: 'b' })).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
  });

  it('close with a timeout fails what is still unacknowledged', async () => {
    const { clock, producer } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    const closed = producer.close({ timeoutMs: 100 });
    clock.advance(100);
    await expect(handle).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT' });
    await closed.catch(() => undefined);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 1 });
  });

  it('leaves no timer behind once close with a timeout is done, whatever its records waited for', async () => {
    // The client's timers keep the process alive (client-clock.ts): one left armed by a closed
    // producer holds a process that is done for up to the delivery timeout.
    class CountingClock extends ManualClock {
      pendingCount = 0;
      override setTimer(delayMs: number, callback: () => void): () => void {
        this.pendingCount++;
        let isPending = true;
        const done = (): void => {
          if (isPending) this.pendingCount--;
          isPending = false;
        };
        const cancel = super.setTimer(delayMs, () => {
          done();
          callback();
        });
        return () => {
          done();
          cancel();
        };
      }
    }
    const waitsFor = {
      'a producer id': (transport: FakeProducerTransport) => (transport.holdInit = true),
      'its topic’s metadata': (transport: FakeProducerTransport) => (transport.holdLoads = true),
      'the linger': () => undefined,
    };
    for (const [what, arrange] of Object.entries(waitsFor)) {
      const clock = new CountingClock();
      const transport = new FakeProducerTransport({ t: 1 });
      arrange(transport);
      const producer = new Producer(transport, { clock, random: () => 0.5, lingerMs: what === 'the linger' ? 60_000 : 0 });
      const handle = producer.send({ topic: what === 'its topic’s metadata' ? 'unknown' : 't', value: 'a' });
      await settle();
      expect(clock.pendingCount, what).toBeGreaterThan(0);
      const closed = producer.close({ timeoutMs: 100 });
      clock.advance(100);
      await closed.catch(() => undefined);
      await expect(handle).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT' });
      expect(clock.pendingCount, what).toBe(0);
    }
  });

  it('close with a timeout ends a close that was already waiting without one', async () => {
    // The broker is unreachable: the first close() would wait out the delivery timeout; a
    // later close({ timeoutMs }) (a shutdown handler, RunnelClient.close) must not wait with it.
    const { clock, producer, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    await settle();
    const first = producer.close();
    const second = producer.close({ timeoutMs: 100 });
    expect(second).toBe(first);
    clock.advance(100);
    await expect(handle).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT' });
    await expect(second).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT' });
    expect(transport.isClosed).toBe(true);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 1 });
  });

  it('fails a record larger than one gRPC message at once with RECORD_TOO_LARGE, holding no buffer space meanwhile', async () => {
    // Over the client's limit (the 65 MiB gRPC message less framing room); no broker takes it.
    const huge = Buffer.alloc(65 * 1024 * 1024);
    const { producer, channel, transport } = makeProducer({ known: 1 }, { lingerMs: 0, batchBytes: 64 * 1024, bufferBytes: 1024 * 1024 });
    transport.brokerPartitionCounts.set('unknown', 1);
    transport.holdLoads = true; // the topic's metadata does not come: the record would wait for it
    const waitingForMetadata = producer.send({ topic: 'unknown', value: huge });
    const isRefused = settledFlag(waitingForMetadata);
    await settle();
    expect(isRefused()).toBe(true);
    await expect(waitingForMetadata).rejects.toMatchObject({ reason: 'RECORD_TOO_LARGE', message: expect.stringMatching(/exceeds the client's/) });
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0 });
    // Nothing holds the buffer, so a record of another topic goes out at once.
    const other = producer.send({ topic: 'known', value: 'small' });
    await settle();
    expect(channel.pending).toHaveLength(1);
    // With records waiting for buffer space, it is still refused for its size, not as LIMIT_REACHED.
    const filling = Array.from({ length: 40 }, () => producer.send({ topic: 'known', value: Buffer.alloc(64 * 1024) }));
    expect(producer.metrics().waitingRecords).toBeGreaterThan(0);
    await expect(producer.send({ topic: 'known', value: huge })).rejects.toMatchObject({ reason: 'RECORD_TOO_LARGE' });
    answerAll(channel, new Map());
    await expect(other).resolves.toMatchObject({ offset: 0 });
    for (let round = 0; round < 20 && channel.pending.length > 0; round++) {
      answerAll(channel, new Map());
      await settle();
    }
    await Promise.all(filling);
  });

  it('rejects a bad record without affecting the others in its batch', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const bad = producer.send({ topic: 't', value: 'a', timestamp: 1.5 });
    const good = producer.send({ topic: 't', value: 'b' });
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    await expect(bad).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect((await good).offset).toBe(0);
  });

  it('fails a record with more headers than the broker accepts alone, not the records batched with it', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const headers = Array.from({ length: HEADERS_PER_RECORD_MAX + 1 }, (_, index) => ({ key: `h${index}`, value: 'x' }));
    const before = producer.send({ topic: 't', value: 'a' });
    const bad = producer.send({ topic: 't', value: 'b', headers });
    const atLimit = producer.send({ topic: 't', value: 'c', headers: headers.slice(1) });
    await settle();
    const log = new FakePartitionLog();
    channel.replyNext((sent) => log.append(sent.bytes));
    await expect(bad).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect((await Promise.all([before, atLimit])).map((metadata) => metadata.offset)).toEqual([0, 1]);
    expect(log.records[1]!.headers).toHaveLength(HEADERS_PER_RECORD_MAX);
  });

  it('fails a record whose header key has a lone UTF-16 surrogate in send(), not the records batched with it', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const before = producer.send({ topic: 't', value: 'a' });
    const bad = producer.send({ topic: 't', value: 'b', headers: { 'trace\uD800': 'x' } });
    const after = producer.send({ topic: 't', value: 'c', headers: [{ key: '\uD83D\uDE00', value: 'x' }] });
    await expect(bad).rejects.toMatchObject({ reason: 'INVALID_REQUEST', message: expect.stringContaining('lone UTF-16 surrogate') });
    await settle();
    const log = new FakePartitionLog();
    channel.replyNext((sent) => log.append(sent.bytes));
    expect((await Promise.all([before, after])).map((metadata) => metadata.offset)).toEqual([0, 1]);
    expect(log.records[1]!.headers[0]!.key).toBe('\uD83D\uDE00');
  });

  it('counts acknowledged and failed records and calls onError once per failed batch, from a microtask', async () => {
    const reports: { reason: string; failed: FailedRecords }[] = [];
    const { producer, channel, transport } = makeProducer(
      { t: 2 },
      { lingerMs: 0, onError: (error, failed) => reports.push({ reason: error.reason, failed }) },
    );
    transport.brokerPartitionCounts.delete('missing');
    for (let index = 0; index < 3; index++) void producer.send({ topic: 't', partition: 0, value: value(index) });
    for (let index = 0; index < 2; index++) void producer.send({ topic: 't', partition: 1, value: value(index) });
    void producer.send({ topic: 'missing', value: 'a' });
    void producer.send({ topic: 'missing', value: 'b' });
    await settle();
    channel.replyNext((sent) => (sent.partition === 0 ? { error: 'CORRUPT_MESSAGE' } : { baseOffset: 0 }));
    expect(reports).toHaveLength(1); // only the metadata failure so far: the batch's report is queued
    expect(producer.metrics()).toMatchObject({ ackedRecords: 2, failedRecords: 5 });
    await settle();
    expect(reports).toEqual([
      { reason: 'TOPIC_NOT_FOUND', failed: { topic: 'missing', partition: undefined, recordCount: 2 } },
      { reason: 'CORRUPT_MESSAGE', failed: { topic: 't', partition: 0, recordCount: 3 } },
    ]);
    await expect(producer.close()).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    void producer.send({ topic: 't', value: 'late' });
    expect(reports).toHaveLength(2); // never from inside send()
    await settle();
    expect(reports[2]).toEqual({ reason: 'INVALID_REQUEST', failed: { topic: 't', partition: undefined, recordCount: 1 } });
    expect(producer.metrics()).toMatchObject({ ackedRecords: 2, failedRecords: 6 });
  });

  it('calls onRetry, from a microtask, for each retriable failure it will resend, with the batch\'s delivery deadline', async () => {
    const retries: { reason: string; retrying: RetryingRecords }[] = [];
    const { clock, producer, channel } = makeProducer(
      { t: 1 },
      { lingerMs: 0, deliveryTimeoutMs: 10_000, onRetry: (error, retrying) => retries.push({ reason: error.reason, retrying }) },
    );
    const createdMs = clock.nowMs();
    const handle = producer.send({ topic: 't', partition: 0, value: 'a' });
    void producer.send({ topic: 't', partition: 0, value: 'b' });
    await settle();
    channel.failAll();
    expect(retries).toHaveLength(0); // queued, never from inside the failing call
    await settle();
    expect(retries).toEqual([
      { reason: 'BROKER_UNAVAILABLE', retrying: { topic: 't', partition: 0, recordCount: 2, attempts: 1, deliveryDeadlineMs: createdMs + 10_000 } },
    ]);
    clock.advance(2_000);
    await settle();
    channel.replyNext(() => ({ error: 'SHUTTING_DOWN' }));
    await settle();
    expect(retries.map(({ reason, retrying }) => [reason, retrying.attempts])).toEqual([
      ['BROKER_UNAVAILABLE', 1],
      ['SHUTTING_DOWN', 2],
    ]);
    clock.advance(2_000);
    await settle();
    channel.replyNext(() => ({ baseOffset: 0 }));
    expect((await handle).offset).toBe(0);
    // A failure that is not retried is onError's, not onRetry's.
    void producer.send({ topic: 't', partition: 0, value: 'c' }).catch(() => undefined);
    await settle();
    channel.replyNext(() => ({ error: 'CORRUPT_MESSAGE' }));
    await settle();
    expect(retries).toHaveLength(2);
  });

  it('calls onRetry for each batch waiting for a producer id each time InitProducerId fails and will be retried, with the batch\'s delivery deadline', async () => {
    const retries: { reason: string; retrying: RetryingRecords }[] = [];
    const { clock, producer, channel, transport } = makeProducer(
      { t: 2 },
      { lingerMs: 0, deliveryTimeoutMs: 30_000, retry: { backoffMsMin: 100, backoffMsMax: 1_000 }, onRetry: (error, retrying) => retries.push({ reason: error.reason, retrying }) },
    );
    // A broker that is down: the transport reports one retried failure, then keeps retrying.
    transport.holdInit = true;
    transport.initRetryError = new BrokerError('BROKER_UNAVAILABLE', 'No connection established');
    const createdMs = clock.nowMs();
    const first = producer.send({ topic: 't', partition: 0, value: 'a' });
    const second = producer.send({ topic: 't', partition: 1, value: 'b' });
    await settle();
    expect(retries).toEqual([
      { reason: 'BROKER_UNAVAILABLE', retrying: { topic: 't', partition: 0, recordCount: 1, attempts: 0, deliveryDeadlineMs: createdMs + 30_000 } },
      { reason: 'BROKER_UNAVAILABLE', retrying: { topic: 't', partition: 1, recordCount: 1, attempts: 0, deliveryDeadlineMs: createdMs + 30_000 } },
    ]);
    // The transport's budget used up: the producer asks again after a backoff, and says so each time.
    transport.initError = new BrokerError('BROKER_UNAVAILABLE', 'No connection established');
    transport.failHeldInits(transport.initError);
    await settle();
    expect(retries).toHaveLength(4);
    clock.advance(1_000);
    await settle();
    expect(transport.initCalls).toHaveLength(2);
    expect(retries).toHaveLength(6);
    expect(retries.slice(2).map(({ reason, retrying }) => `${reason} ${retrying.partition} #${retrying.attempts}`)).toEqual([
      'BROKER_UNAVAILABLE 0 #0',
      'BROKER_UNAVAILABLE 1 #0',
      'BROKER_UNAVAILABLE 0 #0',
      'BROKER_UNAVAILABLE 1 #0',
    ]);
    transport.initError = undefined; // the broker is back
    clock.advance(1_000);
    await settle();
    expect(channel.sent).toHaveLength(1);
    channel.replyNext(() => ({ baseOffset: 0 }));
    await Promise.all([first, second]);
  });

  it('returns a handle that works with await, then, catch and Promise.all', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const handle = producer.send({ topic: 't', value: 'a' });
    expect(handle).not.toBeInstanceOf(Promise);
    const viaThen = handle.then((metadata) => metadata.offset);
    await settle();
    const answer: PartitionAnswer = { baseOffset: 12 };
    channel.replyNext(() => answer);
    expect(await viaThen).toBe(12);
    expect((await Promise.all([handle]))[0]!.offset).toBe(12);
    await expect(handle.finally(() => undefined)).resolves.toMatchObject({ offset: 12 });
  });
});

describe('Producer batches the broker refuses as too large (max.message.bytes)', () => {
  const offsetsOf = async (handles: Promise<RecordMetadata>[]) => (await Promise.all(handles)).map((metadata) => metadata.offset);
  const range = (count: number, start = 0) => Array.from({ length: count }, (_, index) => start + index);
  /** Answers from the fake logs until nothing is pending and nothing waits, or gives up after `rounds`. */
  async function answerUntilIdle(producer: Producer, channel: FakeProducerTransport['channel'], logs: Map<string, FakePartitionLog>, rounds = 100): Promise<void> {
    await settle();
    for (let round = 0; round < rounds && (channel.pending.length > 0 || producer.metrics().waitingRecords > 0); round++) {
      answerAll(channel, logs);
      await settle();
    }
  }

  it('splits a refused batch, resends the pieces and delivers every record once, in order', async () => {
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 60_000 });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 5_000;
    const logs = new Map([['t-0', log]]);
    const handles = range(20).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    // Half the handles are observed before the split, half only after it.
    const observedEarly = handles.slice(0, 10).map((handle) => handle.then((metadata) => metadata.offset));
    const flushed = producer.flush();
    await settle();
    expect(channel.sent[0]!.partitions[0]!.header.recordCount).toBe(20);
    await answerUntilIdle(producer, channel, logs);
    await flushed;
    expect(await Promise.all(observedEarly)).toEqual(range(10));
    expect(await offsetsOf(handles)).toEqual(range(20));
    expect(log.records.map((record) => record.value![0])).toEqual(range(20));
    expect(transport.initCalls).toHaveLength(1); // sequences repaired without an epoch bump
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 20, failedRecords: 0, epochBumps: 0 });
    expect(producer.metrics().batchSplits).toBeGreaterThanOrEqual(1);
  });

  it('gives the pieces the refused batch’s sequences and resends the batches that were in flight behind it in order', async () => {
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const first = producer.send({ topic: 't', value: 'first' });
    await settle();
    answerAll(channel, logs); // the log knows this producer: sequence 0 done
    log.maxMessageBytes = 3_000; // lowered (alter-config) while producing
    const big = range(4).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    await settle();
    const small: Promise<RecordMetadata>[] = [];
    for (let index = 0; index < 2; index++) {
      small.push(producer.send({ topic: 't', value: `small-${index}` }));
      await settle();
    }
    const sequences = (sent: typeof channel.sent) => sent.map((request) => request.partitions[0]!.header.baseSequence);
    expect(sequences(channel.pending)).toEqual([1, 5, 6]);
    channel.replyNext((sent) => log.append(sent.bytes)); // BATCH_TOO_LARGE: not appended
    channel.replyNext((sent) => log.append(sent.bytes)); // OUT_OF_ORDER_SEQUENCE
    channel.replyNext((sent) => log.append(sent.bytes)); // OUT_OF_ORDER_SEQUENCE
    await settle();
    // The pieces take the big batch's place and sequences; the small batches follow unchanged.
    expect(sequences(channel.pending)).toEqual([1, 3, 5, 6]);
    expect(channel.pending.map((request) => request.partitions[0]!.header.recordCount)).toEqual([2, 2, 1, 1]);
    await answerUntilIdle(producer, channel, logs);
    expect((await first).offset).toBe(0);
    expect(await offsetsOf(big)).toEqual([1, 2, 3, 4]);
    expect(await offsetsOf(small)).toEqual([5, 6]);
    expect(log.records.map((record) => record.value!.subarray(0, 7).toString())).toEqual([
      'first',
      ...range(4).map((index) => Buffer.alloc(7, index).toString()),
      'small-0',
      'small-1',
    ]);
    expect(transport.initCalls).toHaveLength(1);

    // Later batches of the topic are built under the size the producer learnt: none is refused.
    const sentBefore = channel.sent.length;
    const later = range(4).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, 10 + index) }));
    await settle();
    const laterSent = channel.sent.slice(sentBefore).map((request) => request.partitions[0]!);
    expect(laterSent.every((sent) => sent.bytes.length <= 3_000)).toBe(true);
    expect(laterSent.reduce((sum, sent) => sum + sent.header.recordCount, 0)).toBe(4);
    await answerUntilIdle(producer, channel, logs);
    expect(await offsetsOf(later)).toEqual([7, 8, 9, 10]);
    expect(channel.sent.length - sentBefore).toBe(laterSent.length); // no resend: nothing refused
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 11, failedRecords: 0 });
  });

  it('keeps the pieces and the batches behind them within the broker’s five-batch duplicate window', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const handles = [producer.send({ topic: 't', value: 'first' })];
    await settle();
    answerAll(channel, logs);
    log.maxMessageBytes = 3_000;
    for (let index = 0; index < 4; index++) handles.push(producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    await settle();
    for (let index = 0; index < 4; index++) {
      handles.push(producer.send({ topic: 't', value: `small-${index}` }));
      await settle();
    }
    expect(channel.pending).toHaveLength(5);
    for (let index = 0; index < 5; index++) channel.replyNext((sent) => log.append(sent.bytes)); // BATCH_TOO_LARGE, then four OUT_OF_ORDER_SEQUENCE
    await settle();
    // Six batches now wait (two pieces and four small ones); the sixth would be six back.
    expect(channel.pending.map((request) => request.partitions[0]!.header.baseSequence)).toEqual([1, 3, 5, 6, 7]);
    channel.replyNext((sent) => log.append(sent.bytes));
    await settle();
    expect(channel.pending.map((request) => request.partitions[0]!.header.baseSequence)).toEqual([3, 5, 6, 7, 8]);
    await answerUntilIdle(producer, channel, logs);
    expect(await offsetsOf(handles)).toEqual(range(9));
    expect(log.records).toHaveLength(9);
  });

  it('resends pieces one at a time until the broker acknowledged a batch of this producer, so a refused piece cannot let a later one in first', async () => {
    // The broker takes any sequence from a producer it does not know yet: were a piece still
    // too large sent together with the next one, the next one would be appended before it.
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 3_000;
    const logs = new Map([['t-0', log]]);
    const handles = range(8).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    await settle();
    const answerOne = () => channel.replyNext((sent) => log.append(sent.bytes));
    answerOne(); // refused: split in two pieces of four records, both still too large
    await settle();
    expect(channel.pending.map((request) => request.partitions[0]!.header.recordCount)).toEqual([4]);
    answerOne(); // refused again: split in two
    await settle();
    expect(channel.pending.map((request) => request.partitions[0]!.header.recordCount)).toEqual([2]);
    answerOne(); // acknowledged: the broker knows the producer now
    await settle();
    expect(channel.pending.length).toBeGreaterThan(1);
    await answerUntilIdle(producer, channel, logs);
    expect(await offsetsOf(handles)).toEqual(range(8));
    expect(log.records.map((record) => record.value![0])).toEqual(range(8));
  });

  it('grows a reduced batch size back once max.message.bytes is raised: it doubles every 30 s after the last change', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 60_000, batchBytes: 16_384 });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 5_000;
    const logs = new Map([['t-0', log]]);
    /** Sends `count` records of 1,000 bytes, flushes, and returns the record counts of the batches first sent for them. */
    const sendRound = async (count: number) => {
      const sentBefore = channel.sent.length;
      const handles = range(count).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
      const flushed = producer.flush();
      await answerUntilIdle(producer, channel, logs);
      await flushed;
      await Promise.all(handles);
      return channel.sent.slice(sentBefore).map((request) => request.partitions[0]!.header.recordCount);
    };
    expect((await sendRound(16))[0]).toBe(16); // one batch, refused and split
    expect(producer.metrics().batchSplits).toBeGreaterThanOrEqual(1);
    log.maxMessageBytes = 1 << 20; // raised (alter-config)
    const reduced = await sendRound(16);
    expect(Math.max(...reduced)).toBeLessThan(16); // still the size it learnt
    const splits = producer.metrics().batchSplits;
    for (let round = 0; round < 8 && Math.max(...(await sendRound(16))) < 16; round++) clock.advance(30_000);
    expect(Math.max(...(await sendRound(16)))).toBe(16); // back to batchBytes
    expect(producer.metrics().batchSplits).toBe(splits); // nothing refused on the way
    expect(log.records).toHaveLength(producer.metrics().ackedRecords); // each record once
  });

  it('fails only a record that alone exceeds max.message.bytes, with RECORD_TOO_LARGE, and delivers the others in order', async () => {
    const reports: { reason: string; failed: FailedRecords }[] = [];
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 60_000, onError: (error, failed) => reports.push({ reason: error.reason, failed }) });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 2_000;
    const logs = new Map([['t-0', log]]);
    const before = producer.send({ topic: 't', value: Buffer.alloc(100, 1) });
    const huge = producer.send({ topic: 't', value: Buffer.alloc(3_000, 2) });
    const after = producer.send({ topic: 't', value: Buffer.alloc(100, 3) });
    const flushed = producer.flush().catch((error: unknown) => error);
    await answerUntilIdle(producer, channel, logs);
    expect(isBrokerError(await flushed, 'RECORD_TOO_LARGE')).toBe(true); // nobody awaited `huge` when it failed
    expect((await before).offset).toBe(0);
    expect((await after).offset).toBe(1);
    const error = await huge.catch((caught: unknown) => caught as BrokerError);
    expect(error).toMatchObject({ reason: 'RECORD_TOO_LARGE', topic: 't', partition: 0 });
    expect((error as BrokerError).message).toMatch(/max\.message\.bytes/);
    expect(log.records.map((record) => record.value![0])).toEqual([1, 3]);
    await settle();
    expect(reports).toEqual([{ reason: 'RECORD_TOO_LARGE', failed: { topic: 't', partition: 0, recordCount: 1 } }]);
    expect(transport.initCalls).toHaveLength(1);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 2, failedRecords: 1 });
  });

  it('does not split a batch an earlier attempt may have appended, so no record is appended twice', async () => {
    const { clock, producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const first = producer.send({ topic: 't', value: 'first' });
    await settle();
    answerAll(channel, logs);
    const pair = [producer.send({ topic: 't', value: Buffer.alloc(1_000, 1) }), producer.send({ topic: 't', value: Buffer.alloc(1_000, 2) })];
    await settle();
    channel.replyNext((sent) => {
      log.append(sent.bytes); // appended, but the acknowledgement is lost
      return { error: 'ACK_TIMEOUT' };
    });
    log.maxMessageBytes = 1_500;
    clock.advance(2_000);
    await settle();
    answerAll(channel, logs); // the resend is refused as too large before any duplicate check
    await settle();
    for (const handle of pair) await expect(handle).rejects.toMatchObject({ reason: 'BATCH_TOO_LARGE' });
    expect((await first).offset).toBe(0);
    expect(log.records).toHaveLength(3);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, batchSplits: 0, failedRecords: 2 });
  });

  it('fails pieces whose delivery timeout passed before they were sent, and delivers the batch behind them', async () => {
    const { clock, producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 0, deliveryTimeoutMs: 10_000 });
    const log = new FakePartitionLog();
    const logs = new Map([['t-0', log]]);
    const first = producer.send({ topic: 't', value: 'first' });
    await settle();
    answerAll(channel, logs);
    log.maxMessageBytes = 3_000;
    const big = range(4).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    await settle();
    clock.advance(5_000);
    const later = producer.send({ topic: 't', value: 'later' });
    await settle();
    channel.replyNext((sent) => log.append(sent.bytes)); // refused: split, the pieces wait for the reply behind
    clock.advance(5_000); // the big batch's delivery timeout passes; the later batch has 5 s left
    channel.replyNext((sent) => log.append(sent.bytes)); // OUT_OF_ORDER_SEQUENCE
    await settle();
    answerAll(channel, logs);
    for (const handle of big) await expect(handle).rejects.toMatchObject({ reason: 'BATCH_TOO_LARGE', message: expect.stringMatching(/delivery timeout/) });
    expect([(await first).offset, (await later).offset]).toEqual([0, 1]);
    expect(log.records.map((record) => record.value?.toString())).toEqual(['first', 'later']);
    expect(transport.initCalls).toHaveLength(1); // the pieces were certainly not appended: renumbered, no epoch bump
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 2, failedRecords: 4 });
  });

  it('keeps the buffer account right while records wait for space and batches are split', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 0, batchBytes: 8_192, bufferBytes: 16_384 });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 3_000;
    const logs = new Map([['t-0', log]]);
    const handles = range(40).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    expect(producer.metrics().waitingRecords).toBeGreaterThan(0);
    await settle();
    await answerUntilIdle(producer, channel, logs, 500);
    expect(await offsetsOf(handles)).toEqual(range(40));
    expect(log.records.map((record) => record.value![0])).toEqual(range(40));
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, waitingRecords: 0, ackedRecords: 40 });
  });

  it('keeps each record’s key, headers and timestamp through a split of a gzip batch', async () => {
    const { producer, channel } = makeProducer({ t: 1 }, { lingerMs: 60_000, compression: 'gzip' });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 5_000;
    const logs = new Map([['t-0', log]]);
    // Bytes that do not compress, so the gzip batch is still too large.
    let state = 7;
    const noise = () => Buffer.from(Array.from({ length: 1_000 }, () => ((state = (state * 1_103_515_245 + 12_345) % 2 ** 31) >>> 16) & 0xff));
    const handles = range(12).map((index) =>
      producer.send({ topic: 't', key: `k${index}`, value: noise(), headers: { n: String(index) }, timestamp: 1_000 + index }),
    );
    const flushed = producer.flush();
    await answerUntilIdle(producer, channel, logs);
    await flushed;
    expect(producer.metrics().batchSplits).toBeGreaterThanOrEqual(1);
    expect((await Promise.all(handles)).map((metadata) => [metadata.offset, metadata.timestamp])).toEqual(range(12).map((index) => [index, 1_000 + index]));
    expect(log.records.map((record) => [record.key?.toString(), record.headers[0]?.value?.toString(), record.timestamp])).toEqual(
      range(12).map((index) => [`k${index}`, String(index), 1_000 + index]),
    );
  });

  it('splits without idempotence too (no sequences), in order with one batch in flight', async () => {
    // Without idempotence order holds only with one batch in flight, as in Kafka: a refused
    // piece cannot stop the broker from appending the next one.
    const { producer, channel, transport } = makeProducer({ t: 1 }, { lingerMs: 60_000, acks: 'leader', inFlightBatchesPerPartitionMax: 1 });
    const log = new FakePartitionLog();
    log.maxMessageBytes = 3_000;
    const logs = new Map([['t-0', log]]);
    const handles = range(10).map((index) => producer.send({ topic: 't', value: Buffer.alloc(1_000, index) }));
    const flushed = producer.flush();
    await answerUntilIdle(producer, channel, logs);
    await flushed;
    expect(await offsetsOf(handles)).toEqual(range(10));
    expect(channel.sent.every((request) => request.partitions[0]!.header.producerId === -1)).toBe(true);
    expect(transport.initCalls).toHaveLength(0);
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, ackedRecords: 10 });
  });
});
