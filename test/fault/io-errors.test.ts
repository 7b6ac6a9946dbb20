/**
 * I/O errors under a running partition log.
 *
 * Goal: a failed write or fdatasync fails the appends it carried (STORAGE_ERROR, or DISK_FULL
 * for ENOSPC) and leaves the log exactly as it was before them: no partial bytes, nothing
 * unacknowledged readable, appends working again once the fault clears. Where the log can no
 * longer vouch for its own tail (the cut-back after a failed write failed, or a background
 * fdatasync of acknowledged bytes failed), the partition goes offline with STORAGE_ERROR
 * instead. Nothing here may crash the process.
 *
 * Method: the log runs on the faulty file system (test/support/faulty-file-system.ts) with
 * faults scoped to the .log files, so partition.state and index writes are spared unless a
 * test says otherwise. After each fault the test checks the visible log, the bytes on disk,
 * and, by reopening with the plain node file system, what a restart would find.
 */
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, type Clock } from '../../src/common/clock.js';
import type { Logger } from '../../src/observability/index.js';
import { decodeBatches, tryReadBatchHeader, type BatchHeader } from '../../src/protocol/index.js';
import { FileHandleCache, nodeFileSystem, type FileSystem, type PartitionLog, type PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog, testConfig } from '../../src/storage/test-helpers.js';
import { createFaultyFileSystem, errnoError, type FaultyFileSystem } from '../support/faulty-file-system.js';
import { waitFor } from '../support/wait-for.js';
import { recordingLogger } from '../support/recording-logger.js';
import { expectExactlyAcked, type Acked } from '../support/acked-oracle.js';
import { expectReason, rejectionOf } from '../support/rejections.js';

const LOG_FILES = /\.log$/;

const cleanups: (() => void | Promise<void>)[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};

beforeEach(() => {
  process.on('unhandledRejection', onUnhandled);
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled.splice(0), 'no promise rejection went unhandled').toEqual([]);
});

// ---- Harness -------------------------------------------------------------------------------




interface FaultyLog extends FaultyFileSystem {
  log: PartitionLog;
  dir: string;
  logger: ReturnType<typeof recordingLogger>;
}

async function openFaultyLog(config: Partial<PartitionLogConfig> = {}, clock?: ManualClock): Promise<FaultyLog> {
  const temp = makeTempDir('runnel-io-');
  cleanups.push(temp.remove);
  const faulty = createFaultyFileSystem();
  const logger = recordingLogger();
  const log = await openTestLog({ dir: temp.dir, config, fileSystem: faulty.fileSystem, logger, ...(clock === undefined ? {} : { clock }) });
  cleanups.push(() => log.close());
  cleanups.push(() => faulty.faults.clear()); // runs first: a held fdatasync would block the close
  return { ...faulty, log, dir: temp.dir, logger };
}

async function openPlain(dir: string, config: Partial<PartitionLogConfig> = {}, logger?: Logger): Promise<PartitionLog> {
  const log = await openTestLog({ dir, config, ...(logger === undefined ? {} : { logger }) });
  cleanups.push(() => log.close());
  return log;
}

async function appendAcked(log: PartitionLog, acked: Acked[], tag: string, count = 1): Promise<void> {
  for (let i = 0; i < count; i++) {
    const batch = makeBatch({ count: 2, valueBytes: 300 + i * 37, tag: `${tag}-${i}` });
    const { baseOffset, lastOffset } = await log.append(batch);
    acked.push({ baseOffset, lastOffset, bytes: Buffer.from(batch) });
  }
}



function logBytesOnDisk(dir: string): number {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0);
}

function ackedBytes(acked: readonly Acked[]): number {
  return acked.reduce((sum, batch) => sum + batch.bytes.length, 0);
}

/** What a crash right now would leave: the files copied while the log is open. */
function copyUncleanly(fromDir: string): string {
  const temp = makeTempDir('runnel-io-copy-');
  cleanups.push(temp.remove);
  cpSync(fromDir, temp.dir, { recursive: true });
  return temp.dir;
}

// ---- Tests ---------------------------------------------------------------------------------

