/**
 * The gRPC contract against a real broker process: topics, produce (batch bytes and plain
 * records), fetch (raw batches and decoded records), list offsets by time, long-poll, credit
 * flow control, and every bad input answered with its status and reason while nothing is
 * written. Method: one `runnel broker` child process on 127.0.0.1:0 with a fresh data dir,
 * driven by plain grpc-js clients built from proto/ (no Runnel client library).
 */
import * as grpc from '@grpc/grpc-js';
import { existsSync, readdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BATCH_CRC_START, BatchField, crc32c, decodeBatches, encodeBatch, varintSizeBytes, writeVarint } from '../../src/protocol/index.js';
import type { BrokerProcess } from '../support/broker-process.js';
import { reasonOf, startRawBroker, stopRawBroker, subscribeResponseSizeBytes, unary, type RawClients } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dataDir: string;
let broker: BrokerProcess;
let clients: RawClients;

beforeAll(async () => {
  ({ dataDir, broker, clients } = await startRawBroker('runnel-api-', { args: ['--flush', 'always'] }));
}, 60_000);

afterAll(() => stopRawBroker({ dataDir, broker, clients }));

async function createTopic(name: string, partitions = 1, configs: Record<string, string> = {}): Promise<Any> {
  return unary(clients.admin, 'CreateTopic', { name, partitions, configs });
}

async function produce(topic: string, partitions: Any[]): Promise<Any> {
  return unary(clients.log, 'Produce', { acks: 'ACKS_ALL', topics: [{ topic, partitions }] });
}

async function logEndOffset(topic: string, partition = 0): Promise<number> {
  const response = await unary<Any, Any>(clients.log, 'ListOffsets', { topic, partitions: [partition], spec: 'OFFSET_SPEC_LATEST' });
  return Number(response.partitions[0].offset);
}

/** `bytes` after `change`, with its CRC computed again so only the change is under test. */
function withCrcRestamped(bytes: Buffer, change: (bytes: Buffer) => void): Buffer {
  change(bytes);
  bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
  return bytes;
}

function batch(values: string[], timestamp = Date.now()): Buffer {
  return encodeBatch({ records: values.map((value, i) => ({ key: null, value: Buffer.from(value), headers: [], timestamp: timestamp + i })) });
}

