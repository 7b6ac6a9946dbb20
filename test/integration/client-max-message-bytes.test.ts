/**
 * The producer against a topic whose max.message.bytes is below its batch size. Goal: the
 * broker refuses the producer's batches whole (BATCH_TOO_LARGE); the producer splits them,
 * resends the pieces, and with idempotence (the default) every record is acknowledged and
 * stored exactly once, in send order per partition, also when the limit is lowered while
 * batches are in flight. Method: a real `runnel broker` child process (127.0.0.1, port 0,
 * fresh data dir, killed by PID in afterEach), 5,000 keyed 1 KiB records from a producer with
 * the default 256 KiB batches, then a fresh consumer reads every partition from the start;
 * each record's value carries its send index, so duplicates, gaps and reordering show.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type Producer, type RecordMetadata, type RunnelClient } from '../../src/client/index.js';
import { partitionForKey } from '../../src/protocol/index.js';
import { BackgroundTask } from '../support/background-task.js';
import { startBrokerProcess, tearDownBrokerProcess, type BrokerProcess } from '../support/broker-process.js';
import { readRecordsWithin } from '../support/read-within.js';
import { waitFor } from '../support/wait-for.js';

const RECORD_COUNT = 5_000;
const PARTITION_COUNT = 3;
const VALUE_BYTES = 1_024;

let dataDir: string | undefined;
let broker: BrokerProcess | undefined;
let client: RunnelClient | undefined;

beforeEach(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'runnel-max-message-bytes-'));
  broker = await startBrokerProcess({ dataDir });
  client = createClient({ brokers: [broker.address], clientId: 'max-message-bytes-test' });
});

afterEach(async () => {
  await tearDownBrokerProcess({ client, broker, dataDir });
  [client, broker, dataDir] = [undefined, undefined, undefined];
});

const keyOf = (index: number) => `key-${index % 101}`;

/** 1 KiB whose first 8 bytes are the send index. */
function valueOf(index: number): Buffer {
  const value = Buffer.alloc(VALUE_BYTES, 0x2e);
  value.write(String(index).padStart(8, '0'), 0, 'latin1');
  return value;
}

function sendOne(producer: Producer, topic: string, index: number): Promise<RecordMetadata> {
  return producer.send({ topic, key: keyOf(index), value: valueOf(index) });
}

/** After splits: every send acknowledged, nothing failed or left held, and the log holds each record once, in order. */
async function expectEverySendDeliveredOnce(producer: Producer, handles: Promise<RecordMetadata>[], topic: string): Promise<void> {
  await producer.flush();
  const acknowledged = await Promise.all(handles);
  const metrics = producer.metrics();
  expect(metrics).toMatchObject({ ackedRecords: RECORD_COUNT, failedRecords: 0, bufferUsedBytes: 0, epochBumps: 0 });
  expect(metrics.batchSplits).toBeGreaterThan(0);
  await checkReadBack(topic, acknowledged);
}

/**
 * Reads every partition from the start and checks the acknowledged-set oracle: each record
 * once, at the offset its acknowledgement named, on the partition its key picks, dense
 * offsets, and send order within each partition.
 */
async function checkReadBack(topic: string, acknowledged: RecordMetadata[]): Promise<void> {
  const consumer = client!.consumer();
  const partitions = Array.from({ length: PARTITION_COUNT }, (_, partition) => ({ topic, partition }));
  consumer.assign(partitions);
  for (const tp of partitions) await consumer.seek(tp, 'earliest');
  const records = await readRecordsWithin(consumer, acknowledged.length, { timeoutMs: 30_000, expected: 'every acknowledged record, offsets 0 on in each partition' });
  const nextOffset = new Array<number>(PARTITION_COUNT).fill(0);
  const lastIndex = new Array<number>(PARTITION_COUNT).fill(-1);
  const seen = new Set<number>();
  for (const record of records) {
    const index = Number(record.value!.subarray(0, 8).toString('latin1'));
    expect(seen.has(index)).toBe(false);
    seen.add(index);
    expect(record.offset).toBe(nextOffset[record.partition]);
    nextOffset[record.partition]!++;
    expect(index).toBeGreaterThan(lastIndex[record.partition]!);
    lastIndex[record.partition] = index;
    expect(record.partition).toBe(partitionForKey(Buffer.from(keyOf(index)), PARTITION_COUNT));
    expect({ partition: record.partition, offset: record.offset }).toEqual({
      partition: acknowledged[index]!.partition,
      offset: acknowledged[index]!.offset,
    });
  }
  expect(seen.size).toBe(acknowledged.length);
  const ends = await client!.admin.listOffsets({ topic, partitions: partitions.map((tp) => tp.partition), spec: 'latest' });
  expect(ends.map((end) => end.offset)).toEqual(nextOffset); // nothing stored beyond what was read
}

