import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import { BATCH_CRC_START, BatchField, CONTROL_BIT, crc32c, encodeBatch, setBatchBaseOffset, type LogRecord } from '../protocol/index.js';
import * as grpc from '@grpc/grpc-js';
import { Consumer, SLICE_RECORD_COUNT_MAX, type ConsumerOptions, type OffsetReset } from './consumer.js';
import { FakeConsumerTransport, settle } from './test-helpers.js';
import type { ConsumerRecord } from './types.js';

/** One stored batch holding `count` records from `baseOffset`, as the broker sends it. */
function storedBatch(baseOffset: number, count: number, timestampMs = 1_000): Buffer {
  const records: LogRecord[] = Array.from({ length: count }, (_, index) => ({
    key: Buffer.from(`k${baseOffset + index}`),
    value: Buffer.from(`v${baseOffset + index}`),
    headers: [],
    timestamp: timestampMs + index,
  }));
  const bytes = encodeBatch({ records });
  setBatchBaseOffset(bytes, baseOffset);
  return bytes;
}

function makeConsumer(options: ConsumerOptions = {}) {
  const clock = new ManualClock();
  const transport = new FakeConsumerTransport();
  const consumer = new Consumer(transport, { clock, random: () => 0.5, partitionBufferBytes: 256 * 1024, ...options });
  return { clock, transport, consumer };
}

async function take(consumer: Consumer, count: number): Promise<ConsumerRecord[]> {
  const taken: ConsumerRecord[] = [];
  if (count === 0) return taken;
  for await (const record of consumer) {
    taken.push(record);
    if (taken.length === count) break;
  }
  return taken;
}

const tp = { topic: 't', partition: 0 };

/** A consumer of partitions 0 and 1 of topic t, both sought to 0; `latestOf(p)` is p's newest stream. */
async function twoPartitionsFromZero() {
  const { consumer, transport } = makeConsumer();
  consumer.assign([tp, { topic: 't', partition: 1 }]);
  await consumer.seek(tp, 0);
  await consumer.seek({ topic: 't', partition: 1 }, 0);
  const latestOf = (partition: number) => transport.subscriptions.filter((entry) => entry.partition === partition).at(-1)!.stream;
  return { consumer, latestOf };
}

