import { afterEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.js';
import { loadBrokerConfig } from '../config/broker-config.js';
import { limits } from '../config/limits.js';
import { silentLogger } from '../observability/index.js';
import { decodeBatches, encodeBatch, setBatchLeaderEpoch, tryReadBatchHeader } from '../protocol/index.js';
import { MetaStore } from '../meta/index.js';
import { BrokerError } from '../errors/index.js';
import { LogManager, nodeFileSystem, PartitionLog } from '../storage/index.js';
import { Broker } from './broker.js';
import { autoOpenSegmentFilesMax, readOwnProcLimits } from './open-files-limit.js';
import { createFaultyFileSystem } from '../../test/support/faulty-file-system.js';
import { recordingLogger } from '../../test/support/recording-logger.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openBroker(): Promise<Broker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
  cleanups.push(() => broker.close());
  await broker.createTopic({ name: 'tail', partitions: 1, replicationFactor: 1, configs: {} });
  return broker;
}

/** A broker on a fresh, empty data directory (no topic), closed and removed after the test. */
async function openFresh(): Promise<{ broker: Broker; dataDir: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
  cleanups.push(() => broker.close());
  return { broker, dataDir };
}

function batch(values: string[]): Buffer {
  return encodeBatch({ records: values.map((value, i) => ({ key: null, value: Buffer.from(value), headers: [], timestamp: 1_700_000_000_000 + i })) });
}

const produce = (broker: Broker, values: string[]) => broker.produce({ topic: 'tail', partition: 0, batch: batch(values), acks: 'leader', timeoutMs: 10_000 });
const fetchAt = (broker: Broker, offset: number, options: { maxBytes?: number; minBytes?: number } = {}) =>
  broker.fetch({ topic: 'tail', partition: 0, offset, maxBytes: options.maxBytes ?? 1 << 20, minBytes: options.minBytes ?? 1, maxWaitMs: 10_000 });

/** A fetch at `offset`, once it has parked (its first read found nothing): `parked` settles with 'answered' or its error's reason. */
async function parkedFetchAt(broker: Broker, offset: number): Promise<{ parked: Promise<string | undefined> }> {
  const reads = vi.spyOn(PartitionLog.prototype, 'read');
  const parked = fetchAt(broker, offset).then(
    () => 'answered',
    (error: unknown) => (error as { reason?: string }).reason,
  );
  await vi.waitFor(() => expect(reads).toHaveBeenCalledTimes(1));
  reads.mockRestore();
  return { parked }; // wrapped: an async function returning the promise itself would wait for it
}

describe('Broker.fetch parked at the log end', () => {
  it('is answered with the appended batches themselves, byte for byte what a read returns, without reading', async () => {
    const broker = await openBroker();
    await produce(broker, ['a0', 'a1']);
    const reads = vi.spyOn(PartitionLog.prototype, 'read');
    const parked = fetchAt(broker, 2);
    await vi.waitFor(() => expect(reads).toHaveBeenCalledTimes(1)); // the first read found nothing and parked
    await produce(broker, ['b0', 'b1', 'b2']);
    const handed = await parked;
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();

    const read = await fetchAt(broker, 2);
    expect(handed.bytes.equals(read.bytes)).toBe(true);
    expect(handed.nextOffset).toBe(read.nextOffset);
    expect(handed.highWatermark).toBe(5);
    expect([...decodeBatches(handed.bytes)].map((record) => [record.offset, record.value?.toString()])[0]).toEqual([2, 'b0']);
  });

  it('is answered at once with TOPIC_NOT_FOUND when its topic is deleted, not at its deadline', async () => {
    const broker = await openBroker();
    await produce(broker, ['a0']);
    const { parked } = await parkedFetchAt(broker, 1);
    const startedMs = Date.now();
    await broker.deleteTopic('tail');
    expect(await parked).toBe('TOPIC_NOT_FOUND');
    expect(Date.now() - startedMs).toBeLessThan(5_000); // its maxWaitMs is 10 s
  });

  it('is answered at once with the partition\'s error when the partition goes offline, not at its deadline', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'tail', partitions: 1, replicationFactor: 1, configs: {} });
    await produce(broker, ['a0']);
    const { parked } = await parkedFetchAt(broker, 1);
    // Damage in the stored batch, found by another reader: the partition goes offline.
    const fd = openSync(join(dataDir, 'tail-0', '00000000000000000000.log'), 'r+');
    writeSync(fd, Buffer.from('XX'), 0, 2, 64); // inside the first record
    closeSync(fd);
    const startedMs = Date.now();
    await expect(fetchAt(broker, 0)).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
    expect(await parked).toBe('CORRUPT_DATA');
    expect(Date.now() - startedMs).toBeLessThan(5_000); // its maxWaitMs is 10 s
  });

  it('is answered at once when minBytes is 0, whatever its maxWaitMs (the contract\'s "0 = reply now", as in Kafka)', async () => {
    const broker = await openBroker();
    await produce(broker, ['a0']);
    const startedMs = Date.now();
    const atEnd = await broker.fetch({ topic: 'tail', partition: 0, offset: 1, maxBytes: 1 << 20, minBytes: 0, maxWaitMs: 20_000 });
    expect(atEnd.bytes.length).toBe(0);
    expect(atEnd.nextOffset).toBe(1);
    expect(atEnd.highWatermark).toBe(1);
    expect(Date.now() - startedMs).toBeLessThan(5_000);
  });

  it('keeps to maxBytes with at least one whole batch, like a read', async () => {
    const broker = await openBroker();
    const parked = fetchAt(broker, 0, { maxBytes: 10 });
    await produce(broker, ['x'.repeat(100)]);
    const handed = await parked;
    const read = await fetchAt(broker, 0, { maxBytes: 10 });
    expect(handed.bytes.equals(read.bytes)).toBe(true);
    expect(handed.nextOffset).toBe(1);
  });

  it('falls back to reading when the wake-up batches do not start at its offset (minBytes not yet met)', async () => {
    const broker = await openBroker();
    const parked = fetchAt(broker, 0, { minBytes: 150 });
    await produce(broker, ['small']);
    await produce(broker, ['z'.repeat(200)]);
    const result = await parked;
    expect([...decodeBatches(result.bytes)].map((record) => record.offset)).toEqual([0, 1]);
    expect(result.nextOffset).toBe(2);
  });
});

describe('Broker.fetch whose read went stale as its wait ran out', () => {
  /**
   * Goal: a fetch that saw an append land between its read and its listening reads again, even
   * when its deadline passes meanwhile, rather than answering the read it knows is stale.
   * Method: a ManualClock; an append lands while the fetch's read runs, and the clock passes
   * the deadline just after the fetch found its read stale. Before, a stale read woke the wait
   * with nothing, which the fetch took for a wait that ran out: it answered the empty read,
   * though the record at its offset had been there since before its deadline.
   */
  it('answers with the record that landed before its deadline', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const clock = new ManualClock(Date.now());
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger, clock });
    cleanups.push(() => broker.close());
    await broker.createTopic({ name: 'tail', partitions: 1, replicationFactor: 1, configs: {} });
    await produce(broker, ['a0']);
    const read = PartitionLog.prototype.read;
    let stage: 'reading' | 'stale' | 'done' = 'reading';
    vi.spyOn(PartitionLog.prototype, 'read').mockImplementation(async function (this: PartitionLog, options) {
      const result = await read.call(this, options);
      if (stage === 'reading') {
        await produce(broker, ['a1']); // lands between the read and the fetch's listening
        stage = 'stale';
      }
      return result;
    });
    // Runs as the fetch lets go of the log, after it found its read stale and before it looks at the time.
    const manager = LogManager.prototype as unknown as { closeLeastRecentlyUsed(): void };
    const closeLeastRecentlyUsed = manager.closeLeastRecentlyUsed;
    vi.spyOn(manager, 'closeLeastRecentlyUsed').mockImplementation(function (this: LogManager) {
      if (stage === 'stale') {
        stage = 'done';
        clock.advance(20_000);
      }
      closeLeastRecentlyUsed.call(this);
    });
    const answer = await fetchAt(broker, 1);
    expect(stage).toBe('done');
    expect([...decodeBatches(answer.bytes)].map((record) => record.value?.toString())).toEqual(['a1']);
  });
});

