/**
 * The client library against a real broker (in this process, gRPC over 127.0.0.1, fresh data
 * dir per test): the producer's partitioning, batching and acknowledgements, the consumer's
 * ordered replay, seeks and tailing, and the admin calls. Each test uses its own topic names
 * and closes its client and broker in afterEach.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type ConsumerRecord, type RecordMetadata, type RunnelClient } from '../../src/client/index.js';
import { partitionForKey } from '../../src/protocol/index.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { readRecordsWithin } from '../support/read-within.js';

let broker: TestBroker;
let client: RunnelClient;
let topicCounter = 0;

function uniqueTopic(name: string): string {
  return `client-${name}-${process.pid}-${++topicCounter}`;
}

beforeEach(async () => {
  broker = await startBroker();
  client = createClient({ brokers: [broker.address], clientId: 'integration' });
});

afterEach(async () => {
  await client?.close();
  await broker?.close();
});

/** How long a read of a few records may take: they are stored already, or produced right after the read starts. */
const READ_TIMEOUT_MS = 10_000;

/**
 * Reads `count` records from the consumer's iterator (then stops iterating), failing after
 * `timeoutMs` with what was read and `expected`.
 */
function readRecords(iterable: AsyncIterable<ConsumerRecord>, count: number, expected: string, timeoutMs = READ_TIMEOUT_MS): Promise<ConsumerRecord[]> {
  return readRecordsWithin(iterable, count, { timeoutMs, expected });
}