describe('Consumer', () => {
  it('starts a Subscribe stream at the sought offset, asking for raw batches', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 5);
    const start = transport.latest.writes.at(-1)!.start!;
    expect(start).toMatchObject({ topic: 't', partition: 0, offset: '5', format: 'RECORD_FORMAT_BATCHES' });
    expect(start.creditBytes).toBe(256 * 1024);
  });

  it('yields records in offset order and drops those below the requested offset', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 3);
    transport.latest.reply(Buffer.concat([storedBatch(0, 5), storedBatch(5, 2)]), 7);
    const records = await take(consumer, 4);
    expect(records.map((record) => record.offset)).toEqual([3, 4, 5, 6]);
    expect(records[0]).toMatchObject({ topic: 't', partition: 0, key: Buffer.from('k3'), value: Buffer.from('v3'), timestamp: 1_003 });
    expect(consumer.position(tp)).toBe(7);
  });

  it('reports as position the offset after the last record handed out, also in the middle of a fetched chunk', async () => {
    // An application that stores position() after processing each record resumes from there:
    // the end of the chunk would skip the records of it not processed yet.
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(Buffer.concat([storedBatch(0, 4), storedBatch(4, 2)]), 6);
    const positions: number[] = [];
    for await (const record of consumer) {
      positions.push(consumer.position(tp)!);
      if (record.offset === 5) break;
    }
    expect(positions).toEqual([1, 2, 3, 4, 5, 6]);
    expect(consumer.position(tp)).toBe(6);
  });

  it('resolves earliest, latest and timestamp seeks through ListOffsets', async () => {
    const { consumer, transport } = makeConsumer();
    transport.offsets = (_topic, _partition, spec) => (spec === 'earliest' ? 0 : spec === 'latest' ? 100 : 42);
    consumer.assign([tp]);
    await consumer.seek(tp, { timestamp: 1_234 });
    expect(transport.latest.writes[0]!.start!.offset).toBe('42');
    await consumer.seek(tp, 'earliest');
    expect(transport.latest.writes[0]!.start!.offset).toBe('0');
    expect(transport.listOffsetCalls.map((call) => call.spec)).toEqual(['latest', { timestamp: 1_234 }, 'earliest']);
  });

  it('hands out records left in a chunk when a loop over the consumer ended early', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 5), 5);
    expect((await take(consumer, 2)).map((record) => record.offset)).toEqual([0, 1]);
    expect(consumer.position(tp)).toBe(2);
    expect((await take(consumer, 3)).map((record) => record.offset)).toEqual([2, 3, 4]);
    expect(consumer.position(tp)).toBe(5);
  });

  it('gives back the records a next() still waiting at return() receives, so the next loop hands them out', async () => {
    // A read raced against a timeout and given up: the iterator's return() comes while its
    // next() waits. Those records used to stay in the abandoned iterator, all but the first
    // lost, with the position already past them.
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const iterator = consumer[Symbol.asyncIterator]();
    const waiting = iterator.next();
    await iterator.return!();
    transport.latest.reply(storedBatch(0, 3), 3);
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(consumer.position(tp)).toBe(0);
    const taken = await Promise.race([take(consumer, 3), settle(20).then(() => 'stalled' as const)]);
    expect(taken === 'stalled' ? taken : taken.map((record) => record.offset)).toEqual([0, 1, 2]);
  });

  it('starts a seek by time at the record the broker found, inside its batch, and yields every later record whatever its timestamp', async () => {
    const { consumer, transport } = makeConsumer();
    transport.offsets = () => ({ offset: 13, timestamp: 5_003 }); // the first record that late (log.proto)
    consumer.assign([tp]);
    await consumer.seek(tp, { timestamp: 5_003 });
    expect(consumer.position(tp)).toBe(13);
    // The reply starts at the batch: timestamps 5000…5004 at offsets 10…14; later records may
    // be older again (not filtered, as in Kafka).
    transport.latest.reply(Buffer.concat([storedBatch(10, 5, 5_000), storedBatch(15, 2, 4_000)]), 17);
    const records = await take(consumer, 4);
    expect(records.map((record) => [record.offset, record.timestamp])).toEqual([
      [13, 5_003],
      [14, 5_004],
      [15, 4_000],
      [16, 4_001],
    ]);
  });

  it('yields every record appended after a seek by time later than every record, even ones stamped before that time', async () => {
    // No record is that late: ListOffsets answers with the log end and no timestamp. What is
    // appended afterwards follows the time in the log, whatever its producer stamped on it.
    const { consumer, transport } = makeConsumer();
    transport.offsets = () => ({ offset: 5, timestamp: -1 });
    consumer.assign([tp]);
    await consumer.seek(tp, { timestamp: 9_000 });
    expect(consumer.position(tp)).toBe(5);
    transport.latest.reply(storedBatch(5, 3, 1_000), 8);
    expect((await take(consumer, 3)).map((record) => [record.offset, record.timestamp])).toEqual([
      [5, 1_000],
      [6, 1_001],
      [7, 1_002],
    ]);
  });

  it('grants credit back as records are taken, a quarter window at a time', async () => {
    const { consumer, transport } = makeConsumer({ partitionBufferBytes: 64 * 1024 });
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const stream = transport.latest;
    let offset = 0;
    let bytesSent = 0;
    while (bytesSent < 16 * 1024) {
      const batch = storedBatch(offset, 50);
      stream.reply(batch, offset + 50);
      offset += 50;
      bytesSent += batch.length;
    }
    await take(consumer, offset);
    const grants = stream.writes.filter((write) => write.creditBytes !== undefined).map((write) => write.creditBytes!);
    expect(grants.length).toBeGreaterThan(0);
    expect(grants.every((grant) => grant >= 16 * 1024)).toBe(true);
  });

  it('shares bufferBytes among the assigned partitions, so buffered bytes do not grow with the partition count', async () => {
    // 64 MiB across 40 partitions, not 8 MiB each: a replay of many partitions must not
    // buffer gigabytes before the application reads any of it.
    const { consumer, transport } = makeConsumer({ partitionBufferBytes: 8 * 1024 * 1024, bufferBytes: 1024 * 1024, autoOffsetReset: 'none' });
    const eight = Array.from({ length: 8 }, (_, partition) => ({ topic: 't', partition }));
    consumer.assign(eight);
    for (const partition of eight) await consumer.seek(partition, 0);
    const startCredits = () => transport.subscriptions.map((entry) => entry.stream.writes[0]!.start!.creditBytes);
    expect(startCredits()).toEqual(new Array(8).fill(128 * 1024));

    // Twice as many partitions: the new ones start with half, and an old one, once its
    // replies are read, is topped up only to the new window.
    const sixteen = Array.from({ length: 16 }, (_, partition) => ({ topic: 't', partition }));
    consumer.assign(sixteen);
    for (const partition of sixteen.slice(8)) await consumer.seek(partition, 0);
    expect(startCredits().slice(8)).toEqual(new Array(8).fill(64 * 1024));
    const first = transport.subscriptions[0]!.stream;
    let offset = 0;
    let bytesSent = 0;
    while (bytesSent < 128 * 1024 - 2048) {
      const batch = storedBatch(offset, 50);
      first.reply(batch, offset + 50);
      offset += 50;
      bytesSent += batch.length;
    }
    await take(consumer, offset);
    const granted = first.writes.filter((write) => write.creditBytes !== undefined).reduce((sum, write) => sum + write.creditBytes!, 0);
    expect(128 * 1024 - bytesSent + granted).toBeLessThanOrEqual(64 * 1024);
    expect(granted).toBeGreaterThan(0);
  });

  it('reopens the stream from the next offset after the connection drops', async () => {
    const { clock, consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const first = transport.latest;
    first.reply(storedBatch(0, 3), 3);
    const before = await take(consumer, 3);
    const dropped = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', metadata: new grpc.Metadata() });
    first.emit('error', dropped);
    expect(transport.subscriptions).toHaveLength(1);
    clock.advance(2_000);
    expect(transport.subscriptions).toHaveLength(2);
    expect(transport.latest.writes[0]!.start!.offset).toBe('3');
    transport.latest.reply(Buffer.concat([storedBatch(2, 3)]), 5); // overlaps: starts before 3
    const after = await take(consumer, 2);
    expect([...before, ...after].map((record) => record.offset)).toEqual([0, 1, 2, 3, 4]);
  });

  it('gives each outage its own retry budget, even when the partition stayed idle in between', async () => {
    const { clock, consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const dropped = () => Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', metadata: new grpc.Metadata() });
    // First outage: two failed reopens, then the stream stays up (no data: an idle partition).
    transport.latest.emit('error', dropped());
    clock.advance(2_000);
    transport.latest.emit('error', dropped());
    clock.advance(2_000);
    const healthy = transport.latest;
    expect(healthy.isCancelled).toBe(false);
    clock.advance(60 * 60 * 1000); // an hour later, the broker restarts again
    healthy.emit('error', dropped());
    clock.advance(2_000);
    expect(transport.latest).not.toBe(healthy); // reopened, not failed
    transport.latest.reply(storedBatch(0, 2), 2);
    expect((await take(consumer, 2)).map((record) => record.offset)).toEqual([0, 1]);
  });

  it('tells onRetry of each reopen it schedules, and onRecovered once the stream delivers again or stays open for the longest backoff', async () => {
    const events: string[] = [];
    // random 0.5: backoffs of 75 ms, then 150 ms.
    const { clock, consumer, transport } = makeConsumer({
      retry: { backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 60_000 },
      onRetry: (error, retrying) => events.push(`retry ${retrying.partition} ${error.reason} #${retrying.attempts} until +${retrying.giveUpAtMs - startMs}`),
      onRecovered: (recovered) => events.push(`recovered ${recovered.partition} after ${recovered.outageMs}`),
    });
    const startMs = clock.nowMs();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const dropped = () => Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', metadata: new grpc.Metadata() });
    transport.latest.emit('error', dropped());
    expect(events).toEqual([]); // from a microtask
    await settle();
    clock.advance(1_000); // reopened at 75 ms; refused again
    transport.latest.emit('error', dropped());
    await settle();
    expect(events).toEqual(['retry 0 BROKER_UNAVAILABLE #1 until +60000', 'retry 0 BROKER_UNAVAILABLE #2 until +60000']);
    clock.advance(150); // reopened: up, but the partition is idle
    clock.advance(1_999);
    await settle();
    expect(events).toHaveLength(2);
    clock.advance(1);
    await settle();
    expect(events.at(-1)).toBe('recovered 0 after 3150');
    // A second outage ends with data before the stream's recovery timer, which then stays quiet.
    transport.latest.emit('error', dropped());
    clock.advance(1_000);
    transport.latest.reply(storedBatch(0, 1), 1);
    clock.advance(2_000);
    await settle();
    expect(events.slice(3)).toEqual(['retry 0 BROKER_UNAVAILABLE #1 until +63150', 'recovered 0 after 1000']);
    expect((await take(consumer, 1)).map((record) => record.offset)).toEqual([0]);
  });

  it('tells onRecovered when a partition onRetry reported streams again after its reopen found the offset out of range and reset', async () => {
    // The broker came back without the log's tail (an unclean restart): the reopened stream
    // answers OFFSET_OUT_OF_RANGE, the consumer resets, and data flows again.
    const events: string[] = [];
    const { clock, consumer, transport } = makeConsumer({
      autoOffsetReset: 'earliest',
      retry: { backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 60_000 },
      onRetry: (error, retrying) => events.push(`retry ${error.reason} #${retrying.attempts}`),
      onRecovered: (recovered) => events.push(`recovered after ${recovered.outageMs}`),
    });
    transport.offsets = () => 3;
    consumer.assign([tp]);
    await consumer.seek(tp, 5);
    const dropped = Object.assign(new Error('14 UNAVAILABLE: Connection dropped'), { code: grpc.status.UNAVAILABLE, details: 'Connection dropped', metadata: new grpc.Metadata() });
    transport.latest.emit('error', dropped);
    clock.advance(1_000); // reopened at 75 ms
    const metadata = new grpc.Metadata();
    metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
    transport.latest.emit('error', Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'gone', metadata }));
    await settle();
    expect(transport.latest.writes[0]!.start!.offset).toBe('3');
    transport.latest.reply(storedBatch(3, 1), 4);
    await settle();
    expect(events).toEqual(['retry BROKER_UNAVAILABLE #1', 'recovered after 1000']);
    expect((await take(consumer, 1)).map((record) => record.offset)).toEqual([3]);
  });

  it('reopens a stream the broker does not take within requestTimeoutMs, gives up at retry.timeoutMs, and never calls it recovered', async () => {
    // A hung broker (a stopped process, a frozen host) accepts TCP connections and never
    // answers; grpc-js waits for its handshake without a deadline. The stream used to wait
    // forever: no onRetry, no failure at retry.timeoutMs.
    const events: string[] = [];
    const { clock, consumer, transport } = makeConsumer({
      requestTimeoutMs: 5_000,
      // random 0.5: backoffs of 75, 150, 300, 600, then 1,200 ms, past the budget.
      retry: { backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 20_000 },
      onRetry: (error, retrying) => events.push(`retry ${error.reason} #${retrying.attempts}`),
      onRecovered: () => events.push('recovered'),
    });
    transport.isTakingStreams = false;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    let thrown: unknown;
    void take(consumer, 1).catch((error: unknown) => (thrown = error));
    clock.advance(4_999);
    expect(transport.latest.isCancelled).toBe(false);
    clock.advance(1);
    expect(transport.latest.isCancelled).toBe(true);
    clock.advance(30_000);
    await settle();
    expect(events).toEqual(['retry BROKER_UNAVAILABLE #1', 'retry BROKER_UNAVAILABLE #2', 'retry BROKER_UNAVAILABLE #3', 'retry BROKER_UNAVAILABLE #4']);
    expect(thrown).toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringContaining('did not take the subscription to t-0 within 5000 ms (requestTimeoutMs)') });
    expect(transport.subscriptions).toHaveLength(5);
    expect(transport.subscriptions.every((entry) => entry.stream.isCancelled)).toBe(true);

    // The broker answers again: a stream it takes waits for data as long as it takes.
    transport.isTakingStreams = true;
    await consumer.seek(tp, 0);
    const taken = transport.latest;
    clock.advance(60 * 60 * 1000);
    expect(taken.isCancelled).toBe(false);
    taken.reply(storedBatch(0, 1), 1);
    expect((await take(consumer, 1)).map((record) => record.offset)).toEqual([0]);
  });

  it('reports a stream the broker did not take within requestTimeoutMs as not taken, before cancelling it, and no stream it cancels for another reason', async () => {
    // The report marks the address unreachable (connections.ts), so the reopened stream goes
    // to the next bootstrap address. The give-up used to end the call as CANCELLED, which
    // marks nothing: a hung address kept getting every Subscribe stream.
    const { clock, consumer, transport } = makeConsumer({ requestTimeoutMs: 5_000 });
    transport.isTakingStreams = false;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const hung = transport.latest;
    const cancelledWhenReported: boolean[] = [];
    const report = transport.reportNotTaken.bind(transport);
    transport.reportNotTaken = (stream) => {
      cancelledWhenReported.push((stream as typeof hung).isCancelled);
      report(stream);
    };
    clock.advance(4_999);
    expect(transport.notTaken).toEqual([]);
    clock.advance(1);
    expect(transport.notTaken).toEqual([hung]);
    expect(cancelledWhenReported).toEqual([false]);
    expect(hung.isCancelled).toBe(true);

    // Cancelled by a seek before its deadline, or taken and then failed: not reported here
    // (the transport judges a failed call by its status).
    await consumer.seek(tp, 0);
    await consumer.seek(tp, 1);
    transport.isTakingStreams = true;
    await consumer.seek(tp, 2);
    transport.latest.emit('error', Object.assign(new Error('14 UNAVAILABLE'), { code: grpc.status.UNAVAILABLE, details: 'reset', metadata: new grpc.Metadata() }));
    await consumer.close();
    clock.advance(60_000);
    expect(transport.notTaken).toEqual([hung]);
  });

  it('gives up at the default retry budget when retry.timeoutMs is given as undefined', async () => {
    // `{ timeoutMs: config.retryTimeoutMs }` with the setting missing: the spread used to take
    // undefined, every comparison with it was false, and the consumer retried forever.
    const { clock, consumer, transport } = makeConsumer({ retry: { timeoutMs: undefined } });
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    let thrown: unknown;
    void take(consumer, 1).catch((error: unknown) => (thrown = error));
    const dropped = () => Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: grpc.status.UNAVAILABLE, details: 'No connection established', metadata: new grpc.Metadata() });
    for (let elapsedMs = 0; elapsedMs <= 70_000 && thrown === undefined; elapsedMs += 500) {
      if (!transport.latest.isCancelled) transport.latest.emit('error', dropped());
      clock.advance(500);
      await settle();
    }
    expect(thrown).toMatchObject({ reason: 'BROKER_UNAVAILABLE' });
    expect(transport.subscriptions.length).toBeGreaterThan(20);
  });

  it('throws a non-retriable stream failure once from the iterator', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const metadata = new grpc.Metadata();
    metadata.set('runnel-reason', 'CORRUPT_DATA');
    transport.latest.emit('error', Object.assign(new Error('15 DATA_LOSS'), { code: grpc.status.DATA_LOSS, details: 'segment damaged', metadata }));
    await expect(take(consumer, 1)).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
  });

  it('decodes a gzip batch that inflates to far more than maxMessageBytes, as the broker accepted it', async () => {
    // A 4 MiB records section that gzip squeezes to a few KiB; the consumer asked for 64 KiB replies.
    const { consumer, transport } = makeConsumer({ maxMessageBytes: 64 * 1024 });
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const value = Buffer.alloc(64 * 1024, 'x');
    const bytes = encodeBatch({ records: Array.from({ length: 64 }, () => ({ key: null, value, headers: [], timestamp: 1_000 })), compression: 'gzip' });
    expect(bytes.length).toBeLessThan(64 * 1024);
    transport.latest.reply(bytes, 64);
    const records = await take(consumer, 64);
    expect(records.map((record) => record.offset)).toEqual(Array.from({ length: 64 }, (_, index) => index));
    expect(records.every((record) => record.value?.equals(value))).toBe(true);
  });

  it('fails a partition whose batch does not pass its CRC check', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const damaged = storedBatch(0, 3);
    damaged[damaged.length - 1]! ^= 0xff;
    transport.latest.reply(damaged, 3);
    await expect(take(consumer, 1)).rejects.toMatchObject({ reason: 'CORRUPT_MESSAGE' });
  });

  it('moves to autoOffsetReset after OFFSET_OUT_OF_RANGE, and tells onOffsetReset which records it skipped', async () => {
    const resets: OffsetReset[] = [];
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'earliest', onOffsetReset: (reset) => resets.push(reset) });
    transport.offsets = () => 10;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 2), 2);
    expect((await take(consumer, 2)).map((record) => record.offset)).toEqual([0, 1]);
    const metadata = new grpc.Metadata();
    metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
    transport.latest.emit('error', Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'gone', metadata }));
    await settle();
    expect(transport.latest.writes[0]!.start!.offset).toBe('10');
    expect(resets).toMatchObject([{ topic: 't', partition: 0, fromOffset: 2, toOffset: 10, resetTo: 'earliest', error: { reason: 'OFFSET_OUT_OF_RANGE' } }]);
  });

  it('with autoOffsetReset none, fails a partition retention passed with an error that says why and what to do, keeping the range', async () => {
    // Before, the job saw only the broker's "offset 2 is outside t-0's range [40, 90]": not
    // that records were deleted unread, nor that a seek lets it go on.
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'none' });
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 2), 2);
    const metadata = new grpc.Metadata();
    metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
    metadata.set('runnel-details', JSON.stringify({ topic: 't', partition: 0, offset: '2', logStartOffset: 40, logEndOffset: 90 }));
    transport.latest.emit('error', Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: "offset 2 is outside t-0's range [40, 90]", metadata }));
    const seen: number[] = [];
    const failure = await (async () => {
      for await (const record of consumer) seen.push(record.offset);
    })().catch((error: unknown) => error);
    expect(seen).toEqual([0, 1]);
    expect(failure).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE', topic: 't', partition: 0, details: { offset: '2', logStartOffset: 40, logEndOffset: 90 } });
    expect((failure as Error).message).toMatch(/^records of t-0 from offset 2 up to 40 were deleted \(retention\) before this consumer read them; autoOffsetReset is 'none'.*seek it/);
    // The other way out of range: the log is now shorter than where the consumer was.
    const shorter = makeConsumer({ autoOffsetReset: 'none' });
    shorter.consumer.assign([tp]);
    await shorter.consumer.seek(tp, 70);
    const behind = new grpc.Metadata();
    behind.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
    behind.set('runnel-details', JSON.stringify({ topic: 't', partition: 0, offset: '70', logStartOffset: 0, logEndOffset: 5 }));
    shorter.transport.latest.emit('error', Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'out of range', metadata: behind }));
    await expect(take(shorter.consumer, 1)).rejects.toThrow(/^t-0 now ends at offset 5, before offset 70 this consumer had reached/);
  });

  it('hands out what it fetched before an OFFSET_OUT_OF_RANGE, then resets (or fails with autoOffsetReset none)', async () => {
    const outOfRange = () => {
      const metadata = new grpc.Metadata();
      metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
      return Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'gone', metadata });
    };
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'earliest' });
    transport.offsets = () => 10;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 3), 3);
    transport.latest.emit('error', outOfRange()); // retention passed offset 3 meanwhile
    await settle();
    expect((await take(consumer, 3)).map((record) => record.offset)).toEqual([0, 1, 2]);
    await settle();
    expect(transport.latest.writes[0]!.start!.offset).toBe('10');
    transport.latest.reply(storedBatch(10, 1), 11);
    expect((await take(consumer, 1)).map((record) => record.offset)).toEqual([10]);

    const strict = makeConsumer({ autoOffsetReset: 'none' });
    strict.consumer.assign([tp]);
    await strict.consumer.seek(tp, 0);
    strict.transport.latest.reply(storedBatch(0, 2), 2);
    strict.transport.latest.emit('error', outOfRange());
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const record of strict.consumer) seen.push(record.offset);
      })(),
    ).rejects.toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE' });
    expect(seen).toEqual([0, 1]);
  });

  it('holds back a paused partition and yields it again after resume', async () => {
    const { consumer, latestOf } = await twoPartitionsFromZero();
    consumer.pause([tp]);
    latestOf(0).reply(storedBatch(0, 2), 2);
    latestOf(1).reply(storedBatch(0, 2), 2);
    const whilePaused = await take(consumer, 2);
    expect(whilePaused.every((record) => record.partition === 1)).toBe(true);
    consumer.resume([tp]);
    const afterResume = await take(consumer, 2);
    expect(afterResume.every((record) => record.partition === 0)).toBe(true);
  });

  it('hands out nothing of the old position after a seek made inside the loop', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 6), 6);
    const seen: number[] = [];
    for await (const record of consumer) {
      seen.push(record.offset);
      if (record.offset === 2) {
        await consumer.seek(tp, 100);
        transport.latest.reply(storedBatch(100, 2), 102);
      }
      if (record.offset === 101) break;
    }
    expect(seen).toEqual([0, 1, 2, 100, 101]);
  });

  it('holds back the rest of a decoded chunk when its partition is paused inside the loop, and yields it after resume', async () => {
    const { consumer, latestOf } = await twoPartitionsFromZero();
    latestOf(0).reply(storedBatch(0, 6), 6);
    const seen: string[] = [];
    for await (const record of consumer) {
      seen.push(`${record.partition}:${record.offset}`);
      if (seen.length === 2) {
        consumer.pause([tp]);
        latestOf(1).reply(storedBatch(0, 1), 1);
      }
      if (record.partition === 1) break;
    }
    expect(seen).toEqual(['0:0', '0:1', '1:0']);
    expect(consumer.position(tp)).toBe(2);
    consumer.resume([tp]);
    expect((await take(consumer, 4)).map((record) => `${record.partition}:${record.offset}`)).toEqual(['0:2', '0:3', '0:4', '0:5']);
  });

  it('ends its iterators and cancels every stream on close', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const reading = take(consumer, 1);
    await settle();
    await consumer.close();
    expect(await reading).toEqual([]);
    expect(transport.latest.isCancelled).toBe(true);
    expect(() => consumer.assign([tp])).toThrow(BrokerError);
  });

  it('cancels on close the ListOffsets still retried for a seek and for an offset reset, and the seek resolves without moving anything', async () => {
    // A broker out of reach: ListOffsets fails retriably and is retried for the retry budget
    // (60 s). close() alone used to leave both retrying, with their backoff timers holding a
    // program that had closed its consumer from exiting.
    const { consumer, transport, clock } = makeConsumer({ autoOffsetReset: 'earliest' });
    transport.listOffsetRetry = { clock, retry: { backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 60_000 } };
    transport.offsets = () => {
      throw new BrokerError('BROKER_UNAVAILABLE', 'connection refused');
    };
    const other = { topic: 't', partition: 1 };
    consumer.assign([tp, other]); // both reset to 'earliest'
    let seekOutcome: unknown = 'pending';
    consumer.seek(tp, 'latest').then(
      () => (seekOutcome = 'resolved'),
      (error: unknown) => (seekOutcome = error),
    );
    for (let step = 0; step < 5; step++) {
      clock.advance(2_000);
      await settle();
    }
    const attemptsBeforeClose = transport.listOffsetAttempts;
    expect(attemptsBeforeClose).toBeGreaterThan(3);
    await consumer.close();
    await settle();
    expect(seekOutcome).toBe('resolved');
    expect(transport.listOffsetCalls.map((call) => call.signal.aborted)).toEqual([true, true, true]);
    for (let step = 0; step < 40; step++) {
      clock.advance(2_000);
      await settle();
    }
    expect(transport.listOffsetAttempts).toBe(attemptsBeforeClose);
    expect(consumer.position(tp)).toBeUndefined();
  });

  it('resolves a seek overtaken by a later seek without a say, and cancels its ListOffsets', async () => {
    const { consumer, transport, clock } = makeConsumer({ autoOffsetReset: 'none' });
    transport.listOffsetRetry = { clock, retry: { backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 60_000 } };
    transport.offsets = () => {
      throw new BrokerError('BROKER_UNAVAILABLE', 'connection refused');
    };
    consumer.assign([tp]);
    let firstOutcome: unknown = 'pending';
    consumer.seek(tp, 'earliest').then(
      () => (firstOutcome = 'resolved'),
      (error: unknown) => (firstOutcome = error),
    );
    await settle();
    await consumer.seek(tp, 7);
    await settle();
    expect(firstOutcome).toBe('resolved');
    expect(transport.listOffsetCalls[0]!.signal.aborted).toBe(true);
    expect(transport.latest.writes.at(-1)!.start).toMatchObject({ offset: '7' });
    expect(consumer.position(tp)).toBe(7);
  });

  it('reports through the iterator a failure to position a newly assigned partition', async () => {
    const { consumer, transport } = makeConsumer();
    transport.offsets = () => {
      throw new BrokerError('TOPIC_NOT_FOUND', 'no such topic');
    };
    consumer.assign([tp]);
    await expect(take(consumer, 1)).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
  });

  it('rejects a seek of a partition that is not assigned', async () => {
    const { consumer } = makeConsumer();
    await expect(consumer.seek(tp, 0)).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
  });
});

