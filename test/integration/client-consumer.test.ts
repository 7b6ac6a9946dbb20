/**
 * The consumer against a real broker (in this process, gRPC over 127.0.0.1, fresh data dir per
 * test), in the situations an analytics job or a log tail meets: many partitions at once, and
 * the topic changing under it. Each test starts its own broker (some need a non-default
 * config) and closes its client and broker in afterEach.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, SLICE_RECORD_COUNT_MAX, type RunnelClient } from '../../src/client/index.js';
import { STREAMS_PER_CONNECTION_MAX } from '../../src/client/connections.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { manyTinyRecordsBatch, produceRawBatch } from '../support/many-records-batch.js';
import { rawClients } from '../support/raw-grpc.js';
import { readEachWithin } from '../support/read-within.js';
import { waitFor } from '../support/wait-for.js';

let broker: TestBroker | undefined;
let client: RunnelClient | undefined;

afterEach(async () => {
  await client?.close();
  await broker?.close();
  client = undefined;
  broker = undefined;
});

describe('consumer against a real broker', () => {
  it('reads every partition when it is assigned more partitions than the broker serves calls on one connection', async () => {
    // Goal: one Subscribe stream per partition must not wait forever behind the broker's
    // limit of concurrent calls per connection (HTTP/2 queues the streams past it, unsent).
    // Method: a broker allowing 128 calls per connection, a topic of 300 partitions with one
    // record each, one consumer of all of them from the earliest offset.
    broker = await startBroker({ config: { inFlightRequestsPerConnectionMax: 128 } });
    client = createClient({ brokers: [broker.address] });
    const topic = 'many';
    const partitionCount = 300;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const producer = client.producer({ lingerMs: 5 });
    await Promise.all(Array.from({ length: partitionCount }, (_, partition) => producer.send({ topic, partition, value: `p${partition}` })));

    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign(Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition })));
    const seen = new Set<number>();
    // Read in the test body, so a wrong record fails the test at once with its own message.
    await readEachWithin(
      consumer,
      {
        timeoutMs: 20_000,
        describe: () => `${seen.size} of ${partitionCount} partitions delivered; none yet from ${[...Array(partitionCount).keys()].filter((partition) => !seen.has(partition)).slice(0, 10).join(', ')}…`,
      },
      (record) => {
        expect(record.value?.toString()).toBe(`p${record.partition}`);
        seen.add(record.partition);
        return seen.size === partitionCount;
      },
    );
    await consumer.close();
  });

  it('reads every partition when several consumers of one client together hold more streams than the broker serves calls on one connection', async () => {
    // Goal: the per-connection bound on Subscribe streams must hold for the client, not for
    // each consumer: the stream connections are the client's, shared by all its consumers.
    // Method: a broker allowing 128 calls per connection, a topic of 200 partitions with one
    // record each, and two consumers of one client reading 100 partitions each from the
    // earliest offset (each alone within STREAMS_PER_CONNECTION_MAX, together past 128).
    broker = await startBroker({ config: { inFlightRequestsPerConnectionMax: 128 } });
    client = createClient({ brokers: [broker.address] });
    const topic = 'two-consumers';
    const partitionCount = 2 * STREAMS_PER_CONNECTION_MAX;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const producer = client.producer({ lingerMs: 5 });
    await Promise.all(Array.from({ length: partitionCount }, (_, partition) => producer.send({ topic, partition, value: `p${partition}` })));

    const seen = new Set<number>();
    // Both stay open until both have read everything: a closed consumer's streams would make
    // room for the other's.
    const consumers = [client.consumer({ autoOffsetReset: 'earliest' }), client.consumer({ autoOffsetReset: 'earliest' })];
    const readHalf = async (half: number): Promise<void> => {
      const consumer = consumers[half]!;
      const firstPartition = half * STREAMS_PER_CONNECTION_MAX;
      const partitions = Array.from({ length: STREAMS_PER_CONNECTION_MAX }, (_, index) => firstPartition + index);
      consumer.assign(partitions.map((partition) => ({ topic, partition })));
      const own = new Set<number>();
      await readEachWithin(
        consumer,
        {
          timeoutMs: 20_000,
          describe: () => `${own.size} of ${partitions.length} partitions from ${firstPartition} delivered; none yet from ${partitions.filter((partition) => !own.has(partition)).slice(0, 10).join(', ')}…`,
        },
        (record) => {
          expect(record.value?.toString()).toBe(`p${record.partition}`);
          own.add(record.partition);
          seen.add(record.partition);
          return own.size === partitions.length;
        },
      );
    };
    await Promise.all([readHalf(0), readHalf(1)]);
    expect(seen.size).toBe(partitionCount);
    await Promise.all(consumers.map((consumer) => consumer.close()));
  });

  it('reads a gzip batch of 200,000 tiny records in slices of at most SLICE_RECORD_COUNT_MAX, every record in order, also after a seek into its middle', async () => {
    // Goal: a stored batch of millions of records must not become millions of record objects
    // at once in the consumer. Method: one 200,000-record gzip batch appended with plain gRPC
    // Produce; the consumer reads it with batches(), whose arrays are the slices it decoded,
    // checking each slice's size and that offsets run on without a gap; then it seeks to an
    // offset inside the batch (the broker sends the batch from its start) and reads to the end.
    broker = await startBroker();
    client = createClient({ brokers: [broker.address] });
    const topic = 'many-records';
    const recordCount = 200_000;
    await client.admin.createTopic({ name: topic, partitions: 1 });
    const raw = rawClients(broker.address);
    try {
      await produceRawBatch(raw, topic, manyTinyRecordsBatch(recordCount));
    } finally {
      raw.close();
    }
    const tp = { topic, partition: 0 };
    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign([tp]);

    const readToEnd = async (fromOffset: number): Promise<{ sliceCount: number; wrong: string[] }> => {
      let next = fromOffset;
      let sliceCount = 0;
      const wrong: string[] = [];
      for await (const slice of consumer.batches()) {
        sliceCount++;
        if (slice.length > SLICE_RECORD_COUNT_MAX) wrong.push(`a slice of ${slice.length} records`);
        for (const record of slice) {
          if (record.offset !== next || record.value?.toString() !== String(next % 10)) wrong.push(`offset ${record.offset} (value ${record.value?.toString()}) where ${next} was due`);
          next = record.offset + 1;
        }
        if (next === recordCount || wrong.length > 0) break;
      }
      return { sliceCount, wrong: wrong.slice(0, 5) };
    };
    const whole = await readToEnd(0);
    expect(whole.wrong).toEqual([]);
    expect(whole.sliceCount).toBeGreaterThanOrEqual(Math.ceil(recordCount / SLICE_RECORD_COUNT_MAX));
    expect(consumer.position(tp)).toBe(recordCount);

    await consumer.seek(tp, 150_001);
    const tail = await readToEnd(150_001);
    expect(tail.wrong).toEqual([]);
    expect(consumer.position(tp)).toBe(recordCount);
    await consumer.close();
  });

  it('replays 100 partitions from a time up to the end offsets taken first, every record at or after it once, and ends by itself', async () => {
    // Goal: the analytics job's replay. It takes every partition's end offset first (its
    // snapshot), seeks each partition to a time in the middle, bounds it with stopAt, and
    // reads until the iterator ends. Method: 100 partitions of 60 records in runs of 10 equal
    // timestamps, written 7 records per partition per round so equal timestamps span
    // batches; a time on a run's timestamp; partitions 90..99 get nothing at or after it; then
    // more records are written after the snapshot, which the replay must not read.
    broker = await startBroker();
    client = createClient({ brokers: [broker.address] });
    const topic = 'replay-window';
    const partitionCount = 100;
    const recordCount = 60;
    const timestampOf = (index: number): number => 1_700_000_000_000 + Math.floor(index / 10) * 10;
    const fromMs = timestampOf(30);
    const countOf = (partition: number): number => (partition >= 90 ? 25 : recordCount); // 25: all before fromMs
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const producer = client.producer({ lingerMs: 1 });
    for (let start = 0; start < recordCount; start += 7) {
      const sends = [];
      for (let partition = 0; partition < partitionCount; partition++) {
        for (let index = start; index < Math.min(countOf(partition), start + 7); index++) sends.push(producer.send({ topic, partition, value: `${partition}:${index}`, timestamp: timestampOf(index) }));
      }
      await Promise.all(sends);
    }
    const ends = await client.admin.listOffsets({ topic, spec: 'latest' });
    await Promise.all(Array.from({ length: partitionCount }, (_, partition) => producer.send({ topic, partition, value: 'after the snapshot', timestamp: timestampOf(recordCount) })));

    const consumer = client.consumer({ autoOffsetReset: 'none' });
    const partitions = Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition }));
    consumer.assign(partitions);
    await Promise.all(partitions.map((tp) => consumer.seek(tp, { timestamp: fromMs })));
    consumer.stopAt(ends.map((end) => ({ topic, partition: end.partition, offset: end.offset })));
    const read = new Map<number, number[]>();
    const reading = (async () => {
      for await (const record of consumer) {
        expect(record.timestamp).toBeGreaterThanOrEqual(fromMs);
        const offsets = read.get(record.partition) ?? [];
        offsets.push(record.offset);
        read.set(record.partition, offsets);
      }
    })();
    let ended: { error: unknown } | undefined;
    reading.then(
      () => (ended = { error: undefined }),
      (error: unknown) => (ended = { error }),
    );
    await waitFor(() => ended, {
      timeoutMs: 20_000,
      describe: () => `the replay has not ended: ${[...read.values()].reduce((sum, offsets) => sum + offsets.length, 0)} records read`,
    });
    if (ended?.error !== undefined) throw ended.error;
    for (let partition = 0; partition < partitionCount; partition++) {
      const expected = partition >= 90 ? [] : Array.from({ length: recordCount - 30 }, (_, index) => 30 + index);
      expect(read.get(partition) ?? [], `partition ${partition}`).toEqual(expected);
    }
    await producer.close();
    await consumer.close();
  });
});
