/**
 * The idempotent producer through PartitionLog: a retried batch is never appended twice, across
 * write groups, clean reopens, crashes, rolls, retention and a lost snapshot.
 *
 * Method: batches carry producer id, epoch and base sequence (makeBatch's `producer`); a retry
 * is the same batch encoded again (append takes ownership of its buffer). A crash abandons the
 * log without closing it (flush=never: the page cache keeps every acknowledged byte) and
 * reopens the directory with fresh caches, as a restarted process would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.js';
import { isBrokerError, type Reason } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { crc32c, decodeBatches, stampLogAppendTime, tryReadBatchHeader } from '../protocol/index.js';
import { FileHandleCache } from './file-handle-cache.js';
import { nodeFileSystem, type FileSystem } from './file-system.js';
import { IndexCache } from './index-cache.js';
import { PartitionLog, type AppendResult, type PartitionLogConfig } from './partition-log.js';
import { tryReadProducerSnapshot, writeProducerSnapshot } from './producer-snapshot.js';
import { repairPartitionDirectory } from './inspect.js';
import { makeBatch, makeTempDir, testConfig } from './test-helpers.js';
import { rejectionOf } from '../../test/support/rejections.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// ---- Harness -------------------------------------------------------------------------------

/** One "process" holding a log: its own caches, so a crash can drop them all. */
interface Opened {
  log: PartitionLog;
  handles: FileHandleCache;
}

interface Partition {
  dir: string;
  clock: ManualClock;
  config: PartitionLogConfig;
  fileSystem: FileSystem;
  producerIdExpirationMs?: number;
  current: Opened;
}

async function openIn(partition: Omit<Partition, 'current'>): Promise<Opened> {
  const handles = new FileHandleCache(partition.fileSystem, 64);
  const log = await PartitionLog.open({
    dir: partition.dir,
    topic: 'idem',
    partition: 0,
    config: partition.config,
    fileSystem: partition.fileSystem,
    handles,
    indexCache: new IndexCache(1024 * 1024),
    clock: partition.clock,
    logger: silentLogger,
    ...(partition.producerIdExpirationMs === undefined ? {} : { producerIdExpirationMs: partition.producerIdExpirationMs }),
  });
  return { log, handles };
}

async function freshPartition(options: { config?: Partial<PartitionLogConfig>; fileSystem?: FileSystem; producerIdExpirationMs?: number } = {}): Promise<Partition> {
  const temp = makeTempDir('runnel-idem-');
  const base = {
    dir: temp.dir,
    clock: new ManualClock(),
    config: { ...testConfig, ...options.config },
    fileSystem: options.fileSystem ?? nodeFileSystem,
    ...(options.producerIdExpirationMs === undefined ? {} : { producerIdExpirationMs: options.producerIdExpirationMs }),
  };
  const partition: Partition = { ...base, current: await openIn(base) };
  cleanups.push(temp.remove);
  cleanups.push(async () => {
    await partition.current.log.close().catch(() => undefined);
    await partition.current.handles.closeAll();
  });
  return partition;
}

async function reopenCleanly(partition: Partition): Promise<PartitionLog> {
  await partition.current.log.close();
  await partition.current.handles.closeAll();
  partition.current = await openIn(partition);
  return partition.current.log;
}

/** The process dies: no close, its descriptors and memory are gone. */
async function crashAndReopen(partition: Partition): Promise<PartitionLog> {
  await partition.current.handles.closeAll();
  partition.current = await openIn(partition);
  return partition.current.log;
}

const PRODUCER = 4242;

/** A batch from an idempotent producer; encoding it again gives the retry of the same batch. */
function produced(baseSequence: number, options: { count?: number; epoch?: number; producerId?: number; tag?: string } = {}): Buffer {
  return makeBatch({
    count: options.count ?? 1,
    valueBytes: 200,
    tag: options.tag ?? `p${options.producerId ?? PRODUCER}-e${options.epoch ?? 0}-s${baseSequence}`,
    producer: { producerId: options.producerId ?? PRODUCER, producerEpoch: options.epoch ?? 0, baseSequence },
  });
}

function plain(tag = 'plain'): Buffer {
  return makeBatch({ valueBytes: 200, tag });
}

