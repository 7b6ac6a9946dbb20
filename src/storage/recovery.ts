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
 *   invalid batch, provided no valid batch follows it anywhere in the segment. A whole batch
 *   with a valid CRC but the wrong base offset is never a torn tail (see below), and neither is
 *   a log shorter than its clean-shutdown mark says (no crash leaves one: the mark is written
 *   after the fdatasync and replaced before the next write).
 * - Invalid bytes with a valid batch after them, or any damage in a segment that is not the
 *   last, or a gap between segments, is not a crash artifact: the partition goes offline with
 *   CORRUPT_DATA (gRPC DATA_LOSS), the mark is persisted, and nothing is truncated or skipped.
 *   An operator acts with `runnel log repair` (`repairPartitionDirectory`, inspect.ts).
 * - Index files are always rebuildable: missing or garbled ones only cost a rebuild.
 *
 * Producer state (producer-state.ts) is rebuilt here too: the snapshot (producer-snapshot.ts)
 * is loaded, then the producer fields of every batch at or after its offset are replayed.
 * - Clean open with a snapshot at the log end (the usual case): nothing is replayed.
 * - Crash recovery: the scan above already visits every batch from the checkpoint on and
 *   feeds the replay; it stops at a torn tail (which is then cut), so only kept batches are
 *   replayed. The snapshot is never older than the checkpoint unless it was lost, because
 *   every roll writes one before it moves the checkpoint.
 * - A missing or unreadable snapshot, or one whose offset lies outside the log, means a
 *   rebuild from the first segment: correct, but it reads (and CRC-checks) the whole log, so
 *   start-up takes time proportional to the partition's size once. Damage found while doing
 *   so is damage like any other: the partition goes offline.
 */
import { join } from 'node:path';
import { assert, assertNever } from '../common/assert.js';
import { BrokerError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { BatchHeader } from '../protocol/index.js';
import { storageError } from './errors.js';
import { PRODUCER_SNAPSHOT_FILE_NAME, STATE_FILE_NAME, isAtomicReplaceTempName, tryParseSegmentFileName } from './file-names.js';
import { findValidBatchAfter, scanBatches } from './batch-scan.js';
import { readPartitionStateFile, type OfflineMark, type PartitionState, type PartitionStateRead } from './partition-state.js';
import { OffsetIndex } from './offset-index.js';
import { removeProducerSnapshot, tryReadProducerSnapshot, type ProducerSnapshot } from './producer-snapshot.js';
import type { ProducerBatchMetadata, ProducerState } from './producer-state.js';
import { TimeIndex } from './time-index.js';
import { Segment, SegmentIndexBuilder, buildIndexes, type SegmentContext } from './segment.js';

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
  /** How the producer state (loaded into `options.producers`) was obtained. */
  producerRecovery: ProducerRecovery;
}

export interface ProducerRecovery {
  /** Offset of the snapshot on disk that was loaded; `undefined` when none was usable. */
  snapshotOffset: number | undefined;
  /** First offset whose batches were replayed; `undefined` when nothing needed replaying. */
  replayedFromOffset: number | undefined;
}

export interface OpenPartitionOptions {
  nowMs: number;
  /**
   * For the lines of what the open changed on disk (a torn tail cut, orphan index files or a
   * snapshot past the log end removed): said once, since the change is made once, and never
   * dropped by a repeat limit.
   */
  logger: Logger;
  /**
   * For the lines that an open failing later on (EIO on a segment) says again at every retry,
   * which every request to the partition makes: what it found unusable and rebuilds. A
   * repeat-limited logger (log-manager.ts); `logger` when absent.
   */
  repeatLogger?: Logger;
  /** Empty; filled with the producer state as of the log end (left empty when offline). */
  producers: ProducerState;
}