describe('a failed write', () => {
  it('fails the appends it carried with STORAGE_ERROR on EIO; the log stays readable and appends work once the fault clears', async () => {
    const { log, faults, dir } = await openFaultyLog();
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 5);
    const endBefore = log.logEndOffset;

    faults.failWritesWith('EIO', { path: LOG_FILES });
    const failures = await Promise.all([1, 2, 3].map((i) => rejectionOf(log.append(makeBatch({ tag: `lost-${i}` })))));
    for (const failure of failures) expectReason(failure, 'STORAGE_ERROR', 'EIO');
    expect(faults.counts.failedWrites).toBeGreaterThan(0);
    expect(log.isOnline).toBe(true);
    expect(log.logEndOffset).toBe(endBefore);
    await expectExactlyAcked(log, acked);

    faults.clear();
    await appendAcked(log, acked, 'after', 3);
    expect((acked[5] as Acked).baseOffset).toBe(endBefore);
    await expectExactlyAcked(log, acked);
    await log.close();
    await expectExactlyAcked(await openPlain(dir), acked);
  });

  it('leaves no partial bytes after a short write followed by ENOSPC, and a restart finds only acknowledged batches', async () => {
    const { log, faults, dir, logger } = await openFaultyLog();
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 5);

    faults.failWritesWith('ENOSPC', { path: LOG_FILES, afterBytes: 100 });
    const failure = await rejectionOf(log.append(makeBatch({ count: 3, valueBytes: 700, tag: 'lost' })));
    expectReason(failure, 'DISK_FULL', 'ENOSPC');
    expect(faults.counts.shortWrites).toBe(1);
    expect(logBytesOnDisk(dir), 'the 100 bytes of the short write were cut back').toBe(ackedBytes(acked));
    expect(log.isOnline).toBe(true);
    expect(logger.calls.some((call) => call.level === 'warn' && /cut back/.test(call.message))).toBe(true);
    await expectExactlyAcked(log, acked);

    const crashCopy = copyUncleanly(dir);
    const restartLogger = recordingLogger();
    const restarted = await openPlain(crashCopy, {}, restartLogger);
    await expectExactlyAcked(restarted, acked);
    expect(restartLogger.calls.some((call) => call.level === 'warn'), 'no torn tail to cut at restart').toBe(false);

    faults.clear();
    await appendAcked(log, acked, 'after', 2);
    await expectExactlyAcked(log, acked);
  });

  it('takes the partition offline with STORAGE_ERROR when cutting back after a failed write fails too', async () => {
    const { log, faults, dir } = await openFaultyLog();
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 4);

    faults.failWritesWith('EIO', { path: LOG_FILES, afterBytes: 100 });
    faults.failTruncatesWith('EIO', { path: LOG_FILES });
    expectReason(await rejectionOf(log.append(makeBatch({ count: 3, valueBytes: 700, tag: 'lost' }))), 'STORAGE_ERROR', 'EIO');
    expect(faults.counts.failedTruncates).toBe(1);
    expect(log.isOnline).toBe(false);
    expect((await log.stats()).status).toBe('offline');
    expectReason(await rejectionOf(log.append(makeBatch({ tag: 'refused' }))), 'STORAGE_ERROR');
    expectReason(await rejectionOf(log.read({ offset: 0, bytesMax: 1 })), 'STORAGE_ERROR');
    expect(logBytesOnDisk(dir), 'the partial bytes are still there').toBe(ackedBytes(acked) + 100);
    await log.close();

    // A restart treats the partial bytes as a torn tail and comes back online.
    const restartLogger = recordingLogger();
    const restarted = await openPlain(dir, {}, restartLogger);
    expect(restarted.isOnline).toBe(true);
    expect(restartLogger.calls.some((call) => call.level === 'warn' && call.fields.truncatedBytes === 100)).toBe(true);
    await expectExactlyAcked(restarted, acked);
    await appendAcked(restarted, acked, 'after', 2);
    await expectExactlyAcked(restarted, acked);
  });

  it('still syncs the batches acknowledged under flush=interval when the cut back after a failed write fails and the partition goes offline', async () => {
    // No fdatasync failed, so the acknowledged batches before the failed write are whole in
    // the page cache, and were promised an fdatasync within the interval.
    const clock = new ManualClock();
    const { log, faults } = await openFaultyLog({ flush: { kind: 'interval', intervalMs: 50 } }, clock);
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 4);
    expect(log.flushedOffset).toBe(0);
    faults.failWritesWith('EIO', { path: LOG_FILES, afterBytes: 100 });
    faults.failTruncatesWith('EIO', { path: LOG_FILES });
    expectReason(await rejectionOf(log.append(makeBatch({ count: 3, valueBytes: 700, tag: 'lost' }))), 'STORAGE_ERROR', 'EIO');
    expect(log.isOnline).toBe(false);
    await waitFor(
      () => {
        clock.advance(50);
        return log.flushedOffset === log.logEndOffset;
      },
      { timeoutMs: 5_000, describe: () => `flushed offset ${log.flushedOffset} of ${log.logEndOffset} acknowledged before the partition went offline` },
    );
  });

  it('fails appends with STORAGE_ERROR while partition.state cannot be marked dirty after a clean open, and continues once it can', async () => {
    const first = await openFaultyLog();
    const acked: Acked[] = [];
    await appendAcked(first.log, acked, 'before', 3);
    await first.log.close();
    const faulty = createFaultyFileSystem();
    const log = await openTestLog({ dir: first.dir, fileSystem: faulty.fileSystem });
    cleanups.push(() => log.close());

    faulty.faults.failWritesWith('EIO', { path: /partition\.state/ });
    expectReason(await rejectionOf(log.append(makeBatch({ tag: 'lost' }))), 'STORAGE_ERROR', 'EIO');
    expect(log.isOnline).toBe(true);
    await expectExactlyAcked(log, acked);
    faulty.faults.clear();
    await appendAcked(log, acked, 'after', 2);
    await expectExactlyAcked(log, acked);
  });
});

