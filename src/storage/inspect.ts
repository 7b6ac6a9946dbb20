/**
 * Offline tools over one partition directory, for operators (`runnel log …`): verify every
 * batch of every segment, and repair a partition that went offline with CORRUPT_DATA. They
 * open files directly and must not run while a broker has the partition open.
 *
 * Repair is the operator's explicit decision to lose data: it keeps every batch before the
 * first damage, cuts the damaged segment there and deletes every later segment. Take a copy
 * of the directory first (the CLI says so), or restore the partition from a replica instead.
 */

import { join } from 'node:path';
import { BrokerError } from '../errors/index.js';
import { storageError } from './errors.js';
import type { FileSystem } from './file-system.js';
import type { BatchHeader } from '../protocol/index.js';
import { scanBatches, type ScanProblem } from './batch-scan.js';
import { readPartitionState, readPartitionStateFile, writePartitionState, type CleanShutdown } from './partition-state.js';
import { PRODUCER_SNAPSHOT_FILE_NAME, STATE_FILE_NAME, segmentFileName, segmentFilePath, tryParseSegmentFileName } from './file-names.js';
import { tryReadProducerSnapshot } from './producer-snapshot.js';
import { MiB } from '../common/units.js';

/** Batches `forEachStoredBatch` reads ahead of its caller, in bytes (at least one batch). */
const BATCHES_AHEAD_BYTES_MAX = 4 * MiB;

export interface SegmentReport {
  baseOffset: number;
  sizeBytes: number;
  batchCount: number;
  /** Offset after the last valid batch. */
  nextOffset: number;
  /**
   * `stray-empty`: an empty .log with segments after it. No roll leaves one (a segment is
   * created only when its predecessor holds records, and only the last can be empty), and it
   * holds no record: repair removes it and loses nothing. It is left out of the gap check, so
   * a segment before it is judged against the next segment that holds records.
   */
  problem?: { kind: ScanProblem | 'segment-gap' | 'stray-empty'; position: number; detail: string };
}

export interface VerifyReport {
  dir: string;
  segments: SegmentReport[];
  logStartOffset: number;
  logEndOffset: number;
  sizeBytes: number;
  isHealthy: boolean;
  offline?: { segmentBaseOffset: number; position: number; detail: string };
  /**
   * Records the clean-shutdown mark says the log held, past the end of the files: the segment
   * it names is gone, or shorter than it was at the clean close. No crash does this (the mark
   * is written after the fdatasync), so start-up takes the partition offline for it
   * (recovery.ts) even when every byte left reads clean. Offsets [fromOffset, toOffset).
   */
  missing?: MissingRecords;
}

export interface MissingRecords {
  segmentBaseOffset: number;
  position: number;
  fromOffset: number;
  toOffset: number;
  detail: string;
}

async function listSegmentBases(fileSystem: FileSystem, dir: string): Promise<number[]> {
  let names: string[];
  try {
    names = await fileSystem.readdir(dir);
  } catch (error) {
    throw storageError('list', dir, error);
  }
  return names
    .map((name) => tryParseSegmentFileName(name))
    .filter((parsed) => parsed?.kind === 'log')
    .map((parsed) => (parsed as { baseOffset: number }).baseOffset)
    .sort((a, b) => a - b);
}

/**
 * Reads every batch of every segment (length, magic, CRC, dense offsets, no gaps between
 * segments). `onProgress` is called after each segment with the bytes checked so far.
 */
