/**
 * Idempotent appends under I/O errors and crashes.
 *
 * Goal: a failed write leaves the producer state as it was, so the producer's retry is
 * appended once (at the offsets the failed attempt would have had) rather than answered as a
 * duplicate of bytes that never reached the log; a retry queued behind a failing original fails
 * with it; a failed producer snapshot fails the roll that needed it without losing state; and
 * a crash at any of these points leaves a directory whose reopened log still answers every
 * retry of an acknowledged batch with its original offsets.
 *
 * Method: the log runs on the faulty file system (test/support/faulty-file-system.ts). After
 * each fault the test checks the visible log, retries, and then opens a copy of the directory
 * taken while the log was still open (what a crash would leave) with the plain file system.
 */
import { cpSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { tryReadBatchHeader, type BatchHeader } from '../../src/protocol/index.js';
import type { AppendResult, PartitionLog, PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { createFaultyFileSystem, type FaultController } from '../support/faulty-file-system.js';
import { expectReason, rejectionOf } from '../support/rejections.js';

const LOG_FILES = /\.log$/;
const PRODUCER = 77;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface FaultyLog {
  log: PartitionLog;
  faults: FaultController;
  dir: string;
  clock: ManualClock;
}

async function openFaultyLog(config: Partial<PartitionLogConfig> = {}): Promise<FaultyLog> {
  const temp = makeTempDir('runnel-idem-fault-');
  cleanups.push(temp.remove);
  const faulty = createFaultyFileSystem();
  // Batch timestamps are near this clock, so no producer expires during a test.
  const clock = new ManualClock();
  const log = await openTestLog({ dir: temp.dir, config, fileSystem: faulty.fileSystem, clock });
  cleanups.push(() => log.close().catch(() => undefined));
  return { log, faults: faulty.faults, dir: temp.dir, clock };
}

/** What a crash right now would leave, opened as a restarted process would. */
async function openCrashCopy(dir: string, clock: ManualClock): Promise<PartitionLog> {
  const temp = makeTempDir('runnel-idem-copy-');
  cleanups.push(temp.remove);
  cpSync(dir, temp.dir, { recursive: true });
  const log = await openTestLog({ dir: temp.dir, clock });
  cleanups.push(() => log.close());
  return log;
}

function produced(baseSequence: number, options: { count?: number; valueBytes?: number } = {}): Buffer {
  return makeBatch({
    count: options.count ?? 1,
    valueBytes: options.valueBytes ?? 100,
    tag: `s${baseSequence}`,
    producer: { producerId: PRODUCER, producerEpoch: 0, baseSequence },
  });
}


/**
 * The last five acknowledged batches (`acked[i]` is sequence i), sent again byte for byte by
 * `batchOf`, resolve as duplicates of themselves and write nothing.
 */
async function expectRetriesAreDuplicates(log: PartitionLog, acked: readonly AppendResult[], batchOf: (sequence: number) => Buffer): Promise<void> {
  const endBefore = log.logEndOffset;
  for (let i = Math.max(0, acked.length - 5); i < acked.length; i++) {
    const original = acked[i] as AppendResult;
    const retry = batchOf(i);
    const { maxTimestamp } = tryReadBatchHeader(retry) as BatchHeader; // the same bytes as the original
    expect(await log.append(retry), `retry of sequence ${i}`).toEqual({ ...original, isDuplicate: true, maxTimestamp });
  }
  expect(log.logEndOffset).toBe(endBefore);
}

describe('idempotent appends and a failed write', () => {
  for (const { what, arm, config } of [
    { what: 'the write fails (EIO)', arm: (faults: FaultController) => faults.failWritesWith('EIO', { path: LOG_FILES }), config: {} },
    { what: 'the fdatasync fails under flush=always', arm: (faults: FaultController) => faults.failNextDatasync({ path: LOG_FILES }), config: { flush: { kind: 'always' as const } } },
  ]) {
    it(`when ${what}: the original and a retry queued with it both fail, and the next retry is appended once`, async () => {
      const { log, faults, dir, clock } = await openFaultyLog(config);
      const acked: AppendResult[] = [];
      for (let i = 0; i < 3; i++) acked.push(await log.append(produced(i)));

      arm(faults);
      // The flush occupies the writer, so the three appends queue and are written as one group.
      const settled = await Promise.allSettled([log.flush(), log.append(produced(3)), log.append(produced(3)), log.append(produced(4))]);
      expect(settled[0]?.status).toBe('fulfilled');
      for (const result of settled.slice(1)) {
        expect(result.status).toBe('rejected');
        expectReason((result as PromiseRejectedResult).reason, 'STORAGE_ERROR', 'EIO');
      }
      expect(log.logEndOffset).toBe(3);
      faults.clear();

      // The state is as before the failure: sequence 3 is new (not a duplicate), 4 is ahead of it.
      expectReason(await rejectionOf(log.append(produced(4))), 'OUT_OF_ORDER_SEQUENCE');
      const retried = await log.append(produced(3));
      expect(retried).toEqual({ baseOffset: 3, lastOffset: 3, isDuplicate: false });
      acked.push(retried, await log.append(produced(4)));
      await expectRetriesAreDuplicates(log, acked, (sequence) => produced(sequence));
      await expectRetriesAreDuplicates(await openCrashCopy(dir, clock), acked, (sequence) => produced(sequence));
    });
  }
});

describe('idempotent appends and a failed producer snapshot at a roll', () => {
  it('fails the append that needed the roll, keeps the old segment and the state, and rolls once the fault clears', async () => {
    const { log, faults, dir, clock } = await openFaultyLog({ segmentBytes: 2048 });
    const batchOf = (sequence: number): Buffer => produced(sequence, { valueBytes: 300 });
    const acked: AppendResult[] = [];
    for (let i = 0; i < 5; i++) acked.push(await log.append(batchOf(i)));
    expect(log.segmentCount).toBe(1);

    faults.failWritesWith('EIO', { path: /producer\.snapshot/ });
    let failure: unknown;
    let sequence = acked.length;
    // About five of these fill a segment; a roll that never writes the snapshot would never fail.
    while (failure === undefined && sequence < 100) {
      await log.append(batchOf(sequence)).then(
        (result) => {
          acked.push(result);
          sequence++;
        },
        (error: unknown) => (failure = error),
      );
    }
    expect(failure, `no append failed in ${sequence} (${log.segmentCount} segments): the roll did not write a producer snapshot`).toBeDefined();
    expectReason(failure, 'STORAGE_ERROR', 'EIO');
    expect(log.segmentCount).toBe(1);
    expect(log.isOnline).toBe(true);
    // Retries of batches already in the log are answered without the roll (which still fails).
    await expectRetriesAreDuplicates(log, acked, batchOf);
    await expectRetriesAreDuplicates(await openCrashCopy(dir, clock), acked, batchOf);

    faults.clear();
    acked.push(await log.append(batchOf(sequence)));
    expect(log.segmentCount).toBe(2);
    await expectRetriesAreDuplicates(log, acked, batchOf);
    await expectRetriesAreDuplicates(await openCrashCopy(dir, clock), acked, batchOf);
  });
});

describe('idempotent appends and crashes', () => {
  it('a crash copy taken at any point of a run of rolls answers every retry of an acknowledged batch as a duplicate', async () => {
    const { log, dir, clock } = await openFaultyLog({ segmentBytes: 1500 });
    const batchOf = (sequence: number): Buffer => produced(sequence, { valueBytes: 150 });
    const acked: AppendResult[] = [];
    for (let i = 0; i < 40; i++) {
      // Several in flight at once, so copies land inside write groups and rolls.
      const group = [0, 1, 2].map((k) => log.append(batchOf(i * 3 + k)));
      const copy = i % 8 === 7 ? cpSyncLater(dir) : undefined;
      acked.push(...(await Promise.all(group)));
      if (copy !== undefined) {
        const crashed = await openCrashCopy(await copy, clock);
        // The copy holds a prefix of the acknowledged batches; whatever it holds is deduplicated.
        const held = acked.filter((result) => result.lastOffset < crashed.logEndOffset);
        await expectRetriesAreDuplicates(crashed, held, batchOf);
      }
    }
    expect(log.segmentCount).toBeGreaterThan(5);
    await expectRetriesAreDuplicates(await openCrashCopy(dir, clock), acked, batchOf);
  });
});

/** Copies `dir` once the current writes have started (a crash image with appends in flight). */
async function cpSyncLater(dir: string): Promise<string> {
  await Promise.resolve();
  const temp = makeTempDir('runnel-idem-inflight-');
  cleanups.push(temp.remove);
  cpSync(dir, temp.dir, { recursive: true });
  return temp.dir;
}
