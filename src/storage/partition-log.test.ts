import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { decodeBatches, tryReadBatchHeader } from '../protocol/index.js';
import { BrokerError, isBrokerError } from '../errors/index.js';
import { ManualClock } from '../common/clock.js';
import { makeBatch, makeTempDir, openTestLog, testConfig } from './test-helpers.js';
import { nodeFileSystem, type FileSystem } from './file-system.js';
import { FileHandleCache } from './file-handle-cache.js';
import { IndexCache } from './index-cache.js';
import type { OffsetIndex } from './offset-index.js';
import type { TimeIndex } from './time-index.js';
import { waitFor } from '../../test/support/wait-for.js';
import { createFaultyFileSystem } from '../../test/support/faulty-file-system.js';
import type { PartitionLog } from './partition-log.js';
import { countSegmentsToDelete } from './retention.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
const templateRemovals: (() => void)[] = [];
afterAll(() => {
  for (const remove of templateRemovals.splice(0)) remove();
});

async function freshLog(config: Parameters<typeof openTestLog>[0]['config'] = {}, extra: Partial<Parameters<typeof openTestLog>[0]> = {}) {
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const log = await openTestLog({ dir: temp.dir, config, ...extra });
  cleanups.push(() => log.close());
  return { log, dir: temp.dir };
}

/** The bytes of every .log file in `dir`, as the file system reports them. */
function segmentBytesOnDisk(dir: string): number {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

/** Holds the first caller of `pass()` until `release()`; every later caller goes straight through. */
function oneTimeGate(): { readonly isHeld: boolean; pass(): Promise<void>; release(): void } {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  let isHeld = false;
  return {
    get isHeld() {
      return isHeld;
    },
    async pass() {
      if (isHeld) return;
      isHeld = true;
      await held;
    },
    release: () => release(),
  };
}

/**
 * A log of 40 small batches over 2 KiB segments (retention.bytes 4096), closed and reopened on
 * a file system that holds the first size lookup of the oldest segment until `gate.release()`.
 */
async function reopenWithOldestSizeLookupHeld(): Promise<{ log: PartitionLog; dir: string; gate: { readonly isHeld: boolean; release(): void } }> {
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const config = { segmentBytes: 2048, retentionBytes: 4096 };
  const first = await openTestLog({ dir: temp.dir, config });
  for (let i = 0; i < 40; i++) await first.append(makeBatch({ count: 1, valueBytes: 200, timestamp: 1_000 + i }));
  await first.close();
  const gate = oneTimeGate();
  const gated: FileSystem = {
    ...nodeFileSystem,
    async trySizeBytes(path) {
      if (path.endsWith('00000000000000000000.log')) await gate.pass();
      return nodeFileSystem.trySizeBytes(path);
    },
  };
  const log = await openTestLog({ dir: temp.dir, config, fileSystem: gated });
  cleanups.push(() => log.close());
  return { log, dir: temp.dir, gate };
}

async function readAll(log: PartitionLog, from = log.logStartOffset): Promise<{ offset: number; value: string }[]> {
  const out: { offset: number; value: string }[] = [];
  let offset = from;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 8192 });
    for (const record of decodeBatches(read.bytes)) {
      if (record.offset >= offset) out.push({ offset: record.offset, value: record.value?.toString() ?? '' });
    }
    expect(read.nextOffset).toBeGreaterThan(offset);
    offset = read.nextOffset;
  }
  return out;
}