describe('Broker.fetch parked on more partitions than openPartitionsMax', () => {
  /**
   * Goal: a reader parked at the log end (a tailing consumer's Fetch or Subscribe) must not
   * keep its partition's log open. Method: park a fetch on each of 40 used partitions with
   * openPartitionsMax 16, and count logs opened minus logs closed. Before, each parked fetch
   * waited inside `withPartition`, pinning its log: 40 open, and 10,000 tailing readers kept
   * 10,000 logs open.
   */
  it('lets the logs of parked readers close down to openPartitionsMax, and still wakes a reader whose log was closed when an append lands', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent', openPartitionsMax: 16 }, logger: silentLogger });
    cleanups.push(() => broker.close());
    const partitionCount = 40;
    await broker.createTopic({ name: 'many', partitions: partitionCount, replicationFactor: 1, configs: {} });
    const produceTo = (partition: number, value: string) => broker.produce({ topic: 'many', partition, batch: batch([value]), acks: 'leader', timeoutMs: 10_000 });
    for (let partition = 0; partition < partitionCount; partition++) await produceTo(partition, `first-${partition}`);
    // Logs opened minus logs closed from here on; 16 are open now (openPartitionsMax).
    let openLogs = 0;
    const realOpen = PartitionLog.open.bind(PartitionLog);
    vi.spyOn(PartitionLog, 'open').mockImplementation(async (options) => {
      const log = await realOpen(options);
      openLogs++;
      return log;
    });
    const realClose = PartitionLog.prototype.close;
    vi.spyOn(PartitionLog.prototype, 'close').mockImplementation(async function (this: PartitionLog, ...args) {
      try {
        return await realClose.apply(this, args);
      } finally {
        openLogs--;
      }
    });
    const listens = vi.spyOn(LogManager.prototype, 'onAppend');
    const abort = new AbortController();
    cleanups.push(() => abort.abort());
    const parked = Array.from({ length: partitionCount }, (_, partition) =>
      broker.fetch({ topic: 'many', partition, offset: 1, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 20_000, signal: abort.signal }),
    );
    await vi.waitFor(() => expect(listens).toHaveBeenCalledTimes(partitionCount), { timeout: 10_000 }); // every fetch found nothing and parked
    await vi.waitFor(() => expect(16 + openLogs).toBeLessThanOrEqual(16), { timeout: 5_000 });

    // Partition 0 was used first: its log is among those closed. An append reopens it and wakes its reader.
    await produceTo(0, 'second-0');
    const woken = await parked[0];
    expect([...decodeBatches(woken!.bytes)].map((record) => record.value?.toString())).toEqual(['second-0']);
    abort.abort();
    const rest = await Promise.all(parked.slice(1));
    expect(rest.every((result) => result.bytes.length === 0)).toBe(true);
  });
  it('answers a fetch at the log end of a closed log when its wait runs out without opening the log, so tailing readers re-fetching do not reopen logs', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent', openPartitionsMax: 16 }, logger: silentLogger });
    cleanups.push(() => broker.close());
    await broker.createTopic({ name: 'many', partitions: 40, replicationFactor: 1, configs: {} });
    await broker.createTopic({ name: 'unused', partitions: 4, replicationFactor: 1, configs: {} });
    const closes = vi.spyOn(PartitionLog.prototype, 'close');
    for (let partition = 0; partition < 40; partition++) {
      await broker.produce({ topic: 'many', partition, batch: batch([`first-${partition}`]), acks: 'leader', timeoutMs: 10_000 });
    }
    // Partitions 0–23, used first, are closed once 24 closes have finished.
    await vi.waitFor(async () => {
      expect(closes).toHaveBeenCalledTimes(24);
      await Promise.all(closes.mock.results.map((result) => result.value));
    });
    const opens = vi.spyOn(PartitionLog, 'open');
    // A Subscribe re-fetches at its position each time its wait runs out: three rounds here.
    for (let round = 0; round < 3; round++) {
      const answers = await Promise.all(Array.from({ length: 24 }, (_, partition) => broker.fetch({ topic: 'many', partition, offset: 1, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 50 })));
      expect(answers.map((answer) => [answer.bytes.length, answer.nextOffset, answer.highWatermark, answer.logStartOffset])).toEqual(Array.from({ length: 24 }, () => [0, 1, 1, 0]));
      const unused = await Promise.all(Array.from({ length: 4 }, (_, partition) => broker.fetch({ topic: 'unused', partition, offset: 0, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 50 })));
      expect(unused.map((answer) => [answer.bytes.length, answer.highWatermark])).toEqual(Array.from({ length: 4 }, () => [0, 0]));
    }
    expect(opens).not.toHaveBeenCalled();
    // Below the log end it reads (opening the log), and an append to a closed log wakes its parked reader.
    const parked = broker.fetch({ topic: 'many', partition: 0, offset: 1, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 10_000 });
    await broker.produce({ topic: 'many', partition: 0, batch: batch(['second-0']), acks: 'leader', timeoutMs: 10_000 });
    expect([...decodeBatches((await parked).bytes)].map((record) => record.value?.toString())).toEqual(['second-0']);
    const read = await broker.fetch({ topic: 'many', partition: 1, offset: 0, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 50 });
    expect([...decodeBatches(read.bytes)].map((record) => record.value?.toString())).toEqual(['first-1']);
  });
});

describe('Broker.fetch with minBytes at a segment boundary', () => {
  // A read never crosses a segment boundary, so a fetch whose offset is near the end of a
  // segment reads fewer bytes than it would from the log as a whole. Waiting cannot make that
  // read longer (the segment is sealed): such a fetch is answered at once with what the read
  // found, as Kafka's DelayedFetch completes a fetch whose offset is on an older segment.
  const bigBatch = (tag: string) => encodeBatch({ records: [{ key: null, value: Buffer.alloc(200, tag), headers: [], timestamp: Date.now() }] });
  const produceTo = (broker: Broker, topic: string, tag: string) => broker.produce({ topic, partition: 0, batch: bigBatch(tag), acks: 'leader', timeoutMs: 10_000 });

  it('answers at once with the tail of a sealed segment, not after maxWaitMs, though fewer than minBytes', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'rolled', partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '1024' } });
    for (let i = 0; i < 12; i++) await produceTo(broker, 'rolled', String(i % 10));
    const startedMs = Date.now();
    const result = await broker.fetch({ topic: 'rolled', partition: 0, offset: 2, maxBytes: 1 << 20, minBytes: 2_000, maxWaitMs: 20_000 });
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(result.bytes.length).toBeGreaterThan(0);
    expect(result.bytes.length).toBeLessThan(2_000);
    expect(result.highWatermark).toBe(12);
    expect(result.nextOffset).toBeLessThan(12);
    // The reply ends where the next fetch picks up: nothing skipped, nothing repeated.
    const next = await broker.fetch({ topic: 'rolled', partition: 0, offset: result.nextOffset, maxBytes: 1 << 20, minBytes: 0, maxWaitMs: 0 });
    const offsets = [...decodeBatches(Buffer.concat([result.bytes, next.bytes]))].map((record) => record.offset);
    expect(offsets[0]).toBe(2);
    expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => 2 + i));
  });

  it('answers a parked fetch once an append rolls the segment under it, not after maxWaitMs', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'rolling', partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '1024' } });
    await produceTo(broker, 'rolling', 'a');
    const reads = vi.spyOn(PartitionLog.prototype, 'read');
    const startedMs = Date.now();
    const parked = broker.fetch({ topic: 'rolling', partition: 0, offset: 0, maxBytes: 1 << 20, minBytes: 100_000, maxWaitMs: 20_000 });
    await vi.waitFor(() => expect(reads).toHaveBeenCalledTimes(1)); // read what there was, and parked
    reads.mockRestore();
    // Appends until one lands in a new segment: the parked fetch's offset is then on an older one.
    for (let i = 0; i < 8; i++) await produceTo(broker, 'rolling', String(i));
    const result = await parked;
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(result.nextOffset).toBeLessThan(result.highWatermark);
    expect([...decodeBatches(result.bytes)][0]?.offset).toBe(0);
  });
});