describe('a failed segment roll', () => {
  for (const { what, path } of [
    { what: 'the sealed index files', path: /\.index/ },
    { what: 'partition.state (after the new segment file exists)', path: /partition\.state/ },
  ]) {
    it(`fails the append that needed it when ${what} cannot be written, keeps the old segment active, and rolls once the fault clears`, async () => {
      const { log, faults, dir } = await openFaultyLog({ segmentBytes: 8192 });
      const acked: Acked[] = [];
      await appendAcked(log, acked, 'before', 3);
      expect(log.segmentCount).toBe(1);

      faults.failWritesWith('EIO', { path });
      let failure: unknown;
      while (failure === undefined && log.segmentCount === 1) {
        const batch = makeBatch({ count: 2, valueBytes: 500, tag: `next-${acked.length}` });
        await log.append(batch).then(
          ({ baseOffset, lastOffset }) => acked.push({ baseOffset, lastOffset, bytes: Buffer.from(batch) }),
          (error: unknown) => (failure = error),
        );
      }
      expectReason(failure, 'STORAGE_ERROR', 'EIO');
      expect(log.segmentCount).toBe(1);
      expect(log.isOnline).toBe(true);
      expect(readdirSync(dir).filter((name) => name.endsWith('.log')), 'a half-made segment file is removed').toHaveLength(1);
      await expectExactlyAcked(log, acked);

      faults.clear();
      await appendAcked(log, acked, 'after', 3);
      expect(log.segmentCount).toBe(2);
      await expectExactlyAcked(log, acked);
      await expectExactlyAcked(await openPlain(copyUncleanly(dir)), acked);
    });
  }
});