/**
 * `count` records in one gzip batch from offset 0, each a 1-byte value, timestamps 1000 + offset:
 * the kind of batch a topic with a raised max.message.bytes can hold millions of.
 */
function tinyRecordsBatch(count: number): Buffer {
  return encodeBatch({
    records: Array.from({ length: count }, (_, index) => ({ key: null, value: Buffer.from([index & 0xff]), headers: [], timestamp: 1_000 + index })),
    compression: 'gzip',
  });
}

const LARGE_RECORD_COUNT = 200_000;
let largeBatch: Buffer | undefined;
/** One 200,000-record gzip batch (a few hundred KiB), built once for the tests that share it. */
function largeTinyRecordsBatch(): Buffer {
  largeBatch ??= tinyRecordsBatch(LARGE_RECORD_COUNT);
  return largeBatch;
}

function outOfRangeError() {
  const metadata = new grpc.Metadata();
  metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
  return Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'gone', metadata });
}

/** Offsets from..to−1. */
function offsetRange(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, index) => from + index);
}

/**
 * Counts the consumer's visits to its assigned partitions: every element read of its private
 * `partitions` array (an index, or a step of a `for of` or `every`) from now until the next
 * `assign`. What costs O(partitions) per record shows here as thousands of visits per record.
 */
function countPartitionVisits(consumer: Consumer): { count: number } {
  const visits = { count: 0 };
  const internals = consumer as unknown as { partitions: unknown[] };
  internals.partitions = new Proxy(internals.partitions, {
    get(target, property, receiver) {
      if (typeof property === 'string' && /^\d+$/.test(property)) visits.count++;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  return visits;
}

function corruptDataError(): Error {
  const metadata = new grpc.Metadata();
  metadata.set('runnel-reason', 'CORRUPT_DATA');
  return Object.assign(new Error('15 DATA_LOSS'), { code: grpc.status.DATA_LOSS, details: 'segment damaged', metadata });
}

/** A consumer assigned partitions 0..count-1 of topic t from earliest, with each one's open stream. */
async function assignedFromEarliest(count: number) {
  const { consumer, transport } = makeConsumer({ autoOffsetReset: 'earliest' });
  const all = Array.from({ length: count }, (_, partition) => ({ topic: 't', partition }));
  consumer.assign(all);
  await settle();
  const streams = new Map(transport.subscriptions.map((entry) => [entry.partition, entry.stream]));
  expect(streams.size).toBe(count);
  return { consumer, all, streams };
}

describe('Consumer with many partitions', () => {
  it('hands out each reply of a tail of 2,000 partitions without walking the assigned partitions, and their failures once each', async () => {
    // A tail: the iterator waits, one partition replies, the iterator hands out its record.
    // Each of those used to walk all assigned partitions twice (one walk for a failure to
    // throw, one for a partition with records): 4,000 records here made 24 million visits, and
    // 10,000 partitions tailed at 5,000 records/s took 75 % of a core.
    const PARTITIONS = 2_000;
    const { consumer, all, streams } = await assignedFromEarliest(PARTITIONS);
    const visits = countPartitionVisits(consumer);
    const iterator = consumer[Symbol.asyncIterator]();
    for (let offset = 0; offset < 2; offset++) {
      for (let partition = 0; partition < PARTITIONS; partition++) {
        const next = iterator.next();
        streams.get(partition)!.reply(storedBatch(offset, 1), offset + 1);
        const { value } = await next;
        expect(value).toMatchObject({ partition, offset });
      }
    }
    expect(visits.count).toBeLessThan(2 * PARTITIONS * 2);

    // Failures among them: each thrown once, a paused partition's only after its resume.
    visits.count = 0;
    consumer.pause([all[1_500]!]);
    streams.get(1_500)!.emit('error', corruptDataError());
    streams.get(700)!.emit('error', corruptDataError());
    await expect(iterator.next()).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
    const waiting = iterator.next();
    streams.get(3)!.reply(storedBatch(2, 1), 3);
    expect((await waiting).value).toMatchObject({ partition: 3, offset: 2 });
    consumer.resume([all[1_500]!]);
    await expect(iterator.next()).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
    const after = iterator.next();
    streams.get(4)!.reply(storedBatch(2, 1), 3);
    expect((await after).value).toMatchObject({ partition: 4, offset: 2 });
    expect(visits.count).toBeLessThan(100);
  });

  it('ends a stopAt replay of 2,000 partitions without walking the finished ones at every wait', async () => {
    // Each wait for a reply also checked whether every partition was finished, from the first
    // one on, past all those finished already: with the two walks above, 14 million visits here.
    const PARTITIONS = 2_000;
    const { consumer, all, streams } = await assignedFromEarliest(PARTITIONS);
    consumer.stopAt(all.map((tp) => ({ ...tp, offset: 1 })));
    const visits = countPartitionVisits(consumer);
    const iterator = consumer[Symbol.asyncIterator]();
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const next = iterator.next();
      streams.get(partition)!.reply(storedBatch(0, 2), 2);
      expect((await next).value).toMatchObject({ partition, offset: 0 });
    }
    expect(await iterator.next()).toMatchObject({ done: true });
    expect(visits.count).toBeLessThan(4 * PARTITIONS);
  });

  it('takes the partitions with buffered replies in turn, a reply each, paused ones after their resume', async () => {
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'earliest' });
    const four = Array.from({ length: 4 }, (_, partition) => ({ topic: 't', partition }));
    consumer.assign(four);
    await settle();
    const streams = new Map(transport.subscriptions.map((entry) => [entry.partition, entry.stream]));
    // Partition 0 replied three times, 1 twice, 2 once, 3 (paused) once: no partition's
    // second reply before every other's first.
    consumer.pause([four[3]!]);
    for (let offset = 0; offset < 3; offset++) streams.get(0)!.reply(storedBatch(offset, 1), offset + 1);
    for (let offset = 0; offset < 2; offset++) streams.get(1)!.reply(storedBatch(offset, 1), offset + 1);
    streams.get(2)!.reply(storedBatch(0, 1), 1);
    streams.get(3)!.reply(storedBatch(0, 1), 1);
    const taken = await take(consumer, 6);
    expect(taken.map((record) => `${record.partition}@${record.offset}`)).toEqual(['0@0', '1@0', '2@0', '0@1', '1@1', '0@2']);
    consumer.resume([four[3]!]);
    expect((await take(consumer, 1)).map((record) => `${record.partition}@${record.offset}`)).toEqual(['3@0']);
  });
});

