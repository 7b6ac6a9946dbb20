/**
 * Opening a partition directory: what a crash leaves behind and how start-up copes.
 *
 * - **Clean open** (partition.state says the log closed cleanly and the active segment's size
 *   matches): nothing is scanned. The active segment's indexes come from its index files
 *   (checked; rebuilt from the log if inconsistent), sealed segments stay unopened until used.
 * - **Crash recovery** otherwise: every segment from the recovery checkpoint on is scanned
 *   batch by batch (length, magic, CRC, dense offsets). Sealed segments before the checkpoint
 *   were fsynced and indexed at roll time and are not read, so restart time depends on the
 *   size of the active segment, not of the partition.
 *
 * Corruption policy:
 * - A torn tail of the last segment is normal after a crash: the log is truncated at the first
 *   invalid batch, provided no valid batch follows it anywhere in the segment.
 * - Invalid bytes with a valid batch after them, or any damage in a segment that is not the
 *   last, or a gap between segments, is not a crash artifact: the partition goes offline with
 *   CORRUPT_DATA (gRPC DATA_LOSS), the mark is persisted, and nothing is truncated or skipped.
 *   An operator acts with `repairPartition` (repair.ts).
 * - Index files are always rebuildable: missing or garbled ones only cost a rebuild.
 */
import { join } from 'node:path';
import { storageError } from './errors.js';
import { STATE_FILE_NAME, TMP_SUFFIX, tryParseSegmentFileName } from './file-names.js';
import { findValidBatchAfter } from './batch-scan.js';
import { readPartitionState, type OfflineMark, type PartitionState } from './partition-state.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';
import { Segment, SegmentIndexBuilder, buildIndexes, type SegmentContext } from './segment.js';
import type { Logger } from '../observability/index.js';

export interface OpenedPartition {
  segments: Segment[];
  state: PartitionState;
  /** Whether the state file still says "clean" (it must be marked dirty before any append). */
  isMarkedClean: boolean;
  /** Set when the partition must stay offline. */
  offline?: OfflineMark;
  /** What recovery did, for logs and tests. */
  recovery: { kind: 'clean' | 'new' | 'scanned' | 'offline'; scannedSegments: number; truncatedBytes: number };
  /** Whether `state` differs from partition.state on disk and must be written before use. */
  isStateStale: boolean;
}

/** Reads a partition directory (which must exist) and recovers it as described above. */
export async function openPartitionDirectory(
  context: SegmentContext,
  options: { nowMs: number; logger: Logger },
): Promise<OpenedPartition> {
  const { dir, fileSystem } = context;
  let names: string[];
  try {
    names = await fileSystem.readdir(dir);
  } catch (error) {
    throw storageError('list', dir, error);
  }
  const logBases: number[] = [];
  const otherBases = new Set<number>();
  for (const name of names) {
    if (name.endsWith(TMP_SUFFIX)) {
      // An interrupted atomic replace; the real file is intact (writeFileAtomically).
      await fileSystem.unlink(join(dir, name)).catch(() => undefined);
      continue;
    }
    const parsed = tryParseSegmentFileName(name);
    if (parsed === undefined) continue;
    if (parsed.kind === 'log') logBases.push(parsed.baseOffset);
    else otherBases.add(parsed.baseOffset);
  }
  logBases.sort((a, b) => a - b);
  await removeOrphanIndexes(context, logBases, otherBases);
  const state = names.includes(STATE_FILE_NAME) ? await readPartitionState(fileSystem, dir) : undefined;

  if (logBases.length === 0) return createFirstSegment(context, state);
  if (state?.offline !== undefined) return openOffline(context, logBases, state, state.offline);
  const clean = await tryOpenClean(context, logBases, state);
  if (clean !== undefined) return clean;
  return recoverFromCheckpoint(context, logBases, state, options);
}

async function removeOrphanIndexes(context: SegmentContext, logBases: readonly number[], otherBases: ReadonlySet<number>): Promise<void> {
  const known = new Set(logBases);
  for (const base of otherBases) {
    if (known.has(base)) continue;
    // Index files whose log is gone: retention unlinks the .log first, then its indexes.
    const probe = Segment.sealed(context, base, base);
    await context.fileSystem.unlink(probe.indexPath).catch(() => undefined);
    await context.fileSystem.unlink(probe.timeIndexPath).catch(() => undefined);
  }
}