describe('broker gRPC API', () => {
  it('creates, lists and describes a topic with effective configs', async () => {
    const created = await createTopic('api-topics', 3, { 'retention.ms': '60000' });
    expect(created.topic.partitions).toHaveLength(3);
    const listed = await unary<Any, Any>(clients.admin, 'ListTopics', {});
    expect(listed.topics.map((t: Any) => t.name)).toContain('api-topics');
    const described = await unary<Any, Any>(clients.admin, 'DescribeTopic', { name: 'api-topics' });
    expect(described.configs['retention.ms']).toBe('60000');
    expect(described.overrides).toEqual({ 'retention.ms': '60000' });
    expect(described.partitions[2]).toMatchObject({ partition: 2, leader: 0, status: 'online', logEndOffset: '0' });
  });

  it('appends a prebuilt batch and plain records, and reads both back as batches and as records', async () => {
    await createTopic('api-rw');
    const first = await produce('api-rw', [{ partition: 0, recordBatch: batch(['a', 'b', 'c']) }]);
    expect(first.topics[0].partitions[0]).toMatchObject({ baseOffset: '0', error: null });
    const second = await produce('api-rw', [
      { partition: 0, records: { records: [{ key: Buffer.from('k'), value: Buffer.from('d'), headers: [{ key: 'h', value: Buffer.from('v') }], timestampMs: '1700000000100' }, { value: Buffer.alloc(0) }, {}] } },
    ]);
    expect(second.topics[0].partitions[0].baseOffset).toBe('3');
    const asBatches = await unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-rw', partition: 0, offset: '0', format: 'RECORD_FORMAT_BATCHES' });
    const decoded = decodeBatches(asBatches.recordBatches);
    expect(decoded.map((r) => r.value?.toString() ?? null)).toEqual(['a', 'b', 'c', 'd', '', null]);
    expect(asBatches.highWatermark).toBe('6');
    const asRecords = await unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-rw', partition: 0, offset: '4', format: 'RECORD_FORMAT_RECORDS' });
    expect(asRecords.records.map((r: Any) => r.offset)).toEqual(['4', '5']);
    expect(asRecords.records[0].value).toEqual(Buffer.alloc(0));
    expect(asRecords.records[1]._value).toBeUndefined();
    const keyed = await unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-rw', partition: 0, offset: '3' });
    expect(keyed.records[0]).toMatchObject({ offset: '3', key: Buffer.from('k'), timestampMs: '1700000000100' });
    expect(keyed.records[0].headers).toEqual([{ key: 'h', value: Buffer.from('v'), _value: 'value' }]);
  });

  it('finds offsets by timestamp, earliest and latest', async () => {
    await createTopic('api-time');
    for (let i = 0; i < 5; i++) await produce('api-time', [{ partition: 0, recordBatch: batch([`t${i}`], 1_000_000 + i * 1000) }]);
    const at = async (spec: string, timestampMs = '0') =>
      (await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'api-time', spec, timestampMs })).partitions[0];
    expect((await at('OFFSET_SPEC_TIMESTAMP', '1002000')).offset).toBe('2');
    expect((await at('OFFSET_SPEC_TIMESTAMP', '1002001')).offset).toBe('3');
    expect(await at('OFFSET_SPEC_TIMESTAMP', '9999999')).toMatchObject({ offset: '5', timestampMs: '-1' });
    expect((await at('OFFSET_SPEC_EARLIEST')).offset).toBe('0');
    expect((await at('OFFSET_SPEC_LATEST')).offset).toBe('5');

    // Inside a batch the answer is the first record (in offset order) at or after the time,
    // with its own timestamp, as Kafka answers; records in a batch need not be in time order.
    const timestamps = [2_000_000, 2_000_300, 2_000_100, 2_000_500];
    const mixed = encodeBatch({ records: timestamps.map((timestamp, i) => ({ key: null, value: Buffer.from(`m${i}`), headers: [], timestamp })) });
    await produce('api-time', [{ partition: 0, recordBatch: mixed }]); // offsets 5–8
    expect(await at('OFFSET_SPEC_TIMESTAMP', '1999999')).toMatchObject({ offset: '5', timestampMs: '2000000' });
    expect(await at('OFFSET_SPEC_TIMESTAMP', '2000050')).toMatchObject({ offset: '6', timestampMs: '2000300' });
    expect(await at('OFFSET_SPEC_TIMESTAMP', '2000300')).toMatchObject({ offset: '6', timestampMs: '2000300' });
    expect(await at('OFFSET_SPEC_TIMESTAMP', '2000301')).toMatchObject({ offset: '8', timestampMs: '2000500' });
  });

  it('refuses a negative timestamp_ms by time with INVALID_ARGUMENT, rather than answering the earliest record', async () => {
    // Kafka's ListOffsets reads timestamp -1 as "latest" and -2 as "earliest"; here those are
    // OFFSET_SPEC_LATEST and OFFSET_SPEC_EARLIEST. Searched as times, -1 and -2 found the first
    // record: a Kafka user asking for "latest" that way would re-read the whole partition.
    await createTopic('api-time-negative');
    for (let i = 0; i < 3; i++) await produce('api-time-negative', [{ partition: 0, recordBatch: batch([`n${i}`], 1_000_000 + i * 1000) }]);
    for (const timestampMs of ['-1', '-2', '-3']) {
      const failure = await unary(clients.log, 'ListOffsets', { topic: 'api-time-negative', spec: 'OFFSET_SPEC_TIMESTAMP', timestampMs }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure, timestampMs).toBeDefined();
      expect(reasonOf(failure)).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect((failure as grpc.ServiceError).details).toContain('OFFSET_SPEC_LATEST');
    }
    // The neighbour that is allowed: time 0 finds the first record.
    const zero = await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'api-time-negative', spec: 'OFFSET_SPEC_TIMESTAMP', timestampMs: '0' });
    expect(zero.partitions[0]).toMatchObject({ offset: '0', timestampMs: '1000000' });
  });

  it('answers a parked long-poll fetch as soon as data arrives', async () => {
    await createTopic('api-poll');
    const startedMs = Date.now();
    const parked = unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-poll', partition: 0, offset: '0', minBytes: 1, maxWaitMs: 20_000 });
    // The fetch is parked: nothing has been appended yet. Append, and it must answer at once.
    await produce('api-poll', [{ partition: 0, recordBatch: batch(['wake']) }]);
    const response = await parked;
    expect(response.records.map((r: Any) => r.value.toString())).toEqual(['wake']);
    expect(Date.now() - startedMs).toBeLessThan(10_000);
  });

  it('sends a subscriber no more than its credit until it grants more', async () => {
    await createTopic('api-credit');
    const payload = 'x'.repeat(1000);
    for (let i = 0; i < 50; i++) await produce('api-credit', [{ partition: 0, recordBatch: batch([payload, payload, payload, payload]) }]);
    const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
    let receivedBytes = 0;
    let receivedMessages = 0;
    call.on('data', (message: Any) => {
      receivedBytes += message.recordBatches.length;
      receivedMessages++;
    });
    call.on('error', () => undefined);
    call.write({ start: { topic: 'api-credit', partition: 0, offset: '0', creditBytes: 8_000, format: 'RECORD_FORMAT_BATCHES' } });
    await waitFor(() => receivedMessages > 0, { timeoutMs: 10_000, describe: () => 'no subscribe data' });
    // One reply may overshoot the credit by less than one message; then the broker stops.
    // Stopping is shown over a window of ten appends, each a round trip to the broker that
    // also wakes the subscription: a broker made to ignore the credit sent about 28 KB during
    // one such round trip, so ten leave it far past the cap, while a correct one sends nothing.
    for (let i = 0; i < 10; i++) await produce('api-credit', [{ partition: 0, recordBatch: batch([`late-${i}`]) }]);
    const capped = receivedBytes;
    expect(capped).toBeLessThan(8_000 + 16_000);
    call.write({ creditBytes: 1_000_000 });
    await waitFor(() => receivedBytes > 200_000, { timeoutMs: 10_000, describe: () => `only ${receivedBytes} bytes after more credit` });
    call.cancel();
  });

  it('keeps a records-format subscriber going that starts inside a batch larger than its credit and grants back what each reply cost', async () => {
    // One batch of 64 records of 64 KiB (4 MiB stored), then three small ones. Starting at
    // offset 32 with 1 MiB of credit, the first reply carries records 32–63 (2 MiB). Before,
    // it was charged the whole stored batch (4 MiB): credit fell to −3 MiB, the 2 MiB granted
    // back left it below 0, and the records after it never came.
    await createTopic('api-credit-records', 1, { 'max.message.bytes': String(8 * 1024 * 1024) });
    const value = Buffer.alloc(64 * 1024, 0x62);
    const big = encodeBatch({ records: Array.from({ length: 64 }, () => ({ key: null, value, headers: [{ key: 'h', value: null }], timestamp: Date.now() })) });
    expect(big.length).toBeGreaterThan(4 * 1024 * 1024);
    await produce('api-credit-records', [{ partition: 0, recordBatch: big }]);
    await produce('api-credit-records', [{ partition: 0, recordBatch: batch(['after-1', 'after-2', 'after-3']) }]);
    const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
    const offsets: number[] = [];
    let failure: unknown;
    call.on('data', (message: Any) => {
      for (const record of message.records) offsets.push(Number(record.offset));
      call.write({ creditBytes: subscribeResponseSizeBytes(message) });
    });
    call.on('error', (error) => (failure = error));
    call.write({ start: { topic: 'api-credit-records', partition: 0, offset: '32', creditBytes: 1024 * 1024, format: 'RECORD_FORMAT_RECORDS' } });
    try {
      await waitFor(() => failure ?? offsets.length >= 35, { timeoutMs: 10_000, describe: () => `received offsets up to ${offsets.at(-1)} of 66, in ${offsets.length} records` });
    } finally {
      call.cancel();
    }
    expect(failure).toBeUndefined();
    expect(offsets).toEqual(Array.from({ length: 35 }, (_, i) => 32 + i));
  });

  it('charges a records-format reply exactly its size as a parsed message, to the byte', async () => {
    // A subscriber that half-closed gets replies while its credit is above 0, then OK, so
    // the number of replies shows where the credit ran out. Each reply here is one batch
    // (max_message_bytes below the batch size), starting inside the first. With credit s1 + 1
    // (s1, s2: the first two replies' sizes) a second reply must come; with s1 + s2 a third
    // must not. A charge one byte over the size fails the first, one byte under the second;
    // the stored batch charged before (records below the start offset included) failed both.
    await createTopic('api-credit-exact');
    const values = (prefix: string) => Array.from({ length: 3 }, (_, i) => `${prefix}-${i}-${'v'.repeat(700 + 50 * i)}`);
    for (const prefix of ['one', 'two', 'three']) await produce('api-credit-exact', [{ partition: 0, recordBatch: batch(values(prefix)) }]);
    const repliesWithin = async (creditBytes: number): Promise<number[]> => {
      const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
      const costs: number[] = [];
      let status: grpc.StatusObject | undefined;
      call.on('data', (message: Any) => costs.push(subscribeResponseSizeBytes(message)));
      call.on('status', (received) => (status = received));
      call.on('error', () => undefined);
      call.write({ start: { topic: 'api-credit-exact', partition: 0, offset: '1', creditBytes, maxMessageBytes: 1024, format: 'RECORD_FORMAT_RECORDS' } });
      call.end();
      try {
        await waitFor(() => status, { timeoutMs: 10_000, describe: () => `no status after ${costs.length} replies with ${creditBytes} bytes of credit` });
      } finally {
        call.cancel();
      }
      expect(status?.code).toBe(grpc.status.OK);
      return costs;
    };
    const [firstBytes = 0] = await repliesWithin(1);
    const two = await repliesWithin(firstBytes + 1);
    expect(two).toHaveLength(2);
    expect(two[0]).toBe(firstBytes);
    expect(await repliesWithin(firstBytes + (two[1] ?? 0))).toHaveLength(2);
  });

  it('caps the credit a Subscribe starts with at 256 MiB, as it caps later grants', async () => {
    // Sixteen gzip batches of a few KiB, each one 20 MiB record decoded: 320 MiB in records
    // format. The subscriber starts with 4 GiB of credit and half-closes at once, so the
    // broker sends what its credit covers and then ends the call with OK. Capped, that is
    // 256 MiB and one reply more at most; before, the start credit was taken as sent, all
    // 320 MiB went and the call stayed open waiting for more.
    await createTopic('api-credit-cap');
    const big = Buffer.alloc(20 * 1024 * 1024, 0x63);
    const zipped = encodeBatch({ records: [{ key: null, value: big, headers: [], timestamp: Date.now() }], compression: 'gzip' });
    for (let i = 0; i < 16; i++) await produce('api-credit-cap', [{ partition: 0, recordBatch: zipped }]);
    const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
    const costs: number[] = [];
    call.on('data', (message: Any) => costs.push(subscribeResponseSizeBytes(message)));
    let status: grpc.StatusObject | undefined;
    call.on('status', (received) => (status = received));
    call.on('error', () => undefined);
    call.write({ start: { topic: 'api-credit-cap', partition: 0, offset: '0', creditBytes: 2 ** 32 - 1, format: 'RECORD_FORMAT_RECORDS' } });
    call.end();
    const creditBytesMax = 256 * 1024 * 1024;
    const sentBytes = (): number => costs.reduce((sum, cost) => sum + cost, 0);
    try {
      await waitFor(() => status, { timeoutMs: 20_000, describe: () => `no status after ${costs.length} replies, ${sentBytes()} bytes` });
    } finally {
      call.cancel();
    }
    expect(status?.code).toBe(grpc.status.OK);
    expect(sentBytes()).toBeGreaterThanOrEqual(creditBytesMax);
    expect(sentBytes() - (costs.at(-1) ?? 0)).toBeLessThan(creditBytesMax);
    expect(costs.length).toBeLessThan(16);
  }, 60_000);

  it('keeps each Subscribe message within a max_message_bytes under 1 KiB, while batches fit in it', async () => {
    await createTopic('api-small-messages');
    const batchBytes = batch(['m'.repeat(50)]).length;
    for (let i = 0; i < 10; i++) await produce('api-small-messages', [{ partition: 0, recordBatch: batch(['m'.repeat(50)]) }]);
    const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
    const messageSizes: number[] = [];
    let nextOffset = 0;
    call.on('data', (message: Any) => {
      messageSizes.push(message.recordBatches.length);
      nextOffset = Number(message.nextOffset);
    });
    call.on('error', () => undefined);
    const messageBytesMax = 2 * batchBytes + 10;
    call.write({ start: { topic: 'api-small-messages', partition: 0, offset: '0', creditBytes: 1_000_000, maxMessageBytes: messageBytesMax, format: 'RECORD_FORMAT_BATCHES' } });
    await waitFor(() => nextOffset === 10, { timeoutMs: 10_000, describe: () => `read up to ${nextOffset} of 10 in messages of ${messageSizes.join(', ')} bytes` });
    call.cancel();
    expect(messageSizes).toEqual([2, 2, 2, 2, 2].map((count) => count * batchBytes));
  });

  it('sends a subscriber that half-closed what its credit covers, then ends the call with OK', async () => {
    await createTopic('api-half-close');
    const payload = 'y'.repeat(1000);
    for (let i = 0; i < 20; i++) await produce('api-half-close', [{ partition: 0, recordBatch: batch([payload, payload, payload, payload]) }]);
    const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
    let receivedBytes = 0;
    call.on('data', (message: Any) => (receivedBytes += message.recordBatches.length));
    const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
    call.on('error', () => undefined);
    // As grpcurl does: the one message, then the half-close.
    call.write({ start: { topic: 'api-half-close', partition: 0, offset: '0', creditBytes: 20_000, format: 'RECORD_FORMAT_BATCHES' } });
    call.end();
    const outcome = await Promise.race([status, new Promise<string>((resolve) => setTimeout(() => resolve('no status within 10 s'), 10_000))]);
    expect(typeof outcome === 'string' ? outcome : outcome.code).toBe(grpc.status.OK);
    expect(receivedBytes).toBeGreaterThanOrEqual(20_000);
    expect(receivedBytes).toBeLessThan(20_000 + 16_000);
  });

  it('bounds a decoded-records reply however far its batches decompress, and resumes where it ended', async () => {
    await createTopic('api-inflate');
    // Five gzip batches of ~20 KB that each decode to one 20 MiB record: 100 MiB decoded,
    // beyond the 65 MiB gRPC message limit if one reply carried them all.
    const big = Buffer.alloc(20 * 1024 * 1024, 0x61);
    for (let i = 0; i < 5; i++) {
      const zipped = encodeBatch({ records: [{ key: null, value: big, headers: [], timestamp: Date.now() }], compression: 'gzip' });
      expect(zipped.length).toBeLessThan(1024 * 1024);
      await produce('api-inflate', [{ partition: 0, recordBatch: zipped }]);
    }
    const offsets: number[] = [];
    for (let offset = 0, replies = 0; offset < 5 && replies < 10; replies++) {
      const response = await unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-inflate', partition: 0, offset: String(offset), maxBytes: 64 * 1024 * 1024, format: 'RECORD_FORMAT_RECORDS' });
      expect(response.records.length).toBeGreaterThan(0);
      for (const record of response.records) {
        offsets.push(Number(record.offset));
        expect(record.value.length).toBe(big.length);
      }
      expect(Number(response.nextOffset)).toBe(offset + response.records.length);
      offset = Number(response.nextOffset);
    }
    expect(offsets).toEqual([0, 1, 2, 3, 4]);
  });

  it('reads a gzip batch of millions of empty records as decoded records, in bounded replies, and finds offsets by time in it', async () => {
    // 5,000,000 records of key null, value null, no headers: ~50 MB inflated, a few MiB stored.
    // Decoded whole, one reply of them passed the 65 MiB message limit and took the broker
    // past its heap limit (it crashed, and did again on every retry).
    await createTopic('api-many-records', 1, { 'max.message.bytes': String(16 * 1024 * 1024) });
    const recordCount = 5_000_000;
    const timestamp = 1_700_000_000_000;
    const section = Buffer.alloc(recordCount * 10);
    let position = 0;
    for (let delta = 0; delta < recordCount; delta++) {
      const deltaBytes = varintSizeBytes(delta);
      position = writeVarint(section, 5 + deltaBytes, position); // body: attributes, timestamp delta, offset delta, key, value, headers
      section[position++] = 0; // attributes
      section[position++] = 0; // timestamp delta 0
      position = writeVarint(section, delta, position);
      position = writeVarint(section, -1, position); // key null
      position = writeVarint(section, -1, position); // value null
      position = writeVarint(section, 0, position); // no headers
    }
    const zipped = gzipSync(section.subarray(0, position));
    const template = encodeBatch({ records: [{ key: null, value: null, headers: [], timestamp }], compression: 'gzip' });
    const many = withCrcRestamped(Buffer.concat([template.subarray(0, 61), zipped]), (b) => {
      b.writeInt32BE(b.length - 12, BatchField.batchLength);
      b.writeInt32BE(recordCount - 1, BatchField.lastOffsetDelta);
      b.writeInt32BE(recordCount, BatchField.recordCount);
    });
    const produced = await produce('api-many-records', [{ partition: 0, recordBatch: many }]);
    expect(produced.topics[0].partitions[0].error).toBeNull();

    // Each reply is cut within the batch and the next one starts where it ended.
    const fetchFrom = (offset: number): Promise<Any> => unary<Any, Any>(clients.log, 'Fetch', { topic: 'api-many-records', partition: 0, offset: String(offset), maxBytes: 64 * 1024 * 1024 });
    const first = await fetchFrom(0);
    const firstEnd = Number(first.nextOffset);
    expect(first.records.length).toBe(firstEnd);
    expect(firstEnd).toBeGreaterThan(0);
    expect(firstEnd).toBeLessThan(recordCount);
    const second = await fetchFrom(firstEnd);
    expect(second.records[0].offset).toBe(String(firstEnd));
    const last = await fetchFrom(recordCount - 3);
    expect(last.records.map((r: Any) => r.offset)).toEqual([recordCount - 3, recordCount - 2, recordCount - 1].map(String));
    expect(last.nextOffset).toBe(String(recordCount));
    const byTime = await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'api-many-records', spec: 'OFFSET_SPEC_TIMESTAMP', timestampMs: String(timestamp) });
    expect(byTime.partitions[0]).toMatchObject({ offset: '0', timestampMs: String(timestamp) });
    expect(() => process.kill(broker.pid, 0)).not.toThrow();
  });

  describe('bad input gets its status and reason and writes nothing', () => {
    beforeAll(async () => {
      await createTopic('api-bad');
      await produce('api-bad', [{ partition: 0, recordBatch: batch(['keep']) }]);
    });

    const badNames = ['', '.', '..', '/', '../x', 'a/b', 'x'.repeat(250), 'sp ace', 'ünï'];
    it.each(badNames.map((name) => [name]))('rejects the topic name %j on create, with nothing on disk', async (name) => {
      const before = readdirSync(dataDir).sort();
      await expect(createTopic(name)).rejects.toSatisfy((e) => {
        const { code, reason } = reasonOf(e);
        return code === grpc.status.INVALID_ARGUMENT && reason === 'INVALID_TOPIC_NAME';
      });
      expect(readdirSync(dataDir).sort()).toEqual(before);
      expect(existsSync(join(dataDir, '..', 'x-0'))).toBe(false);
    });

    it('rejects a duplicate topic with ALREADY_EXISTS', async () => {
      await expect(createTopic('api-bad')).rejects.toSatisfy((e) => reasonOf(e).code === grpc.status.ALREADY_EXISTS && reasonOf(e).reason === 'TOPIC_ALREADY_EXISTS');
    });

    it('rejects an unknown topic on fetch with NOT_FOUND and on produce per partition', async () => {
      await expect(unary(clients.log, 'Fetch', { topic: 'api-missing', partition: 0, offset: '0' })).rejects.toSatisfy(
        (e) => reasonOf(e).code === grpc.status.NOT_FOUND && reasonOf(e).reason === 'TOPIC_NOT_FOUND',
      );
      const response = await produce('api-missing', [{ partition: 0, recordBatch: batch(['x']) }]);
      expect(response.topics[0].partitions[0].error.reason).toBe('TOPIC_NOT_FOUND');
      expect(existsSync(join(dataDir, 'api-missing-0'))).toBe(false);
    });

    const cases: [string, () => Buffer, string][] = [
      ['a CRC mismatch', () => { const b = batch(['x']); b.writeUInt8(b.readUInt8(b.length - 1) ^ 1, b.length - 1); return b; }, 'CORRUPT_MESSAGE'],
      ['a wrong magic byte', () => { const b = batch(['x']); b.writeInt8(1, 16); return b; }, 'CORRUPT_MESSAGE'],
      ['a batch length that does not match', () => { const b = batch(['x']); return b.subarray(0, b.length - 1); }, 'CORRUPT_MESSAGE'],
      ['bytes shorter than a header', () => Buffer.from('hello'), 'CORRUPT_MESSAGE'],
      ['a batch over max.message.bytes', () => batch(['y'.repeat(5 * 1024 * 1024)]), 'BATCH_TOO_LARGE'],
      ['records that do not parse, under a valid CRC', () => withCrcRestamped(batch(['x']), (b) => b.writeUInt8(0x7f, 61)), 'CORRUPT_MESSAGE'],
      ['a log-append-time bit a producer set on a CreateTime topic (records read back at its maxTimestamp)', () => withCrcRestamped(batch(['x']), (b) => b.writeInt16BE(b.readInt16BE(BatchField.attributes) | 0x08, BatchField.attributes)), 'INVALID_REQUEST'],
      ['a maxTimestamp below its newest record (ListOffsets by time skipped it)', () => withCrcRestamped(batch(['x', 'y'], 1_000_000), (b) => b.writeBigInt64BE(1_000_000n, BatchField.maxTimestamp)), 'CORRUPT_MESSAGE'],
      [
        'a record with more headers than the limit',
        () => encodeBatch({ records: [{ key: null, value: Buffer.from('h'), headers: Array.from({ length: 1_001 }, (_, i) => ({ key: `h${i}`, value: null })), timestamp: Date.now() }] }),
        'INVALID_REQUEST',
      ],
    ];
    it.each(cases)('rejects %s and leaves the log unchanged', async (_label, make, reason) => {
      const before = await logEndOffset('api-bad');
      const response = await produce('api-bad', [{ partition: 0, recordBatch: make() }]);
      expect(response.topics[0].partitions[0].error.reason).toBe(reason);
      expect(await logEndOffset('api-bad')).toBe(before);
    });

    it('rejects a CRC mismatch on a LogAppendTime topic too (stamping must not reseal it)', async () => {
      await createTopic('api-lat', 1, { 'message.timestamp.type': 'LogAppendTime' });
      const damaged = batch(['x']);
      damaged.writeUInt8(damaged.readUInt8(damaged.length - 1) ^ 1, damaged.length - 1);
      const response = await produce('api-lat', [{ partition: 0, recordBatch: damaged }]);
      expect(response.topics[0].partitions[0].error.reason).toBe('CORRUPT_MESSAGE');
      expect(await logEndOffset('api-lat')).toBe(0);
      const good = await produce('api-lat', [{ partition: 0, recordBatch: batch(['y']) }]);
      expect(good.topics[0].partitions[0].error).toBeNull();
      expect(await logEndOffset('api-lat')).toBe(1);
    });

    it.each([
      ['an unknown topic', { topic: 'api-missing', partition: 0, offset: '0' }, grpc.status.NOT_FOUND, 'TOPIC_NOT_FOUND'],
      ['an offset out of range', { topic: 'api-bad', partition: 0, offset: '99' }, grpc.status.OUT_OF_RANGE, 'OFFSET_OUT_OF_RANGE'],
    ])('ends a Subscribe to %s with its status and reason', async (_label, start, code, reason) => {
      const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
      let failure: unknown;
      call.on('data', () => undefined);
      call.on('error', (error) => (failure = error));
      call.write({ start: { ...start, creditBytes: 1_000_000, format: 'RECORD_FORMAT_BATCHES' } });
      try {
        await waitFor(() => failure !== undefined, { timeoutMs: 10_000, describe: () => 'the Subscribe never ended with a status' });
      } finally {
        call.cancel();
      }
      expect(reasonOf(failure)).toEqual({ code, reason });
    });

    it('refuses enum values it does not know instead of reading them as the default', async () => {
      // proto3 enums are open: an unknown number arrives as is. acks 99 was appended as
      // ACKS_ALL, and format 7 answered as RECORD_FORMAT_RECORDS.
      const before = await logEndOffset('api-bad');
      const invalidArgument = (e: unknown) => reasonOf(e).code === grpc.status.INVALID_ARGUMENT && reasonOf(e).reason === 'INVALID_REQUEST';
      for (const acks of [99, -1]) {
        await expect(unary(clients.log, 'Produce', { acks, topics: [{ topic: 'api-bad', partitions: [{ partition: 0, recordBatch: batch(['x']) }] }] })).rejects.toSatisfy(invalidArgument);
      }
      expect(await logEndOffset('api-bad')).toBe(before);
      await expect(unary(clients.log, 'Fetch', { topic: 'api-bad', partition: 0, offset: '0', format: 7 })).rejects.toSatisfy(invalidArgument);
      const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
      let failure: unknown;
      call.on('data', () => undefined);
      call.on('error', (error) => (failure = error));
      call.write({ start: { topic: 'api-bad', partition: 0, offset: '0', creditBytes: 1_000_000, format: 7 } });
      try {
        await waitFor(() => failure !== undefined, { timeoutMs: 10_000, describe: () => 'the Subscribe never ended with a status' });
      } finally {
        call.cancel();
      }
      expect(invalidArgument(failure)).toBe(true);
    });

    it('ends a Subscribe whose first message grants credit instead of starting, rather than dropping that credit', async () => {
      const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<Any, Any> }).Subscribe();
      let failure: unknown;
      call.on('data', () => undefined);
      call.on('error', (error) => (failure = error));
      call.write({ creditBytes: 1_000_000 });
      call.write({ start: { topic: 'api-bad', partition: 0, offset: '0', creditBytes: 0, format: 'RECORD_FORMAT_BATCHES' } });
      try {
        await waitFor(() => failure !== undefined, { timeoutMs: 10_000, describe: () => 'the Subscribe never ended with a status' });
      } finally {
        call.cancel();
      }
      expect(reasonOf(failure)).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
    });

    it('ends a ProduceStream at an invalid request with its status, after answering the one before it, and appends nothing sent after it', async () => {
      await createTopic('api-stream');
      const call = (clients.log as unknown as { ProduceStream(): grpc.ClientDuplexStream<Any, Any> }).ProduceStream();
      const replies: Any[] = [];
      let failure: unknown;
      call.on('data', (reply: Any) => replies.push(reply));
      call.on('error', (error) => (failure = error));
      const tooMany = Array.from({ length: 10_001 }, (_, partition) => ({ partition, recordBatch: batch(['x']) }));
      // Written back to back: the second fails while the first is still being appended.
      call.write({ sequence: '1', acks: 'ACKS_ALL', topics: [{ topic: 'api-stream', partitions: [{ partition: 0, recordBatch: batch(['first']) }] }] });
      call.write({ sequence: '2', acks: 'ACKS_ALL', topics: [{ topic: 'api-stream', partitions: tooMany }] });
      // Read while the first is still being appended. Before, it was appended too, never
      // answered: the client failed it with the second one's status, yet it was in the log.
      call.write({ sequence: '3', acks: 'ACKS_ALL', topics: [{ topic: 'api-stream', partitions: [{ partition: 0, recordBatch: batch(['after']) }] }] });
      try {
        await waitFor(() => failure !== undefined, { timeoutMs: 10_000, describe: () => 'the ProduceStream never ended with a status' });
      } finally {
        call.cancel();
      }
      expect(reasonOf(failure)).toEqual({ code: grpc.status.INVALID_ARGUMENT, reason: 'INVALID_REQUEST' });
      expect(replies.map((reply) => reply.sequence)).toEqual(['1']);
      expect(await logEndOffset('api-stream')).toBe(1); // and the broker is still serving
      expect(() => process.kill(broker.pid, 0)).not.toThrow();
    });

    it('answers a retried idempotent batch with its original offset and rejects gaps and fenced epochs', async () => {
      const first = await unary<Any, Any>(clients.log, 'InitProducerId', {});
      const producerId = Number(first.producerId);
      expect(producerId).toBeGreaterThan(0);
      const idempotent = (epoch: number, sequence: number, value: string) =>
        encodeBatch({ records: [{ key: null, value: Buffer.from(value), headers: [], timestamp: Date.now() }], producerId, producerEpoch: epoch, baseSequence: sequence });
      const original = await produce('api-bad', [{ partition: 0, recordBatch: idempotent(0, 0, 'once') }]);
      const end = await logEndOffset('api-bad');
      const retried = await produce('api-bad', [{ partition: 0, recordBatch: idempotent(0, 0, 'once') }]);
      expect(retried.topics[0].partitions[0].baseOffset).toBe(original.topics[0].partitions[0].baseOffset);
      expect(await logEndOffset('api-bad')).toBe(end);
      const gap = await produce('api-bad', [{ partition: 0, recordBatch: idempotent(0, 5, 'gap') }]);
      expect(gap.topics[0].partitions[0].error.reason).toBe('OUT_OF_ORDER_SEQUENCE');
      const bumped = await unary<Any, Any>(clients.log, 'InitProducerId', { producerId: String(producerId), producerEpoch: 0 });
      expect(bumped).toMatchObject({ producerId: String(producerId), producerEpoch: 1 });
      await produce('api-bad', [{ partition: 0, recordBatch: idempotent(1, 0, 'new epoch') }]);
      const fenced = await produce('api-bad', [{ partition: 0, recordBatch: idempotent(0, 1, 'stale') }]);
      expect(fenced.topics[0].partitions[0].error.reason).toBe('PRODUCER_FENCED');
      expect(await logEndOffset('api-bad')).toBe(end + 1);
    });

    it('refuses an idempotent batch whose producer id was never handed out, so the producer it goes to later loses nothing', async () => {
      const before = await logEndOffset('api-bad');
      // Plain records with an empty ProducerInfo (id 0, which is never handed out), twice:
      // accepted, the second was answered as a duplicate of the first and its record dropped.
      for (const value of ['first', 'second']) {
        const response = await produce('api-bad', [{ partition: 0, records: { records: [{ value: Buffer.from(value) }] }, producer: {} }]);
        expect(response.topics[0].partitions[0].error?.reason).toBe('INVALID_REQUEST');
      }
      // A made-up id in a prebuilt batch would claim that id's sequence 0 before its owner.
      const madeUp = encodeBatch({ records: [{ key: null, value: Buffer.from('made up'), headers: [], timestamp: Date.now() }], producerId: 424_242, producerEpoch: 0, baseSequence: 0 });
      const response = await produce('api-bad', [{ partition: 0, recordBatch: madeUp }]);
      expect(response.topics[0].partitions[0].error?.reason).toBe('INVALID_REQUEST');
      expect(await logEndOffset('api-bad')).toBe(before);
    });

    it.each([
      ['an id it never handed out', { producerId: '424242424242', producerEpoch: 7 }],
      ['an id beyond 2^53', { producerId: '9007199254740993', producerEpoch: 0 }],
    ])('answers InitProducerId with %s with INVALID_REQUEST', async (_label, request) => {
      await expect(unary(clients.log, 'InitProducerId', request)).rejects.toSatisfy(
        (e) => reasonOf(e).code === grpc.status.INVALID_ARGUMENT && reasonOf(e).reason === 'INVALID_REQUEST',
      );
    });

    it('refuses a Produce that names one partition twice, appending nothing of it, and takes one that names two partitions of a topic listed twice', async () => {
      // Before, both were appended, with two results for the one partition.
      await createTopic('api-twice', 2);
      const invalidArgument = (e: unknown) => reasonOf(e).code === grpc.status.INVALID_ARGUMENT && reasonOf(e).reason === 'INVALID_REQUEST';
      const twiceInOneTopic = [{ topic: 'api-twice', partitions: [{ partition: 0, recordBatch: batch(['a']) }, { partition: 1, recordBatch: batch(['b']) }, { partition: 0, recordBatch: batch(['c']) }] }];
      const topicListedTwice = [
        { topic: 'api-twice', partitions: [{ partition: 1, recordBatch: batch(['a']) }] },
        { topic: 'api-twice', partitions: [{ partition: 0, records: { records: [{ value: Buffer.from('b') }] } }, { partition: 1, recordBatch: batch(['c']) }] },
      ];
      for (const topics of [twiceInOneTopic, topicListedTwice]) {
        await expect(unary(clients.log, 'Produce', { acks: 'ACKS_ALL', topics })).rejects.toSatisfy(invalidArgument);
      }
      expect([await logEndOffset('api-twice', 0), await logEndOffset('api-twice', 1)]).toEqual([0, 0]);
      const distinct = await unary<Any, Any>(clients.log, 'Produce', {
        acks: 'ACKS_ALL',
        topics: [
          { topic: 'api-twice', partitions: [{ partition: 0, recordBatch: batch(['a']) }] },
          { topic: 'api-twice', partitions: [{ partition: 1, recordBatch: batch(['b']) }] },
        ],
      });
      expect(distinct.topics.flatMap((topic: Any) => topic.partitions.map((p: Any) => [p.partition, p.baseOffset, p.error]))).toEqual([
        [0, '0', null],
        [1, '0', null],
      ]);
    });

    it('rejects a partition that does not exist, past the topic or past any topic, alike', async () => {
      const response = await produce('api-bad', [
        { partition: 7, recordBatch: batch(['x']) },
        { partition: 10_000, recordBatch: batch(['x']) },
      ]);
      expect(response.topics[0].partitions.map((p: Any) => p.error.reason)).toEqual(['PARTITION_NOT_FOUND', 'PARTITION_NOT_FOUND']);
      // ListOffsets answers per partition too: the others still get their offsets.
      const offsets = await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'api-bad', partitions: [0, 7, 10_000], spec: 'OFFSET_SPEC_EARLIEST' });
      expect(offsets.partitions.map((p: Any) => [p.partition, p.offset, p.error?.reason ?? null])).toEqual([
        [0, '0', null],
        [7, '-1', 'PARTITION_NOT_FOUND'],
        [10_000, '-1', 'PARTITION_NOT_FOUND'],
      ]);
    });

    it('answers each partition of ListOffsets once and caps how many a request names', async () => {
      const once = await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'api-bad', partitions: [0, 0, 0], spec: 'OFFSET_SPEC_EARLIEST' });
      expect(once.partitions).toHaveLength(1);
      const tooMany = Array.from({ length: 10_001 }, (_, i) => i);
      await expect(unary(clients.log, 'ListOffsets', { topic: 'api-bad', partitions: tooMany, spec: 'OFFSET_SPEC_EARLIEST' })).rejects.toSatisfy(
        (e) => reasonOf(e).code === grpc.status.INVALID_ARGUMENT && reasonOf(e).reason === 'INVALID_REQUEST',
      );
    });

    it('caps the topics one metadata request names, counting each once', async () => {
      const repeated = await unary<Any, Any>(clients.admin, 'GetMetadata', { topics: Array.from({ length: 5_000 }, () => 'api-bad') });
      expect(repeated.topics).toHaveLength(1);
      const tooMany = Array.from({ length: 1_001 }, (_, i) => `api-meta-${i}`);
      await expect(unary(clients.admin, 'GetMetadata', { topics: tooMany })).rejects.toSatisfy(
        (e) => reasonOf(e).code === grpc.status.INVALID_ARGUMENT && reasonOf(e).reason === 'INVALID_REQUEST',
      );
    });

    it('rejects offsets out of range with OUT_OF_RANGE', async () => {
      await expect(unary(clients.log, 'Fetch', { topic: 'api-bad', partition: 0, offset: '99' })).rejects.toSatisfy(
        (e) => reasonOf(e).code === grpc.status.OUT_OF_RANGE && reasonOf(e).reason === 'OFFSET_OUT_OF_RANGE',
      );
    });

    it('rejects a message over the declared gRPC limit with RESOURCE_EXHAUSTED', async () => {
      const before = await logEndOffset('api-bad');
      const huge = Buffer.alloc(66 * 1024 * 1024, 1);
      await expect(produce('api-bad', [{ partition: 0, recordBatch: huge }])).rejects.toSatisfy((e) => reasonOf(e).code === grpc.status.RESOURCE_EXHAUSTED);
      expect(await logEndOffset('api-bad')).toBe(before);
    });

    it('rejects bad configs and replication factors on create', async () => {
      await expect(createTopic('api-cfg', 1, { 'segment.bytes': '12' })).rejects.toSatisfy((e) => reasonOf(e).reason === 'INVALID_REQUEST');
      await expect(createTopic('api-cfg', 1, { 'no.such.key': '1' })).rejects.toSatisfy((e) => reasonOf(e).reason === 'INVALID_REQUEST');
      await expect(unary(clients.admin, 'CreateTopic', { name: 'api-cfg', partitions: 1, replicationFactor: 3 })).rejects.toSatisfy(
        (e) => reasonOf(e).reason === 'INVALID_REQUEST',
      );
      expect(existsSync(join(dataDir, 'api-cfg-0'))).toBe(false);
    });
  });
});