describe('a failed fdatasync before a roll', () => {
  it('takes the partition offline when acknowledged batches were not yet durable, so no retried roll moves past them', async () => {
    const { log, faults } = await openFaultyLog({ segmentBytes: 8192 }); // flush=never
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 3);
    faults.failNextDatasync({ path: LOG_FILES });
    let failure: unknown;
    // About seven of these fill a segment; a roll that never fdatasyncs would never fail.
    while (failure === undefined && acked.length < 100) {
      const batch = makeBatch({ count: 2, valueBytes: 500, tag: `next-${acked.length}` });
      await log.append(batch).then(
        ({ baseOffset, lastOffset }) => acked.push({ baseOffset, lastOffset, bytes: Buffer.from(batch) }),
        (error: unknown) => (failure = error),
      );
    }
    expect(failure, `no append failed in ${acked.length} (${log.segmentCount} segments): the roll did not fdatasync`).toBeDefined();
    expectReason(failure, 'STORAGE_ERROR', 'EIO');
    expect(faults.counts.failedDatasyncs).toBe(1);
    expect(log.isOnline).toBe(false);
    expect(log.segmentCount).toBe(1);
    expectReason(await rejectionOf(log.append(makeBatch({ count: 1, tag: 'after' }))), 'STORAGE_ERROR');
  });
});