describe('client against a real broker', () => {
  it('delivers 100,000 keyed records, each on the partition murmur2 picks, and reads them back in order per partition', async () => {
    // Goal: the producer's key partitioning matches Kafka's, its batching keeps per-key order,
    // every acknowledgement names the record's real offset, and the consumer replays every
    // partition densely and in order. Method: acknowledged offsets are compared record by
    // record with what a fresh consumer reads from the earliest offset.
    const topic = uniqueTopic('keyed');
    const partitionCount = 6;
    const total = 100_000;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const producer = client.producer({ lingerMs: 5 });
    const handles: Promise<RecordMetadata>[] = [];
    const keyOf = (index: number) => `key-${index % 997}`;
    for (let index = 0; index < total; index++) {
      handles.push(producer.send({ topic, key: keyOf(index), value: String(index) }));
      if (index % 10_000 === 9_999 && !producer.hasBufferSpace) await producer.waitForBufferSpace();
    }
    await producer.flush();
    const acknowledged = await Promise.all(handles);

    const sentAt = new Map<string, number>(); // "partition:offset" → index
    for (let index = 0; index < total; index++) {
      const metadata = acknowledged[index]!;
      expect(metadata.partition).toBe(partitionForKey(Buffer.from(keyOf(index)), partitionCount));
      sentAt.set(`${metadata.partition}:${metadata.offset}`, index);
    }
    expect(sentAt.size).toBe(total);

    const consumer = client.consumer();
    const partitions = Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition }));
    consumer.assign(partitions);
    for (const tp of partitions) await consumer.seek(tp, 'earliest');
    const records = await readRecords(consumer, total, `${total} records, offsets 0 on in each of ${partitionCount} partitions`, 60_000);

    const nextOffset = new Array<number>(partitionCount).fill(0);
    const lastIndexOfKey = new Map<string, number>();
    for (const record of records) {
      expect(record.offset).toBe(nextOffset[record.partition]);
      nextOffset[record.partition]!++;
      const index = sentAt.get(`${record.partition}:${record.offset}`);
      expect(index).toBeDefined();
      expect(record.value?.toString()).toBe(String(index));
      expect(record.key?.toString()).toBe(keyOf(index!));
      const key = keyOf(index!);
      expect(index!).toBeGreaterThan(lastIndexOfKey.get(key) ?? -1);
      lastIndexOfKey.set(key, index!);
    }
    expect(nextOffset.reduce((sum, count) => sum + count, 0)).toBe(total);
    await consumer.close();
  });

  it('seeks by timestamp to the first record at or after it, and by offset, earliest and latest', async () => {
    const topic = uniqueTopic('seek');
    await client.admin.createTopic({ name: topic, partitions: 1 });
    const producer = client.producer({ lingerMs: 0 });
    const base = 1_700_000_000_000;
    // Three groups of ten records, one batch each, ten seconds apart.
    for (let group = 0; group < 3; group++) {
      for (let index = 0; index < 10; index++) {
        void producer.send({ topic, value: `g${group}-${index}`, timestamp: base + group * 10_000 + index });
      }
      await producer.flush();
    }
    const tp = { topic, partition: 0 };
    const consumer = client.consumer();
    consumer.assign([tp]);

    await consumer.seek(tp, { timestamp: base + 10_000 + 5 });
    const [fromTime] = await readRecords(consumer, 1, "'g1-5' at offset 15");
    expect(fromTime).toMatchObject({ offset: 15, timestamp: base + 10_005 });
    expect(fromTime!.value?.toString()).toBe('g1-5');

    await consumer.seek(tp, { timestamp: base + 10_000 });
    expect((await readRecords(consumer, 1, 'offset 10'))[0]!.offset).toBe(10);

    await consumer.seek(tp, 27);
    expect((await readRecords(consumer, 3, 'offsets 27-29')).map((record) => record.offset)).toEqual([27, 28, 29]);

    await consumer.seek(tp, 'earliest');
    expect((await readRecords(consumer, 1, 'offset 0'))[0]!.offset).toBe(0);

    // Later than every record: the log end, so only new records arrive.
    await consumer.seek(tp, { timestamp: base + 60_000 });
    expect(consumer.position(tp)).toBe(30);
    const next = readRecords(consumer, 1, "'new' at offset 30");
    next.catch(() => undefined); // awaited below; observed now in case the send fails first
    await producer.send({ topic, value: 'new' });
    expect((await next)[0]).toMatchObject({ offset: 30 });

    await consumer.seek(tp, 'latest');
    expect(consumer.position(tp)).toBe(31);
    await consumer.close();
  });

  it('tails a partition: a consumer at the end receives records produced afterwards', async () => {
    const topic = uniqueTopic('tail');
    await client.admin.createTopic({ name: topic, partitions: 2 });
    const consumer = client.consumer({ autoOffsetReset: 'latest' });
    consumer.assign([
      { topic, partition: 0 },
      { topic, partition: 1 },
    ]);
    await consumer.seek({ topic, partition: 0 }, 'latest');
    await consumer.seek({ topic, partition: 1 }, 'latest');
    const received = readRecords(consumer, 4, "'live-0' to 'live-3', two on each partition");
    received.catch(() => undefined); // awaited below; observed now in case a send fails first
    const producer = client.producer({ lingerMs: 1 });
    for (let index = 0; index < 4; index++) await producer.send({ topic, partition: index % 2, value: `live-${index}` });
    const records = await received;
    expect(records.map((record) => record.value?.toString()).sort()).toEqual(['live-0', 'live-1', 'live-2', 'live-3']);
    await consumer.close();
  });

  it('round-trips headers, null keys and values, gzip batches and acks leader and none', async () => {
    const topic = uniqueTopic('shapes');
    await client.admin.createTopic({ name: topic, partitions: 1 });
    const gzip = client.producer({ compression: 'gzip', lingerMs: 0 });
    const first = await gzip.send({ topic, key: null, value: null, headers: [{ key: 'h', value: null }, { key: 'h', value: 'x' }] });
    const second = await gzip.send({ topic, key: Buffer.from([0, 1]), value: 'zipped'.repeat(100) });
    const leader = client.producer({ acks: 'leader', lingerMs: 0 });
    const third = await leader.send({ topic, value: 'leader' });
    const none = client.producer({ acks: 'none', lingerMs: 0 });
    const fourth = await none.send({ topic, value: 'fire-and-forget' });
    await none.flush();
    expect([first.offset, second.offset, third.offset]).toEqual([0, 1, 2]);
    expect(fourth.offset).toBe(-1);

    const consumer = client.consumer();
    consumer.assign([{ topic, partition: 0 }]);
    await consumer.seek({ topic, partition: 0 }, 0);
    const records = await readRecords(consumer, 4, 'offsets 0-3: two gzip records, then leader and fire-and-forget');
    expect(records[0]).toMatchObject({ key: null, value: null, headers: [{ key: 'h', value: null }, { key: 'h', value: Buffer.from('x') }] });
    expect(records[1]!.key).toEqual(Buffer.from([0, 1]));
    expect(records[1]!.value?.toString()).toBe('zipped'.repeat(100));
    expect(records.slice(2).map((record) => record.value?.toString())).toEqual(['leader', 'fire-and-forget']);
    await consumer.close();
  });

  it('fails records for a topic that does not exist with TOPIC_NOT_FOUND and delivers the rest', async () => {
    const topic = uniqueTopic('exists');
    await client.admin.createTopic({ name: topic, partitions: 1 });
    const producer = client.producer({ lingerMs: 0 });
    const missing = producer.send({ topic: uniqueTopic('missing'), value: 'x' });
    const present = producer.send({ topic, value: 'y' });
    await expect(missing).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    expect((await present).offset).toBe(0);
    await expect(producer.flush()).resolves.toBeUndefined(); // the failure was observed above
  });

  it('administers topics: create, list, describe, alter configs, add partitions, list offsets, metadata, delete', async () => {
    const topic = uniqueTopic('admin');
    const created = await client.admin.createTopic({ name: topic, partitions: 2, configs: { 'retention.ms': '3600000' } });
    expect(created.partitions).toHaveLength(2);
    await expect(client.admin.createTopic({ name: topic })).rejects.toMatchObject({ reason: 'TOPIC_ALREADY_EXISTS' });
    expect((await client.admin.listTopics()).map((summary) => summary.name)).toContain(topic);

    const altered = await client.admin.alterTopicConfigs({ name: topic, set: { 'retention.ms': '7200000' } });
    expect(altered.overrides['retention.ms']).toBe('7200000');
    const removed = await client.admin.alterTopicConfigs({ name: topic, remove: ['retention.ms'] });
    expect(removed.overrides['retention.ms']).toBeUndefined();

    const grown = await client.admin.addPartitions({ name: topic, partitionCount: 4 });
    expect(grown.partitions).toHaveLength(4);
    // The producer's cached count is refreshed on demand: partition 3 is found.
    const producer = client.producer({ lingerMs: 0 });
    expect((await producer.send({ topic, partition: 3, value: 'p3' })).partition).toBe(3);

    const latest = await client.admin.listOffsets({ topic, spec: 'latest' });
    expect(latest.map((offset) => [offset.partition, offset.offset])).toEqual([
      [0, 0],
      [1, 0],
      [2, 0],
      [3, 1],
    ]);
    const described = await client.admin.describeTopic(topic);
    expect(described.partitions[3]).toMatchObject({ logEndOffset: 1, status: 'online' });

    const metadata = await client.admin.getMetadata([topic]);
    expect(metadata.brokers.length).toBeGreaterThan(0);
    expect(metadata.topics[0]!.partitions).toHaveLength(4);

    await client.admin.deleteTopic(topic);
    await expect(client.admin.describeTopic(topic)).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await expect(client.admin.getMetadata([topic])).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
  });
});