describe('Broker.fetch parked while retention moves the log start past its offset', () => {
  it('fails at once with OFFSET_OUT_OF_RANGE and the new log start, not after maxWaitMs', async () => {
    // A quiet topic whose records all expired: retention rolls and deletes every segment, the
    // parked fetch's offset included. Without a wake-up it learnt that only at its deadline.
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'expiring', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '3600000' } });
    const old = encodeBatch({ records: [{ key: null, value: Buffer.from('old'), headers: [], timestamp: Date.now() - 7_200_000 }] });
    for (let i = 0; i < 3; i++) await broker.produce({ topic: 'expiring', partition: 0, batch: old, acks: 'leader', timeoutMs: 10_000 });
    const reads = vi.spyOn(PartitionLog.prototype, 'read');
    const startedMs = Date.now();
    const parked = broker.fetch({ topic: 'expiring', partition: 0, offset: 1, maxBytes: 1 << 20, minBytes: 100_000, maxWaitMs: 20_000 }).then(
      () => undefined,
      (error: unknown) => error as BrokerError,
    );
    await vi.waitFor(() => expect(reads).toHaveBeenCalledTimes(1)); // read offsets 1–2, too few bytes: parked
    reads.mockRestore();
    await (broker as unknown as { logs: { runRetention(): Promise<void> } }).logs.runRetention();
    expect((await broker.listOffset('expiring', 0, { kind: 'earliest' })).offset).toBe(3);
    const failure = await parked;
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(failure).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE', details: { logStartOffset: 3, logEndOffset: 3 } });
  });

  it('fails at once also when retention ran between its read and its parking', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'expiring', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '3600000' } });
    const old = encodeBatch({ records: [{ key: null, value: Buffer.from('old'), headers: [], timestamp: Date.now() - 7_200_000 }] });
    for (let i = 0; i < 3; i++) await broker.produce({ topic: 'expiring', partition: 0, batch: old, acks: 'leader', timeoutMs: 10_000 });
    const read = PartitionLog.prototype.read;
    let isFirst = true;
    vi.spyOn(PartitionLog.prototype, 'read').mockImplementation(async function (this: PartitionLog, options) {
      const result = await read.call(this, options);
      if (isFirst) {
        isFirst = false;
        await (broker as unknown as { logs: { runRetention(): Promise<void> } }).logs.runRetention(); // before the fetch listens
      }
      return result;
    });
    const startedMs = Date.now();
    const failure = await broker.fetch({ topic: 'expiring', partition: 0, offset: 1, maxBytes: 1 << 20, minBytes: 100_000, maxWaitMs: 20_000 }).then(
      () => undefined,
      (error: unknown) => error as BrokerError,
    );
    expect(isFirst).toBe(false);
    expect(Date.now() - startedMs).toBeLessThan(5_000);
    expect(failure).toMatchObject({ reason: 'OFFSET_OUT_OF_RANGE', details: { logStartOffset: 3, logEndOffset: 3 } });
  });
});

describe('topic lifecycle against leftover directories', () => {
  async function openAt(dataDir: string, overrides: Partial<ReturnType<typeof loadBrokerConfig>> = {}): Promise<Broker> {
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent', ...overrides }, logger: silentLogger });
    cleanups.push(() => broker.close());
    return broker;
  }
  function freshDataDir(): string {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    return dataDir;
  }
  const produceTo = (broker: Broker, topic: string, partition: number, values: string[]) =>
    broker.produce({ topic, partition, batch: batch(values), acks: 'leader', timeoutMs: 10_000 });

  it('leaves a directory without a topic record alone: no retention, not served, not taken over by a create', async () => {
    const dataDir = freshDataDir();
    const first = await openAt(dataDir);
    await first.createTopic({ name: 'kept', partitions: 2, replicationFactor: 1, configs: { 'retention.ms': '-1', 'segment.bytes': '1024' } });
    for (let i = 0; i < 20; i++) await produceTo(first, 'kept', 1, [`old-${i}`.padEnd(100, '.')]);
    await first.close();
    const segmentsBefore = readdirSync(join(dataDir, 'kept-1')).filter((name) => name.endsWith('.log')).length;
    expect(segmentsBefore).toBeGreaterThan(3);
    rmSync(join(dataDir, 'meta'), { recursive: true, force: true }); // meta/ lost

    const second = await openAt(dataDir, { retentionCheckIntervalMs: 1_000 });
    await (second as unknown as { logs: { runRetention(): Promise<void> } }).logs.runRetention(); // what the timer runs
    expect(readdirSync(join(dataDir, 'kept-1')).filter((name) => name.endsWith('.log'))).toHaveLength(segmentsBefore);
    await expect(second.createTopic({ name: 'kept', partitions: 2, replicationFactor: 1, configs: {} })).rejects.toMatchObject({ reason: 'TOPIC_ALREADY_EXISTS' });
    await expect(second.describeTopic('kept')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' }); // not served
  });

  it('refuses add-partitions onto a leftover directory and leaves the topic as it was', async () => {
    const dataDir = freshDataDir();
    const first = await openAt(dataDir);
    await first.createTopic({ name: 'grow', partitions: 2, replicationFactor: 1, configs: {} });
    await produceTo(first, 'grow', 1, ['OLD-SECRET']);
    await first.close();
    rmSync(join(dataDir, 'meta'), { recursive: true, force: true });
    rmSync(join(dataDir, 'grow-0'), { recursive: true, force: true });

    const second = await openAt(dataDir);
    await second.createTopic({ name: 'grow', partitions: 1, replicationFactor: 1, configs: {} });
    await expect(second.addPartitions('grow', 2)).rejects.toMatchObject({ reason: 'TOPIC_ALREADY_EXISTS' });
    expect((await second.describeTopic('grow')).partitions).toHaveLength(1);
  });

  it('refuses to remove a config key that does not exist, changing nothing', async () => {
    const dataDir = freshDataDir();
    const broker = await openAt(dataDir);
    await broker.createTopic({ name: 'cfg', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '1000' } });
    await expect(broker.alterTopicConfigs('cfg', { set: {}, remove: ['retention.msx'] })).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect((await broker.describeTopic('cfg')).overrides).toEqual({ 'retention.ms': '1000' });
  });

  it('refuses an alter that both sets and removes one key, changing nothing', async () => {
    const broker = await openAt(freshDataDir());
    await broker.createTopic({ name: 'cfg', partitions: 1, replicationFactor: 1, configs: { 'retention.ms': '1000' } });
    await expect(broker.alterTopicConfigs('cfg', { set: { 'retention.ms': '5000', 'segment.ms': '60000' }, remove: ['retention.ms'] })).rejects.toMatchObject({
      reason: 'INVALID_REQUEST',
      message: expect.stringContaining('retention.ms is both set and removed'),
    });
    expect((await broker.describeTopic('cfg')).overrides).toEqual({ 'retention.ms': '1000' });
  });

  it('closes its metadata store and releases the data directory even when closing the logs fails', async () => {
    const dataDir = freshDataDir();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
    vi.spyOn(LogManager.prototype, 'close').mockRejectedValueOnce(new Error('EIO: i/o error, close'));
    await expect(broker.close()).rejects.toThrow('EIO');
    expect(() => (broker as unknown as { meta: MetaStore }).meta.listTopics()).toThrow();
    vi.restoreAllMocks();
    await (broker as unknown as { logs: LogManager }).logs.close(); // the close that 'failed'
    const again = await openAt(dataDir);
    expect(again.listTopics()).toEqual([]);
  });

  it('throws the logs\' close failure, not the metadata store\'s, when both closes fail, and logs the second', async () => {
    const dataDir = freshDataDir();
    const logger = recordingLogger();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    vi.spyOn(LogManager.prototype, 'close').mockRejectedValueOnce(new Error('EIO: i/o error, close of a log'));
    const metaClose = MetaStore.prototype.close;
    vi.spyOn(MetaStore.prototype, 'close').mockImplementationOnce(async function (this: MetaStore) {
      await metaClose.call(this);
      throw new Error('EIO: i/o error, close of meta/');
    });
    // Before, the metadata store's failure replaced the first one (a `finally` that throws does).
    await expect(broker.close()).rejects.toThrow('close of a log');
    expect(logger.calls).toContainEqual(expect.objectContaining({ level: 'error', fields: { err: expect.stringContaining('close of meta/') } }));
    vi.restoreAllMocks();
    await (broker as unknown as { logs: LogManager }).logs.close(); // the close that 'failed'
  });

  it('sizes the segment-file cache from the open-files limit unless openSegmentFilesMax is set', async () => {
    const expected = autoOpenSegmentFilesMax(readOwnProcLimits());
    const logger = recordingLogger();
    const derived = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir: freshDataDir(), logLevel: 'silent' }, logger });
    cleanups.push(() => derived.close());
    expect((derived as unknown as { logs: LogManager }).logs.handles.openFilesMax).toBe(expected);
    expect(logger.calls).toContainEqual(
      expect.objectContaining({ level: 'info', message: 'segment files open at once: openSegmentFilesMax set from the open-files limit', fields: expect.objectContaining({ openSegmentFilesMax: expected }) }),
    );
    const set = await Broker.open({ config: { ...loadBrokerConfig({ env: { RUNNEL_OPEN_SEGMENT_FILES_MAX: '77' } }), dataDir: freshDataDir(), logLevel: 'silent' }, logger: silentLogger });
    cleanups.push(() => set.close());
    expect((set as unknown as { logs: LogManager }).logs.handles.openFilesMax).toBe(77);
  });

  it('refuses a broker flush default no topic could have, before creating anything', async () => {
    const dataDir = join(freshDataDir(), 'not-yet');
    await expect(Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent', flush: 'interval:5000ms' }, logger: silentLogger })).rejects.toMatchObject({
      reason: 'INVALID_REQUEST',
      // It may come from the file: the operator is told every place to look.
      message: expect.stringMatching(/--flush, RUNNEL_FLUSH, or "flush" in the --config file.*interval:5000ms/),
    });
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe('one broker per data directory', () => {
  function freshDataDir(): string {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    return dataDir;
  }
  const open = (dataDir: string) => Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });

  it('refuses a second broker on a directory in use, naming the holder, and lets one in after close', async () => {
    const dataDir = freshDataDir();
    const first = await open(dataDir);
    cleanups.push(() => first.close());
    await expect(open(dataDir)).rejects.toThrow(new RegExp(`in use by process ${process.pid}`));
    await first.close();
    const second = await open(dataDir);
    cleanups.push(() => second.close());
    expect(existsSync(join(dataDir, 'broker.lock'))).toBe(true);
    await second.close();
    expect(existsSync(join(dataDir, 'broker.lock'))).toBe(false);
  });

  it('takes over the lock a killed broker left (its process is gone), and a torn one, and says so in its log', async () => {
    const dataDir = freshDataDir();
    const gone = spawnSync(process.execPath, ['-e', '0']).pid as number;
    writeFileSync(join(dataDir, 'broker.lock'), `${JSON.stringify({ pid: gone, startedAtMs: 1 })}\n`);
    const logger = recordingLogger();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    expect(logger.calls.filter((call) => call.level === 'warn' && /did not stop cleanly/.test(call.message)).map((call) => call.fields.previousPid)).toEqual([gone]);
    await broker.close();
    writeFileSync(join(dataDir, 'broker.lock'), '{"pid":');
    const again = await open(dataDir);
    await again.close();
  });
});