function sealedSegments(context: SegmentContext, logBases: readonly number[], count: number): Segment[] {
  const segments: Segment[] = [];
  for (let i = 0; i < count; i++) {
    const base = logBases[i] as number;
    segments.push(Segment.sealed(context, base, logBases[i + 1] as number));
  }
  return segments;
}

async function createFirstSegment(context: SegmentContext, state: PartitionState | undefined): Promise<OpenedPartition> {
  // A new partition (or one whose files were all removed by hand): start at offset 0, or at
  // the checkpoint if a state file survived, so offsets are never reused.
  const baseOffset = state?.recoveryCheckpoint ?? 0;
  const segment = Segment.active(context, {
    baseOffset,
    nextOffset: baseOffset,
    sizeBytes: 0,
    builder: new SegmentIndexBuilder(baseOffset, context.indexIntervalBytes),
  });
  try {
    const handle = await context.fileSystem.open(segment.logPath, 'create');
    await handle.close();
    // Crash before this directory fsync: the empty file may vanish; the next open recreates it.
    await context.fileSystem.syncDirectory(context.dir);
  } catch (error) {
    throw storageError('create', segment.logPath, error);
  }
  return {
    segments: [segment],
    state: { recoveryCheckpoint: baseOffset },
    isMarkedClean: false,
    recovery: { kind: 'new', scannedSegments: 0, truncatedBytes: 0 },
    isStateStale: true,
  };
}

function openOffline(context: SegmentContext, logBases: readonly number[], state: PartitionState, offline: OfflineMark): OpenedPartition {
  const segments = sealedSegments(context, logBases, logBases.length - 1);
  const lastBase = logBases[logBases.length - 1] as number;
  // Offline: nothing is read or written until repair; the last segment's end is unknown.
  segments.push(Segment.sealed(context, lastBase, lastBase));
  return {
    segments,
    state,
    isMarkedClean: false,
    offline,
    recovery: { kind: 'offline', scannedSegments: 0, truncatedBytes: 0 },
    isStateStale: state.offline !== offline,
  };
}

async function tryOpenClean(context: SegmentContext, logBases: readonly number[], state: PartitionState | undefined): Promise<OpenedPartition | undefined> {
  const clean = state?.clean;
  const activeBase = logBases[logBases.length - 1] as number;
  if (state === undefined || clean === undefined || clean.activeBaseOffset !== activeBase) return undefined;
  const probe = Segment.sealed(context, activeBase, clean.logEndOffset);
  const sizeBytes = await context.fileSystem.trySizeBytes(probe.logPath).catch(() => undefined);
  if (sizeBytes !== clean.activeSizeBytes) return undefined;
  const offsetBytes = await context.fileSystem.tryReadFile(probe.indexPath).catch(() => undefined);
  const timeBytes = await context.fileSystem.tryReadFile(probe.timeIndexPath).catch(() => undefined);
  const relativeOffsetEnd = clean.logEndOffset - activeBase;
  const offsetIndex = offsetBytes && OffsetIndex.tryFromBytes(offsetBytes, { logSizeBytes: sizeBytes, relativeOffsetEnd });
  const timeIndex = timeBytes && TimeIndex.tryFromBytes(timeBytes, { relativeOffsetEnd });
  // An empty active segment has empty indexes; a non-empty one has an entry at position 0.
  const isConsistent =
    offsetIndex !== undefined &&
    timeIndex !== undefined &&
    (sizeBytes === 0 ? offsetIndex.entryCount === 0 && timeIndex.entryCount === 0 : offsetIndex.floor(0)?.position === 0 && timeIndex.entryCount > 0);
  if (!isConsistent || offsetIndex === undefined || timeIndex === undefined) return undefined;
  const segments = sealedSegments(context, logBases, logBases.length - 1);
  segments.push(
    Segment.active(context, {
      baseOffset: activeBase,
      nextOffset: clean.logEndOffset,
      sizeBytes,
      builder: new SegmentIndexBuilder(activeBase, context.indexIntervalBytes, { offsetIndex, timeIndex }),
    }),
  );
  return { segments, state, isMarkedClean: true, recovery: { kind: 'clean', scannedSegments: 0, truncatedBytes: 0 }, isStateStale: false };
}