export async function verifyPartitionDirectory(
  fileSystem: FileSystem,
  dir: string,
  onProgress?: (checkedBytes: number, totalBytes: number) => void,
): Promise<VerifyReport> {
  const bases = await listSegmentBases(fileSystem, dir);
  const sizes: number[] = [];
  for (const base of bases) sizes.push((await fileSystem.trySizeBytes(segmentFilePath(dir, base, 'log'))) ?? 0);
  const totalBytes = sizes.reduce((sum, size) => sum + size, 0);
  const segments: SegmentReport[] = [];
  let checkedBytes = 0;
  // The base after index i that is not a stray empty segment (see SegmentReport).
  const isStrayEmpty = (i: number): boolean => sizes[i] === 0 && i < bases.length - 1;
  const nextBaseAfter = (i: number): number | undefined => {
    let next = i + 1;
    while (next < bases.length - 1 && isStrayEmpty(next)) next++;
    return bases[next];
  };
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i] as number;
    const sizeBytes = sizes[i] as number;
    if (isStrayEmpty(i)) {
      const name = segmentFileName(base, 'log');
      const detail = `${name} is empty but segments follow it (no roll leaves that): it holds no records; move it out of the partition directory, or let repair remove it`;
      segments.push({ baseOffset: base, sizeBytes: 0, batchCount: 0, nextOffset: base, problem: { kind: 'stray-empty', position: 0, detail } });
      continue;
    }
    const handle = await fileSystem.open(segmentFilePath(dir, base, 'log'), 'read').catch((error: unknown) => {
      throw storageError('open', segmentFilePath(dir, base, 'log'), error);
    });
    try {
      const scan = await scanBatches(handle, { fromPosition: 0, toPosition: sizeBytes, expectedBaseOffset: base });
      const report: SegmentReport = { baseOffset: base, sizeBytes, batchCount: scan.batchCount, nextOffset: scan.nextOffset };
      if (scan.problem !== undefined) report.problem = scan.problem;
      const nextBase = nextBaseAfter(i);
      if (report.problem === undefined && nextBase !== undefined && scan.nextOffset !== nextBase) {
        report.problem = { kind: 'segment-gap', position: sizeBytes, detail: `segment ends at offset ${scan.nextOffset} but the next starts at ${nextBase}` };
      }
      segments.push(report);
    } finally {
      await handle.close();
    }
    checkedBytes += sizeBytes;
    onProgress?.(checkedBytes, totalBytes);
  }
  const state = await readPartitionState(fileSystem, dir);
  const logEndOffset = segments[segments.length - 1]?.nextOffset ?? 0; // the last is never a stray
  const missing = verifyPartitionDirectoryFindMissing(state?.clean, bases, segments[segments.length - 1], logEndOffset);
  const report: VerifyReport = {
    dir,
    segments,
    logStartOffset: bases[0] ?? 0,
    logEndOffset,
    sizeBytes: totalBytes,
    isHealthy: segments.every((segment) => segment.problem === undefined) && state?.offline === undefined && missing === undefined,
  };
  if (state?.offline !== undefined) {
    report.offline = { segmentBaseOffset: state.offline.segmentBaseOffset, position: state.offline.position, detail: state.offline.detail };
  }
  if (missing !== undefined) report.missing = missing;
  return report;
}

/**
 * The two checks start-up makes against the clean-shutdown mark (recovery.ts:
 * `findMissingCleanActiveSegment`, and the shorter-than-its-mark check of the active
 * segment), so that verify calls damaged what the broker will not serve.
 */
function verifyPartitionDirectoryFindMissing(
  clean: CleanShutdown | undefined,
  bases: readonly number[],
  last: SegmentReport | undefined,
  logEndOffset: number,
): MissingRecords | undefined {
  if (clean === undefined || clean.logEndOffset <= clean.activeBaseOffset) return undefined;
  const toOffset = clean.logEndOffset;
  if (!bases.includes(clean.activeBaseOffset)) {
    const detail = `segment file is missing; it held offsets ${clean.activeBaseOffset}..${toOffset - 1} at the last clean close`;
    return { segmentBaseOffset: clean.activeBaseOffset, position: 0, fromOffset: Math.min(logEndOffset, clean.activeBaseOffset), toOffset, detail };
  }
  // A damaged batch in it is reported as damage (its bytes are there, behind the bad CRC or
  // header), not as records missing from the files.
  if (last === undefined || last.problem !== undefined || last.baseOffset !== clean.activeBaseOffset || last.nextOffset >= toOffset) return undefined;
  const detail =
    `the log closed cleanly with offsets up to ${toOffset - 1} (${clean.activeSizeBytes} bytes in this segment), ` +
    `but its valid batches end at offset ${last.nextOffset - 1} (${last.sizeBytes} bytes on disk): records are missing, not a torn write`;
  return { segmentBaseOffset: last.baseOffset, position: last.sizeBytes, fromOffset: last.nextOffset, toOffset, detail };
}

export interface RepairPlan {
  /** The segment cut at its last valid batch, or undefined when nothing is damaged. */
  cutSegmentBaseOffset?: number;
  cutPosition?: number;
  /** Segments deleted whole because they come after the damage. */
  deletedSegmentBaseOffsets: number[];
  /** Empty .log files with segments after them (`stray-empty`), removed: they hold no records. */
  removedEmptySegmentBaseOffsets: number[];
  /** Offsets from here on are lost (the new log end offset). */
  newLogEndOffset: number;
  lostBytes: number;
  /**
   * The offline mark in partition.state, which the repair clears. With no damage in the files
   * it is the only record of what was lost (a missing segment file, say), so the operator must
   * see it before accepting `newLogEndOffset`.
   */
  offline?: { segmentBaseOffset: number; position: number; detail: string };
  /** Records already gone from the files that the clean-shutdown mark says the log held (VerifyReport). */
  missing?: MissingRecords;
}