describe('Broker.listOffset by timestamp', () => {
  it('looks again when retention deletes the batch it found before it could read it', async () => {
    const broker = await openBroker();
    const topic = 'by-time';
    // Tiny segments, all records far older than retention.ms: a retention run deletes every old segment.
    await broker.createTopic({ name: topic, partitions: 1, replicationFactor: 1, configs: { 'segment.bytes': '1024', 'retention.ms': '3600000' } });
    const oldRecords = (tag: string) => encodeBatch({ records: [{ key: null, value: Buffer.alloc(300, tag), headers: [], timestamp: Date.now() - 7_200_000 }] });
    for (let i = 0; i < 12; i++) await broker.produce({ topic, partition: 0, batch: oldRecords(String(i % 10)), acks: 'leader', timeoutMs: 10_000 });
    const fresh = encodeBatch({ records: [{ key: null, value: Buffer.from('fresh'), headers: [], timestamp: Date.now() }] });
    const { baseOffset: freshOffset } = await broker.produce({ topic, partition: 0, batch: fresh, acks: 'leader', timeoutMs: 10_000 });
    // The first read after the lookup waits for a retention run that deletes what it found.
    const read = PartitionLog.prototype.read;
    let isFirst = true;
    vi.spyOn(PartitionLog.prototype, 'read').mockImplementation(async function (this: PartitionLog, options) {
      if (isFirst) {
        isFirst = false;
        await (broker as unknown as { logs: { runRetention(): Promise<void> } }).logs.runRetention();
      }
      return read.call(this, options);
    });
    const found = await broker.listOffset(topic, 0, { kind: 'timestamp', timestampMs: 0 });
    expect(isFirst).toBe(false);
    // The first batch now in the log: the new log start (the active segment keeps a few old ones).
    const start = (await broker.listOffset(topic, 0, { kind: 'earliest' })).offset;
    expect(start).toBeGreaterThan(0);
    expect(start).toBeLessThanOrEqual(freshOffset);
    expect(found.offset).toBe(start);
  });
});

describe('Broker.listOffset by timestamp while appends land', () => {
  it('answers "nothing that late" with the log end the search covered, so a batch appended during the search is not skipped', async () => {
    // The search finds no batch as late as the query; a batch that late lands while it runs.
    // The answer must be an offset at or before that batch (a consumer starting there reads
    // it), not the log end as it is once the search is over.
    const broker = await openBroker();
    await produce(broker, ['old']);
    const search = PartitionLog.prototype.offsetForTimestamp;
    let appendedOffset: number | undefined;
    vi.spyOn(PartitionLog.prototype, 'offsetForTimestamp').mockImplementation(async function (this: PartitionLog, timestamp) {
      const found = await search.call(this, timestamp);
      const late = encodeBatch({ records: [{ key: null, value: Buffer.from('late'), headers: [], timestamp: timestamp + 1 }] });
      appendedOffset = (await broker.produce({ topic: 'tail', partition: 0, batch: late, acks: 'leader', timeoutMs: 10_000 })).baseOffset;
      return found;
    });
    const answer = await broker.listOffset('tail', 0, { kind: 'timestamp', timestampMs: 1_750_000_000_000 });
    expect(appendedOffset).toBe(1);
    expect(answer).toEqual({ offset: 1, timestampMs: -1 });
  });
});

describe('Broker.listOffset on an offline partition', () => {
  it('fails earliest and latest with the partition\'s error, as it fails a timestamp and a fetch, rather than offsets nobody can read', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'tail', partitions: 1, replicationFactor: 1, configs: {} });
    await produce(broker, ['a0', 'a1']);
    const fd = openSync(join(dataDir, 'tail-0', '00000000000000000000.log'), 'r+');
    writeSync(fd, Buffer.from('XX'), 0, 2, 64); // inside the first record
    closeSync(fd);
    await expect(fetchAt(broker, 0)).rejects.toMatchObject({ reason: 'CORRUPT_DATA' }); // found: offline now
    for (const query of [{ kind: 'earliest' }, { kind: 'latest' }, { kind: 'timestamp', timestampMs: 0 }] as const) {
      await expect(broker.listOffset('tail', 0, query), query.kind).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
    }
  });
});