/** Reads a partition directory (which must exist) and recovers it as described above. */
export async function openPartitionDirectory(context: SegmentContext, options: OpenPartitionOptions): Promise<OpenedPartition> {
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
    if (isAtomicReplaceTempName(name)) {
      // An interrupted atomic replace; the real file is intact (writeFileAtomically). Any
      // other name ending in .tmp is not storage's: it is left alone, like every unknown file.
      await fileSystem.unlink(join(dir, name)).catch(() => undefined);
      continue;
    }
    const parsed = tryParseSegmentFileName(name);
    if (parsed === undefined) continue;
    if (parsed.kind === 'log') logBases.push(parsed.baseOffset);
    else otherBases.add(parsed.baseOffset);
  }
  logBases.sort((a, b) => a - b);
  await removeOrphanIndexes(context, logBases, otherBases, options.logger);
  const state = names.includes(STATE_FILE_NAME) ? await readStateFile(context, options) : undefined;
  const read = names.includes(PRODUCER_SNAPSHOT_FILE_NAME) ? await readProducerSnapshot(context, options) : undefined;
  const snapshot = read?.isVersion1 === true ? fromVersion1(read, logBases[0]) : read;

  // Before the empty-directory case: a partition of one segment whose .log is gone has no
  // file left, and a new log there would hand out its offsets again (and drop the mark).
  const offline = state?.offline ?? findMissingCleanActiveSegment(logBases, state, options.nowMs);
  if (offline !== undefined) return openOffline(context, logBases.length > 0 ? logBases : [offline.segmentBaseOffset], state as PartitionState, offline);
  if (logBases.length === 0) return loadProducers(context, logBases, await createFirstSegment(context, state, names.includes(STATE_FILE_NAME)), snapshot, options);
  const clean = await tryOpenClean(context, logBases, state);
  if (clean !== undefined) return loadProducers(context, logBases, clean, snapshot, options);
  return recoverFromCheckpoint(context, logBases, state, snapshot, options);
}

/**
 * partition.state, or `undefined` when there is none or it is unreadable (logged with its path:
 * recovery then scans every segment and writes a new one). One a newer Runnel wrote is refused
 * (STORAGE_ERROR naming the file): its marks (an offline mark, a clean mark, a checkpoint) may
 * mean what this version cannot know, and the open would overwrite it.
 */
async function readStateFile(context: SegmentContext, options: OpenPartitionOptions): Promise<PartitionState | undefined> {
  const path = join(context.dir, STATE_FILE_NAME);
  let read: PartitionStateRead;
  try {
    read = await readPartitionStateFile(context.fileSystem, context.dir);
  } catch (error) {
    throw storageError('read', path, error);
  }
  switch (read.kind) {
    case 'missing':
      return undefined;
    case 'read':
      return read.state;
    case 'unreadable':
      (options.repeatLogger ?? options.logger).warn({ path, detail: read.detail }, 'partition.state is unreadable; recovering the partition by scanning every segment, then writing a new one');
      return undefined;
    case 'newer':
      throw new BrokerError(
        'STORAGE_ERROR',
        `${path} is version ${read.version}, written by a newer Runnel; this one reads version 1 and does not open the partition (it would overwrite the file): ` +
          'run the newer Runnel, or, to recover the partition by a full scan, move the file out of the partition directory',
        { details: { path, version: read.version } },
      );
    default:
      return assertNever(read);
  }
}

/**
 * The clean mark names the active segment and the records it held when the log closed (its
 * bytes fdatasynced first, its name since its roll). When that .log is gone no crash explains
 * it: recovering from the files left would end the log earlier and give the lost offsets to
 * new records. An empty active segment that is missing lost nothing: recovery recreates it.
 */
function findMissingCleanActiveSegment(logBases: readonly number[], state: PartitionState | undefined, nowMs: number): OfflineMark | undefined {
  const clean = state?.clean;
  if (clean === undefined || clean.logEndOffset <= clean.activeBaseOffset || logBases.includes(clean.activeBaseOffset)) return undefined;
  return {
    reason: 'CORRUPT_DATA',
    segmentBaseOffset: clean.activeBaseOffset,
    position: 0,
    detail: `segment file is missing; it held offsets ${clean.activeBaseOffset}..${clean.logEndOffset - 1} at the last clean close`,
    detectedAtMs: nowMs,
  };
}