/**
 * Plans (and with `apply`, performs) the repair of a damaged partition: keep every valid
 * batch before the first problem, cut there, delete every later segment, clear the offline
 * mark. Crash behaviour: segments are deleted newest first and the file is cut before the
 * offline mark is cleared, so an interrupted repair leaves a partition that is still offline
 * or already consistent, and running repair again finishes it. producer.snapshot is removed
 * with the cut when it lies past it (it describes batches that are gone), so the next open
 * rebuilds the producer state from the log that is left; one at or below the cut is still
 * true of that log and stays, as Kafka keeps the snapshots below a truncation: it may be the
 * only trace of producers whose batches retention deleted, whose retries would otherwise be
 * appended again (recovery removes a snapshot it finds past the log end in any case).
 */
export async function repairPartitionDirectory(fileSystem: FileSystem, dir: string, options: { apply: boolean }): Promise<RepairPlan> {
  await repairPartitionDirectoryRefuseNewerState(fileSystem, dir);
  const report = await verifyPartitionDirectory(fileSystem, dir);
  // Stray empty segments hold nothing: they go, and never decide where the log is cut.
  const strays = report.segments.filter((segment) => segment.problem?.kind === 'stray-empty').map((segment) => segment.baseOffset);
  if (options.apply && strays.length > 0) {
    for (const base of strays) await repairPartitionDirectoryRemoveSegment(fileSystem, dir, base);
    // Crash before this fsync: some strays may come back; the next repair removes them again.
    await fileSystem.syncDirectory(dir);
    const rest = await repairPartitionDirectory(fileSystem, dir, options);
    return { ...rest, removedEmptySegmentBaseOffsets: strays };
  }
  report.segments = report.segments.filter((segment) => segment.problem?.kind !== 'stray-empty');
  const damagedIndex = report.segments.findIndex((segment) => segment.problem !== undefined);
  const state = await readPartitionState(fileSystem, dir);
  const marks = { ...(report.offline === undefined ? {} : { offline: report.offline }), ...(report.missing === undefined ? {} : { missing: report.missing }) };
  if (damagedIndex < 0) {
    if (options.apply && state !== undefined && (state.offline !== undefined || report.missing !== undefined)) {
      // Dropping the clean mark too: it names records that are gone, and start-up would take
      // the partition offline for it again.
      const { offline: _offline, clean: _clean, ...rest } = state;
      await writePartitionState(fileSystem, dir, { ...rest, recoveryCheckpoint: report.segments[0]?.baseOffset ?? 0 });
    }
    return { deletedSegmentBaseOffsets: [], removedEmptySegmentBaseOffsets: strays, newLogEndOffset: report.logEndOffset, lostBytes: 0, ...marks };
  }
  const damaged = report.segments[damagedIndex] as SegmentReport;
  const cutPosition = damaged.problem?.kind === 'segment-gap' ? damaged.sizeBytes : (damaged.problem?.position ?? damaged.sizeBytes);
  const later = report.segments.slice(damagedIndex + 1);
  const plan: RepairPlan = {
    cutSegmentBaseOffset: damaged.baseOffset,
    cutPosition,
    deletedSegmentBaseOffsets: later.map((segment) => segment.baseOffset),
    removedEmptySegmentBaseOffsets: strays,
    newLogEndOffset: damaged.nextOffset,
    lostBytes: damaged.sizeBytes - cutPosition + later.reduce((sum, segment) => sum + segment.sizeBytes, 0),
    ...marks,
  };
  if (!options.apply) return plan;

  for (const segment of [...later].reverse()) await repairPartitionDirectoryRemoveSegment(fileSystem, dir, segment.baseOffset);
  const handle = await fileSystem.open(segmentFilePath(dir, damaged.baseOffset, 'log'), 'read-write');
  try {
    await handle.truncate(cutPosition);
    // The cut is durable before the offline mark goes.
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fileSystem.unlink(segmentFilePath(dir, damaged.baseOffset, 'index'));
  await fileSystem.unlink(segmentFilePath(dir, damaged.baseOffset, 'timeindex'));
  // A snapshot taken past the cut describes batches that are gone: the producer state is then
  // rebuilt from what is left. An unreadable one goes too (start-up would ignore it anyway).
  const snapshot = await tryReadProducerSnapshot(fileSystem, dir).catch(() => undefined);
  if (snapshot === undefined || snapshot.offset > plan.newLogEndOffset) await fileSystem.unlink(join(dir, PRODUCER_SNAPSHOT_FILE_NAME));
  await fileSystem.syncDirectory(dir);
  // The checkpoint points at the cut segment: the next open scans it (and it is now last).
  await writePartitionState(fileSystem, dir, { recoveryCheckpoint: damaged.baseOffset });
  return plan;
}

/**
 * A partition.state a newer Runnel wrote may hold marks this version cannot read (start-up
 * refuses it too, recovery.ts): a repair would judge the log without them and overwrite them.
 */
async function repairPartitionDirectoryRefuseNewerState(fileSystem: FileSystem, dir: string): Promise<void> {
  const read = await readPartitionStateFile(fileSystem, dir);
  if (read.kind !== 'newer') return;
  const path = join(dir, STATE_FILE_NAME);
  throw new BrokerError('INVALID_REQUEST', `${path} is version ${read.version}, written by a newer Runnel; this one reads version 1 and does not repair the partition (it would overwrite the file): repair it with the newer Runnel`, {
    details: { path, version: read.version },
  });
}

/**
 * The .log first, then its indexes. Crash between: index files whose .log is gone, which the
 * broker's next open removes (recovery.ts, removeOrphanIndexes); they hold nothing the log does
 * not. Durable only after the caller's directory fsync.
 */
async function repairPartitionDirectoryRemoveSegment(fileSystem: FileSystem, dir: string, baseOffset: number): Promise<void> {
  await fileSystem.unlink(segmentFilePath(dir, baseOffset, 'log'));
  await fileSystem.unlink(segmentFilePath(dir, baseOffset, 'index'));
  await fileSystem.unlink(segmentFilePath(dir, baseOffset, 'timeindex'));
}

/**
 * Calls `onBatch` for every valid batch from the one holding `fromOffset` on, segment by
 * segment, until it returns (or resolves to) false. Stops at the first damaged batch and
 * returns its problem. `onBatch` may return a promise (a writer waiting for its output to
 * drain): reading waits for it, and at most `BATCHES_AHEAD_BYTES_MAX` of read batches wait
 * meanwhile, so a slow reader of a dump does not make it hold the whole partition in memory.
 */
export async function forEachStoredBatch(
  fileSystem: FileSystem,
  dir: string,
  options: { fromOffset: number; onBatch: (header: BatchHeader, bytes: Buffer) => boolean | Promise<boolean> },
): Promise<{ problem?: { segmentBaseOffset: number; position: number; detail: string } }> {
  const bases = await listSegmentBases(fileSystem, dir);
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i] as number;
    const nextBase = bases[i + 1];
    if (nextBase !== undefined && nextBase <= options.fromOffset) continue;
    const path = segmentFilePath(dir, base, 'log');
    const handle = await fileSystem.open(path, 'read').catch((error: unknown) => {
      throw storageError('open', path, error);
    });
    try {
      const sizeBytes = await handle.sizeBytes();
      let position = 0;
      let expectedBaseOffset = base;
      // Scans a stretch of at most BATCHES_AHEAD_BYTES_MAX (at least one batch), hands it over,
      // then goes on from where the stretch ended.
      for (;;) {
        const stretch: { header: BatchHeader; bytes: Buffer }[] = [];
        let stretchBytes = 0;
        const scan = await scanBatches(handle, {
          fromPosition: position,
          toPosition: sizeBytes,
          expectedBaseOffset,
          onBatch: (header, _position, bytes) => {
            if (header.baseOffset + header.lastOffsetDelta < options.fromOffset) return true;
            stretch.push({ header, bytes });
            stretchBytes += bytes.length;
            return stretchBytes < BATCHES_AHEAD_BYTES_MAX;
          },
        });
        for (const { header, bytes } of stretch) if (!(await options.onBatch(header, bytes))) return {};
        if (scan.problem !== undefined) return { problem: { segmentBaseOffset: base, position: scan.problem.position, detail: scan.problem.detail } };
        if (scan.validEndPosition >= sizeBytes || scan.validEndPosition === position) break;
        position = scan.validEndPosition;
        expectedBaseOffset = scan.nextOffset;
      }
    } finally {
      await handle.close();
    }
  }
  return {};
}