describe('PartitionLog', () => {
  it('acknowledges appends split over several write groups in queue order, each once the log holds it', async () => {
    const { log } = await freshLog();
    // 24 × ~100 KiB queued at once: flush=never writes them in groups of ≤ 1 MiB (several writes).
    const settled: string[] = [];
    const appends = Array.from({ length: 24 }, (_, i) =>
      log.append(makeBatch({ count: 2, valueBytes: 50_000, tag: `g${i}` })).then((result) => {
        expect(log.logEndOffset).toBeGreaterThan(result.lastOffset);
        settled.push(`append ${i}`);
        return result;
      }),
    );
    const flushed = log.flush().then(() => settled.push('flush'));
    const results = await Promise.all(appends);
    await flushed;
    expect(results.map((result) => result.baseOffset)).toEqual(Array.from({ length: 24 }, (_, i) => 2 * i));
    expect(settled).toEqual([...Array.from({ length: 24 }, (_, i) => `append ${i}`), 'flush']);
    const records = await readAll(log);
    expect(records.length).toBe(48);
    expect(records[47]?.value.startsWith('g23-1:')).toBe(true);
  });

  it('assigns dense offsets to appended batches and reads them back', async () => {
    const { log } = await freshLog();
    const first = await log.append(makeBatch({ count: 3, tag: 'a' }));
    const second = await log.append(makeBatch({ count: 2, tag: 'b' }));
    expect(first).toEqual({ baseOffset: 0, lastOffset: 2, isDuplicate: false });
    expect(second).toEqual({ baseOffset: 3, lastOffset: 4, isDuplicate: false });
    expect(log.logEndOffset).toBe(5);
    const records = await readAll(log);
    expect(records.map((r) => r.offset)).toEqual([0, 1, 2, 3, 4]);
    expect(records[3]?.value.startsWith('b-0:')).toBe(true);
  });

  it('returns the whole batch holding an offset inside it', async () => {
    const { log } = await freshLog();
    await log.append(makeBatch({ count: 5 }));
    const read = await log.read({ offset: 3, bytesMax: 1 });
    expect(tryReadBatchHeader(read.bytes)?.baseOffset).toBe(0);
    expect(read.nextOffset).toBe(5);
  });

  it('returns at least one whole batch even when it exceeds the byte budget', async () => {
    const { log } = await freshLog();
    await log.append(makeBatch({ count: 1, valueBytes: 10_000 }));
    await log.append(makeBatch({ count: 1, valueBytes: 10_000 }));
    const read = await log.read({ offset: 0, bytesMax: 100 });
    expect(decodeBatches(read.bytes)).toHaveLength(1);
    expect(read.nextOffset).toBe(1);
  });

  it('fills the byte budget of a read in a segment made after index.interval.bytes grew at runtime', async () => {
    // The log opened with 512-byte index entries; segments rolled after the change have one
    // entry per MiB, so the walk from an entry to the offset read can be far longer than the
    // log's read window assumed. The read returned what was left of that window: here under a
    // tenth of its budget, at worst a single batch.
    const { log } = await freshLog({ segmentBytes: 1024 });
    const grown = { ...testConfig, indexIntervalBytes: 1024 * 1024 };
    log.updateConfig({ ...grown, segmentBytes: 1024 });
    await log.append(makeBatch({ valueBytes: 2000 })); // fills segment 0
    await log.append(makeBatch({ valueBytes: 1000 })); // rolls: segment 1 under the new interval
    log.updateConfig({ ...grown, segmentBytes: 8 * 1024 * 1024 });
    for (let i = 0; i < 2000; i++) await log.append(makeBatch({ valueBytes: 1000 }));
    expect(log.segmentCount).toBe(2);
    const batchBytes = makeBatch({ valueBytes: 1000 }).length;
    const bytesMax = 1024 * 1024;
    const read = await log.read({ offset: 900, bytesMax });
    expect(tryReadBatchHeader(read.bytes)?.baseOffset).toBe(900);
    expect(read.bytes.length).toBeGreaterThan(bytesMax - batchBytes);
    expect(read.bytes.length).toBeLessThanOrEqual(bytesMax);
  });

  it('reads a large segment from its nearest index entry, not from the segment start', async () => {
    let bytesRead = 0;
    const counting: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        const handle = await nodeFileSystem.open(path, mode);
        return Object.assign(Object.create(handle) as typeof handle, {
          read: async (buffer: Buffer, offset: number, length: number, position: number) => {
            const read = await handle.read(buffer, offset, length, position);
            bytesRead += read;
            return read;
          },
        });
      },
    };
    const { log } = await freshLog({ segmentBytes: 8 * 1024 * 1024 }, { fileSystem: counting });
    for (let i = 0; i < 4000; i++) await log.append(makeBatch({ valueBytes: 1000 }));
    expect(log.segmentCount).toBe(1);
    bytesRead = 0;
    const read = await log.read({ offset: 3900, bytesMax: 1 });
    expect(tryReadBatchHeader(read.bytes)?.baseOffset).toBe(3900);
    // One window (64 KiB plus one index interval) from the entry at or before offset 3900,
    // not the ~4 MiB in front of it.
    expect(bytesRead).toBeLessThanOrEqual(64 * 1024 + 512 + 8192);
  });

  it('keeps the indexes it caches within what the index cache charges for them, sealed at a roll or loaded from their files', async () => {
    // The memory an index keeps alive: the whole ArrayBuffer under its entries (a private
    // field, read here because that memory is what indexCacheBytesMax bounds).
    const retainedBytes = (index: OffsetIndex | TimeIndex): number => (index as unknown as { entries: Buffer }).entries.buffer.byteLength;
    const retainedByCachedIndexes = (cache: IndexCache, dir: string): number =>
      readdirSync(dir)
        .filter((name) => name.endsWith('.log'))
        .map((name) => cache.get(join(dir, name)))
        .reduce((sum, indexes) => sum + (indexes === undefined ? 0 : retainedBytes(indexes.offsetIndex) + retainedBytes(indexes.timeIndex)), 0);
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const config = { segmentBytes: 2048 };
    const sealedCache = new IndexCache(1024 * 1024);
    const log = await openTestLog({ dir: temp.dir, config, indexCache: sealedCache });
    for (let i = 0; log.segmentCount < 20; i++) await log.append(makeBatch({ valueBytes: 200, timestamp: 1_000 + i }));
    // Each sealed segment's indexes went into the cache at its roll, in the builder's buffers
    // (room for 64 entries each, about 1.3 KB) though it charged ~100 bytes for a few entries.
    expect(retainedByCachedIndexes(sealedCache, temp.dir)).toBeGreaterThan(0);
    expect(retainedByCachedIndexes(sealedCache, temp.dir)).toBeLessThanOrEqual(sealedCache.sizeBytes);
    await log.close();

    const loadedCache = new IndexCache(1024 * 1024);
    const reopened = await openTestLog({ dir: temp.dir, config, indexCache: loadedCache });
    cleanups.push(() => reopened.close());
    expect((await readAll(reopened)).length).toBe(reopened.logEndOffset);
    // Loaded from their files, small indexes were copies in slices of Buffer's shared 8 KiB pool.
    expect(retainedByCachedIndexes(loadedCache, temp.dir)).toBeGreaterThan(0);
    expect(retainedByCachedIndexes(loadedCache, temp.dir)).toBeLessThanOrEqual(loadedCache.sizeBytes);
  });

  it('leaves no index in the cache for a segment whose index files finish loading after its log closed', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const config = { segmentBytes: 2048 };
    const first = await openTestLog({ dir: temp.dir, config });
    for (let i = 0; first.segmentCount < 3; i++) await first.append(makeBatch({ valueBytes: 200 }));
    await first.close();
    const gate = oneTimeGate();
    const gated: FileSystem = {
      ...nodeFileSystem,
      async tryReadFile(path) {
        const bytes = await nodeFileSystem.tryReadFile(path);
        if (path.endsWith('00000000000000000000.timeindex')) await gate.pass();
        return bytes;
      },
    };
    const cache = new IndexCache(1024 * 1024);
    const log = await openTestLog({ dir: temp.dir, config, fileSystem: gated, indexCache: cache });
    const read = log.read({ offset: 0, bytesMax: 1 });
    await waitFor(() => gate.isHeld, { timeoutMs: 2_000, describe: () => 'the read never loaded the time index' });
    await log.close();
    gate.release();
    await read.catch(() => undefined);
    // The closed log's segments were forgotten; indexes cached after that stay until evicted,
    // and charge the bound shared by every partition for a log no one has open.
    expect(cache.sizeBytes).toBe(0);
  });

  it('rejects offsets outside the log with OFFSET_OUT_OF_RANGE and answers empty at the end', async () => {
    const { log } = await freshLog();
    await log.append(makeBatch({ count: 2 }));
    await expect(log.read({ offset: 3, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'OFFSET_OUT_OF_RANGE'));
    await expect(log.read({ offset: -1, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'OFFSET_OUT_OF_RANGE'));
    const atEnd = await log.read({ offset: 2, bytesMax: 100 });
    expect(atEnd.bytes.length).toBe(0);
    expect(atEnd.nextOffset).toBe(2);
  });

  it('rejects a corrupt batch before writing anything', async () => {
    const { log, dir } = await freshLog();
    await log.append(makeBatch());
    const bad = makeBatch();
    bad.writeUInt8(bad.readUInt8(bad.length - 1) ^ 0xff, bad.length - 1);
    await expect(log.append(bad)).rejects.toSatisfy((e) => isBrokerError(e, 'CORRUPT_MESSAGE'));
    expect(log.logEndOffset).toBe(1);
    await log.close();
    const reopened = await openTestLog({ dir });
    cleanups.push(() => reopened.close());
    expect(reopened.logEndOffset).toBe(1);
  });

  it('rolls segments by size and reads across them', async () => {
    const { log, dir } = await freshLog({ segmentBytes: 4096 });
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ count: 2, valueBytes: 200, tag: `s${i}` }));
    expect(log.segmentCount).toBeGreaterThan(4);
    const records = await readAll(log);
    expect(records.map((r) => r.offset)).toEqual([...Array(80).keys()]);
    const logs = readdirSync(dir).filter((name) => name.endsWith('.log'));
    expect(logs.length).toBe(log.segmentCount);
  });

  it('rolls before a relative offset would overflow the index', async () => {
    const { log } = await freshLog({}, { rollLimits: { relativeOffsetMax: 10 } });
    for (let i = 0; i < 6; i++) await log.append(makeBatch({ count: 4 }));
    // A segment spans at most 11 offsets (relative 0..10): two batches of 4 fit, a third does not.
    expect(log.segmentCount).toBe(3);
    expect((await readAll(log)).length).toBe(24);
  });

  it('rolls before a file position would overflow the index', async () => {
    const { log } = await freshLog({}, { rollLimits: { segmentPositionMax: 1000 } });
    for (let i = 0; i < 5; i++) await log.append(makeBatch({ count: 1, valueBytes: 300 }));
    expect(log.segmentCount).toBeGreaterThanOrEqual(3);
    expect((await readAll(log)).length).toBe(5);
  });

  it('rolls by segment.ms measured on batch timestamps', async () => {
    const { log } = await freshLog({ segmentMs: 1000 });
    await log.append(makeBatch({ timestamp: 10_000 }));
    await log.append(makeBatch({ timestamp: 10_500 }));
    expect(log.segmentCount).toBe(1);
    await log.append(makeBatch({ timestamp: 11_001 }));
    expect(log.segmentCount).toBe(2);
  });

  it('finds the first batch at or after a timestamp', async () => {
    const { log } = await freshLog({ segmentBytes: 2048 });
    for (let i = 0; i < 50; i++) await log.append(makeBatch({ count: 2, valueBytes: 100, timestamp: 1000 * i }));
    expect(log.segmentCount).toBeGreaterThan(2);
    expect(await log.offsetForTimestamp(0)).toBe(0);
    expect(await log.offsetForTimestamp(25_000)).toBe(50);
    expect(await log.offsetForTimestamp(25_001)).toBe(52);
    expect(await log.offsetForTimestamp(49_000)).toBe(98);
    expect(await log.offsetForTimestamp(49_001)).toBeUndefined();
  });

  it('finds the right batch by time when a sealed segment\'s .timeindex is well-formed but wrong, rebuilding it', async () => {
    const { log, dir } = await freshLog({ segmentBytes: 2048 });
    for (let i = 0; i < 20; i++) await log.append(makeBatch({ count: 2, valueBytes: 100, timestamp: 1000 * i }));
    expect(log.segmentCount).toBeGreaterThan(2);
    await log.close();
    // Edited by hand (no crash writes this: index files are replaced whole): one entry saying
    // the batch at offset 8 first reached time 2,000. Strictly increasing, inside the segment,
    // so it loads; but that batch is at 4,000, and the first batch at or after 2,001 is at 6.
    const entry = Buffer.alloc(12);
    entry.writeBigInt64BE(2000n, 0);
    entry.writeUInt32BE(8, 8);
    writeFileSync(join(dir, '00000000000000000000.timeindex'), entry);
    const again = await openTestLog({ dir, config: { segmentBytes: 2048 } });
    cleanups.push(() => again.close());
    expect(await again.offsetForTimestamp(2001)).toBe(6);
    expect(await again.offsetForTimestamp(4000)).toBe(8);
    expect(await again.offsetForTimestamp(0)).toBe(0);
  });

  it('finds the right batch by time when a middle .timeindex entry of a sealed segment points too late, rebuilding it', async () => {
    const config = { segmentBytes: 4096, indexIntervalBytes: 1 }; // an entry per batch
    const { log, dir } = await freshLog(config);
    for (let i = 0; i < 30; i++) await log.append(makeBatch({ count: 2, valueBytes: 100, timestamp: 1000 * i }));
    expect(log.segmentCount).toBeGreaterThan(2);
    await log.close();
    const path = join(dir, '00000000000000000000.timeindex');
    const bytes = readFileSync(path);
    expect(bytes.length / 12).toBeGreaterThanOrEqual(5);
    // Entries (1000 k, 2 k): point entries 1 and 2 at entry 3's batch (offsets stay
    // non-decreasing, times increasing, the last entry true), so the search for 1,001 would
    // start at offset 6 and answer 6 instead of 4.
    const offsetOfEntry3 = bytes.readUInt32BE(3 * 12 + 8);
    for (const k of [1, 2]) bytes.writeUInt32BE(offsetOfEntry3, k * 12 + 8);
    writeFileSync(path, bytes);
    const again = await openTestLog({ dir, config });
    cleanups.push(() => again.close());
    expect(await again.offsetForTimestamp(1001)).toBe(4);
    expect(await again.offsetForTimestamp(1000)).toBe(2);
    expect(await again.offsetForTimestamp(3000)).toBe(6);
  });

  it('deletes whole old segments by retention.bytes and never the active one', async () => {
    const { log } = await freshLog({ segmentBytes: 2048, retentionBytes: 4096 });
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    const before = log.segmentCount;
    await log.applyRetention();
    expect(log.segmentCount).toBeLessThan(before);
    expect(log.logStartOffset).toBeGreaterThan(0);
    const stats = await log.stats();
    expect(stats.sizeBytes).toBeGreaterThanOrEqual(4096 - 2048);
    await expect(log.read({ offset: 0, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'OFFSET_OUT_OF_RANGE'));
    expect((await readAll(log)).length).toBe(40 - log.logStartOffset);
  });

  it('answers a read of a segment that retention deletes under it as out of range, not as an I/O error', async () => {
    // Reopened, sealed segments are known by name only: the first read looks up the file's
    // size. Hold that lookup until retention has deleted the file.
    const { log, gate } = await reopenWithOldestSizeLookupHeld();
    const read = log.read({ offset: 0, bytesMax: 100 }).then(
      () => 'read',
      (error: unknown) => (isBrokerError(error, 'OFFSET_OUT_OF_RANGE') ? 'out of range' : String(error)),
    );
    await waitFor(() => gate.isHeld, { timeoutMs: 2_000, describe: () => 'the read never looked up the segment size' });
    await log.applyRetention();
    expect(log.logStartOffset).toBeGreaterThan(0);
    gate.release();
    expect(await read).toBe('out of range');
    expect(await log.offsetForTimestamp(0)).toBe(log.logStartOffset);
  });

  it('leaves no descriptor behind for a read that gets its file only after the log closed, so a partition re-created at that path writes to its own file', async () => {
    // One descriptor in all, held by the test: the read of the active segment waits for it in
    // the cache's queue while the log closes (a clean-opened log's close needs no descriptor).
    // Before, the read then opened the old file and the cache kept that descriptor after the
    // read, under the segment's path; once the directory was removed and the partition created
    // again, the new log's writer was handed the old, deleted file: its acknowledged batches
    // went nowhere.
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const handles = new FileHandleCache(nodeFileSystem, 1);
    const first = await openTestLog({ dir: temp.dir, handles });
    await first.append(makeBatch({ count: 1, tag: 'old' }));
    await first.close();
    const reopened = await openTestLog({ dir: temp.dir, handles });
    const other = join(temp.dir, 'other-file');
    writeFileSync(other, 'x');
    const held = await handles.acquire(other, 'read');
    const read = reopened.read({ offset: 0, bytesMax: 1024 }).then(
      (result) => `read ${decodeBatches(result.bytes).length}`,
      (error: unknown) => (isBrokerError(error) ? error.reason : String(error)),
    );
    await waitFor(() => handles.hasWaiters, { timeoutMs: 2_000, describe: () => 'the read never asked for its file' });
    await reopened.close();
    held.release();
    expect(['read 1', 'SHUTTING_DOWN']).toContain(await read);
    await waitFor(() => handles.descriptorCount === 0, { timeoutMs: 2_000, describe: () => `${handles.descriptorCount} descriptors still open after the log closed` });

    // The partition is deleted and created again under the same name.
    rmSync(temp.dir, { recursive: true, force: true });
    const recreated = await openTestLog({ dir: temp.dir, handles });
    await recreated.append(makeBatch({ count: 1, tag: 'new' }));
    await recreated.close();
    const check = await openTestLog({ dir: temp.dir });
    cleanups.push(() => check.close());
    expect((await readAll(check)).map((record) => record.value.slice(0, 6))).toEqual(['new-0:']);
  });

  it('writes a sealed segment\'s index files once per roll, and reads through them after', async () => {
    const renamed: string[] = [];
    const counting: FileSystem = {
      ...nodeFileSystem,
      async rename(fromPath, toPath) {
        renamed.push(toPath.slice(toPath.lastIndexOf('/') + 1));
        return nodeFileSystem.rename(fromPath, toPath);
      },
    };
    const { log } = await freshLog({ segmentBytes: 2048 }, { fileSystem: counting });
    for (let i = 0; log.segmentCount < 2; i++) await log.append(makeBatch({ count: 1, valueBytes: 200, tag: `r${i}` }));
    const indexFiles = renamed.filter((name) => name.endsWith('.index') || name.endsWith('.timeindex'));
    expect(indexFiles.sort()).toEqual(['00000000000000000000.index', '00000000000000000000.timeindex']);
    expect((await readAll(log)).length).toBe(log.logEndOffset);
  });

  it('reports the size without a segment that retention deletes while stats looks it up', async () => {
    // Reopened, sealed sizes are looked up on demand: hold the lookup of the oldest segment.
    const { log, dir, gate } = await reopenWithOldestSizeLookupHeld();
    const stats = log.stats();
    await waitFor(() => gate.isHeld, { timeoutMs: 2_000, describe: () => 'stats never looked up the oldest segment' });
    // Retention's own lookups pass (only the first is held): it deletes the segment meanwhile.
    await log.applyRetention();
    expect(log.logStartOffset).toBeGreaterThan(0);
    gate.release();
    const reported = await stats;
    expect(reported.sizeBytes).toBe(segmentBytesOnDisk(dir));
  });

  it('keeps a segment whose .log cannot be deleted, and every later one, so no hole opens in the offsets', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const config = { segmentBytes: 2048, retentionBytes: 4096 };
    let isRefusing = true;
    const refusing: FileSystem = {
      ...nodeFileSystem,
      async unlink(path) {
        if (isRefusing && path.endsWith('00000000000000000000.log')) throw Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
        return nodeFileSystem.unlink(path);
      },
    };
    const log = await openTestLog({ dir: temp.dir, config, fileSystem: refusing });
    cleanups.push(() => log.close());
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    const segmentsBefore = log.segmentCount;
    await log.applyRetention();
    expect({ start: log.logStartOffset, segments: log.segmentCount }).toEqual({ start: 0, segments: segmentsBefore });
    expect((await readAll(log)).length).toBe(40);
    await log.close();
    // What a restart sees agrees: every offset from 0, no hole.
    const reopened = await openTestLog({ dir: temp.dir, config, fileSystem: refusing });
    cleanups.push(() => reopened.close());
    expect((await readAll(reopened)).map((record) => record.offset)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // Once the file can go, the next run deletes as retention says.
    isRefusing = false;
    await reopened.applyRetention();
    expect(reopened.logStartOffset).toBeGreaterThan(0);
    expect((await readAll(reopened)).length).toBe(40 - reopened.logStartOffset);
  });

  it('makes each expired .log\'s removal durable (directory fsync) before removing the next, so a power cut cannot leave a hole', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const calls: string[] = [];
    const recording: FileSystem = {
      ...nodeFileSystem,
      async unlink(path) {
        if (path.endsWith('.log')) calls.push(`unlink ${basename(path)}`);
        return nodeFileSystem.unlink(path);
      },
      async syncDirectory(path) {
        calls.push('fsync dir');
        return nodeFileSystem.syncDirectory(path);
      },
    };
    const log = await openTestLog({ dir: temp.dir, config: { segmentBytes: 2048, retentionBytes: 4096 }, fileSystem: recording });
    cleanups.push(() => log.close());
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    calls.length = 0;
    await log.applyRetention();
    const unlinks = calls.filter((call) => call.startsWith('unlink'));
    expect(unlinks.length).toBeGreaterThanOrEqual(2);
    // Between two .log unlinks, and after the last, a directory fsync.
    for (let i = 0; i < calls.length; i++) {
      if (!calls[i]!.startsWith('unlink')) continue;
      const next = calls.slice(i + 1).find((call) => call.startsWith('unlink') || call === 'fsync dir');
      expect(next, calls.join(', ')).toBe('fsync dir');
    }
  });

  it('stops deleting when the directory fsync after a removal fails, keeping the later segments and every offset after the first gone', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    let isFailing = false;
    const failing: FileSystem = {
      ...nodeFileSystem,
      async syncDirectory(path) {
        if (isFailing) throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
        return nodeFileSystem.syncDirectory(path);
      },
    };
    const config = { segmentBytes: 2048, retentionBytes: 4096 };
    const log = await openTestLog({ dir: temp.dir, config, fileSystem: failing });
    cleanups.push(() => log.close());
    for (let i = 0; i < 40; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    const [firstBase, secondBase] = readdirSync(temp.dir).filter((name) => name.endsWith('.log')).sort();
    isFailing = true;
    await log.applyRetention();
    isFailing = false;
    // Only the oldest went; the next one, whose base is now the log start, stays.
    expect(existsSync(join(temp.dir, firstBase!))).toBe(false);
    expect(existsSync(join(temp.dir, secondBase!))).toBe(true);
    expect(log.logStartOffset).toBe(Number.parseInt(secondBase!, 10));
    expect((await readAll(log)).map((record) => record.offset)).toEqual(Array.from({ length: 40 - log.logStartOffset }, (_, i) => log.logStartOffset + i));
  });

  it('flushes by a new, shorter flush interval at once, not after the timer the old interval set', async () => {
    const clock = new ManualClock(100_000);
    const config = { flush: { kind: 'interval' as const, intervalMs: 3_600_000 } };
    const { log } = await freshLog(config, { clock });
    await log.append(makeBatch({ count: 1, timestamp: clock.nowMs() })); // sets a flush timer an hour out
    log.updateConfig({ ...testConfig, flush: { kind: 'interval', intervalMs: 10 } });
    await log.append(makeBatch({ count: 1, timestamp: clock.nowMs() }));
    clock.advance(20);
    await waitFor(() => log.flushedOffset === 2, { timeoutMs: 2_000, describe: () => `flushed up to ${log.flushedOffset} of 2 after the new 10 ms interval` });
  });

  it('flushes bytes written under flush=never within the interval once the topic changes to flush=interval, with no further append', async () => {
    const clock = new ManualClock(100_000);
    const { log } = await freshLog({ flush: { kind: 'never' } }, { clock });
    await log.append(makeBatch({ count: 2, timestamp: clock.nowMs() }));
    expect(log.flushedOffset).toBe(0);
    log.updateConfig({ ...testConfig, flush: { kind: 'interval', intervalMs: 10 } });
    await waitFor(
      () => {
        clock.advance(10);
        return log.flushedOffset === 2;
      },
      { timeoutMs: 2_000, describe: () => `flushed up to ${log.flushedOffset} of 2 under the new 10 ms interval` },
    );
  });

  it('syncs appends queued under flush=interval though the topic changed to flush=never before they were written', async () => {
    // Queued on a fresh log, so no flush timer is pending when the policy changes: the appends
    // were made under the interval's promise (fdatasync within it), and keep it.
    const clock = new ManualClock(100_000);
    const { log } = await freshLog({ flush: { kind: 'interval', intervalMs: 10 } }, { clock });
    const appends = Array.from({ length: 4 }, () => log.append(makeBatch({ count: 1, timestamp: clock.nowMs() })));
    log.updateConfig({ ...testConfig, flush: { kind: 'never' } });
    await Promise.all(appends);
    await waitFor(
      () => {
        clock.advance(10);
        return log.flushedOffset === 4;
      },
      { timeoutMs: 2_000, describe: () => `flushed up to ${log.flushedOffset} of 4 appends queued under interval:10` },
    );
  });

  it('still syncs batches acknowledged under flush=interval when a reader takes the partition offline for damage elsewhere', async () => {
    // The damage is in a sealed segment; the acknowledged batches in the active one are whole,
    // and were promised an fdatasync within the interval. Offline, no flush task runs.
    const clock = new ManualClock(100_000);
    const { log, dir } = await freshLog({ segmentBytes: 2048, flush: { kind: 'interval', intervalMs: 10 } }, { clock });
    while (log.segmentCount < 2 || log.flushedOffset === log.logEndOffset) await log.append(makeBatch({ count: 1, valueBytes: 300, timestamp: clock.nowMs() }));
    const damaged = join(dir, '00000000000000000000.log');
    const bytes = readFileSync(damaged);
    bytes[40] = (bytes[40] as number) ^ 0xff; // inside the first batch's CRC
    writeFileSync(damaged, bytes);
    await expect(log.read({ offset: 0, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'CORRUPT_DATA'));
    expect(log.isOnline).toBe(false);
    await waitFor(
      () => {
        clock.advance(10);
        return log.flushedOffset === log.logEndOffset;
      },
      { timeoutMs: 2_000, describe: () => `flushed up to ${log.flushedOffset} of ${log.logEndOffset} acknowledged before the partition went offline` },
    );
  });

  it('acknowledges an append queued under flush=always only after its fdatasync, though flush changed before it was written', async () => {
    const faulty = createFaultyFileSystem();
    const { log } = await freshLog({ flush: { kind: 'always' } }, { fileSystem: faulty.fileSystem });
    cleanups.push(() => faulty.faults.clear()); // runs first: a held fdatasync would block the close
    await log.append(makeBatch({ count: 1 }));
    faulty.faults.holdDatasyncs({ path: /\.log$/ });
    const first = log.append(makeBatch({ count: 1 }));
    await waitFor(() => faulty.faults.heldDatasyncs === 1, { timeoutMs: 5_000, describe: () => 'the first append was never synced' });
    let isSecondAcked = false;
    const second = log.append(makeBatch({ count: 1 })).then((result) => {
      isSecondAcked = true;
      return result;
    });
    log.updateConfig({ ...testConfig, flush: { kind: 'never' } });
    faulty.faults.releaseDatasync();
    await first;
    // Either the second append reaches its own fdatasync (held), or it is acknowledged without one.
    await waitFor(() => isSecondAcked || faulty.faults.heldDatasyncs === 1, { timeoutMs: 5_000, describe: () => 'the second append was neither synced nor acknowledged' });
    expect(isSecondAcked, 'acknowledged before any fdatasync covered it').toBe(false);
    faulty.faults.releaseDatasync();
    expect((await second).baseOffset).toBe(2);
    expect(log.flushedOffset).toBe(3);
  });

  it('fails a close on a full disk with DISK_FULL (typed, saying what to do), not a raw ENOSPC, and reopens with everything', async () => {
    const faulty = createFaultyFileSystem();
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const dir = temp.dir;
    const log = await openTestLog({ dir, config: {}, fileSystem: faulty.fileSystem });
    await log.append(makeBatch({ count: 2 }));
    // The clean mark cannot be written (the index files before it can).
    faulty.faults.failWritesWith('ENOSPC', { path: /partition\.state/ });
    await expect(log.close()).rejects.toMatchObject({ reason: 'DISK_FULL', message: expect.stringMatching(/free space/) });
    faulty.faults.clear();
    const reopened = await openTestLog({ dir });
    cleanups.push(() => reopened.close());
    expect(reopened.logEndOffset).toBe(2);
  });

  it('reports the bytes an offline partition holds on disk, not 0 (the data awaits repair)', async () => {
    const { log, dir } = await freshLog({ segmentBytes: 2048 });
    for (let i = 0; i < 30; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    await log.close();
    const onDisk = segmentBytesOnDisk(dir);
    expect(onDisk).toBeGreaterThan(6_000);
    const state = JSON.parse(readFileSync(join(dir, 'partition.state'), 'utf8')) as Record<string, unknown>;
    state.offline = { reason: 'CORRUPT_DATA', segmentBaseOffset: 0, position: 0, detail: 'damage found earlier', detectedAtMs: 1 };
    writeFileSync(join(dir, 'partition.state'), JSON.stringify(state));
    const reopened = await openTestLog({ dir, config: { segmentBytes: 2048 } });
    cleanups.push(() => reopened.close());
    const stats = await reopened.stats();
    expect(stats.status).toBe('offline');
    expect(stats.sizeBytes).toBe(onDisk);
  });

  it('counts each segment once when the partition goes offline while its sizes are looked up', async () => {
    const { log, dir } = await freshLog({ segmentBytes: 2048 });
    for (let i = 0; i < 30; i++) await log.append(makeBatch({ count: 1, valueBytes: 200 }));
    await log.close();
    const onDisk = segmentBytesOnDisk(dir);
    const reopened = await openTestLog({ dir, config: { segmentBytes: 2048 } });
    cleanups.push(() => reopened.close());
    // Sealed sizes are unknown after a reopen: stats awaits a stat per segment. Damage a reader
    // found meanwhile takes the log offline.
    const stats = reopened.stats();
    (reopened as unknown as { goOffline(error: BrokerError): void }).goOffline(new BrokerError('CORRUPT_DATA', 'damage found by a reader'));
    expect((await stats).sizeBytes).toBe(onDisk);
  });

  it('deletes segments older than retention.ms by their largest timestamp', async () => {
    const clock = new ManualClock(100_000);
    const { log } = await freshLog({ segmentBytes: 2048, retentionMs: 10_000 }, { clock });
    for (let i = 0; i < 60; i++) await log.append(makeBatch({ count: 1, valueBytes: 200, timestamp: 50_000 + i * 1000 }));
    const before = log.segmentCount;
    // Segments whose newest record is older than 90,000 go; offset 40 (t = 90,000) must stay.
    await log.applyRetention();
    const start = log.logStartOffset;
    expect(log.segmentCount).toBeLessThan(before);
    // The first kept segment holds offset 40; a segment holds 7 of these ~270-byte batches.
    expect(start).toBeLessThanOrEqual(40);
    expect(start).toBeGreaterThan(40 - 8);
  });

  it('empties a log that went quiet once its newest record is past retention.ms: rolls, then deletes every old segment', async () => {
    const clock = new ManualClock(100_000);
    const config = { segmentBytes: 2048, retentionMs: 10_000, flush: { kind: 'always' as const } };
    const { log, dir } = await freshLog(config, { clock });
    for (let i = 0; i < 20; i++) await log.append(makeBatch({ count: 1, valueBytes: 200, timestamp: 95_000 + i }));
    const end = log.logEndOffset;
    await log.applyRetention();
    expect(log.logStartOffset, 'nothing is past retention yet').toBe(0);
    clock.advance(10_000); // the newest record (t = 95,019) is now 15 s old
    await log.applyRetention();
    expect({ start: log.logStartOffset, end: log.logEndOffset, segments: log.segmentCount }).toEqual({ start: end, end, segments: 1 });
    expect(readdirSync(dir).filter((name) => name.endsWith('.log'))).toEqual([`${String(end).padStart(20, '0')}.log`]);
    await expect(log.read({ offset: end - 1, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'OFFSET_OUT_OF_RANGE'));
    // Appends go on at the same offsets, and a reopen keeps the new start.
    expect((await log.append(makeBatch({ count: 1, timestamp: clock.nowMs() }))).baseOffset).toBe(end);
    await log.close();
    const reopened = await openTestLog({ dir, config, clock });
    cleanups.push(() => reopened.close());
    expect({ start: reopened.logStartOffset, end: reopened.logEndOffset }).toEqual({ start: end, end: end + 1 });
  });

  it('deletes nothing when the log goes offline while retention runs (the damaged files stay for repair)', async () => {
    const clock = new ManualClock(100_000);
    const faulty = createFaultyFileSystem();
    const { log, dir } = await freshLog({ segmentBytes: 2048, retentionMs: 10_000 }, { clock, fileSystem: faulty.fileSystem });
    cleanups.push(() => faulty.faults.clear()); // runs first: a held fdatasync would block the close
    for (let i = 0; i < 20; i++) await log.append(makeBatch({ count: 1, valueBytes: 200, timestamp: 95_000 + i }));
    clock.advance(10_000); // everything has expired: retention rolls, then deletes every old segment
    faulty.faults.holdDatasyncs({ path: /\.log$/ });
    const retention = log.applyRetention().then(
      () => 'done',
      (error: unknown) => String(error),
    );
    await waitFor(() => faulty.faults.heldDatasyncs === 1, { timeoutMs: 5_000, describe: () => 'the roll never synced the old segment' });
    // Meanwhile a reader finds damage in the oldest segment: the partition goes offline.
    const first = join(dir, `${'0'.repeat(20)}.log`);
    const bytes = readFileSync(first);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    writeFileSync(first, bytes);
    await expect(log.read({ offset: 0, bytesMax: 100 })).rejects.toSatisfy((e) => isBrokerError(e, 'CORRUPT_DATA'));
    faulty.faults.releaseDatasync();
    await retention;
    expect(log.isOnline).toBe(false);
    expect(readdirSync(dir).filter((name) => name.endsWith('.log')), 'the damaged segment is still there to repair').toContain(`${'0'.repeat(20)}.log`);
  });

  it('reopens after a clean close without losing or rescanning anything', async () => {
    const { log, dir } = await freshLog({ segmentBytes: 4096 });
    for (let i = 0; i < 30; i++) await log.append(makeBatch({ count: 3, valueBytes: 100 }));
    const expected = await readAll(log);
    await log.close();
    const reopened = await openTestLog({ dir, config: { segmentBytes: 4096 } });
    cleanups.push(() => reopened.close());
    expect(reopened.logEndOffset).toBe(90);
    expect(await readAll(reopened)).toEqual(expected);
    await reopened.append(makeBatch({ count: 1 }));
    expect(reopened.logEndOffset).toBe(91);
  });

  it('groups concurrent appends under flush=always and acknowledges each once durable', async () => {
    const { log } = await freshLog({ flush: { kind: 'always' } });
    const results = await Promise.all(Array.from({ length: 64 }, (_, i) => log.append(makeBatch({ count: 2, tag: `c${i}` }))));
    const offsets = results.map((r) => r.baseOffset).sort((a, b) => a - b);
    expect(offsets).toEqual(Array.from({ length: 64 }, (_, i) => i * 2));
    expect(log.flushedOffset).toBe(128);
  });
});

/**
 * A retention run reads a segment's largest timestamp only as far as its decision needs, so a
 * partition of many sealed segments does not load every index into the shared cache at each
 * run (pushing out those readers use). Method: 200 sealed one-batch segments plus an active
 * one, segment i stamped `MANY_FIRST_MS + i` seconds; a file system that counts reads of
 * .timeindex files (each is one index load); the deletion compared with
 * `countSegmentsToDelete` over every segment's facts, which is what a run used to compute.
 */
describe('PartitionLog retention over many sealed segments', () => {
  const SEALED_COUNT = 200;
  const MANY_FIRST_MS = 1_000_000;
  const STEP_MS = 1_000;
  const RETENTION_MS = 3_600_000;
  /** The clock at which segments 0 … n−1 have expired and segment n has not. */
  const nowExpiring = (n: number): number => MANY_FIRST_MS + (n - 1) * STEP_MS + RETENTION_MS + 1;
  const batchOf = (i: number): Buffer => makeBatch({ count: 1, timestamp: MANY_FIRST_MS + i * STEP_MS });
  const batchBytes = batchOf(0).length;
  // One batch per segment: every append past the first of a segment rolls.
  const oneBatchPerSegment = { relativeOffsetMax: 0 };
  let templateDir: string | undefined;

  /** A copy of the 201-segment log, written once per file (200 rolls take a while). */
  async function copyOfManySegmentLog(): Promise<string> {
    if (templateDir === undefined) {
      const template = makeTempDir();
      const log = await openTestLog({ dir: template.dir, rollLimits: oneBatchPerSegment });
      for (let i = 0; i <= SEALED_COUNT; i++) await log.append(batchOf(i));
      expect(log.segmentCount).toBe(SEALED_COUNT + 1);
      await log.close();
      templateDir = template.dir;
      templateRemovals.push(template.remove);
    }
    const copy = makeTempDir();
    cleanups.push(copy.remove);
    cpSync(templateDir, copy.dir, { recursive: true });
    return copy.dir;
  }

  function countingTimeIndexReads(): { fileSystem: FileSystem; readonly count: number; reset(): void } {
    let count = 0;
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      tryReadFile(path) {
        if (path.endsWith('.timeindex')) count++;
        return nodeFileSystem.tryReadFile(path);
      },
    };
    return { fileSystem, get count() { return count; }, reset: () => (count = 0) };
  }

  /** How many leading segments a run deletes by the pure rule, given every segment's facts. */
  function expectedDeletions(settings: { retentionMs: number; retentionBytes: number; nowMs: number }): number {
    const segments = Array.from({ length: SEALED_COUNT + 1 }, (_, i) => ({ sizeBytes: batchBytes, maxTimestamp: MANY_FIRST_MS + i * STEP_MS }));
    return countSegmentsToDelete(segments, settings);
  }

  async function reopenCold(settings: { retentionMs: number; retentionBytes: number; nowMs: number }) {
    const dir = await copyOfManySegmentLog();
    const reads = countingTimeIndexReads();
    const clock = new ManualClock(settings.nowMs);
    const log = await openTestLog({
      dir,
      config: { retentionMs: settings.retentionMs, retentionBytes: settings.retentionBytes },
      fileSystem: reads.fileSystem,
      clock,
      rollLimits: oneBatchPerSegment,
    });
    cleanups.push(() => log.close());
    reads.reset();
    return { log, reads };
  }

  const cases: { name: string; settings: { retentionMs: number; retentionBytes: number; nowMs: number }; deleted: number; timeIndexReadsMax: number }[] = [
    // Segments 0–2 expired: their time indexes and that of segment 3, which stops the run.
    { name: 'by time only', settings: { retentionMs: RETENTION_MS, retentionBytes: -1, nowMs: nowExpiring(3) }, deleted: 3, timeIndexReadsMax: 4 },
    // Sizes need no index at all.
    { name: 'by size only', settings: { retentionMs: -1, retentionBytes: (SEALED_COUNT + 1 - 3) * batchBytes, nowMs: nowExpiring(3) }, deleted: 3, timeIndexReadsMax: 0 },
    // Size lets segment 0 go without its timestamp; time then takes 1 and 2; 3 stops it.
    { name: 'by size, then by time', settings: { retentionMs: RETENTION_MS, retentionBytes: SEALED_COUNT * batchBytes, nowMs: nowExpiring(3) }, deleted: 3, timeIndexReadsMax: 3 },
    // Size takes 0–2, nothing has expired: only segment 3's timestamp is read.
    { name: 'by size, with nothing expired', settings: { retentionMs: RETENTION_MS, retentionBytes: (SEALED_COUNT + 1 - 3) * batchBytes, nowMs: nowExpiring(0) }, deleted: 3, timeIndexReadsMax: 1 },
    // Nothing due either way: one time index, the oldest segment's.
    { name: 'with nothing due', settings: { retentionMs: RETENTION_MS, retentionBytes: (SEALED_COUNT + 1) * batchBytes, nowMs: nowExpiring(0) }, deleted: 0, timeIndexReadsMax: 1 },
  ];

  for (const { name, settings, deleted, timeIndexReadsMax } of cases) {
    it(`deletes as before ${name}, loading only the time indexes the decision needs`, async () => {
      expect(expectedDeletions(settings), 'the case is set up as described').toBe(deleted);
      const { log, reads } = await reopenCold(settings);
      await log.applyRetention();
      expect({ logStartOffset: log.logStartOffset, segmentCount: log.segmentCount }).toEqual({ logStartOffset: deleted, segmentCount: SEALED_COUNT + 1 - deleted });
      expect(reads.count, 'time index loads (every segment\'s before)').toBeLessThanOrEqual(timeIndexReadsMax);
      // A second run remembers the largest timestamps it read: no index load at all.
      reads.reset();
      await log.applyRetention();
      expect(log.logStartOffset).toBe(deleted);
      expect(reads.count).toBe(0);
    });
  }

  it('remembers the largest timestamp of each segment it sealed, so retention loads no index the cache dropped', async () => {
    const reads = countingTimeIndexReads();
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const clock = new ManualClock(nowExpiring(3));
    // An index cache that holds one segment's indexes at most: each roll evicts the last.
    const log = await openTestLog({ dir: temp.dir, config: { retentionMs: RETENTION_MS }, fileSystem: reads.fileSystem, clock, indexCacheBytesMax: 0, rollLimits: oneBatchPerSegment });
    cleanups.push(() => log.close());
    for (let i = 0; i <= SEALED_COUNT; i++) await log.append(batchOf(i));
    reads.reset();
    await log.applyRetention();
    expect(log.logStartOffset).toBe(3);
    expect(reads.count).toBe(0);
  });
});

describe('PartitionLog segment.ms within one write group', () => {
  it('rolls for a batch written in the same group as the first batch of a fresh segment', async () => {
    const { log } = await freshLog({ segmentMs: 1000 });
    await log.append(makeBatch({ timestamp: 5_000 }));
    // The writer runs the roll first; both appends queue behind it and go out as one group,
    // the first of them into the fresh segment.
    const appends = [log.roll(), log.append(makeBatch({ timestamp: 10_000 })), log.append(makeBatch({ timestamp: 11_001 }))];
    await Promise.all(appends);
    expect(log.segmentCount, 'the 11,001 batch is more than segment.ms after the segment\'s first (10,000)').toBe(3);
  });

  it('rolls for a batch written while the fresh segment\'s first batch is still syncing (flush=always)', async () => {
    const { log } = await freshLog({ segmentMs: 1000, flush: { kind: 'always' } });
    const appends = [log.append(makeBatch({ timestamp: 10_000 })), log.append(makeBatch({ timestamp: 11_001 }))];
    await Promise.all(appends);
    expect(log.segmentCount).toBe(2);
  });
});