async function expectRejected(promise: Promise<unknown>, reason: Reason, message?: RegExp): Promise<void> {
  const error = await rejectionOf(promise);
  expect(isBrokerError(error, reason), `expected ${reason}, got ${String(error)}`).toBe(true);
  if (message !== undefined) expect((error as Error).message).toMatch(message);
}

async function readValues(log: PartitionLog): Promise<string[]> {
  const values: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 64 * 1024 });
    for (const record of decodeBatches(read.bytes)) if (record.offset >= offset) values.push((record.value?.toString() ?? '').split(':')[0] as string);
    offset = read.nextOffset;
  }
  return values;
}

function appended(baseOffset: number, lastOffset: number): AppendResult {
  return { baseOffset, lastOffset, isDuplicate: false };
}

/** A duplicate of a batch `produced` made: its records are stamped 1_700_000_000_000 + i (makeBatch). */
function duplicateOf(baseOffset: number, lastOffset: number): AppendResult {
  return { baseOffset, lastOffset, isDuplicate: true, maxTimestamp: 1_700_000_000_000 + lastOffset - baseOffset };
}

/** Appends sequences [0, count) of PRODUCER, one record each, and returns their results. */
async function appendSequence(log: PartitionLog, options: { from?: number; count: number; producerId?: number }): Promise<AppendResult[]> {
  const results: AppendResult[] = [];
  for (let i = options.from ?? 0; i < (options.from ?? 0) + options.count; i++) {
    results.push(await log.append(produced(i, options.producerId === undefined ? {} : { producerId: options.producerId })));
  }
  return results;
}

/** A version-2 producer.snapshot rewritten in the version-1 layout (20-byte batches, no maxTimestamp). */
function toVersion1(current: Buffer): Buffer {
  const parts: Buffer[] = [Buffer.from(current.subarray(0, 22))];
  let position = 22;
  for (let i = 0; i < current.readUInt32BE(18); i++) {
    const batchCount = current.readUInt8(position + 18);
    parts.push(current.subarray(position, position + 19));
    position += 19;
    for (let j = 0; j < batchCount; j++, position += 28) parts.push(current.subarray(position, position + 20));
  }
  const old = Buffer.concat(parts);
  old.writeUInt16BE(1, 4);
  old.writeUInt32BE(crc32c(old.subarray(10)), 6);
  return old;
}

/** Retrying the last five batches gives their original offsets; the sixth-newest is out of order. */
async function expectStateOf(log: PartitionLog, results: readonly AppendResult[], producerId = PRODUCER): Promise<void> {
  const endBefore = log.logEndOffset;
  const count = results.length;
  for (let i = Math.max(0, count - 5); i < count; i++) {
    const original = results[i] as AppendResult;
    expect(await log.append(produced(i, { producerId })), `retry of sequence ${i}`).toEqual(duplicateOf(original.baseOffset, original.lastOffset));
  }
  if (count > 5) await expectRejected(log.append(produced(count - 6, { producerId })), 'OUT_OF_ORDER_SEQUENCE', new RegExp(`expected sequence ${count}, got ${count - 6}`));
  expect(log.logEndOffset, 'retries write nothing').toBe(endBefore);
}

// ---- Rules through the writer ----------------------------------------------------------------