describe('concurrent admin calls on one topic', () => {
  const settled = (work: Promise<unknown>) => work.then(() => 'ok', (error: unknown) => (error as { reason?: string }).reason ?? String(error));
  const partitionDirs = (dataDir: string, topic: string) => readdirSync(dataDir).filter((name) => new RegExp(`^${topic}-\\d+$`).test(name));

  /** Holds every topic-record delete for `ms` first, as a slow lmdb flush would. */
  function slowRecordDeletes(ms: number): void {
    const original = MetaStore.prototype.deleteTopic;
    vi.spyOn(MetaStore.prototype, 'deleteTopic').mockImplementation(async function (this: MetaStore, name: string) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return original.call(this, name);
    });
  }

  /** Makes the look for a stray directory before each partition is made take `ms`, as on a busy disk. */
  function slowPartitionCreates(ms: number): void {
    const prototype = LogManager.prototype as unknown as { directoryExists(path: string): Promise<boolean> };
    const original = prototype.directoryExists;
    vi.spyOn(prototype, 'directoryExists').mockImplementation(async function (this: unknown, path: string) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return original.call(this, path);
    });
  }

  it('leaves no partition directory behind when a delete races a create of many partitions, so the name can be created again', async () => {
    const { broker, dataDir } = await openFresh();
    slowPartitionCreates(10);
    slowRecordDeletes(100);
    const created = settled(broker.createTopic({ name: 'racy', partitions: 20, replicationFactor: 1, configs: {} }));
    // Delete as soon as the record exists, while the create is still making partitions.
    await vi.waitFor(() => expect(broker.listTopics().map((topic) => topic.name)).toContain('racy'), { interval: 0 });
    const deleted = await settled(broker.deleteTopic('racy'));
    await created;
    expect(deleted).toBe('ok');
    expect(broker.listTopics()).toEqual([]);
    expect(partitionDirs(dataDir, 'racy')).toEqual([]);
    vi.restoreAllMocks();
    await broker.createTopic({ name: 'racy', partitions: 20, replicationFactor: 1, configs: {} });
  });

  it('leaves no partition directory behind when a delete races an add-partitions', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'grows', partitions: 2, replicationFactor: 1, configs: {} });
    slowPartitionCreates(10);
    slowRecordDeletes(100);
    const grown = settled(broker.addPartitions('grows', 20));
    await vi.waitFor(() => expect(broker.listTopics().find((topic) => topic.name === 'grows')?.partitions).toBe(20), { interval: 0 });
    const deleted = await settled(broker.deleteTopic('grows'));
    await grown;
    expect(deleted).toBe('ok');
    expect(partitionDirs(dataDir, 'grows')).toEqual([]);
    vi.restoreAllMocks();
    await broker.createTopic({ name: 'grows', partitions: 20, replicationFactor: 1, configs: {} });
  });

  it('applies two add-partitions one after the other: the second sees the first', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'twice', partitions: 1, replicationFactor: 1, configs: {} });
    const results = await Promise.all([settled(broker.addPartitions('twice', 10)), settled(broker.addPartitions('twice', 20))]);
    expect(results[1]).toBe('ok');
    const description = await broker.describeTopic('twice');
    expect(description.partitions.map((partition) => partition.status)).toEqual(Array(20).fill('online'));
  });

  it('close waits for an admin change in flight: nothing is made in the data directory once close returned', async () => {
    const { broker, dataDir } = await openFresh();
    // Close while the create looks for a stray directory before its fourth partition.
    let closed: Promise<void> | undefined;
    const prototype = LogManager.prototype as unknown as { directoryExists(path: string): Promise<boolean> };
    const original = prototype.directoryExists;
    vi.spyOn(prototype, 'directoryExists').mockImplementation(async function (this: unknown, path: string) {
      if (path.endsWith('closing-3')) {
        closed = broker.close();
        // A look that outlasts the close (or 200 ms, if the close waits for this create).
        await Promise.race([closed.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 200))]);
      }
      return original.call(this, path);
    });
    const created = settled(broker.createTopic({ name: 'closing', partitions: 10, replicationFactor: 1, configs: {} }));
    await vi.waitFor(() => expect(closed).toBeDefined(), { interval: 0 });
    await closed;
    const atClose = partitionDirs(dataDir, 'closing').sort();
    // Finished before the close, or refused by it; never run on into a closed metadata store.
    expect(['ok', 'SHUTTING_DOWN']).toContain(await created);
    expect(partitionDirs(dataDir, 'closing').sort()).toEqual(atClose);
  });
});

describe('Broker.createTopic refused part-way', () => {
  it('leaves nothing behind when a partition directory appeared since start-up, and leaves that directory alone', async () => {
    const { broker, dataDir } = await openFresh();
    // Made by hand while the broker runs: it knows nothing of it.
    mkdirSync(join(dataDir, 'late-2'));
    writeFileSync(join(dataDir, 'late-2', 'keep.txt'), 'not the broker\'s');
    await expect(broker.createTopic({ name: 'late', partitions: 3, replicationFactor: 1, configs: {} })).rejects.toMatchObject({
      reason: 'TOPIC_ALREADY_EXISTS',
      details: { leftoverDirectory: 'late-2' },
    });
    expect(broker.listTopics().map((topic) => topic.name)).not.toContain('late');
    expect(readdirSync(dataDir).filter((name) => /^late-\d+$/.test(name)).sort()).toEqual(['late-2']); // not the renamed ones still being removed
    expect(readdirSync(join(dataDir, 'late-2'))).toEqual(['keep.txt']);
  });

  it('undoes an add-partitions refused the same way: the old count stays, and a restart serves nothing of the directory', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const open = () => Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
    const broker = await open();
    await broker.createTopic({ name: 'grow', partitions: 1, replicationFactor: 1, configs: {} });
    mkdirSync(join(dataDir, 'grow-2'));
    await expect(broker.addPartitions('grow', 3)).rejects.toMatchObject({ reason: 'TOPIC_ALREADY_EXISTS', details: { leftoverDirectory: 'grow-2' } });
    expect(broker.listTopics()).toEqual([{ name: 'grow', partitions: 1, replicationFactor: 1 }]);
    expect(readdirSync(dataDir).filter((name) => /^grow-\d+$/.test(name)).sort()).toEqual(['grow-0', 'grow-2']);
    await broker.close();
    const again = await open();
    cleanups.push(() => again.close());
    expect((await again.describeTopic('grow')).partitions).toHaveLength(1);
  });
});

describe('Broker.createTopic failing on an I/O error part-way', () => {
  it.each(['the second partition directory cannot be made', 'the data directory fsync fails'])(
    'leaves no partition directory behind when %s, so the name can be created again',
    async (failure) => {
      const { broker, dataDir } = await openFresh();
      const eio = (): Error => Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      if (failure === 'the second partition directory cannot be made') {
        const original = nodeFileSystem.mkdir;
        vi.spyOn(nodeFileSystem, 'mkdir').mockImplementation(async (path: string) => {
          if (path === join(dataDir, 'broken-1')) throw eio();
          return original(path);
        });
      } else {
        const original = nodeFileSystem.syncDirectory;
        vi.spyOn(nodeFileSystem, 'syncDirectory').mockImplementation(async (path: string) => {
          if (path === dataDir) throw eio();
          return original(path);
        });
      }
      await expect(broker.createTopic({ name: 'broken', partitions: 3, replicationFactor: 1, configs: {} })).rejects.toMatchObject({ reason: 'STORAGE_ERROR' });
      expect(broker.listTopics()).toEqual([]);
      expect(readdirSync(dataDir).filter((name) => /^broken-\d+$/.test(name))).toEqual([]);
      vi.restoreAllMocks();
      await broker.createTopic({ name: 'broken', partitions: 3, replicationFactor: 1, configs: {} });
    },
  );
});