/** The snapshot, or `undefined` when it is unusable: then logged with its path (the state is rebuilt from the log). */
async function readProducerSnapshot(context: SegmentContext, options: OpenPartitionOptions): Promise<ProducerSnapshot | undefined> {
  const path = join(context.dir, PRODUCER_SNAPSHOT_FILE_NAME);
  let snapshot: ProducerSnapshot | undefined;
  try {
    snapshot = await tryReadProducerSnapshot(context.fileSystem, context.dir);
  } catch (error) {
    throw storageError('read', path, error);
  }
  if (snapshot === undefined) {
    // Listed, so it was there: a bad magic, version, CRC or field (no crash leaves one: it is
    // replaced atomically). It is replaced at the next roll, retention run or clean close.
    (options.repeatLogger ?? options.logger).warn({ path }, 'producer.snapshot is unreadable; rebuilding the idempotent producer state from the whole log');
  }
  return snapshot;
}

/**
 * A version-1 snapshot (producer-snapshot.ts) as one at the log start holding only the
 * producers whose batches are all below it: retention deleted them, so the file is their only
 * trace, and forgetting them would append a retry of their last batch again. Every other
 * producer is rebuilt from the log, which has the batch timestamps version 1 lacked. Unusable
 * (`undefined`, a rebuild from the log) when it is older than the log start. It never counts
 * as the snapshot on disk (`snapshotOffset`), so the next roll, retention or close replaces it.
 */
function fromVersion1(snapshot: ProducerSnapshot, logStartOffset: number | undefined): ProducerSnapshot | undefined {
  if (logStartOffset === undefined || snapshot.offset < logStartOffset) return undefined;
  const producers = snapshot.producers.filter((entry) => (entry.batches[entry.batches.length - 1] as ProducerBatchMetadata).lastOffset < logStartOffset);
  return { offset: logStartOffset, producers, isVersion1: true };
}

/** Damage found while replaying producer state: the partition goes offline with it. */
interface ReplayDamage {
  segmentBaseOffset: number;
  position: number;
  detail: string;
}

const NO_PRODUCER_RECOVERY: ProducerRecovery = Object.freeze({ snapshotOffset: undefined, replayedFromOffset: undefined });

/** Whether `snapshot` describes a prefix of the log [logStartOffset, logEndOffset). */
/**
 * A snapshot past the log end (a repair, or a cut after a failed write, took batches it
 * describes) is removed before the log is served: once appends carried the log end past its
 * offset it would look usable, and answer new batches as duplicates of ones that are gone.
 */
async function removeStaleSnapshot(context: SegmentContext, snapshotOffset: number, logEndOffset: number, options: OpenPartitionOptions): Promise<void> {
  options.logger.warn({ snapshotOffset, logEndOffset }, 'producer snapshot is past the log end; removing it and rebuilding producer state from the log');
  try {
    await removeProducerSnapshot(context.fileSystem, context.dir);
  } catch (error) {
    throw storageError('remove', join(context.dir, PRODUCER_SNAPSHOT_FILE_NAME), error);
  }
}

function isSnapshotUsable(snapshot: ProducerSnapshot | undefined, logStartOffset: number, logEndOffset: number): snapshot is ProducerSnapshot {
  return snapshot !== undefined && snapshot.offset >= logStartOffset && snapshot.offset <= logEndOffset;
}

/**
 * After an open that scanned nothing (clean, or a new partition): loads the snapshot, then
 * replays the batches after it, which is nothing when the snapshot is at the log end.
 */