async function recoverFromCheckpoint(
  context: SegmentContext,
  logBases: readonly number[],
  state: PartitionState | undefined,
  options: { nowMs: number; logger: Logger },
): Promise<OpenedPartition> {
  const checkpoint = state?.recoveryCheckpoint ?? (logBases[0] as number);
  // Scan from the last segment that starts at or before the checkpoint.
  let firstScanned = 0;
  for (let i = 0; i < logBases.length; i++) if ((logBases[i] as number) <= checkpoint) firstScanned = i;
  const segments = sealedSegments(context, logBases, firstScanned);
  const offlineAt = (segmentBaseOffset: number, position: number, detail: string): OpenedPartition => {
    const offline: OfflineMark = { reason: 'CORRUPT_DATA', segmentBaseOffset, position, detail, detectedAtMs: options.nowMs };
    return openOffline(context, logBases, state ?? { recoveryCheckpoint: checkpoint }, offline);
  };

  // Segments after the checkpoint that are not last were complete before their successor was
  // created (roll order, partition-log.ts): any damage in them is real damage.
  for (let i = firstScanned; i < logBases.length - 1; i++) {
    const base = logBases[i] as number;
    const nextBase = logBases[i + 1] as number;
    const segment = Segment.sealed(context, base, nextBase);
    const lease = await segment.lease();
    try {
      const built = await buildIndexes(lease, { fromPosition: 0, toPosition: await segment.knownSizeBytes(), baseOffset: base, indexIntervalBytes: context.indexIntervalBytes });
      if (built.scan.problem !== undefined) return offlineAt(base, built.scan.problem.position, built.scan.problem.detail);
      if (built.scan.nextOffset !== nextBase) {
        return offlineAt(base, built.scan.validEndPosition, `segment ends at offset ${built.scan.nextOffset} but the next segment starts at ${nextBase}`);
      }
      const indexes = built.builder.finish();
      // The scan may have read bytes still only in the page cache (a process crash under
      // flush=never): make them durable before the checkpoint moves past this segment.
      await lease.handle.datasync();
      await segment.persistIndexes(indexes, { isBestEffort: false });
    } catch (error) {
      throw storageError('recover', segment.logPath, error);
    } finally {
      lease.release();
    }
    segments.push(segment);
  }

  const activeBase = logBases[logBases.length - 1] as number;
  const probe = Segment.sealed(context, activeBase, activeBase);
  let truncatedBytes = 0;
  const lease = await context.handles.acquire(probe.logPath, 'read-write').catch((error: unknown) => {
    throw storageError('open', probe.logPath, error);
  });
  try {
    const sizeBytes = await lease.handle.sizeBytes();
    const built = await buildIndexes(lease, { fromPosition: 0, toPosition: sizeBytes, baseOffset: activeBase, indexIntervalBytes: context.indexIntervalBytes });
    const problem = built.scan.problem;
    if (problem !== undefined) {
      const validAfter = await findValidBatchAfter(lease.handle, { fromPosition: problem.position, toPosition: sizeBytes, offsetAtLeast: built.scan.nextOffset });
      if (validAfter !== undefined) {
        return offlineAt(activeBase, problem.position, `${problem.detail}, with a valid batch after it at position ${validAfter}`);
      }
      truncatedBytes = sizeBytes - built.scan.validEndPosition;
      // Torn tail: cut it. Crash before the fdatasync: the next recovery cuts it again.
      await lease.handle.truncate(built.scan.validEndPosition);
      await lease.handle.datasync();
      options.logger.warn(
        { segment: activeBase, position: problem.position, truncatedBytes, problem: problem.kind, detail: problem.detail },
        'truncated torn tail after unclean shutdown',
      );
    }
    segments.push(
      Segment.active(context, {
        baseOffset: activeBase,
        nextOffset: built.scan.nextOffset,
        sizeBytes: built.scan.validEndPosition,
        builder: built.builder,
      }),
    );
  } catch (error) {
    throw storageError('recover', probe.logPath, error);
  } finally {
    lease.release();
  }
  return {
    segments,
    state: { recoveryCheckpoint: activeBase },
    isMarkedClean: false,
    recovery: { kind: 'scanned', scannedSegments: logBases.length - firstScanned, truncatedBytes },
    // Usually the file already says exactly this (dirty, checkpoint at the active segment),
    // and rewriting it would cost two fsyncs per partition at every start after a crash.
    isStateStale: state === undefined || state.recoveryCheckpoint !== activeBase || state.clean !== undefined,
  };
}