describe('Consumer decoding a batch of many records', () => {
  it('decodes a batch of 200,000 tiny records a slice at a time: after the first record is out, at most SLICE_RECORD_COUNT_MAX are decoded', async () => {
    // Every record decoded is held in the slice the iterator hands out from; a loop that
    // breaks after one record gives the rest back, so the slice it held is visible. Decoded
    // whole, the batch was 200,000 record objects before the first came out.
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(largeTinyRecordsBatch(), LARGE_RECORD_COUNT);
    expect((await take(consumer, 1)).map((record) => record.offset)).toEqual([0]);
    const chunks = consumer.batches();
    const rest = (await chunks.next()).value!;
    expect(rest.length + 1).toBeLessThanOrEqual(SLICE_RECORD_COUNT_MAX);
    expect(rest[0]!.offset).toBe(1);
    const next = (await chunks.next()).value!;
    expect(next.length).toBeLessThanOrEqual(SLICE_RECORD_COUNT_MAX);
    expect(next[0]!.offset).toBe(rest.at(-1)!.offset + 1);
  });

  it('hands out every record of a large batch in order, with position() right after each, across slice boundaries', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(Buffer.concat([largeTinyRecordsBatch(), storedBatch(LARGE_RECORD_COUNT, 2)]), LARGE_RECORD_COUNT + 2);
    let expected = 0;
    let wrong = '';
    for await (const record of consumer) {
      const position = consumer.position(tp);
      if (wrong === '' && (record.offset !== expected || position !== expected + 1 || (record.offset < LARGE_RECORD_COUNT && record.value![0] !== (expected & 0xff)))) {
        wrong = `record ${record.offset} (position ${position}) where ${expected} was due`;
      }
      expected++;
      if (record.offset === LARGE_RECORD_COUNT + 1) break;
    }
    expect(wrong).toBe('');
    expect(expected).toBe(LARGE_RECORD_COUNT + 2);
    expect(consumer.position(tp)).toBe(LARGE_RECORD_COUNT + 2);
  });

  it('yields a large batch through batches() in arrays of at most SLICE_RECORD_COUNT_MAX, position() after each', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(largeTinyRecordsBatch(), LARGE_RECORD_COUNT);
    let next = 0;
    for await (const chunk of consumer.batches()) {
      expect(chunk.length).toBeLessThanOrEqual(SLICE_RECORD_COUNT_MAX);
      expect([chunk[0]!.offset, chunk.at(-1)!.offset]).toEqual([next, next + chunk.length - 1]);
      next += chunk.length;
      expect(consumer.position(tp)).toBe(next);
      if (next === LARGE_RECORD_COUNT) break;
    }
  });

  it('starts a seek into the middle of a large batch at the sought record, decoding none before it', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 123_457);
    transport.latest.reply(largeTinyRecordsBatch(), LARGE_RECORD_COUNT); // the broker sends the whole batch
    const chunks = consumer.batches();
    const first: ConsumerRecord[] = (await chunks.next()).value!;
    expect(first[0]!.offset).toBe(123_457);
    expect(first.length).toBeLessThanOrEqual(SLICE_RECORD_COUNT_MAX);
    const offsets = first.map((record) => record.offset);
    for (let chunk = first; chunk.at(-1)!.offset < LARGE_RECORD_COUNT - 1; ) {
      chunk = (await chunks.next()).value!;
      for (const record of chunk) offsets.push(record.offset);
    }
    expect(offsets).toEqual(offsetRange(123_457, LARGE_RECORD_COUNT));
  });

  it('drops the rest of a large batch being decoded on a seek inside the loop, and reads from the new offset', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(largeTinyRecordsBatch(), LARGE_RECORD_COUNT);
    const seen: number[] = [];
    for await (const record of consumer) {
      seen.push(record.offset);
      if (record.offset === SLICE_RECORD_COUNT_MAX + 10) {
        // In the second slice; the same batch arrives again for the new offset, as the broker sends it.
        await consumer.seek(tp, 150_000);
        transport.latest.reply(largeTinyRecordsBatch(), LARGE_RECORD_COUNT);
      }
      if (record.offset === 150_000 + SLICE_RECORD_COUNT_MAX) break;
    }
    expect(seen).toEqual([...offsetRange(0, SLICE_RECORD_COUNT_MAX + 11), ...offsetRange(150_000, 150_000 + SLICE_RECORD_COUNT_MAX + 1)]);
    expect(consumer.position(tp)).toBe(150_000 + SLICE_RECORD_COUNT_MAX + 1);
  });

  it('holds back the rest of a large batch while its partition is paused, and goes on exactly where it stopped after resume', async () => {
    const { consumer, latestOf } = await twoPartitionsFromZero();
    const count = 3 * SLICE_RECORD_COUNT_MAX + 5;
    latestOf(0).reply(tinyRecordsBatch(count), count);
    const seen: string[] = [];
    for await (const record of consumer) {
      seen.push(`${record.partition}:${record.offset}`);
      if (record.partition === 0 && record.offset === SLICE_RECORD_COUNT_MAX + 2) {
        consumer.pause([tp]);
        latestOf(1).reply(storedBatch(0, 1), 1);
      }
      if (record.partition === 1) break;
    }
    expect(seen.at(-1)).toBe('1:0');
    expect(consumer.position(tp)).toBe(SLICE_RECORD_COUNT_MAX + 3);
    consumer.resume([tp]);
    const rest = await take(consumer, count - (SLICE_RECORD_COUNT_MAX + 3));
    expect(rest.map((record) => record.offset)).toEqual(offsetRange(SLICE_RECORD_COUNT_MAX + 3, count));
    expect(seen.slice(0, -1)).toEqual(offsetRange(0, SLICE_RECORD_COUNT_MAX + 3).map((offset) => `0:${offset}`));
  });

  it('starts a seek by time at the record the broker found deep inside a large batch, several slices in', async () => {
    const { consumer, transport } = makeConsumer();
    const found = 3 * SLICE_RECORD_COUNT_MAX + 7;
    transport.offsets = () => ({ offset: found, timestamp: 1_000 + found });
    consumer.assign([tp]);
    await consumer.seek(tp, { timestamp: 1_000 + found });
    const count = 4 * SLICE_RECORD_COUNT_MAX;
    transport.latest.reply(tinyRecordsBatch(count), count);
    const records = await take(consumer, SLICE_RECORD_COUNT_MAX - 7);
    expect(records.map((record) => record.offset)).toEqual(offsetRange(3 * SLICE_RECORD_COUNT_MAX + 7, count));
    expect(consumer.position(tp)).toBe(count);
  });

  it('hands out the whole large batch it fetched before an OFFSET_OUT_OF_RANGE, and only then resets', async () => {
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'earliest' });
    transport.offsets = () => 500_000;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const count = 2 * SLICE_RECORD_COUNT_MAX + 3;
    const stream = transport.latest;
    stream.reply(tinyRecordsBatch(count), count);
    expect((await take(consumer, SLICE_RECORD_COUNT_MAX + 1)).at(-1)!.offset).toBe(SLICE_RECORD_COUNT_MAX);
    stream.emit('error', outOfRangeError()); // retention passed the fetch offset meanwhile
    await settle();
    expect(transport.latest).toBe(stream); // not reset yet: records fetched before are due
    const rest = await take(consumer, count - SLICE_RECORD_COUNT_MAX - 1);
    expect(rest.map((record) => record.offset)).toEqual(offsetRange(SLICE_RECORD_COUNT_MAX + 1, count));
    await settle();
    expect(transport.latest.writes[0]!.start!.offset).toBe('500000');
  });

  it('skips a control batch inside a reply and moves its position past it', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const controlBatch = (offset: number): Buffer => {
      const control = storedBatch(offset, 1);
      control.writeInt16BE(control.readInt16BE(BatchField.attributes) | CONTROL_BIT, BatchField.attributes);
      control.writeUInt32BE(crc32c(control.subarray(BATCH_CRC_START)), BatchField.crc);
      return control;
    };
    transport.latest.reply(Buffer.concat([storedBatch(0, 2), controlBatch(2), storedBatch(3, 2), controlBatch(5)]), 6);
    expect((await take(consumer, 4)).map((record) => record.offset)).toEqual([0, 1, 3, 4]);
    await settle();
    expect(consumer.position(tp)).toBe(6);
  });
});