async function loadProducers(
  context: SegmentContext,
  logBases: readonly number[],
  opened: OpenedPartition,
  snapshot: ProducerSnapshot | undefined,
  options: OpenPartitionOptions,
): Promise<OpenedPartition> {
  const segments = opened.segments;
  const logStartOffset = (segments[0] as Segment).baseOffset;
  const logEndOffset = (segments[segments.length - 1] as Segment).nextOffset;
  let replayedFromOffset = logStartOffset;
  let snapshotOffset: number | undefined;
  const staleSnapshotOffset = snapshot !== undefined && snapshot.offset > logEndOffset ? snapshot.offset : undefined;
  if (isSnapshotUsable(snapshot, logStartOffset, logEndOffset)) {
    options.producers.load(snapshot.producers, options.nowMs);
    replayedFromOffset = snapshot.offset;
    if (snapshot.isVersion1 !== true) snapshotOffset = snapshot.offset;
  } else if (staleSnapshotOffset !== undefined) {
    await removeStaleSnapshot(context, staleSnapshotOffset, logEndOffset, options);
  }
  if (replayedFromOffset === logEndOffset) return { ...opened, producerRecovery: { snapshotOffset, replayedFromOffset: undefined } };
  assert(logBases.length > 0, 'a new partition has nothing to replay');
  (options.repeatLogger ?? options.logger).warn({ snapshotOffset, replayedFromOffset, logEndOffset }, 'producer snapshot missing or behind the log end; replaying batches into producer state');
  const damage = await replayProducerBatches(segments, options.producers, replayedFromOffset, options.nowMs);
  if (damage !== undefined) {
    options.producers.clear();
    const offline: OfflineMark = { reason: 'CORRUPT_DATA', ...damage, detectedAtMs: options.nowMs };
    return openOffline(context, logBases, opened.state, offline);
  }
  return { ...opened, producerRecovery: { snapshotOffset, replayedFromOffset } };
}

/**
 * Replays the producer fields of every batch at or after `fromOffset` in `segments`: each
 * segment that holds such batches is read from its start with full checks (structure, CRC,
 * dense offsets). Returns the first damage found, with the producer state then incomplete.
 */
async function replayProducerBatches(segments: readonly Segment[], producers: ProducerState, fromOffset: number, nowMs: number): Promise<ReplayDamage | undefined> {
  const onBatch = (header: BatchHeader): void => {
    if (header.baseOffset >= fromOffset) producers.replay(header, nowMs);
  };
  for (const segment of segments) {
    if (segment.nextOffset <= fromOffset) continue;
    const lease = await segment.lease();
    try {
      const toPosition = await segment.knownSizeBytes();
      const scan = await scanBatches(lease.handle, { fromPosition: 0, toPosition, expectedBaseOffset: segment.baseOffset, onBatch });
      if (scan.problem !== undefined) return { segmentBaseOffset: segment.baseOffset, position: scan.problem.position, detail: scan.problem.detail };
      if (scan.nextOffset !== segment.nextOffset) {
        const detail = `segment ends at offset ${scan.nextOffset} but the next segment starts at ${segment.nextOffset}`;
        return { segmentBaseOffset: segment.baseOffset, position: scan.validEndPosition, detail };
      }
    } catch (error) {
      throw storageError('replay producer state from', segment.logPath, error);
    } finally {
      lease.release();
    }
  }
  return undefined;
}

async function removeOrphanIndexes(context: SegmentContext, logBases: readonly number[], otherBases: ReadonlySet<number>, logger: Logger): Promise<void> {
  const known = new Set(logBases);
  for (const base of otherBases) {
    if (known.has(base)) continue;
    // Index files whose log is gone: retention unlinks the .log first, then its indexes, so a
    // crash between leaves them. They hold nothing the log does not (rebuildable), as in Kafka.
    const probe = Segment.sealed(context, base, base);
    logger.info({ indexPath: probe.indexPath, timeIndexPath: probe.timeIndexPath }, 'removing index files whose .log is gone (left by a retention run a crash interrupted, or put there by hand)');
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

async function createFirstSegment(context: SegmentContext, state: PartitionState | undefined, hasStateFile: boolean): Promise<OpenedPartition> {
  // A new partition (or one whose files were all removed by hand, unless partition.state says
  // they held records: openPartitionDirectory): start at offset 0, or at the checkpoint if a
  // state file survived, so offsets are never reused.
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
    // A new directory gets no partition.state until its first roll or close: with none, a
    // crash makes the next open scan from the first segment, which is what checkpoint 0 says
    // (recoverFromCheckpoint), so the file would change nothing, and writing it (a file
    // fdatasync and a directory fsync) tripled the cost of a partition's first open: a
    // producer's first request to a new topic of 10,000 partitions waited for 30,000 fsyncs.
    // A state file that is there (files removed by hand: it keeps the offsets from being
    // handed out again) is written anew, so one this version cannot read is replaced.
    isStateStale: hasStateFile,
    producerRecovery: NO_PRODUCER_RECOVERY,
  };
}

/** `logBases` names at least one segment; its files may be missing (nothing is read while offline). */
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
    producerRecovery: NO_PRODUCER_RECOVERY,
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
  return {
    segments,
    state,
    isMarkedClean: true,
    recovery: { kind: 'clean', scannedSegments: 0, truncatedBytes: 0 },
    isStateStale: false,
    producerRecovery: NO_PRODUCER_RECOVERY,
  };
}