describe('a partition whose log cannot be opened', () => {
  it('is described offline with its reason and bytes while the others are described, and does not stop a config change', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'two', partitions: 2, replicationFactor: 1, configs: {} });
    for (const partition of [0, 1]) await broker.produce({ topic: 'two', partition, batch: batch(['x', 'y']), acks: 'leader', timeoutMs: 10_000 });
    await broker.close();
    const again = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
    cleanups.push(() => again.close());
    // Every file of two-1 fails to open (EIO), as on a failing disk; its directory still lists.
    const eio = (path: string) => Object.assign(new Error(`EIO: i/o error, open '${path}'`), { code: 'EIO' });
    const isBroken = (path: string) => path.startsWith(join(dataDir, 'two-1'));
    const [open, tryReadFile] = [nodeFileSystem.open.bind(nodeFileSystem), nodeFileSystem.tryReadFile.bind(nodeFileSystem)];
    vi.spyOn(nodeFileSystem, 'open').mockImplementation(async (path, mode) => (isBroken(path) ? Promise.reject(eio(path)) : open(path, mode)));
    vi.spyOn(nodeFileSystem, 'tryReadFile').mockImplementation(async (path) => (isBroken(path) ? Promise.reject(eio(path)) : tryReadFile(path)));

    const described = await again.describeTopic('two');
    expect(described.partitions[0]).toMatchObject({ status: 'online', logEndOffset: 2, isr: [again.brokerId] });
    expect(described.partitions[1]).toMatchObject({ status: 'offline', offlineReason: 'STORAGE_ERROR', logStartOffset: -1, logEndOffset: -1, isr: [] });
    expect(described.partitions[1]!.sizeBytes).toBe(described.partitions[0]!.sizeBytes); // the same batch shape on disk

    // The record changes; the open partition takes it at once, the other when it opens.
    const altered = await again.alterTopicConfigs('two', { set: { 'retention.ms': '60000' }, remove: [] });
    expect(altered.overrides).toEqual({ 'retention.ms': '60000' });

    vi.restoreAllMocks();
    expect((await again.describeTopic('two')).partitions.map((partition) => [partition.status, partition.logEndOffset])).toEqual([
      ['online', 2],
      ['online', 2],
    ]);
  });

  /**
   * A broker over topic `full` (2 partitions, 2 records each) where full-1 stopped uncleanly
   * (no partition.state), so its open scans and then writes its state: creating that file
   * fails with ENOSPC, as on a full disk; reads still work.
   */
  async function brokerWithFullDiskUnder(): Promise<Broker> {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'full', partitions: 2, replicationFactor: 1, configs: {} });
    for (const partition of [0, 1]) await broker.produce({ topic: 'full', partition, batch: batch(['x', 'y']), acks: 'leader', timeoutMs: 10_000 });
    await broker.close();
    unlinkSync(join(dataDir, 'full-1', 'partition.state'));
    const again = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
    cleanups.push(() => again.close());
    const enospc = (path: string) => Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), { code: 'ENOSPC' });
    const isBroken = (path: string, mode: string) => path.startsWith(join(dataDir, 'full-1')) && mode === 'create';
    const open = nodeFileSystem.open.bind(nodeFileSystem);
    vi.spyOn(nodeFileSystem, 'open').mockImplementation(async (path, mode) => (isBroken(path, mode) ? Promise.reject(enospc(path)) : open(path, mode)));
    return again;
  }

  it('fails a call with DISK_FULL, not a raw Node error, when its open cannot write partition.state', async () => {
    // A raw error reaches the client as INTERNAL with no reason: nothing says the disk is full.
    const broker = await brokerWithFullDiskUnder();
    const failure = await broker.produce({ topic: 'full', partition: 1, batch: batch(['z']), acks: 'leader', timeoutMs: 10_000 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BrokerError);
    expect(failure).toMatchObject({ reason: 'DISK_FULL' });
  });

  it('is described offline with DISK_FULL when its open meets a full disk, while the others are described', async () => {
    // A full disk is when an operator runs describe: one partition that cannot write its
    // files while opening must not hide the rest of the topic.
    const broker = await brokerWithFullDiskUnder();
    const described = await broker.describeTopic('full');
    expect(described.partitions[0]).toMatchObject({ status: 'online', logEndOffset: 2 });
    expect(described.partitions[1]).toMatchObject({ status: 'offline', offlineReason: 'DISK_FULL', logStartOffset: -1, logEndOffset: -1, isr: [] });
    expect(described.partitions[1]!.sizeBytes).toBe(described.partitions[0]!.sizeBytes);
  });
});

describe('Broker.produce and the partition leader epoch', () => {
  it('stores the leader epoch (0 on a single node), not the one the producer put in the batch', async () => {
    const broker = await openBroker();
    const sent = batch(['e0', 'e1']);
    setBatchLeaderEpoch(sent, 777);
    await broker.produce({ topic: 'tail', partition: 0, batch: sent, acks: 'leader', timeoutMs: 10_000 });
    const fetched = await fetchAt(broker, 0);
    expect(tryReadBatchHeader(fetched.bytes)?.partitionLeaderEpoch).toBe(0);
    expect([...decodeBatches(fetched.bytes)].map((record) => record.value?.toString())).toEqual(['e0', 'e1']); // CRC still holds
  });
});

describe('Broker.produce and the create-time timestamp window (message.timestamp.after.max.ms / before.max.ms)', () => {
  const HOUR_MS = 3_600_000;
  const batchAt = (timestampMs: number): Buffer => encodeBatch({ records: [{ key: null, value: Buffer.from('t'), headers: [], timestamp: timestampMs }] });
  const produceTo = (broker: Broker, topic: string, timestampMs: number) => broker.produce({ topic, partition: 0, batch: batchAt(timestampMs), acks: 'leader', timeoutMs: 10_000 });
  const logEnd = async (broker: Broker, topic: string) => (await broker.listOffset(topic, 0, { kind: 'latest' })).offset;

  it('refuses a record stamped more than an hour ahead by default with INVALID_TIMESTAMP, appending nothing, and accepts one inside', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'clock', partitions: 1, replicationFactor: 1, configs: {} });
    const refused = await produceTo(broker, 'clock', Date.now() + 2 * HOUR_MS).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(BrokerError);
    expect((refused as BrokerError).reason).toBe('INVALID_TIMESTAMP');
    expect((refused as BrokerError).message).toMatch(/message\.timestamp\.after\.max\.ms/);
    expect(await logEnd(broker, 'clock')).toBe(0);
    await produceTo(broker, 'clock', Date.now() + HOUR_MS / 2);
    await produceTo(broker, 'clock', Date.now() - 10 * 365 * 24 * HOUR_MS); // no limit on the past by default
    expect(await logEnd(broker, 'clock')).toBe(2);
    expect((await broker.describeTopic('clock')).configs).toMatchObject({
      'message.timestamp.after.max.ms': String(HOUR_MS),
      'message.timestamp.before.max.ms': String(Number.MAX_SAFE_INTEGER),
    });
  });

  it('follows the topic overrides, and leaves log-append-time topics alone (the broker sets their time)', async () => {
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'future', partitions: 1, replicationFactor: 1, configs: { 'message.timestamp.after.max.ms': String(20 * 365 * 24 * HOUR_MS) } });
    await broker.createTopic({ name: 'recent', partitions: 1, replicationFactor: 1, configs: { 'message.timestamp.before.max.ms': '60000' } });
    await broker.createTopic({ name: 'stamped', partitions: 1, replicationFactor: 1, configs: { 'message.timestamp.type': 'LogAppendTime' } });
    await produceTo(broker, 'future', Date.now() + 10 * 365 * 24 * HOUR_MS);
    expect(await logEnd(broker, 'future')).toBe(1);
    const old = await produceTo(broker, 'recent', Date.now() - 120_000).catch((error: unknown) => error);
    expect((old as BrokerError).reason).toBe('INVALID_TIMESTAMP');
    expect((old as BrokerError).message).toMatch(/message\.timestamp\.before\.max\.ms/);
    expect(await logEnd(broker, 'recent')).toBe(0);
    await produceTo(broker, 'stamped', Date.now() + 10 * 365 * 24 * HOUR_MS);
    expect(await logEnd(broker, 'stamped')).toBe(1);
  });

  it('answers the retry of an idempotent batch appended earlier as its duplicate, though its timestamp has since left the window', async () => {
    // The producer never got the first answer (lost reply, timeout) and resends the same
    // batch. Meanwhile the window moved past its timestamp: time passed, or, as here, the
    // topic's before.max.ms was narrowed. It is in the log: refusing it as INVALID_TIMESTAMP
    // (which the client takes for "not appended") would report an appended record as lost.
    const { broker } = await openFresh();
    await broker.createTopic({ name: 'retry', partitions: 1, replicationFactor: 1, configs: { 'message.timestamp.before.max.ms': String(HOUR_MS) } });
    const { producerId, producerEpoch } = await broker.initProducerId({ producerId: 0, producerEpoch: -1 });
    const sequenced = (baseSequence: number, timestampMs: number): Buffer =>
      encodeBatch({ records: [{ key: null, value: Buffer.from(`s${baseSequence}`), headers: [], timestamp: timestampMs }], producerId, producerEpoch, baseSequence });
    const stampedMs = Date.now() - 60_000;
    const send = (bytes: Buffer) => broker.produce({ topic: 'retry', partition: 0, batch: bytes, acks: 'leader', timeoutMs: 10_000 });
    const first = await send(sequenced(0, stampedMs));
    await broker.alterTopicConfigs('retry', { set: { 'message.timestamp.before.max.ms': '1000' }, remove: [] });
    const retried = await send(sequenced(0, stampedMs));
    expect(retried).toMatchObject({ baseOffset: first.baseOffset, isDuplicate: true });
    // A batch with the next sequence and the same old timestamp was never appended: refused.
    await expect(send(sequenced(1, stampedMs))).rejects.toMatchObject({ reason: 'INVALID_TIMESTAMP' });
    expect(await logEnd(broker, 'retry')).toBe(1);
    // And the refusal left the producer's sequence where it was: the next batch in the window takes 1.
    expect(await send(sequenced(1, Date.now()))).toMatchObject({ baseOffset: 1, isDuplicate: false });
  });
});