describe('Consumer options', () => {
  it('refuses a partition window larger than the Subscribe credit a broker keeps (256 MiB), which would stall the stream', () => {
    expect(() => makeConsumer({ partitionBufferBytes: 256 * 1024 * 1024 + 1, bufferBytes: 1024 * 1024 * 1024 })).toThrow(/partitionBufferBytes must be an integer from 65536 to 268435456/);
    expect(() => makeConsumer({ partitionBufferBytes: 256 * 1024 * 1024, bufferBytes: 1024 * 1024 * 1024 })).not.toThrow();
  });
});

describe('Consumer stopAt', () => {
  /** Reads until the iterator ends, failing the test if it is still waiting after `settle()`. */
  async function readToEnd(consumer: Consumer): Promise<ConsumerRecord[]> {
    const records: ConsumerRecord[] = [];
    const reading = (async () => {
      for await (const record of consumer) records.push(record);
    })();
    let isDone = false;
    void reading.then(() => (isDone = true));
    await settle();
    if (!isDone) {
      await consumer.close();
      throw new Error(`the iterator was still waiting after ${records.length} records: ${records.map((record) => `${record.partition}@${record.offset}`).join(' ')}`);
    }
    await reading;
    return records;
  }

  it('ends the iterator once every partition has read up to its stop offset, handing out nothing at or past it', async () => {
    // A replay to the end offsets taken first: partition 0 holds more than that by now,
    // partition 1 had nothing at or after the replay's start. Before, nothing could bound the
    // read, and a loop waiting for each partition's last record waited for ever on partition 1.
    const { consumer, transport } = makeConsumer();
    const tp1 = { topic: 't', partition: 1 };
    consumer.assign([tp, tp1]);
    await consumer.seek(tp, 0);
    await consumer.seek(tp1, 3);
    consumer.stopAt([
      { ...tp, offset: 5 },
      { ...tp1, offset: 3 },
    ]);
    transport.subscriptions[0]!.stream.reply(storedBatch(0, 8), 8);
    const records = await readToEnd(consumer);
    expect(records.map((record) => `${record.partition}@${record.offset}`)).toEqual(['0@0', '0@1', '0@2', '0@3', '0@4']);
    expect(consumer.position(tp)).toBe(5);
    expect(transport.subscriptions.map((entry) => entry.stream.isCancelled)).toEqual([true, true]); // both stopped at their bounds
  });

  it('finishes a partition an offset reset moved past its stop offset, so the replay ends and onOffsetReset says what was skipped', async () => {
    const resets: OffsetReset[] = [];
    const { consumer, transport } = makeConsumer({ autoOffsetReset: 'latest', onOffsetReset: (reset) => resets.push(reset) });
    transport.offsets = () => 50;
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    consumer.stopAt([{ ...tp, offset: 10 }]);
    transport.latest.reply(storedBatch(0, 2), 2);
    const metadata = new grpc.Metadata();
    metadata.set('runnel-reason', 'OFFSET_OUT_OF_RANGE');
    transport.latest.emit('error', Object.assign(new Error('11 OUT_OF_RANGE'), { code: grpc.status.OUT_OF_RANGE, details: 'gone', metadata }));
    const records = await readToEnd(consumer);
    expect(records.map((record) => record.offset)).toEqual([0, 1]);
    expect(resets).toMatchObject([{ fromOffset: 2, toOffset: 50, resetTo: 'latest' }]);
    expect(transport.subscriptions).toHaveLength(1); // no stream opened past the bound
  });

  it('streams a finished partition again from its position when a later stopAt raises its bound', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    consumer.stopAt([{ ...tp, offset: 2 }]);
    transport.latest.reply(storedBatch(0, 4), 4);
    expect((await readToEnd(consumer)).map((record) => record.offset)).toEqual([0, 1]);
    consumer.stopAt([{ ...tp, offset: 4 }]);
    expect(transport.subscriptions).toHaveLength(2);
    expect(transport.latest.writes[0]!.start!.offset).toBe('2');
    transport.latest.reply(storedBatch(2, 2), 4);
    expect((await readToEnd(consumer)).map((record) => record.offset)).toEqual([2, 3]);
  });

  it('does not hand out records an iterator holds at or past a bound lowered under them', async () => {
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 6), 6);
    const taken: number[] = [];
    for await (const record of consumer) {
      taken.push(record.offset);
      if (record.offset === 1) consumer.stopAt([{ ...tp, offset: 3 }]);
    }
    expect(taken).toEqual([0, 1, 2]);
    expect(consumer.position(tp)).toBe(3);
  });

  it('keeps the position after the records handed out when a bound is lowered under them', async () => {
    // Records 3 and 4 were handed out before the bound went down to 3: the position must not
    // go back to 3 (resuming or committing there would hand them out again); it stays at 5,
    // the first record not handed out.
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    transport.latest.reply(storedBatch(0, 8), 8);
    const taken: number[] = [];
    for await (const record of consumer) {
      taken.push(record.offset);
      if (record.offset === 4) consumer.stopAt([{ ...tp, offset: 3 }]);
    }
    expect(taken).toEqual([0, 1, 2, 3, 4]);
    expect(consumer.position(tp)).toBe(5);
    expect(transport.latest.isCancelled).toBe(true);
  });

  it('stops the stream of a partition whose given-back records take its position to its bound', async () => {
    // Record 1 is given back with the position after it past a control batch (3), then the
    // bound goes to 2: handing out record 1 finishes the partition, so its stream stops too,
    // as it does when the same records are handed out straight from a reply.
    const { consumer, transport } = makeConsumer();
    consumer.assign([tp]);
    await consumer.seek(tp, 0);
    const control = storedBatch(2, 1);
    control.writeInt16BE(control.readInt16BE(BatchField.attributes) | CONTROL_BIT, BatchField.attributes);
    control.writeUInt32BE(crc32c(control.subarray(BATCH_CRC_START)), BatchField.crc);
    transport.latest.reply(Buffer.concat([storedBatch(0, 2), control]), 3);
    for await (const record of consumer) {
      expect(record.offset).toBe(0);
      break;
    }
    consumer.stopAt([{ ...tp, offset: 2 }]);
    expect((await readToEnd(consumer)).map((record) => record.offset)).toEqual([1]);
    expect(consumer.position(tp)).toBe(3);
    expect(transport.latest.isCancelled).toBe(true);
  });

  it('refuses a partition not assigned and an offset that is not a non-negative integer', () => {
    const { consumer } = makeConsumer();
    consumer.assign([tp]);
    expect(() => consumer.stopAt([{ topic: 't', partition: 9, offset: 1 }])).toThrow(/t-9 is not assigned/);
    expect(() => consumer.stopAt([{ ...tp, offset: -1 }])).toThrow(/non-negative integer/);
    expect(() => consumer.stopAt([{ ...tp, offset: 1.5 }])).toThrow(/non-negative integer/);
  });
});