describe('producer and a topic max.message.bytes below its batch size', () => {
  it('splits the refused batches and stores 5,000 keyed 1 KiB records exactly once, in send order per partition', async () => {
    const topic = `small-batches-${process.pid}`;
    await client!.admin.createTopic({ name: topic, partitions: PARTITION_COUNT, configs: { 'max.message.bytes': '20000' } });
    const producer = client!.producer();
    const handles: Promise<RecordMetadata>[] = [];
    for (let index = 0; index < RECORD_COUNT; index++) {
      handles.push(sendOne(producer, topic, index));
      if (!producer.hasBufferSpace) await producer.waitForBufferSpace();
    }
    await expectEverySendDeliveredOnce(producer, handles, topic);
  });

  it('splits batches refused after max.message.bytes was lowered while records were in flight', async () => {
    const topic = `lowered-${process.pid}`;
    await client!.admin.createTopic({ name: topic, partitions: PARTITION_COUNT });
    const producer = client!.producer();
    const handles: Promise<RecordMetadata>[] = [];
    let markLowered!: () => void;
    const lowered = new Promise<void>((resolve) => (markLowered = resolve));
    // The sender keeps going while the config changes; it sends its second half only after
    // the change, so some batches are certainly refused.
    let isStopRequested = false;
    const sending = new BackgroundTask('the sender', async () => {
      for (let index = 0; index < RECORD_COUNT && !isStopRequested; index++) {
        if (index === RECORD_COUNT / 2) await lowered;
        handles.push(sendOne(producer, topic, index));
        if (index % 50 === 49) await new Promise<void>((resolve) => setImmediate(resolve));
        if (!producer.hasBufferSpace) await producer.waitForBufferSpace();
      }
    });
    try {
      await waitFor(
        () => {
          sending.throwIfFailed();
          return producer.metrics().ackedRecords >= 200;
        },
        { timeoutMs: 30_000, describe: () => `only ${producer.metrics().ackedRecords} records acknowledged before the config change` },
      );
      await client!.admin.alterTopicConfigs({ name: topic, set: { 'max.message.bytes': '20000' } });
    } catch (error) {
      // The sender may be waiting for the change, which will not come now, or for buffer space:
      // stop it (closing the producer frees what waits for space) and let it end.
      isStopRequested = true;
      markLowered();
      await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
      await sending.settled();
      throw error;
    }
    markLowered();
    await sending.finish();
    await expectEverySendDeliveredOnce(producer, handles, topic);
  });

  it('fails only the send of a record that alone exceeds max.message.bytes', async () => {
    const topic = `one-too-large-${process.pid}`;
    await client!.admin.createTopic({ name: topic, partitions: 1, configs: { 'max.message.bytes': '20000' } });
    const producer = client!.producer({ lingerMs: 50 });
    const before = producer.send({ topic, value: 'before' });
    const tooLarge = producer.send({ topic, value: Buffer.alloc(30_000) });
    const after = producer.send({ topic, value: 'after' });
    await expect(tooLarge).rejects.toMatchObject({ reason: 'RECORD_TOO_LARGE', message: expect.stringMatching(/max\.message\.bytes/) });
    expect([(await before).offset, (await after).offset]).toEqual([0, 1]);
    expect(producer.metrics()).toMatchObject({ ackedRecords: 2, failedRecords: 1 });
  });
});