describe('a failed fdatasync', () => {
  it('under flush=always fails the append; the batch never becomes readable and later appends take its offset', async () => {
    const { log, faults, dir } = await openFaultyLog({ flush: { kind: 'always' } });
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 5);
    const endBefore = log.logEndOffset;

    faults.failNextDatasync({ path: LOG_FILES });
    expectReason(await rejectionOf(log.append(makeBatch({ count: 2, tag: 'lost' }))), 'STORAGE_ERROR', 'EIO');
    expect(faults.counts.failedDatasyncs).toBe(1);
    expect(log.isOnline).toBe(true);
    expect(log.logEndOffset).toBe(endBefore);
    expect((await log.read({ offset: endBefore, bytesMax: 1 << 20 })).bytes.length).toBe(0);
    expect(logBytesOnDisk(dir)).toBe(ackedBytes(acked));

    await appendAcked(log, acked, 'after', 3);
    expect((acked[5] as Acked).baseOffset).toBe(endBefore);
    const taken = await log.read({ offset: endBefore, bytesMax: 1 });
    expect(decodeBatches(taken.bytes)[0]?.value?.toString()).toMatch(/^after-0-0:/);
    await expectExactlyAcked(log, acked);
    await log.close();
    await expectExactlyAcked(await openPlain(dir), acked);
  });

  it('under flush=interval takes the partition offline with STORAGE_ERROR, since acknowledged bytes may not be on disk', async () => {
    const clock = new ManualClock();
    const intervalMs = 50;
    const { log, faults, dir, logger } = await openFaultyLog({ flush: { kind: 'interval', intervalMs } }, clock);
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 5);
    expect(log.flushedOffset).toBe(0);

    faults.failNextDatasync({ path: LOG_FILES });
    clock.advance(intervalMs);
    await waitFor(() => !log.isOnline, { timeoutMs: 5_000, describe: () => `partition still ${log.isOnline ? 'online' : 'offline'} after the failed background flush` });
    expect(faults.counts.failedDatasyncs).toBe(1);
    expect(logger.calls.some((call) => call.level === 'error' && call.fields.reason === 'STORAGE_ERROR')).toBe(true);
    expectReason(await rejectionOf(log.append(makeBatch({ tag: 'refused' }))), 'STORAGE_ERROR');
    expectReason(await rejectionOf(log.read({ offset: 0, bytesMax: 1 })), 'STORAGE_ERROR');
    expectReason(await rejectionOf(log.flush()), 'STORAGE_ERROR');
    clock.advance(intervalMs * 10); // no timer left to fire into an offline log
    await log.close();
    expect(log.flushedOffset, 'an fdatasync after the failed one claimed the bytes durable').toBe(0);

    // The bytes were in the page cache all along (only the fdatasync was made to fail), so a
    // restart finds every acknowledged batch.
    const restarted = await openPlain(dir);
    expect(restarted.isOnline).toBe(true);
    await expectExactlyAcked(restarted, acked);
  });

  it('under flush=always takes the partition offline when bytes acknowledged under flush=never lie unsynced before the failed group', async () => {
    // Acknowledged under never, then the topic is switched to always: the first always group's
    // fdatasync is the first to cover those bytes. When it fails, the kernel may have dropped
    // them with it and will not say so again, so a later fdatasync that passes must not be
    // taken to cover them: the log cannot vouch for acknowledged bytes, as after a failed
    // background flush.
    const { log, faults, dir, logger } = await openFaultyLog(); // flush=never
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'never', 3);
    expect(log.flushedOffset).toBe(0);
    log.updateConfig({ ...testConfig, flush: { kind: 'always' } });
    faults.failNextDatasync({ path: LOG_FILES });
    expectReason(await rejectionOf(log.append(makeBatch({ count: 2, tag: 'always' }))), 'STORAGE_ERROR', 'EIO');
    expect(faults.counts.failedDatasyncs).toBe(1);
    expect(log.isOnline, `still online, and the next fdatasync would report offsets below ${log.logEndOffset} durable`).toBe(false);
    expect((await log.stats()).offlineReason).toBe('STORAGE_ERROR');
    expect(logger.calls.some((call) => call.level === 'error' && call.fields.reason === 'STORAGE_ERROR')).toBe(true);
    expectReason(await rejectionOf(log.append(makeBatch({ tag: 'refused' }))), 'STORAGE_ERROR');
    await log.close();
    expect(log.flushedOffset, 'an fdatasync after the failed one claimed the bytes durable').toBe(0);

    // Only the fdatasync was made to fail, so the page cache held every acknowledged batch.
    const restarted = await openPlain(dir);
    expect(restarted.isOnline).toBe(true);
    await expectExactlyAcked(restarted, acked);
  });

  it('under flush=interval tries again after the interval when the flush could not open the file, so acknowledged bytes still reach the disk', async () => {
    const clock = new ManualClock();
    const intervalMs = 50;
    const temp = makeTempDir('runnel-io-');
    cleanups.push(temp.remove);
    let failedOpensLeft = 0;
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        if (failedOpensLeft > 0 && LOG_FILES.test(path)) {
          failedOpensLeft--;
          throw errnoError('EIO', 'open', path);
        }
        return nodeFileSystem.open(path, mode);
      },
    };
    const handles = new FileHandleCache(fileSystem, 64);
    const logger = recordingLogger();
    const log = await openTestLog({ dir: temp.dir, config: { flush: { kind: 'interval', intervalMs } }, fileSystem, handles, clock, logger });
    cleanups.push(() => log.close());
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 3);
    // The descriptor cache gave the active segment's descriptor up (other files needed one):
    // the flush has to open the file again, and that open fails once.
    handles.discard(join(temp.dir, '00000000000000000000.log'));
    failedOpensLeft = 1;
    clock.advance(intervalMs);
    await waitFor(() => failedOpensLeft === 0, { timeoutMs: 5_000, describe: () => 'the interval flush never tried to open the segment' });
    // No append comes: only a retried flush can make the acknowledged bytes durable.
    await waitFor(
      () => {
        clock.advance(intervalMs);
        return log.flushedOffset === log.logEndOffset;
      },
      { timeoutMs: 5_000, describe: () => `flushed offset ${log.flushedOffset} of ${log.logEndOffset}: the failed interval flush was never tried again` },
    );
    expect(log.isOnline).toBe(true);
    expect(logger.calls.some((call) => call.level === 'warn' && /flush/.test(call.message))).toBe(true);
  });

  it('under flush=interval logs a flush that fails on every interval once a minute, with the count of the failures it did not log', async () => {
    const manual = new ManualClock();
    let armedCount = 0; // timers set: a failed interval flush sets the next one
    const clock: Clock = {
      nowMs: () => manual.nowMs(),
      setTimer: (delayMs, callback) => {
        armedCount++;
        return manual.setTimer(delayMs, callback);
      },
    };
    const intervalMs = 50;
    const temp = makeTempDir('runnel-io-');
    cleanups.push(temp.remove);
    let isFailingOpens = false;
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        if (isFailingOpens && LOG_FILES.test(path)) throw errnoError('EIO', 'open', path);
        return nodeFileSystem.open(path, mode);
      },
    };
    const handles = new FileHandleCache(fileSystem, 64);
    const logger = recordingLogger();
    const log = await openTestLog({ dir: temp.dir, config: { flush: { kind: 'interval', intervalMs } }, fileSystem, handles, clock, logger });
    cleanups.push(() => log.close());
    cleanups.push(() => {
      isFailingOpens = false;
    });
    await appendAcked(log, [], 'before', 3);
    handles.discard(join(temp.dir, '00000000000000000000.log'));
    isFailingOpens = true;
    // 600 failed flushes, 50 ms apart: 30 s, within one minute.
    const flushLines = () => logger.calls.filter((call) => /interval flush failed/.test(call.message));
    for (let tick = 1; tick <= 600; tick++) {
      const armedBefore = armedCount;
      manual.advance(intervalMs);
      await waitFor(() => armedCount > armedBefore, { timeoutMs: 5_000, describe: () => `interval flush ${tick} did not fail and set the next one` });
    }
    expect(flushLines()).toHaveLength(1);
    manual.advance(60_000);
    await waitFor(() => flushLines().length === 2, { timeoutMs: 5_000, describe: () => `${flushLines().length} flush lines a minute later` });
    expect(flushLines()[1]?.fields).toMatchObject({ suppressed: 599 });
  });

  it('under flush=interval makes acknowledged bytes durable when it succeeds', async () => {
    const clock = new ManualClock();
    const { log } = await openFaultyLog({ flush: { kind: 'interval', intervalMs: 50 } }, clock);
    const acked: Acked[] = [];
    await appendAcked(log, acked, 'before', 3);
    clock.advance(50);
    await waitFor(() => log.flushedOffset === log.logEndOffset, {
      timeoutMs: 5_000,
      describe: () => `flushed offset ${log.flushedOffset}, log end ${log.logEndOffset}`,
    });
    expect(log.isOnline).toBe(true);
  });
});