describe('idempotent appends', () => {
  it('resolve a retried batch with its original offsets and do not grow the log', async () => {
    const { current } = await freshPartition();
    const { log } = current;
    expect(await log.append(produced(0, { count: 3 }))).toEqual(appended(0, 2));
    expect(await log.append(plain())).toEqual(appended(3, 3));
    const sizeBefore = (await log.stats()).sizeBytes;
    expect(await log.append(produced(0, { count: 3 }))).toEqual(duplicateOf(0, 2));
    expect(log.logEndOffset).toBe(4);
    expect((await log.stats()).sizeBytes).toBe(sizeBefore);
    expect(await readValues(log)).toEqual([`p${PRODUCER}-e0-s0-0`, `p${PRODUCER}-e0-s0-1`, `p${PRODUCER}-e0-s0-2`, 'plain-0']);
    expect(await log.append(produced(3))).toEqual(appended(4, 4));
  });

  it('catch a retry queued in the same write group as its original', async () => {
    const { current } = await freshPartition({ config: { flush: { kind: 'always' } } });
    const { log } = current;
    // The first append occupies the writer; everything after it queues and is written as one group.
    const results = await Promise.all([
      log.append(plain('first')),
      log.append(produced(0, { count: 2 })),
      log.append(produced(0, { count: 2 })),
      log.append(produced(2)),
      log.append(produced(0, { count: 2 })),
      log.append(produced(2)),
      log.append(produced(3)),
    ]);
    expect(results).toEqual([appended(0, 0), appended(1, 2), duplicateOf(1, 2), appended(3, 3), duplicateOf(1, 2), duplicateOf(3, 3), appended(4, 4)]);
    expect(log.logEndOffset).toBe(5);
    expect(log.flushedOffset).toBe(5);
    expect((await readValues(log)).filter((value) => value.endsWith('-0'))).toHaveLength(4);
  });

  it('answer a retry whose timestamp left the window (INVALID_TIMESTAMP) as the duplicate of its original, even one queued behind it in the same write group', async () => {
    const { current } = await freshPartition({ config: { flush: { kind: 'always' } } });
    const { log } = current;
    // makeBatch stamps 1_700_000_000_000 + i: a window starting after it refuses those records.
    const checks = { headersPerRecordMax: 64, decompressedBytesMax: 1 << 20 };
    const closed = { ...checks, timestampType: 'create' as const, createTimestampWindow: { minMs: 1_800_000_000_000, maxMs: 1_900_000_000_000 } };
    const settled = await Promise.allSettled([
      log.append(plain('first')),
      log.append(produced(0, { count: 2 }), { recordChecks: checks }),
      log.append(produced(0, { count: 2 }), { recordChecks: closed }), // its original is in the same group, syncing
      log.append(produced(2), { recordChecks: closed }), // never appended: refused
      log.append(produced(2), { recordChecks: checks }),
    ]);
    expect(settled.map((result) => (result.status === 'fulfilled' ? result.value : (result.reason as { reason?: string }).reason))).toEqual([
      appended(0, 0),
      appended(1, 2),
      duplicateOf(1, 2),
      'INVALID_TIMESTAMP',
      appended(3, 3),
    ]);
    expect(await log.append(produced(0, { count: 2 }), { recordChecks: closed })).toEqual(duplicateOf(1, 2));
    await expectRejected(log.append(plain('late'), { recordChecks: closed }), 'INVALID_TIMESTAMP');
    expect(log.logEndOffset).toBe(4);
  });

  it('reject an out-of-order batch alone, say what they expected, and write nothing for it', async () => {
    const { current } = await freshPartition();
    const { log } = current;
    const settled = await Promise.allSettled([log.append(plain('first')), log.append(produced(0)), log.append(produced(5)), log.append(produced(1))]);
    expect(settled.map((result) => result.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    const rejected = settled[2] as PromiseRejectedResult;
    expect(isBrokerError(rejected.reason, 'OUT_OF_ORDER_SEQUENCE')).toBe(true);
    expect((rejected.reason as Error).message).toMatch(/expected sequence 1, got 5/);
    expect((settled[3] as PromiseFulfilledResult<AppendResult>).value).toEqual(appended(2, 2));
    const sizeBefore = (await log.stats()).sizeBytes;
    await expectRejected(log.append(produced(3)), 'OUT_OF_ORDER_SEQUENCE', /expected sequence 2, got 3/);
    expect(log.logEndOffset).toBe(3);
    expect((await log.stats()).sizeBytes).toBe(sizeBefore);
    expect(await readValues(log)).toEqual(['first-0', `p${PRODUCER}-e0-s0-0`, `p${PRODUCER}-e0-s1-0`]);
  });

  it('fence a batch from an epoch one behind, and require a new epoch to start at sequence 0', async () => {
    const { current } = await freshPartition();
    const { log } = current;
    expect(await log.append(produced(0, { epoch: 1 }))).toEqual(appended(0, 0));
    await expectRejected(log.append(produced(1, { epoch: 0 })), 'PRODUCER_FENCED', /newer producer with the same id/);
    await expectRejected(log.append(produced(1, { epoch: 2 })), 'OUT_OF_ORDER_SEQUENCE', /must start at sequence 0/);
    expect(log.logEndOffset).toBe(1);
    expect(await log.append(produced(0, { epoch: 2 }))).toEqual(appended(1, 1));
    await expectRejected(log.append(produced(1, { epoch: 1 })), 'PRODUCER_FENCED');
  });

  it('keep producers apart and accept an unknown producer at any sequence', async () => {
    const { current } = await freshPartition();
    const { log } = current;
    expect(await log.append(produced(17, { producerId: 1 }))).toEqual(appended(0, 0));
    expect(await log.append(produced(0, { producerId: 2 }))).toEqual(appended(1, 1));
    expect(await log.append(produced(18, { producerId: 1 }))).toEqual(appended(2, 2));
    expect(await log.append(produced(0, { producerId: 2 }))).toEqual(duplicateOf(1, 1));
    expect((await log.stats()).producerCount).toBe(2);
  });

  it('append a repeated batch every time when it carries no producer id', async () => {
    const { current } = await freshPartition();
    const { log } = current;
    expect(await log.append(plain('same'))).toEqual(appended(0, 0));
    expect(await log.append(plain('same'))).toEqual(appended(1, 1));
    expect((await log.stats()).producerCount).toBe(0);
  });

  it('reject an idempotent batch with a negative sequence before queuing it', async () => {
    const { current } = await freshPartition();
    await expectRejected(current.log.append(makeBatch({ producer: { producerId: 1, producerEpoch: 0, baseSequence: -1 } })), 'INVALID_REQUEST', /baseSequence/);
    expect(current.log.logEndOffset).toBe(0);
  });
});

describe('a duplicate under LogAppendTime', () => {
  /**
   * The broker stamps each batch of a LogAppendTime topic with its append time (maxTimestamp)
   * before it reaches the log, the retry with a later time than the original. The log must
   * answer the retry with the time stored with the original, through every way the producer
   * state is rebuilt: in memory, the snapshot at a clean close, the recovery scan after a
   * crash, a full replay when the snapshot is gone or in the old format without timestamps.
   */
  const ORIGINAL_MS = 1_800_000_000_000;

  function stamped(baseSequence: number, appendTimeMs: number, count = 1): Buffer {
    const batch = produced(baseSequence, { count });
    stampLogAppendTime(batch, appendTimeMs);
    return batch;
  }

  async function expectOriginalTime(log: PartitionLog, retryMs: number, what: string): Promise<void> {
    expect(await log.append(stamped(0, retryMs, 2)), what).toEqual({ baseOffset: 0, lastOffset: 1, isDuplicate: true, maxTimestamp: ORIGINAL_MS });
    expect(await log.append(stamped(2, retryMs + 1)), what).toEqual({ baseOffset: 2, lastOffset: 2, isDuplicate: true, maxTimestamp: ORIGINAL_MS + 5 });
  }

  async function appendOriginals(partition: Partition): Promise<void> {
    expect(await partition.current.log.append(stamped(0, ORIGINAL_MS, 2))).toEqual(appended(0, 1));
    expect(await partition.current.log.append(stamped(2, ORIGINAL_MS + 5))).toEqual(appended(2, 2));
  }

  it('answers a retry with the append time of the original, not its own', async () => {
    const partition = await freshPartition();
    await appendOriginals(partition);
    await expectOriginalTime(partition.current.log, ORIGINAL_MS + 60_000, 'in memory');
  });

  it('keeps the original append time across a clean reopen, a crash, and a lost snapshot', async () => {
    const partition = await freshPartition();
    await appendOriginals(partition);
    await expectOriginalTime(await reopenCleanly(partition), ORIGINAL_MS + 60_000, 'after a clean reopen (snapshot)');
    await expectOriginalTime(await crashAndReopen(partition), ORIGINAL_MS + 120_000, 'after a crash (recovery scan)');
    await partition.current.log.close();
    unlinkSync(join(partition.dir, 'producer.snapshot'));
    await expectOriginalTime(await reopenCleanly(partition), ORIGINAL_MS + 180_000, 'after the snapshot was lost (full replay)');
  });

  it('rebuilds from the log, with the original times, when producer.snapshot is in the old format without them', async () => {
    const partition = await freshPartition();
    await appendOriginals(partition);
    await partition.current.log.close();
    const path = join(partition.dir, 'producer.snapshot');
    const current = readFileSync(path);
    // A version-1 file of the same state: version 1 had 20-byte batches, without maxTimestamp.
    const old = Buffer.concat([current.subarray(0, 22 + 19), current.subarray(22 + 19, 22 + 19 + 20), current.subarray(22 + 19 + 28, 22 + 19 + 28 + 20)]);
    expect(old.readUInt32BE(18), 'one producer').toBe(1);
    expect(old.readUInt8(22 + 18), 'two batches').toBe(2);
    old.writeUInt16BE(1, 4);
    old.writeUInt32BE(crc32c(old.subarray(10)), 6);
    writeFileSync(path, old);
    await expectOriginalTime(await reopenCleanly(partition), ORIGINAL_MS + 60_000, 'after reading an old snapshot');
  });
});

// ---- Durability and rebuild ------------------------------------------------------------------

describe('producer state after a repair', () => {
  it.each([
    ['removed by the repair', false],
    ['left behind (put back by hand): removed at the next open', true],
  ])('never trusts a snapshot a repair left past the log end, even once appends pass it again: %s', async (_label, isPutBack) => {
    const partition = await freshPartition();
    const sizes: number[] = [];
    for (let sequence = 0; sequence < 10; sequence++) {
      const batch = produced(sequence);
      sizes.push(batch.length);
      await partition.current.log.append(batch);
    }
    let log = await reopenCleanly(partition); // a snapshot at offset 10
    const snapshotBytes = readFileSync(join(partition.dir, 'producer.snapshot'));
    await log.close();
    await partition.current.handles.closeAll();
    // Damage batch 5, then repair: the log is cut back to offset 5.
    const logFile = join(partition.dir, readdirSync(partition.dir).find((name) => name.endsWith('.log')) as string);
    const bytes = readFileSync(logFile);
    const position = sizes.slice(0, 5).reduce((sum, size) => sum + size, 0) + (sizes[5] as number) - 2;
    bytes[position] = (bytes[position] as number) ^ 0xff;
    writeFileSync(logFile, bytes);
    expect((await repairPartitionDirectory(nodeFileSystem, partition.dir, { apply: true })).newLogEndOffset).toBe(5);
    if (isPutBack) writeFileSync(join(partition.dir, 'producer.snapshot'), snapshotBytes);
    partition.current = await openIn(partition);
    log = partition.current.log;
    expect(existsSync(join(partition.dir, 'producer.snapshot'))).toBe(false);
    // Another producer writes offsets 5..9, a plain batch takes 10: the end passes the old snapshot.
    for (let sequence = 0; sequence < 5; sequence++) await log.append(produced(sequence, { producerId: 7 }));
    await log.append(plain());
    log = await crashAndReopen(partition);
    expect(await log.append(produced(5))).toEqual(appended(11, 11)); // new, not a "duplicate" of a cut batch
    expect(await log.append(produced(4, { producerId: 7 }))).toEqual(duplicateOf(9, 9));
  });

  it('keeps a snapshot at or below the cut: the producers retention took out of the log live only there', async () => {
    const partition = await freshPartition({ config: { segmentBytes: 1024, retentionBytes: 2048 } });
    const early = await appendSequence(partition.current.log, { count: 5, producerId: 7 });
    for (let i = 0; i < 20; i++) await partition.current.log.append(plain(`filler${i}`));
    await partition.current.log.applyRetention(); // snapshots at the log end first
    expect(partition.current.log.logStartOffset, 'producer 7 is gone from the log').toBeGreaterThan(5);
    // Three batches after the snapshot on disk (a roll on the way writes a newer one).
    const snapshotOffsetNow = async (): Promise<number> => (await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset as number;
    while (partition.current.log.logEndOffset < (await snapshotOffsetNow()) + 3) await partition.current.log.append(plain('after'));
    const snapshotOffset = await snapshotOffsetNow();
    // The process stops without a clean close (as when the damage took the log offline first,
    // where close writes nothing): the snapshot on disk stays the one retention took.
    await partition.current.handles.closeAll();
    // Damage the batch after the snapshot's offset, with a valid batch after it: the repair cuts there.
    const damaged = snapshotOffset + 1;
    const logName = readdirSync(partition.dir).filter((name) => name.endsWith('.log') && Number(name.slice(0, 20)) <= damaged).sort().at(-1) as string;
    const bytes = readFileSync(join(partition.dir, logName));
    let position = 0;
    for (let header = tryReadBatchHeader(bytes, 0); header !== undefined && header.baseOffset < damaged; header = tryReadBatchHeader(bytes, position)) position += header.sizeBytes;
    const header = tryReadBatchHeader(bytes, position);
    expect(header?.baseOffset).toBe(damaged);
    const inRecords = position + (header?.sizeBytes as number) - 2;
    bytes[inRecords] = (bytes[inRecords] as number) ^ 0xff;
    writeFileSync(join(partition.dir, logName), bytes);
    expect((await repairPartitionDirectory(nodeFileSystem, partition.dir, { apply: true })).newLogEndOffset).toBe(damaged);
    expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset).toBe(snapshotOffset);
    partition.current = await openIn(partition);
    await expectStateOf(partition.current.log, early, 7);
  });
});

describe('producer state after a restart', () => {
  it('survives a clean close and reopen through a snapshot at the log end, replaying nothing', async () => {
    const partition = await freshPartition();
    const results = await appendSequence(partition.current.log, { count: 7 });
    await partition.current.log.append(plain());
    const log = await reopenCleanly(partition);
    expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset).toBe(8);
    await expectStateOf(log, results);
    expect(await log.append(produced(7))).toEqual(appended(8, 8));
  });

  it('survives a crash without close (flush=never), rebuilt by the recovery scan', async () => {
    const partition = await freshPartition();
    const results = await appendSequence(partition.current.log, { count: 8 });
    expect(existsSync(join(partition.dir, 'producer.snapshot'))).toBe(false);
    const log = await crashAndReopen(partition);
    await expectStateOf(log, results);
    expect(await log.append(produced(8))).toEqual(appended(8, 8));
    // And once more: the first reopen's state is the one that survives the next crash.
    await expectStateOf(await crashAndReopen(partition), [...results, appended(8, 8)]);
  });

  it('survives segment rolls and a crash: the roll snapshot covers the sealed segments, the scan the active one', async () => {
    const opened: string[] = [];
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      open: (path, mode) => {
        opened.push(path);
        return nodeFileSystem.open(path, mode);
      },
    };
    const partition = await freshPartition({ config: { segmentBytes: 1024 }, fileSystem });
    // Producer 7 writes only at the start: its state lives in sealed segments and the snapshot.
    const early = await appendSequence(partition.current.log, { count: 6, producerId: 7 });
    const results = await appendSequence(partition.current.log, { count: 20 });
    const log = partition.current.log;
    expect(log.segmentCount).toBeGreaterThan(5);
    const activeBase = Number(readdirSync(partition.dir).filter((name) => name.endsWith('.log')).sort().at(-1)?.slice(0, 20));
    expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset, 'the last roll wrote a snapshot at the new base').toBe(activeBase);
    expect(log.logEndOffset).toBeGreaterThan(activeBase);

    opened.length = 0;
    const recovered = await crashAndReopen(partition);
    const logsOpened = opened.filter((path) => path.endsWith('.log'));
    expect(logsOpened, 'only the active segment is read at start-up').toEqual([join(partition.dir, `${String(activeBase).padStart(20, '0')}.log`)]);
    await expectStateOf(recovered, results);
    await expectStateOf(recovered, early, 7);
  });

  for (const { name, edit } of [
    { name: 'deleted', edit: (path: string) => unlinkSync(path) },
    { name: 'garbled', edit: (path: string) => writeFileSync(path, Buffer.alloc(64, 0x5a)) },
  ]) {
    it(`is rebuilt from the whole log when producer.snapshot is ${name}`, async () => {
      const partition = await freshPartition({ config: { segmentBytes: 1024 } });
      const early = await appendSequence(partition.current.log, { count: 6, producerId: 7 });
      const results = await appendSequence(partition.current.log, { count: 12 });
      await partition.current.log.close();
      edit(join(partition.dir, 'producer.snapshot'));
      const log = await reopenCleanly(partition);
      await expectStateOf(log, results);
      await expectStateOf(log, early, 7);
      // The clean close of a rebuilt log writes the snapshot again.
      await reopenCleanly(partition);
      expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset).toBe(partition.current.log.logEndOffset);
    });
  }

  it('takes the partition offline with CORRUPT_DATA when the rebuild finds damage in a sealed segment', async () => {
    const partition = await freshPartition({ config: { segmentBytes: 1024 } });
    await appendSequence(partition.current.log, { count: 12 });
    await partition.current.log.close();
    unlinkSync(join(partition.dir, 'producer.snapshot'));
    const firstSegment = join(partition.dir, `${'0'.repeat(20)}.log`);
    const bytes = readFileSync(firstSegment);
    bytes[100] = (bytes[100] as number) ^ 0xff; // inside the first batch's records: its CRC fails
    writeFileSync(firstSegment, bytes);
    const log = await reopenCleanly(partition);
    expect(log.isOnline).toBe(false);
    await expectRejected(log.read({ offset: 0, bytesMax: 1024 }), 'CORRUPT_DATA');
    await expectRejected(log.append(produced(12)), 'CORRUPT_DATA');
  });

  it('ignores a snapshot past the log end and rebuilds from the log', async () => {
    const partition = await freshPartition();
    const results = await appendSequence(partition.current.log, { count: 6 });
    await partition.current.log.close();
    // What a repair that cut the log below the snapshot would leave: a snapshot of batches that are gone.
    const bogus = { producerId: PRODUCER, epoch: 9, lastTimestamp: partition.clock.nowMs(), batches: [{ firstSequence: 0, lastSequence: 0, baseOffset: 50, lastOffset: 50, maxTimestamp: partition.clock.nowMs() }] };
    await writeProducerSnapshot(nodeFileSystem, partition.dir, { offset: 100, producers: [bogus] });
    const log = await reopenCleanly(partition);
    await expectStateOf(log, results);
    // The same after a crash (no clean mark: the recovery scan path).
    unlinkSync(join(partition.dir, 'partition.state'));
    await writeProducerSnapshot(nodeFileSystem, partition.dir, { offset: 100, producers: [bogus] });
    await expectStateOf(await crashAndReopen(partition), results);
  });

  it('survives retention deleting the segments that held it', async () => {
    const partition = await freshPartition({ config: { segmentBytes: 1024, retentionBytes: 2048 } });
    const early = await appendSequence(partition.current.log, { count: 5, producerId: 7 });
    for (let i = 0; i < 20; i++) await partition.current.log.append(plain(`filler${i}`));
    await partition.current.log.applyRetention();
    expect(partition.current.log.logStartOffset, 'producer 7 is gone from the log').toBeGreaterThan(5);
    await expectStateOf(await crashAndReopen(partition), early, 7);
  });

  it('writes a snapshot before retention deletes segments when the snapshot was lost', async () => {
    const partition = await freshPartition({ config: { segmentBytes: 1024, retentionBytes: 2048 } });
    const early = await appendSequence(partition.current.log, { count: 5, producerId: 7 });
    for (let i = 0; i < 20; i++) await partition.current.log.append(plain(`filler${i}`));
    await partition.current.log.close();
    unlinkSync(join(partition.dir, 'producer.snapshot'));
    const log = await reopenCleanly(partition); // rebuilt from the whole log, nothing on disk yet
    expect(existsSync(join(partition.dir, 'producer.snapshot'))).toBe(false);
    await log.applyRetention();
    expect(log.logStartOffset).toBeGreaterThan(5);
    expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.offset).toBe(log.logEndOffset);
    await expectStateOf(await crashAndReopen(partition), early, 7);
  });

  it('keeps, from a version-1 snapshot, the producers whose batches retention already deleted', async () => {
    const partition = await freshPartition({ config: { segmentBytes: 1024, retentionBytes: 2048 } });
    const early = await appendSequence(partition.current.log, { count: 5, producerId: 7 });
    for (let i = 0; i < 20; i++) await partition.current.log.append(plain(`filler${i}`));
    await partition.current.log.applyRetention();
    expect(partition.current.log.logStartOffset, 'producer 7 is gone from the log').toBeGreaterThan(5);
    await partition.current.log.close();
    // The file a version-1 broker left: producer 7 lives only in it.
    const path = join(partition.dir, 'producer.snapshot');
    writeFileSync(path, toVersion1(readFileSync(path)));
    const last = early[4] as AppendResult;
    const retry = { baseOffset: last.baseOffset, lastOffset: last.lastOffset, isDuplicate: true, maxTimestamp: 1_700_000_000_000 };
    let log = await reopenCleanly(partition);
    const endBefore = log.logEndOffset;
    expect(await log.append(produced(4, { producerId: 7 })), 'clean open').toEqual(retry);
    expect(log.logEndOffset, 'the retry wrote nothing').toBe(endBefore);
    await log.close();
    expect(readFileSync(path).readUInt16BE(4), 'the close replaced the version-1 file').toBe(2);
    // The same through the crash-recovery scan.
    writeFileSync(path, toVersion1(readFileSync(path)));
    unlinkSync(join(partition.dir, 'partition.state'));
    log = await crashAndReopen(partition);
    expect(await log.append(produced(4, { producerId: 7 })), 'after a crash').toEqual(retry);
    expect(log.logEndOffset, 'the retry wrote nothing').toBe(endBefore);
  });

  it('drops producers older than the expiry when a snapshot is taken; their next batch is accepted at any sequence', async () => {
    const partition = await freshPartition({ producerIdExpirationMs: 60_000 });
    const log = partition.current.log;
    await appendSequence(log, { count: 3, producerId: 1 });
    await log.append(makeBatch({ timestamp: partition.clock.nowMs() + 120_000, producer: { producerId: 2, producerEpoch: 0, baseSequence: 0 } }));
    partition.clock.advance(90_000);
    await log.roll();
    expect((await tryReadProducerSnapshot(nodeFileSystem, partition.dir))?.producers.map((entry) => entry.producerId)).toEqual([2]);
    expect((await log.stats()).producerCount).toBe(1);
    expect(await log.append(produced(40, { producerId: 1 }))).toEqual(appended(4, 4));
    await expectRejected(log.append(makeBatch({ producer: { producerId: 2, producerEpoch: 0, baseSequence: 5 } })), 'OUT_OF_ORDER_SEQUENCE');
  });

  it('keeps a producer whose batches carry old create timestamps (a backfill) while it appends, across a roll, a clean reopen and a crash', async () => {
    // Backfills and replays keep their records' original times (defaults.messageTimestampBeforeMaxMs
    // has no limit), so the batch timestamps of a producer appending right now may be days old.
    // Expiry counts from when the broker last saw the producer append, or the batch time if later.
    const partition = await freshPartition({ producerIdExpirationMs: 60_000 });
    const weekAgoMs = partition.clock.nowMs() - 7 * 24 * 3_600_000;
    const backfill = (baseSequence: number): Buffer =>
      makeBatch({ valueBytes: 200, tag: `backfill-s${baseSequence}`, timestamp: weekAgoMs + baseSequence, producer: { producerId: 9, producerEpoch: 0, baseSequence } });
    const retryOf = (sequence: number, offset: number): AppendResult => ({ baseOffset: offset, lastOffset: offset, isDuplicate: true, maxTimestamp: weekAgoMs + sequence });
    let log = partition.current.log;
    for (let sequence = 0; sequence < 3; sequence++) expect(await log.append(backfill(sequence))).toEqual(appended(sequence, sequence));
    await log.roll(); // takes a snapshot, which drops expired producers
    expect(await log.append(backfill(2)), 'after a roll').toEqual(retryOf(2, 2));
    log = await reopenCleanly(partition);
    expect(await log.append(backfill(2)), 'after a clean reopen').toEqual(retryOf(2, 2));
    expect(await log.append(backfill(3))).toEqual(appended(3, 3));
    log = await crashAndReopen(partition); // rebuilt from the log, whose batch times are old
    await log.roll();
    expect(await log.append(backfill(3)), 'after a crash and a roll').toEqual(retryOf(3, 3));
    expect(log.logEndOffset).toBe(4);
    // Once it stops appending for longer than the expiry, it is forgotten at the next snapshot.
    partition.clock.advance(60_001);
    await log.append(plain());
    await log.roll();
    expect((await log.stats()).producerCount).toBe(0);
  });
});