describe('Broker.fetch racing a topic delete', () => {
  it('fails with TOPIC_NOT_FOUND, not a retriable SHUTTING_DOWN, when the topic is deleted while its read runs', async () => {
    const broker = await openBroker();
    await produce(broker, ['d0']);
    const read = PartitionLog.prototype.read;
    let deleting: Promise<void> | undefined;
    vi.spyOn(PartitionLog.prototype, 'read').mockImplementation(async function (this: PartitionLog, options) {
      // The delete closes the log and removes its files under this read (a read is not part
      // of the writer's queue, and a delete does not wait for it).
      deleting ??= broker.deleteTopic('tail');
      await deleting;
      return read.call(this, options);
    });
    const failure = await fetchAt(broker, 0).catch((error: unknown) => error);
    await deleting;
    expect(failure).toBeInstanceOf(BrokerError);
    expect((failure as BrokerError).reason).toBe('TOPIC_NOT_FOUND');
    expect((failure as BrokerError).message).toMatch(/tail.*deleted/);
  });

  /**
   * Goal: a fetch whose read found nothing and whose topic was deleted before it could park
   * is told TOPIC_NOT_FOUND and leaves no waiter counted. Method: the read returns (at the log
   * end) only after the delete has finished, then the fetch goes to park. Before, it listened
   * on a partition the log manager no longer knew: PARTITION_NOT_FOUND was thrown inside the
   * wait after the partition's waiter count was raised, and nothing lowered it again, so each
   * such race left one count behind for good (for a re-created topic of the name too), and
   * waitersPerPartitionMax of them refused every parked read with LIMIT_REACHED.
   */
  it('fails with TOPIC_NOT_FOUND, and counts no waiter, when the topic is deleted between its read and its wait', async () => {
    const broker = await openBroker();
    await produce(broker, ['d0']);
    const read = PartitionLog.prototype.read;
    let deleting: Promise<void> | undefined;
    vi.spyOn(PartitionLog.prototype, 'read').mockImplementation(async function (this: PartitionLog, options) {
      const result = await read.call(this, options);
      deleting ??= broker.deleteTopic('tail');
      await deleting;
      return result;
    });
    const failure = await fetchAt(broker, 1).catch((error: unknown) => error);
    await deleting;
    expect((broker as unknown as { waitersByPartition: Map<string, number> }).waitersByPartition.get('tail-0')).toBeUndefined();
    expect((failure as BrokerError).reason).toBe('TOPIC_NOT_FOUND');
  });
});

describe('Broker.deleteTopic interrupted part-way', () => {
  /**
   * A delete removes partition directories one after another; an I/O error (or a crash) after
   * the first leaves the others full. Before, the topic stayed served in that state, and the
   * next start re-created the removed partitions empty: the deleted topic came back with some
   * partitions emptied and the others still holding their records. The failure is made on the
   * rename of the second partition (EIO), which leaves the disk as a crash there would.
   */
  async function deleteFailingAtSecondPartition(): Promise<{ dataDir: string; broker: Broker; logger: ReturnType<typeof recordingLogger> }> {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const logger = recordingLogger();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    cleanups.push(() => broker.close());
    await broker.createTopic({ name: 'doomed', partitions: 3, replicationFactor: 1, configs: {} });
    for (const partition of [0, 1, 2]) {
      await broker.produce({ topic: 'doomed', partition, batch: batch([`secret-${partition}`]), acks: 'leader', timeoutMs: 10_000 });
    }
    const rename = nodeFileSystem.rename;
    vi.spyOn(nodeFileSystem, 'rename').mockImplementation(async (fromPath: string, toPath: string) => {
      if (fromPath === join(dataDir, 'doomed-1')) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      return rename(fromPath, toPath);
    });
    await expect(broker.deleteTopic('doomed')).rejects.toMatchObject({ reason: 'STORAGE_ERROR' });
    vi.restoreAllMocks();
    return { dataDir, broker, logger };
  }
  const partitionDirs = (dataDir: string) => readdirSync(dataDir).filter((name) => name.startsWith('doomed-')).sort();

  it('serves the topic to nobody once its delete has begun, and the next start finishes the delete', async () => {
    const { dataDir, broker } = await deleteFailingAtSecondPartition();
    expect(broker.listTopics()).toEqual([]);
    expect(broker.metadata([]).topics).toEqual([]);
    await expect(broker.describeTopic('doomed')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await expect(
      broker.produce({ topic: 'doomed', partition: 2, batch: batch(['late']), acks: 'leader', timeoutMs: 10_000 }),
    ).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await broker.close();

    const logger = recordingLogger();
    const again = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    cleanups.push(() => again.close());
    expect(again.listTopics()).toEqual([]);
    await vi.waitFor(() => expect(partitionDirs(dataDir)).toEqual([]), { timeout: 10_000 });
    expect(logger.calls).toContainEqual(expect.objectContaining({ level: 'warn', fields: { topic: 'doomed' }, message: expect.stringMatching(/finishing the delete/) }));
    const created = await again.createTopic({ name: 'doomed', partitions: 3, replicationFactor: 1, configs: {} });
    expect(created.partitions.map((partition) => partition.logEndOffset)).toEqual([0, 0, 0]);
  });

  it('is finished by a create of the same name, which then starts with empty partitions', async () => {
    const { dataDir, broker } = await deleteFailingAtSecondPartition();
    const created = await broker.createTopic({ name: 'doomed', partitions: 2, replicationFactor: 1, configs: {} });
    expect(created.partitions.map((partition) => partition.logEndOffset)).toEqual([0, 0]);
    await vi.waitFor(() => expect(partitionDirs(dataDir)).toEqual(['doomed-0', 'doomed-1']), { timeout: 10_000 });
  });

  it('is finished by a second delete', async () => {
    const { dataDir, broker } = await deleteFailingAtSecondPartition();
    await broker.deleteTopic('doomed');
    await expect(broker.deleteTopic('doomed')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await vi.waitFor(() => expect(partitionDirs(dataDir)).toEqual([]), { timeout: 10_000 });
  });

  it('is left marked, served to nobody, with its directories kept, when start-up cannot finish it; the broker starts, serves other topics, and says what to do', async () => {
    const { dataDir, broker } = await deleteFailingAtSecondPartition();
    await broker.createTopic({ name: 'other', partitions: 1, replicationFactor: 1, configs: {} });
    await broker.produce({ topic: 'other', partition: 0, batch: batch(['kept']), acks: 'leader', timeoutMs: 10_000 });
    await broker.close();
    await vi.waitFor(() => expect(partitionDirs(dataDir)).toEqual(['doomed-1', 'doomed-2']), { timeout: 10_000 }); // doomed-0 went before the failure
    // The disk still refuses the rename of doomed-1 when the broker starts again.
    const rename = nodeFileSystem.rename;
    vi.spyOn(nodeFileSystem, 'rename').mockImplementation(async (fromPath: string, toPath: string) => {
      if (fromPath === join(dataDir, 'doomed-1')) throw Object.assign(new Error('EIO: i/o error, rename'), { code: 'EIO' });
      return rename(fromPath, toPath);
    });
    const logger = recordingLogger();
    const again = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    cleanups.push(() => again.close());

    expect(logger.calls).toContainEqual({
      level: 'error',
      fields: expect.objectContaining({ topic: 'doomed', err: expect.stringContaining('EIO') }),
      message: 'could not finish deleting the topic; it is not served. Fix the data directory, then run `runnel topic delete <topic>` (or restart)',
    });
    expect((again as unknown as { meta: MetaStore }).meta.getTopic('doomed')?.isDeleting).toBe(true);
    expect(again.listTopics()).toEqual([{ name: 'other', partitions: 1, replicationFactor: 1 }]);
    await expect(again.describeTopic('doomed')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await expect(again.fetch({ topic: 'doomed', partition: 2, offset: 0, maxBytes: 1 << 20, minBytes: 0, maxWaitMs: 0 })).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    const other = await again.fetch({ topic: 'other', partition: 0, offset: 0, maxBytes: 1 << 20, minBytes: 1, maxWaitMs: 0 });
    expect([...decodeBatches(other.bytes)].map((record) => record.value?.toString())).toEqual(['kept']);
    await again.produce({ topic: 'other', partition: 0, batch: batch(['more']), acks: 'leader', timeoutMs: 10_000 });
    // Kept as they were, by retention too (its records are years old): doomed-1 whole,
    // doomed-2 untouched (the delete stops at the first failure).
    await (again as unknown as { logs: { runRetention(): Promise<void> } }).logs.runRetention();
    expect(partitionDirs(dataDir)).toEqual(['doomed-1', 'doomed-2']);
    for (const partition of [1, 2]) {
      const log = readFileSync(join(dataDir, `doomed-${partition}`, '00000000000000000000.log'));
      expect([...decodeBatches(log)].map((record) => record.value?.toString())).toEqual([`secret-${partition}`]);
    }

    // Once the disk is fixed, the delete the line names finishes it.
    vi.restoreAllMocks();
    await again.deleteTopic('doomed');
    expect((again as unknown as { meta: MetaStore }).meta.getTopic('doomed')).toBeUndefined();
    await vi.waitFor(() => expect(partitionDirs(dataDir)).toEqual([]), { timeout: 10_000 });
  });
});

describe('Broker.deleteTopic whose data-directory fsync fails', () => {
  it('fails with STORAGE_ERROR, serves the topic to nobody, removes the renamed directories, and a retried delete fsyncs the data directory before the record goes', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'unsynced', partitions: 3, replicationFactor: 1, configs: {} });
    for (const partition of [0, 1, 2]) await broker.produce({ topic: 'unsynced', partition, batch: batch([`secret-${partition}`]), acks: 'leader', timeoutMs: 10_000 });
    const events: string[] = [];
    let syncFailures = 1;
    const syncDirectory = nodeFileSystem.syncDirectory;
    vi.spyOn(nodeFileSystem, 'syncDirectory').mockImplementation(async (path: string) => {
      if (path === dataDir) {
        if (syncFailures-- > 0) throw Object.assign(new Error(`EIO: i/o error, fsync '${path}'`), { code: 'EIO' });
        events.push('data directory fsynced');
      }
      return syncDirectory(path);
    });
    const deleteRecord = MetaStore.prototype.deleteTopic;
    vi.spyOn(MetaStore.prototype, 'deleteTopic').mockImplementation(async function (this: MetaStore, name: string) {
      events.push(`record of ${name} deleted`);
      return deleteRecord.call(this, name);
    });

    const failure = await broker.deleteTopic('unsynced').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(BrokerError);
    expect(failure).toMatchObject({ reason: 'STORAGE_ERROR', details: { operation: 'sync', path: dataDir, code: 'EIO' } });
    // Says what state the topic is in and how to finish the delete, not only which call failed.
    expect((failure as BrokerError).message).toMatch(/I\/O error while trying to sync .*EIO.*served to nobody.*run `runnel topic delete unsynced` again/);
    expect(events).toEqual([]); // the record keeps its isDeleting mark
    expect(broker.listTopics()).toEqual([]);
    await expect(broker.describeTopic('unsynced')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    await vi.waitFor(() => expect(readdirSync(dataDir).filter((name) => name.startsWith('unsynced-'))).toEqual([]), { timeout: 10_000 });

    // No directory is left to rename: the retry's fsync is what makes the renames durable, and
    // it comes before the record goes (else a power cut could bring them back with no record).
    await broker.deleteTopic('unsynced');
    expect(events).toEqual(['data directory fsynced', 'record of unsynced deleted']);
    await expect(broker.deleteTopic('unsynced')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    const created = await broker.createTopic({ name: 'unsynced', partitions: 3, replicationFactor: 1, configs: {} });
    expect(created.partitions.map((partition) => partition.logEndOffset)).toEqual([0, 0, 0]);
  });
});

describe('Broker start-up against directories and records that disagree', () => {
  /** Closes the broker on `dataDir` and opens it again with a recording logger. */
  async function reopen(dataDir: string): Promise<{ broker: Broker; logger: ReturnType<typeof recordingLogger> }> {
    const logger = recordingLogger();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger });
    cleanups.push(() => broker.close());
    return { broker, logger };
  }

  it('reports partition directories without a record in one line per topic, saying what to do', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'lost', partitions: 3, replicationFactor: 1, configs: {} });
    await broker.close();
    rmSync(join(dataDir, 'meta'), { recursive: true, force: true });

    const { logger } = await reopen(dataDir);
    const lines = logger.calls.filter((call) => call.fields.topic === 'lost');
    expect(lines).toEqual([
      { level: 'warn', fields: { topic: 'lost', partitions: [0, 1, 2] }, message: expect.stringMatching(/restore it from a backup.*move the directories out of the data directory/) },
    ]);
  });

  it('creates missing partition directories of a topic with one line saying why they may be missing', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'holes', partitions: 3, replicationFactor: 1, configs: {} });
    await broker.close();
    rmSync(join(dataDir, 'holes-0'), { recursive: true, force: true });
    rmSync(join(dataDir, 'holes-2'), { recursive: true, force: true });

    const { broker: again, logger } = await reopen(dataDir);
    expect((await again.describeTopic('holes')).partitions).toHaveLength(3);
    const lines = logger.calls.filter((call) => call.fields.topic === 'holes');
    expect(lines).toEqual([
      { level: 'warn', fields: { topic: 'holes', partitions: [0, 2] }, message: expect.stringMatching(/crash during a topic create or add-partitions.*records are gone/) },
    ]);
  });
});