describe('pipelined group commit (flush=always)', () => {
  const producer = (baseSequence: number) => ({ producerId: 7, producerEpoch: 0, baseSequence });

  /** A flush=always log with `before` batches acknowledged, then every .log fdatasync held. */
  async function openHoldingLog(before: number, config: Partial<PartitionLogConfig> = {}): Promise<FaultyLog & { acked: Acked[] }> {
    const opened = await openFaultyLog({ flush: { kind: 'always' }, ...config });
    const acked: Acked[] = [];
    await appendAcked(opened.log, acked, 'before', before);
    opened.faults.holdDatasyncs({ path: LOG_FILES });
    return { ...opened, acked };
  }

  /** Lets every fdatasync go, then checks the log now and after a clean close and reopen. */
  async function expectExactlyAckedAcrossClose(log: PartitionLog, faults: FaultyLog['faults'], dir: string, acked: readonly Acked[]): Promise<void> {
    faults.clear();
    await expectExactlyAcked(log, acked);
    await log.close();
    await expectExactlyAcked(await openPlain(dir), acked);
  }

  async function heldDatasyncs(faults: FaultyLog['faults'], count: number): Promise<void> {
    await waitFor(() => faults.heldDatasyncs === count, { timeoutMs: 5_000, describe: () => `${faults.heldDatasyncs} fdatasyncs held, waiting for ${count}` });
  }

  it('writes the next group while the previous one syncs; each becomes readable and is acknowledged only after its own fdatasync, in order', async () => {
    const { log, faults, dir, acked } = await openHoldingLog(2);
    const endBefore = log.logEndOffset;

    const settled: string[] = [];
    const first = makeBatch({ count: 2, valueBytes: 200, tag: 'first' });
    const second = makeBatch({ count: 3, valueBytes: 200, tag: 'second' });
    const firstAppend = log.append(first).then((result) => (settled.push('first'), result));
    await heldDatasyncs(faults, 1);
    const secondAppend = log.append(second).then((result) => (settled.push('second'), result));
    // The second batch reaches the file while the first one's fdatasync is still held.
    await waitFor(() => logBytesOnDisk(dir) === ackedBytes(acked) + first.length + second.length, {
      timeoutMs: 5_000,
      describe: () => `${logBytesOnDisk(dir)} bytes in the .log files`,
    });
    expect(faults.heldDatasyncs).toBe(1);
    expect(settled).toEqual([]);
    expect(log.logEndOffset).toBe(endBefore);
    expect(log.flushedOffset).toBe(endBefore);
    expect((await log.read({ offset: endBefore, bytesMax: 1 << 20 })).bytes.length).toBe(0);

    faults.releaseDatasync();
    const firstResult = await firstAppend;
    expect(firstResult).toEqual({ baseOffset: endBefore, lastOffset: endBefore + 1, isDuplicate: false });
    await heldDatasyncs(faults, 1); // the second group's own fdatasync
    expect(settled).toEqual(['first']);
    expect(log.logEndOffset).toBe(endBefore + 2);
    expect(log.flushedOffset).toBe(endBefore + 2);
    expect(decodeBatches((await log.read({ offset: endBefore, bytesMax: 1 << 20 })).bytes).map((record) => record.value?.toString().slice(0, 8))).toEqual([
      'first-0:',
      'first-1:',
    ]);

    faults.releaseDatasync();
    const secondResult = await secondAppend;
    expect(secondResult.baseOffset).toBe(endBefore + 2);
    expect(settled).toEqual(['first', 'second']);
    expect(log.flushedOffset).toBe(endBefore + 5);
    acked.push({ ...firstResult, bytes: Buffer.from(first) }, { ...secondResult, bytes: Buffer.from(second) });
    await expectExactlyAckedAcrossClose(log, faults, dir, acked);
  });

  it('fails the group whose fdatasync failed and the group written after it, cuts both from the file, and lets the producer retry both', async () => {
    const { log, faults, dir, acked } = await openHoldingLog(2);
    const endBefore = log.logEndOffset;

    const firstFailure = rejectionOf(log.append(makeBatch({ count: 2, tag: 'first', producer: producer(0) })));
    await heldDatasyncs(faults, 1);
    const second = makeBatch({ count: 2, tag: 'second', producer: producer(2) });
    const secondFailure = rejectionOf(log.append(second));
    await waitFor(() => logBytesOnDisk(dir) > ackedBytes(acked) + second.length, { timeoutMs: 5_000, describe: () => `${logBytesOnDisk(dir)} bytes in the .log files` });
    faults.releaseDatasync({ failWith: 'EIO' });
    expectReason(await firstFailure, 'STORAGE_ERROR', 'EIO');
    expectReason(await secondFailure, 'STORAGE_ERROR', 'EIO');
    expect(faults.heldDatasyncs, 'the second group never reached its fdatasync').toBe(0);
    expect(log.isOnline).toBe(true);
    expect(log.logEndOffset).toBe(endBefore);
    expect(logBytesOnDisk(dir)).toBe(ackedBytes(acked));

    // Neither batch counts as written: the retries are appended, not answered as duplicates.
    faults.clear();
    for (const [tag, baseSequence] of [
      ['first', 0],
      ['second', 2],
    ] as const) {
      const batch = makeBatch({ count: 2, tag, producer: producer(baseSequence) });
      const result = await log.append(batch);
      expect(result.isDuplicate).toBe(false);
      acked.push({ ...result, bytes: Buffer.from(batch) });
    }
    expect((acked[2] as Acked).baseOffset).toBe(endBefore);
    await expectExactlyAckedAcrossClose(log, faults, dir, acked);
  });

  it('answers a retry of a batch still syncing only after its original is acknowledged, and appends it when the original failed', async () => {
    const { log, faults, dir, acked } = await openHoldingLog(0);

    const order: string[] = [];
    const original = makeBatch({ count: 2, tag: 'original', producer: producer(0) });
    const retry = Buffer.from(original);
    const originalAppend = log.append(original).then((result) => (order.push('original'), result));
    await heldDatasyncs(faults, 1);
    const retryAppend = log.append(retry).then((result) => (order.push('retry'), result));
    faults.releaseDatasync();
    const originalResult = await originalAppend;
    const { maxTimestamp } = tryReadBatchHeader(retry) as BatchHeader;
    expect(await retryAppend).toEqual({ baseOffset: originalResult.baseOffset, lastOffset: originalResult.lastOffset, isDuplicate: true, maxTimestamp });
    expect(order).toEqual(['original', 'retry']);
    expect(faults.heldDatasyncs, 'nothing was written for the retry').toBe(0);
    acked.push({ ...originalResult, bytes: Buffer.from(original) });

    const next = makeBatch({ count: 1, tag: 'next', producer: producer(2) });
    const nextRetry = Buffer.from(next);
    const nextFailure = rejectionOf(log.append(next));
    await heldDatasyncs(faults, 1);
    const nextRetryAppend = log.append(nextRetry);
    faults.releaseDatasync({ failWith: 'EIO' });
    expectReason(await nextFailure, 'STORAGE_ERROR', 'EIO');
    await heldDatasyncs(faults, 1); // the retry, written now as the only copy
    faults.releaseDatasync();
    const nextResult = await nextRetryAppend;
    expect(nextResult).toEqual({ baseOffset: originalResult.lastOffset + 1, lastOffset: originalResult.lastOffset + 1, isDuplicate: false });
    acked.push({ ...nextResult, bytes: Buffer.from(nextRetry) });
    await expectExactlyAckedAcrossClose(log, faults, dir, acked);
  });

  it('acknowledges the group that was syncing when the next group’s write fails, and fails only the latter', async () => {
    const { log, faults, dir, acked } = await openHoldingLog(2);

    const first = makeBatch({ count: 2, tag: 'first' });
    const firstAppend = log.append(first);
    await heldDatasyncs(faults, 1);
    faults.failWritesWith('EIO', { path: LOG_FILES });
    const secondFailure = rejectionOf(log.append(makeBatch({ count: 2, tag: 'second' })));
    await waitFor(() => faults.counts.failedWrites > 0, { timeoutMs: 5_000, describe: () => 'the second write has not failed yet' });
    faults.releaseDatasync();
    acked.push({ ...(await firstAppend), bytes: Buffer.from(first) });
    expectReason(await secondFailure, 'STORAGE_ERROR', 'EIO');
    expect(log.isOnline).toBe(true);
    expect(logBytesOnDisk(dir)).toBe(ackedBytes(acked));

    faults.clear();
    await appendAcked(log, acked, 'after', 2);
    await expectExactlyAckedAcrossClose(log, faults, dir, acked);
  });

  it('goes offline when a failed fdatasync cannot be cut back, failing the roll that waited behind it, and still closes', async () => {
    const { log, faults, acked } = await openHoldingLog(2);
    const failure = rejectionOf(log.append(makeBatch({ tag: 'syncing' })));
    await heldDatasyncs(faults, 1);
    // The roll waits for the syncing group. Its caller reacts to the failure by closing the
    // log at once, while the writer is still finishing the failed group.
    let closed: Promise<void> | undefined;
    const roll = log.roll().catch((error: unknown) => {
      closed = log.close();
      return error;
    });
    faults.failTruncatesWith('EIO', { path: LOG_FILES });
    faults.releaseDatasync({ failWith: 'EIO' });
    expectReason(await failure, 'STORAGE_ERROR');
    expectReason(await roll, 'STORAGE_ERROR');
    expect(log.isOnline).toBe(false);
    expect(closed).toBeDefined();
    await closed;
    expect(acked).toHaveLength(2);
  });

  it('rolls to a new segment only after the group before the roll is durable', async () => {
    const { log, faults, dir, acked } = await openHoldingLog(0, { segmentBytes: 2_000 });
    const first = makeBatch({ count: 2, valueBytes: 600, tag: 'first' });
    const firstAppend = log.append(first);
    await heldDatasyncs(faults, 1);
    const second = makeBatch({ count: 2, valueBytes: 600, tag: 'second' }); // does not fit: a roll
    const secondAppend = log.append(second);
    faults.releaseDatasync();
    acked.push({ ...(await firstAppend), bytes: Buffer.from(first) });
    faults.clear();
    acked.push({ ...(await secondAppend), bytes: Buffer.from(second) });
    expect(log.segmentCount).toBe(2);
    await expectExactlyAckedAcrossClose(log, faults, dir, acked);
  });
});