async function recoverFromCheckpoint(
  context: SegmentContext,
  logBases: readonly number[],
  state: PartitionState | undefined,
  snapshot: ProducerSnapshot | undefined,
  options: OpenPartitionOptions,
): Promise<OpenedPartition> {
  const checkpoint = state?.recoveryCheckpoint ?? (logBases[0] as number);
  // Scan from the last segment that starts at or before the checkpoint.
  let firstScanned = 0;
  for (let i = 0; i < logBases.length; i++) if ((logBases[i] as number) <= checkpoint) firstScanned = i;
  const segments = sealedSegments(context, logBases, firstScanned);
  const offlineAt = (segmentBaseOffset: number, position: number, detail: string): OpenedPartition => {
    options.producers.clear();
    const offline: OfflineMark = { reason: 'CORRUPT_DATA', segmentBaseOffset, position, detail, detectedAtMs: options.nowMs };
    return openOffline(context, logBases, state ?? { recoveryCheckpoint: checkpoint }, offline);
  };

  const producers = await recoverFromCheckpointStartProducers(segments, logBases[firstScanned] as number, snapshot, options);
  if ('damage' in producers) return offlineAt(producers.damage.segmentBaseOffset, producers.damage.position, producers.damage.detail);
  const { onBatch } = producers;

  // Segments after the checkpoint that are not last were complete before their successor was
  // created (roll order, partition-log.ts): any damage in them is real damage.
  for (let i = firstScanned; i < logBases.length - 1; i++) {
    const base = logBases[i] as number;
    const nextBase = logBases[i + 1] as number;
    const segment = Segment.sealed(context, base, nextBase);
    const lease = await segment.lease();
    try {
      const toPosition = await segment.knownSizeBytes();
      const built = await buildIndexes(lease, { fromPosition: 0, toPosition, baseOffset: base, indexIntervalBytes: context.indexIntervalBytes, onBatch });
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
    // Replay sees only batches the scan accepts: all of them lie before a torn tail cut below.
    const built = await buildIndexes(lease, { fromPosition: 0, toPosition: sizeBytes, baseOffset: activeBase, indexIntervalBytes: context.indexIntervalBytes, onBatch });
    const problem = built.scan.problem;
    if (problem?.kind === 'offset-gap') {
      // A whole batch with a valid CRC that is not the one that must come next: a torn write
      // leaves a short batch or a bad header or checksum, never this. A .log named for other
      // offsets than it holds (a copy or restore) starts with one; cutting would drop it all.
      return offlineAt(activeBase, problem.position, `${problem.detail}: a whole batch with a valid checksum, not a torn write`);
    }
    const clean = state?.clean;
    if (clean !== undefined && clean.activeBaseOffset === activeBase && built.scan.nextOffset < clean.logEndOffset) {
      // The mark was written after the segment's fdatasync at a clean close, and the next
      // write after a clean open replaces it: no crash leaves a shorter log under it. Bytes
      // were lost or an older copy restored; cutting would hand their offsets to new records.
      return offlineAt(
        activeBase,
        built.scan.validEndPosition,
        `the log closed cleanly with offsets up to ${clean.logEndOffset - 1} (${clean.activeSizeBytes} bytes in this segment), ` +
          `but its valid batches end at offset ${built.scan.nextOffset - 1} (${sizeBytes} bytes on disk): records are missing, not a torn write`,
      );
    }
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
        { segmentBaseOffset: activeBase, position: problem.position, truncatedBytes, problem: problem.kind, detail: problem.detail },
        'truncated torn tail after unclean shutdown',
      );
    } else {
      // The scan may have accepted batches that were only in the page cache (a process crash
      // before their fdatasync, or under flush=never/interval). Durable before they become
      // visible and count as flushed: otherwise a retry would be answered as a duplicate, or a
      // consumer would read, a batch that a power loss can still take. Crash before this
      // returns: the next recovery scans (and syncs) the same bytes again.
      await lease.handle.datasync();
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
  const producerRecovery = await recoverFromCheckpointFinishProducers(context, segments, producers, options);
  if ('damage' in producerRecovery) return offlineAt(producerRecovery.damage.segmentBaseOffset, producerRecovery.damage.position, producerRecovery.damage.detail);
  return {
    segments,
    state: { recoveryCheckpoint: activeBase },
    isMarkedClean: false,
    recovery: { kind: 'scanned', scannedSegments: logBases.length - firstScanned, truncatedBytes },
    producerRecovery,
    // Usually the file already says exactly this (dirty, checkpoint at the active segment),
    // and rewriting it would cost two fsyncs per partition at every start after a crash.
    isStateStale: state === undefined || state.recoveryCheckpoint !== activeBase || state.clean !== undefined,
  };
}

/** Where producer replay stands before the recovery scan. */
interface ProducersBeforeScan {
  /** The snapshot loaded, if any was usable as far as can be told before the scan. */
  loaded: ProducerSnapshot | undefined;
  /** Batches from here on are replayed. */
  replayFrom: number;
  /** Feeds the scan's batches into the replay. */
  onBatch(header: BatchHeader): void;
}

/**
 * Producer state before the recovery scan: the snapshot, unless it is older than the log start
 * (whether it lies past the log end is known only after the scan). Batches from `replayFrom`
 * on are replayed: those in the sealed segments before the scan here, which happens only when
 * the snapshot is older than them (it was lost); the scanned ones through `onBatch`.
 */
async function recoverFromCheckpointStartProducers(
  segmentsBeforeScan: readonly Segment[],
  firstScannedBaseOffset: number,
  snapshot: ProducerSnapshot | undefined,
  options: OpenPartitionOptions,
): Promise<ProducersBeforeScan | { damage: ReplayDamage }> {
  const logStartOffset = (segmentsBeforeScan[0] as Segment | undefined)?.baseOffset ?? firstScannedBaseOffset;
  const loaded = snapshot !== undefined && snapshot.offset >= logStartOffset ? snapshot : undefined;
  if (loaded !== undefined) options.producers.load(loaded.producers, options.nowMs);
  const replayFrom = loaded?.offset ?? logStartOffset;
  if (replayFrom < firstScannedBaseOffset) {
    (options.repeatLogger ?? options.logger).warn({ snapshotOffset: loaded?.offset, replayFrom, firstScannedBaseOffset }, 'rebuilding producer state from segments before the recovery checkpoint');
    const damage = await replayProducerBatches(segmentsBeforeScan, options.producers, replayFrom, options.nowMs);
    if (damage !== undefined) return { damage };
  }
  const onBatch = (header: BatchHeader): void => {
    if (header.baseOffset >= replayFrom) options.producers.replay(header, options.nowMs);
  };
  return { loaded, replayFrom, onBatch };
}

/**
 * Producer state after the recovery scan. A loaded snapshot past the recovered log end
 * describes batches that are gone (a repair cut them): the state is rebuilt from the log start.
 */
async function recoverFromCheckpointFinishProducers(
  context: SegmentContext,
  segments: readonly Segment[],
  before: ProducersBeforeScan,
  options: OpenPartitionOptions,
): Promise<ProducerRecovery | { damage: ReplayDamage }> {
  const logStartOffset = (segments[0] as Segment).baseOffset;
  const logEndOffset = (segments[segments.length - 1] as Segment).nextOffset;
  const { loaded, replayFrom } = before;
  if (loaded === undefined || loaded.offset <= logEndOffset) {
    const snapshotOffset = loaded?.isVersion1 === true ? undefined : loaded?.offset;
    return { snapshotOffset, replayedFromOffset: replayFrom < logEndOffset ? replayFrom : undefined };
  }
  await removeStaleSnapshot(context, loaded.offset, logEndOffset, options);
  options.producers.clear();
  const damage = await replayProducerBatches(segments, options.producers, logStartOffset, options.nowMs);
  if (damage !== undefined) return { damage };
  return { snapshotOffset: undefined, replayedFromOffset: logStartOffset };
}