describe('Broker.deleteTopic of a topic with a name of the longest length', () => {
  it('deletes it, every partition directory included, so the name can be created again', async () => {
    const { broker, dataDir } = await openFresh();
    const name = 'n'.repeat(limits.topicNameLengthMax); // valid: 249 characters, as in Kafka
    await broker.createTopic({ name, partitions: 11, replicationFactor: 1, configs: {} }); // up to `-10`
    await broker.produce({ topic: name, partition: 10, batch: batch(['x']), acks: 'leader', timeoutMs: 10_000 });
    await broker.deleteTopic(name);
    expect(broker.listTopics()).toEqual([]);
    await vi.waitFor(() => expect(readdirSync(dataDir).filter((entry) => entry.startsWith('nnn'))).toEqual([]), { timeout: 10_000 });
    const created = await broker.createTopic({ name, partitions: 11, replicationFactor: 1, configs: {} });
    expect(created.partitions[10]?.logEndOffset).toBe(0);
  });
});

describe('Broker.close while a partition close hangs', () => {
  it('names its stage and the partitions not closed yet, and neither once the close is done', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const { fileSystem, faults } = createFaultyFileSystem();
    const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger, fileSystem });
    await broker.createTopic({ name: 'tail', partitions: 2, replicationFactor: 1, configs: {} });
    await produce(broker, ['a']); // partition 1 stays closed: nothing to wait for
    expect({ stage: broker.closeStage, partitions: broker.partitionsNotClosed() }).toEqual({ stage: undefined, partitions: [{ topic: 'tail', partition: 0 }] });
    faults.holdDatasyncs({ path: /\.log$/ });
    const closing = broker.close();
    await vi.waitFor(() => expect(faults.heldDatasyncs).toBeGreaterThan(0));
    expect({ stage: broker.closeStage, partitions: broker.partitionsNotClosed() }).toEqual({ stage: 'closing partitions', partitions: [{ topic: 'tail', partition: 0 }] });
    faults.clear(); // lets every held fdatasync go
    await closing;
    expect({ stage: broker.closeStage, partitions: broker.partitionsNotClosed() }).toEqual({ stage: 'closed', partitions: [] });
  });
});

describe('Broker.listOffset earliest and latest without opening logs', () => {
  it('answers a partition never used with 0 and leaves its directory empty, and an open one from its log', async () => {
    const { broker, dataDir } = await openFresh();
    await broker.createTopic({ name: 'wide', partitions: 3, replicationFactor: 1, configs: {} });
    const answers = await Promise.all([0, 1, 2].flatMap((partition) => (['earliest', 'latest'] as const).map((kind) => broker.listOffset('wide', partition, { kind }))));
    expect(answers.map((answer) => answer.offset)).toEqual([0, 0, 0, 0, 0, 0]);
    // Before, each was opened to answer: its first segment and partition.state made (with
    // their fsyncs), ~5 s for a topic of 10,000 partitions.
    for (const partition of [0, 1, 2]) expect(readdirSync(join(dataDir, `wide-${partition}`))).toEqual([]);
    await broker.produce({ topic: 'wide', partition: 1, batch: batch(['a']), acks: 'leader', timeoutMs: 10_000 });
    expect((await broker.listOffset('wide', 1, { kind: 'latest' })).offset).toBe(1);
    expect((await broker.listOffset('wide', 0, { kind: 'latest' })).offset).toBe(0);
  });
});
