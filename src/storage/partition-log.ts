/**
 * The durable log of one partition: the object every other folder uses.
 *
 * Owns: the segment list (copy-on-write: replaced, never mutated, so a reader's snapshot stays
 * valid), the append queue and its single writer, the flush timer, the online/offline status,
 * and the partition's idempotent producer state.
 *
 * Concurrency (H6): appends go through one serial queue drained by `runWriter`; roll,
 * retention, flush and close run in the same queue, so only the writer changes files or the
 * segment list. Reads never take the queue: they capture the segment list and the active
 * segment's visible size synchronously, then read below it. Visible size and log end offset
 * move only after the policy's acknowledgement point (flush-policy.ts), in one synchronous step.
 * Under flush=always the writer writes the next group while the previous group's fdatasync
 * runs (`writeRun`), so the file may hold one group's bytes beyond the visible end.
 *
 * Idempotent producers (producer-state.ts): the writer checks each batch with producerId ≥ 0
 * against the producer state while it places the batches of a run, never before queuing (the
 * state moves with every write). A duplicate resolves with its original offsets and writes
 * nothing; a fenced or out-of-order batch fails alone. The run's changes to the producer state
 * are committed only when its bytes reach the acknowledgement point, and dropped when the
 * write fails. The state is made durable in producer.snapshot at every roll and clean close
 * (producer-snapshot.ts) and rebuilt at open (recovery.ts).
 *
 * Failure policy:
 * - A batch that fails validation is rejected before it is queued: nothing is written.
 * - A write or fdatasync error on append: the file is cut back to the last acknowledged byte,
 *   the appends in that write fail with DISK_FULL or STORAGE_ERROR (under flush=always, a
 *   failed fdatasync fails the group written after it too), and the log stays online
 *   and readable; appends succeed again once the cause is gone (space freed). If even the cut
 *   fails, the partition goes offline (STORAGE_ERROR); after a failed write its acknowledged
 *   batches are synced all the same (`syncWhileOffline`).
 * - A failed background fdatasync (flush=interval) means acknowledged bytes may not be on disk:
 *   the partition goes offline (STORAGE_ERROR) rather than pretend. So does a failed
 *   flush=always fdatasync when bytes acknowledged before it were not yet synced (the topic
 *   was switched from interval or never).
 * - Damage found anywhere (recovery, read, index rebuild): offline with CORRUPT_DATA,
 *   persisted in partition.state, until an operator repairs it (`runnel log repair`, inspect.ts).
 *   Acknowledged batches not yet synced are synced all the same (`syncWhileOffline`).
 */
import { assert } from '../common/assert.js';
import type { Clock } from '../common/clock.js';
import { KiB, MiB } from '../common/units.js';
import { defaults } from '../config/defaults.js';
import { limits } from '../config/limits.js';
import { BrokerError, isBrokerError } from '../errors/index.js';
import { errorFields, limitRepeats, RepeatLimiter, type Logger } from '../observability/index.js';
import { setBatchBaseOffset, setBatchLeaderEpoch, validateBatchOrThrow, validateBatchRecordsOrThrow, type BatchHeader, type RecordChecks } from '../protocol/index.js';
import { storageError } from './errors.js';
import type { FileHandleCache, HandleLease } from './file-handle-cache.js';
import { WRITE_CALL_BYTES_MAX, writeAll, type FileSystem } from './file-system.js';
import type { FlushPolicy } from './flush-policy.js';
import type { IndexCache } from './index-cache.js';
import { writePartitionState, type OfflineMark, type PartitionState } from './partition-state.js';
import { writeProducerSnapshot } from './producer-snapshot.js';
import { ProducerState, validateProducerFieldsOrThrow, type ProducerStateChanges, type ProducerVerdict } from './producer-state.js';
import { openPartitionDirectory, type OpenedPartition } from './recovery.js';
import { countSegmentsToDeleteLazily, summarizeForRetention, type RetentionCandidate, type RetentionSummary } from './retention.js';
import { CorruptionFound, Segment, SegmentIndexBuilder, type SegmentContext } from './segment.js';

export interface PartitionLogConfig {
  segmentBytes: number;
  segmentMs: number;
  retentionMs: number;
  retentionBytes: number;
  indexIntervalBytes: number;
  maxMessageBytes: number;
  flush: FlushPolicy;
}

export interface PartitionLogOptions {
  dir: string;
  topic: string;
  partition: number;
  config: PartitionLogConfig;
  fileSystem: FileSystem;
  handles: FileHandleCache;
  indexCache: IndexCache;
  clock: Clock;
  logger: Logger;
  /**
   * For the lines a failing disk repeats on every retention run, interval flush or open (a
   * `limitRepeats` logger: one line per interval per partition, with a count). The log
   * manager passes one shared by all its logs, so a log closed and opened again stays
   * limited; when absent, the log limits its own.
   */
  repeatLogger?: Logger;
  /** Test seam: lower roll ceilings so 32-bit overflow rolls can be exercised. */
  rollLimits?: { relativeOffsetMax?: number; segmentPositionMax?: number };
  /** Broker setting; `defaults.producerIdExpirationMs` when absent. */
  producerIdExpirationMs?: number;
}

export interface AppendOptions {
  /** Stamped into the batch header (partitionLeaderEpoch); left as sent when absent. */
  leaderEpoch?: number;
  /**
   * Also check every record (`validateBatchRecordsOrThrow`), after the header and CRC: for
   * batches a client sent. Without it, append checks the header and CRC only.
   */
  recordChecks?: RecordChecks;
  /**
   * For batches a client sent: whether the broker ever handed out this producer id. An
   * idempotent batch (producerId ≥ 0) with an id it did not is refused with INVALID_REQUEST,
   * nothing written: a made-up id would be recorded as that producer's, and the producer the
   * id is handed to later would see its first batches answered as duplicates and dropped.
   */
  isProducerIdIssued?: (producerId: number) => boolean;
}

/**
 * `isDuplicate`: the batch repeats one of its idempotent producer's last five (same producer
 * id, epoch and sequences): nothing was written, the offsets are those of the original append,
 * and `maxTimestamp` is the original's as stored (under LogAppendTime, its append time, which
 * the broker answers a retry with).
 */
export type AppendResult =
  | { baseOffset: number; lastOffset: number; isDuplicate: false }
  | { baseOffset: number; lastOffset: number; isDuplicate: true; maxTimestamp: number };

export interface ReadOptions {
  offset: number;
  /** Byte budget; at least one whole batch is returned even when it is larger. */
  bytesMax: number;
}

export interface ReadResult {
  /** Whole record batches, back to back, exactly as stored (possibly empty). */
  bytes: Buffer;
  /** Offset after the last batch returned (= `offset` rounded up to a batch end, or `offset` when empty). */
  nextOffset: number;
  logStartOffset: number;
  logEndOffset: number;
}

export interface PartitionLogStats {
  logStartOffset: number;
  logEndOffset: number;
  flushedOffset: number;
  segmentCount: number;
  sizeBytes: number;
  pendingAppends: number;
  /** Idempotent producers remembered (bounded by limits.producersPerPartitionMax). */
  producerCount: number;
  status: 'online' | 'offline' | 'closed';
  /** Why the log is offline (CORRUPT_DATA, STORAGE_ERROR, …); undefined while online. */
  offlineReason: string | undefined;
}

type Status = { kind: 'online' } | { kind: 'offline'; error: BrokerError } | { kind: 'closing' } | { kind: 'closed' };

interface PendingAppend {
  kind: 'append';
  batch: Buffer;
  header: BatchHeader;
  leaderEpoch: number | undefined;
  /** Queued under flush=always: acknowledged only after its fdatasync, whatever the policy is by the time it is written. */
  isSyncedAck: boolean;
  /**
   * An idempotent batch whose timestamps the record checks refused (INVALID_TIMESTAMP): never
   * written, but answered as a duplicate if it repeats a batch already appended (`writeGroup`).
   */
  timestampRefusal?: BrokerError;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

interface ControlTask {
  kind: 'roll' | 'flush' | 'retention' | 'close';
  resolve(): void;
  reject(error: unknown): void;
}

type WriterTask = PendingAppend | ControlTask;

/** One batch just written, as it is on disk (base offset and leader epoch stamped). */
export interface AppendedBatch {
  bytes: Buffer;
  baseOffset: number;
  /** The offset after its last record. */
  nextOffset: number;
}

/** See `PartitionLog.onAppend`. The batches are in offset order and must not be modified. */
export type AppendListener = (logEndOffset: number, appended: readonly AppendedBatch[]) => void;

/** An append given its offset and file position in a write run. */
interface PlacedAppend {
  task: PendingAppend;
  header: BatchHeader;
  position: number;
}

/**
 * A flush=always write run whose bytes are written but whose fdatasync is still running
 * (`writeRun`). The next run is written meanwhile, after it in the file; nothing of either is
 * visible or acknowledged until its own fdatasync is done, and they complete in write order.
 */
interface UnsyncedRun {
  segment: Segment;
  /** Held until the fdatasync is done, so the handle stays open. */
  lease: HandleLease;
  run: PendingAppend[];
  placed: PlacedAppend[];
  producerChanges: ProducerStateChanges | undefined;
  unwritten: UnwrittenAppend[] | undefined;
  startPosition: number;
  endPosition: number;
  endOffset: number;
  /** Resolves with the fdatasync's error, or `undefined` once the bytes are on stable storage. */
  synced: Promise<unknown>;
}

/** An idempotent batch the producer state answered without a write (duplicate or rejected). */
interface UnwrittenAppend {
  task: PendingAppend;
  verdict: ProducerVerdict;
}

/** One write gathers at most this much (FINDINGS: ~1 MiB writes reach disk speed). */
const WRITE_GROUP_BYTES_MAX = 16 * MiB;
const WRITE_GROUP_COUNT_MAX = 1024;
/**
 * The group cap when appends need not wait for an fdatasync (`takeAppendGroup`): one writev
 * call, so the next group's write can start as soon as this one's is done.
 *
 * Never more than one writev in flight, though two would be faster for small batches (+11 %
 * for 16 KiB, bench/RESULTS.md run 7): a process crash could then leave the later write whole
 * and the earlier one torn or not begun, i.e. a zero-filled hole followed by valid batches,
 * which recovery cannot tell from damage and takes the partition offline for. One write at a
 * time keeps what a crash leaves a prefix of what was written.
 */
const OVERLAPPED_GROUP_BYTES_MAX = WRITE_CALL_BYTES_MAX;
/** Below this a group is not split: each writev costs ~30–50 µs of its own, more than the CRC it would overlap. */
const OVERLAPPED_GROUP_BYTES_MIN = 128 * KiB;

export class PartitionLog {
  readonly topic: string;
  readonly partition: number;
  readonly dir: string;
  private config: PartitionLogConfig;
  private readonly context: SegmentContext;
  private readonly clock: Clock;
  private readonly logger: Logger;
  /** `PartitionLogOptions.repeatLogger`: for lines a failing disk repeats every run or tick. */
  private readonly repeatLogger: Logger;
  private readonly relativeOffsetMax: number;
  private readonly segmentPositionMax: number;

  private segments: readonly Segment[];
  private state: PartitionState;
  private isMarkedClean: boolean;
  private status: Status;
  private flushed: number;
  /**
   * Set once an fdatasync of a segment failed: the kernel may have dropped its dirty pages and
   * reports that once, so a later fdatasync that passes proves nothing (`syncWhileOffline`).
   */
  private hasFailedSync = false;
  private cancelFlushTimer: (() => void) | undefined;
  private readonly queue: WriterTask[] = [];
  private queuedBytes = 0;
  private isWriting = false;
  /** Set while the writer waits on an fdatasync with nothing queued; an append wakes it. */
  private wakeWriter: (() => void) | undefined;
  /** The flush=always run whose fdatasync is running (`writeRun`), if any. */
  private unsynced: UnsyncedRun | undefined;
  /** Acknowledgements of written appends, settled together on the next turn (`deferAcks`). */
  private pendingAcks: (() => void)[] = [];
  private isAckScheduled = false;
  private readonly appendListeners = new Set<AppendListener>();
  /** Committed producer state as of the log end; changed only by the writer (writeRun). */
  private readonly producers: ProducerState;
  /**
   * Offset of the producer.snapshot on disk, or `undefined` when there is none or it is not
   * known which version a failed replace left. Decides whether close and retention write one.
   */
  private producerSnapshotOffset: number | undefined;

  private constructor(options: PartitionLogOptions, context: SegmentContext, opened: OpenedPartition, producers: ProducerState) {
    this.topic = options.topic;
    this.partition = options.partition;
    this.dir = options.dir;
    this.config = options.config;
    this.context = context;
    this.clock = options.clock;
    this.logger = options.logger;
    this.repeatLogger = options.repeatLogger ?? options.logger; // set by `open`
    this.relativeOffsetMax = options.rollLimits?.relativeOffsetMax ?? limits.relativeOffsetMax;
    this.segmentPositionMax = options.rollLimits?.segmentPositionMax ?? limits.segmentPositionMax;
    this.segments = opened.segments;
    this.state = opened.state;
    this.isMarkedClean = opened.isMarkedClean;
    this.status = opened.offline === undefined ? { kind: 'online' } : { kind: 'offline', error: this.corruptDataError(opened.offline) };
    this.flushed = this.logEndOffset;
    this.producers = producers;
    this.producerSnapshotOffset = opened.producerRecovery.snapshotOffset;
  }

  /**
   * Opens (and if needed recovers) the log in `options.dir`, creating the directory for a new
   * partition. See recovery.ts for what start-up checks.
   */
  static async open(options: PartitionLogOptions): Promise<PartitionLog> {
    const context: SegmentContext = {
      dir: options.dir,
      fileSystem: options.fileSystem,
      handles: options.handles,
      indexCache: options.indexCache,
      indexIntervalBytes: options.config.indexIntervalBytes,
    };
    try {
      await options.fileSystem.mkdir(options.dir);
    } catch (error) {
      throw storageError('create', options.dir, error);
    }
    const producers = new ProducerState({
      topic: options.topic,
      partition: options.partition,
      producersMax: limits.producersPerPartitionMax,
      expirationMs: options.producerIdExpirationMs ?? defaults.producerIdExpirationMs,
    });
    // Any errno error on the way (a state file, an index, a segment that cannot be read) is
    // the partition's STORAGE_ERROR (or DISK_FULL), never a raw Node error.
    // Recovery's lines of what it found unusable go through the repeat logger: an open that
    // fails (EIO on a segment) is tried again by every request to the partition, and would
    // repeat them each time. What it changed on disk is said once, on the plain logger.
    const repeatLogger = options.repeatLogger ?? limitRepeats(options.logger, new RepeatLimiter({ clock: options.clock }), ['path', 'segmentBaseOffset']);
    const opened = await openPartitionDirectory(context, { nowMs: options.clock.nowMs(), logger: options.logger, repeatLogger, producers }).catch((error: unknown) => {
      throw storageError('open the partition log in', options.dir, error);
    });
    const log = new PartitionLog({ ...options, repeatLogger }, context, opened, producers);
    if (opened.offline !== undefined) {
      // Each open of an offline log says so (it is reopened after an idle close, at most once
      // per partitionIdleMs): never through the repeat logger, whose overflow key would let
      // one partition's line stand for another's, and the operator miss a partition offline.
      options.logger.error({ ...opened.offline, dir: options.dir }, 'partition is offline: damaged log; stop the broker, check it with `runnel log verify <dir>`, then `runnel log repair <dir>` after saving a copy');
      if (opened.isStateStale) await log.persistOffline(opened.offline);
      return log;
    }
    if (opened.isStateStale) {
      // After a scan, every scanned segment is fsynced and indexed: the checkpoint moves to
      // the active one. Crash before this write: the next start-up scans them again. A
      // failure (ENOSPC on a full disk) fails the open like any other errno error on the way.
      await writePartitionState(options.fileSystem, options.dir, opened.state).catch((error: unknown) => {
        throw storageError('update', `${options.dir}/partition.state`, error);
      });
    }
    if (opened.recovery.kind === 'scanned') {
      options.logger.info(
        { ...opened.recovery, ...opened.producerRecovery, producerCount: producers.producerCount, logEndOffset: log.logEndOffset },
        'recovered partition after unclean shutdown',
      );
    }
    return log;
  }

  // ---- Offsets and status ------------------------------------------------------------------

  get logStartOffset(): number {
    return (this.segments[0] as Segment).baseOffset;
  }

  get logEndOffset(): number {
    return this.activeSegment.nextOffset;
  }

  /**
   * The log start and end offsets as a reader may use them: rejects as `read` does
   * (the offline reason, e.g. CORRUPT_DATA, or SHUTTING_DOWN once closed) when the log
   * cannot be read, so no caller hands out offsets of a partition nobody can read.
   */
  offsetRangeOrThrow(): { logStartOffset: number; logEndOffset: number } {
    this.throwIfUnreadable();
    return { logStartOffset: this.logStartOffset, logEndOffset: this.logEndOffset };
  }

  /** Offsets below this are on stable storage (fdatasync'ed). */
  get flushedOffset(): number {
    return this.flushed;
  }

  /**
   * Offline because an fdatasync failed. Such a log must stay open, and so offline, until the
   * process restarts: a reopen in this process would recover from the page cache, whose pages
   * the failed writeback may have left marked clean though they never reached the disk, and
   * its own fdatasync would pass (LogManager never idle-closes it). Kafka likewise keeps a log
   * directory whose flush failed offline until the broker restarts.
   */
  get hasFailedSyncOffline(): boolean {
    return this.hasFailedSync && this.status.kind === 'offline';
  }

  get isOnline(): boolean {
    return this.status.kind === 'online';
  }

  /** Closing or closed: no more appends or reads. */
  get isClosed(): boolean {
    return this.status.kind === 'closing' || this.status.kind === 'closed';
  }

  get segmentCount(): number {
    return this.segments.length;
  }

  /** Whether appends are queued or being written (an idle log may be closed). */
  get isBusy(): boolean {
    return this.queue.length > 0 || this.isWriting;
  }

  /**
   * Calls `listener` after every write becomes visible (acknowledged), with the new log end
   * offset and the batches just written, so a reader tailing the log end can take them from
   * memory instead of reading them back. Once more, with no batches, when the log closes
   * (`isClosed` is then true) or goes offline (`isOnline` is then false; a read then fails
   * with the reason), so no reader waits on a log that will not grow; and with no batches
   * each time retention deleted segments (the log start moved: a read below it fails with
   * OFFSET_OUT_OF_RANGE), so no reader waits on offsets that are gone.
   */
  onAppend(listener: AppendListener): () => void {
    this.appendListeners.add(listener);
    return () => this.appendListeners.delete(listener);
  }

  async stats(): Promise<PartitionLogStats> {
    let sizeBytes = 0;
    // Read once: the log may go offline during the awaits below, and must not be counted twice.
    const statusKind = this.status.kind;
    if (statusKind === 'online') {
      const sizes = new Map<Segment, number>();
      for (const segment of this.segments) {
        try {
          sizes.set(segment, await segment.knownSizeBytes());
        } catch (error) {
          if (this.segments.includes(segment)) throw error; // else retention deleted it meanwhile
        }
      }
      // Only what is still part of the log once every size is known (retention may have run).
      for (const [segment, size] of sizes) if (this.segments.includes(segment)) sizeBytes += size;
    }
    // Offline, the files stay whole for repair: report what they hold (as far as they can be
    // stat'ed), not 0, which would read as an empty partition.
    if (statusKind === 'offline') for (const segment of this.segments) sizeBytes += await segment.knownSizeBytes().catch(() => 0);
    const status = this.status.kind === 'online' ? 'online' : this.status.kind === 'offline' ? 'offline' : 'closed';
    return this.statsWith({ sizeBytes, pendingAppends: this.queue.length, status, offlineReason: this.status.kind === 'offline' ? this.status.error.reason : undefined });
  }

  private statsWith(rest: Pick<PartitionLogStats, 'sizeBytes' | 'pendingAppends' | 'status' | 'offlineReason'>): PartitionLogStats {
    return {
      logStartOffset: this.logStartOffset,
      logEndOffset: this.logEndOffset,
      flushedOffset: this.flushed,
      segmentCount: this.segments.length,
      producerCount: this.producers.producerCount,
      ...rest,
    };
  }

  /**
   * Replaces per-topic settings (segment and retention sizes, flush policy, limits). They
   * apply from the next append or retention run; the index interval applies to new segments.
   */
  updateConfig(config: PartitionLogConfig): void {
    const previous = this.config.flush;
    this.config = config;
    const next = config.flush;
    const isSameFlush = previous.kind === next.kind && (previous.kind !== 'interval' || next.kind !== 'interval' || previous.intervalMs === next.intervalMs);
    if (isSameFlush) return;
    const hadTimer = this.cancelFlushTimer !== undefined;
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = undefined;
    if (this.status.kind !== 'online') return;
    if (hadTimer || (previous.kind === 'interval' && this.isBusy)) {
      // A timer set under the old policy would keep its old delay (up to an hour), so a shorter
      // interval would not apply to the bytes written so far. Flush them now instead: that
      // keeps the old policy's promise for them too, and the new policy times every later write.
      // The flush queues behind the appends queued so far, so it covers those queued under the
      // interval too, which a change to `never` would otherwise leave unsynced
      // (partition-log.test.ts "queued under flush=interval").
      this.flush().catch(() => undefined); // failures take the partition offline (flushActive)
    } else if (next.kind === 'interval' && this.flushed < this.logEndOffset) {
      // Bytes written under `never` (no timer) are synced within the new interval too, not
      // only once another append sets a timer (partition-log.test.ts "once the topic changes").
      this.maybeScheduleFlush();
    }
  }

  private get activeSegment(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  // ---- Append ------------------------------------------------------------------------------

  /**
   * Appends one record batch (v2) and resolves with its assigned offsets once the flush
   * policy's acknowledgement point is reached (flush-policy.ts). Takes ownership of `batch`:
   * its baseOffset (and leader epoch) are written in place.
   *
   * An idempotent batch (producerId ≥ 0) that repeats one of its producer's last five
   * batches resolves with the original offsets and `isDuplicate` (nothing written), never
   * before the original itself was acknowledged (flush-policy.ts): a retry queued in the same
   * write as its original resolves with it, and fails with it. Retries are checked in the
   * writer, so a retry queued behind its original is caught too (idempotence.test.ts).
   *
   * Rejects with CORRUPT_MESSAGE / BATCH_TOO_LARGE / INVALID_REQUEST (nothing written),
   * INVALID_TIMESTAMP (nothing written; an idempotent batch only after it was found not to
   * repeat one appended earlier),
   * PRODUCER_FENCED / OUT_OF_ORDER_SEQUENCE (this batch only, nothing written),
   * LIMIT_REACHED (queue full, nothing written), DISK_FULL / STORAGE_ERROR (this append
   * failed, the log is unchanged), PARTITION_OFFLINE / CORRUPT_DATA, SHUTTING_DOWN.
   */
  append(batch: Buffer, options: AppendOptions = {}): Promise<AppendResult> {
    try {
      this.throwIfNotWritable();
      const header = validateBatchOrThrow(batch, { batchBytesMax: Math.min(this.config.maxMessageBytes, limits.batchBytesMax) });
      validateProducerFieldsOrThrow(header);
      if (header.producerId >= 0 && options.isProducerIdIssued !== undefined && !options.isProducerIdIssued(header.producerId)) {
        throw new BrokerError('INVALID_REQUEST', `producer id ${header.producerId} was never handed out by this broker; ask InitProducerId for one`, {
          topic: this.topic,
          partition: this.partition,
          details: { producerId: header.producerId },
        });
      }
      let timestampRefusal: BrokerError | undefined;
      if (options.recordChecks !== undefined) {
        try {
          validateBatchRecordsOrThrow(batch, header, options.recordChecks);
        } catch (error) {
          // The timestamp window moves with the clock (and the topic's config): the retry of an
          // idempotent batch appended earlier may fall outside it now. It is in the log, so it
          // is answered as its duplicate; the writer decides, as it does for every duplicate.
          if (!(header.producerId >= 0 && isBrokerError(error) && error.reason === 'INVALID_TIMESTAMP')) throw error;
          timestampRefusal = error;
        }
      }
      if (this.queue.length >= limits.pendingAppendsPerPartitionMax || this.queuedBytes + batch.length > limits.pendingAppendBytesPerPartitionMax) {
        throw new BrokerError('LIMIT_REACHED', `too many appends waiting on ${this.topic}-${this.partition}; retry after a backoff`, {
          topic: this.topic,
          partition: this.partition,
          details: { pendingAppends: this.queue.length, pendingAppendBytes: this.queuedBytes },
        });
      }
      return new Promise<AppendResult>((resolve, reject) => {
        this.queue.push({ kind: 'append', batch, header, leaderEpoch: options.leaderEpoch, isSyncedAck: this.config.flush.kind === 'always', timestampRefusal, resolve, reject });
        this.queuedBytes += batch.length;
        void this.runWriter();
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Seals the active segment now (if it holds anything) and starts a new one. */
  roll(): Promise<void> {
    return this.enqueueControl('roll');
  }

  /** fdatasync everything written so far. */
  flush(): Promise<void> {
    return this.enqueueControl('flush');
  }

  /** Deletes old segments as the retention settings say; resolves when done. */
  applyRetention(): Promise<void> {
    return this.enqueueControl('retention');
  }

  private enqueueControl(kind: ControlTask['kind']): Promise<void> {
    try {
      if (kind !== 'close') this.throwIfNotWritable();
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind, resolve, reject });
      void this.runWriter();
    });
  }

  private async runWriter(): Promise<void> {
    if (this.isWriting) {
      this.wakeWriter?.();
      return;
    }
    this.isWriting = true;
    try {
      for (;;) {
        const task = this.queue[0];
        if (task === undefined) {
          if (this.unsynced === undefined) break;
          await this.awaitSyncOrWork(this.unsynced);
        } else if (task.kind === 'append') {
          await this.writeGroup(this.takeAppendGroup());
        } else if (this.unsynced !== undefined) {
          // Roll, flush, retention and close see only completed writes. The queue is read
          // again after: a failed completion may have taken the log offline and emptied it.
          await this.completeUnsynced();
        } else {
          this.queue.shift();
          await this.runControlTask(task);
        }
      }
    } finally {
      this.isWriting = false;
    }
  }

  /**
   * With nothing queued, waits for the unsynced run's fdatasync, but goes back to work as soon
   * as an append arrives: its write then overlaps that fdatasync, as under load.
   */
  private async awaitSyncOrWork(pending: UnsyncedRun): Promise<void> {
    await new Promise<void>((resolve) => {
      this.wakeWriter = resolve;
      void pending.synced.then(() => resolve());
    });
    this.wakeWriter = undefined;
    if (this.queue.length === 0) await this.completeUnsynced();
  }

  /**
   * The next write group: the appends at the head of the queue, up to the group caps.
   *
   * - Unless every append waits for an fdatasync, a group takes at most half the queued bytes
   *   (but 128 KiB if that is more) and at most 1 MiB. The rest stays queued, so while this
   *   group's writev runs in the thread pool, the appends it acknowledges have their
   *   successors validated (CRC) on the event loop, and the two overlap instead of taking
   *   turns (bench/RESULTS.md, run 5 "What changed append").
   * - Under flush=always a group takes at most half the bytes waiting for durability (queued,
   *   or written and syncing; but 128 KiB if that is more) and at most 16 MiB. The appends in
   *   flight then form two groups of about equal size that take turns: one is written while
   *   the other's fdatasync runs (`writeRun`). Taking all that is queued instead settles into
   *   one big group and one tiny one, which overlaps almost nothing (bench/RESULTS.md, run 6
   *   "Pipelined group commit").
   */
  private takeAppendGroup(): PendingAppend[] {
    const group: PendingAppend[] = [];
    const unsyncedBytes = this.unsynced === undefined ? 0 : this.unsynced.endPosition - this.unsynced.startPosition;
    const half = Math.max(OVERLAPPED_GROUP_BYTES_MIN, Math.ceil((this.queuedBytes + unsyncedBytes) / 2));
    const bytesMax = Math.min(this.config.flush.kind === 'always' ? WRITE_GROUP_BYTES_MAX : OVERLAPPED_GROUP_BYTES_MAX, half);
    let bytes = 0;
    for (let task = this.queue[0]; task !== undefined && task.kind === 'append'; task = this.queue[0]) {
      if (group.length > 0 && (group.length >= WRITE_GROUP_COUNT_MAX || bytes + task.batch.length > bytesMax)) break;
      this.queue.shift();
      this.queuedBytes -= task.batch.length;
      bytes += task.batch.length;
      group.push(task);
    }
    return group;
  }

  /** Where the next write goes: after the unsynced run if there is one, else at the log end. */
  private writtenEnd(): { sizeBytes: number; nextOffset: number } {
    const pending = this.unsynced;
    if (pending !== undefined) return { sizeBytes: pending.endPosition, nextOffset: pending.endOffset };
    return { sizeBytes: this.activeSegment.sizeBytes ?? 0, nextOffset: this.logEndOffset };
  }

  /** Writes a group of appends: split into runs at roll points, each run one writev. */
  private async writeGroup(group: PendingAppend[]): Promise<void> {
    let start = 0;
    while (start < group.length) {
      if (this.status.kind !== 'online') {
        this.rejectAll(group.slice(start), this.unavailableError());
        return;
      }
      const first = group[start] as PendingAppend;
      if (first.timestampRefusal !== undefined) {
        // Never written: a duplicate of a batch appended earlier, or refused. Decided on
        // committed state only, as below: its original may be in the run still syncing.
        if (this.unsynced !== undefined) {
          await this.completeUnsynced();
          continue;
        }
        const verdict = this.producers.verdictFor(first.header);
        this.settleAcksNow();
        if (verdict.kind === 'duplicate') settleUnwritten(first, verdict);
        else first.reject(first.timestampRefusal);
        start++;
        continue;
      }
      if (first.header.producerId >= 0) {
        // A run starts on the producer state as of the written end, so this verdict is final:
        // a duplicate or a rejected batch is settled now and cannot trigger a roll (or fail
        // with one). It is settled only on committed state: a duplicate of a batch still
        // syncing must not resolve before its original, and if that fdatasync fails the
        // verdict changes.
        const verdict = (this.unsynced?.producerChanges ?? this.producers).verdictFor(first.header);
        if (verdict.kind !== 'append') {
          if (this.unsynced !== undefined) {
            await this.completeUnsynced();
            continue;
          }
          this.settleAcksNow();
          settleUnwritten(first, verdict);
          start++;
          continue;
        }
      }
      let end = this.writtenEnd();
      try {
        await this.maybeMarkDirty();
        if (this.shouldRoll(first, end.sizeBytes, end.nextOffset, this.writtenFirstBatchMaxTimestamp())) {
          // A roll seals the active segment: the write before it must be complete.
          if (this.unsynced !== undefined) {
            await this.completeUnsynced();
            continue;
          }
          await this.rollActive();
          end = this.writtenEnd();
        }
      } catch (error) {
        this.rejectAll(group.slice(start), error);
        return;
      }
      // Once `first` is written, the segment's first batch is the one written before it, or
      // `first` itself in an empty segment: later batches of the run are measured from it.
      const segmentFirstMaxTimestamp = this.writtenFirstBatchMaxTimestamp() ?? first.header.maxTimestamp;
      let stop = start + 1;
      let sizeBytes = end.sizeBytes + first.batch.length;
      let nextOffset = end.nextOffset + first.header.lastOffsetDelta + 1;
      while (
        stop < group.length &&
        (group[stop] as PendingAppend).timestampRefusal === undefined &&
        !this.shouldRoll(group[stop] as PendingAppend, sizeBytes, nextOffset, segmentFirstMaxTimestamp)
      ) {
        sizeBytes += (group[stop] as PendingAppend).batch.length;
        nextOffset += (group[stop] as PendingAppend).header.lastOffsetDelta + 1;
        stop++;
      }
      await this.writeRun(group.slice(start, stop));
      start = stop;
    }
  }

  /**
   * The maxTimestamp of the first batch written to the active segment (segment.ms counts from
   * it), `undefined` while nothing is written there. A batch still syncing (flush=always) is
   * written but not yet recorded in the segment: it counts too, or a segment started by a
   * syncing run would take later batches with no segment.ms check at all.
   */
  private writtenFirstBatchMaxTimestamp(): number | undefined {
    return this.activeSegment.firstBatchMaxTimestamp ?? this.unsynced?.placed[0]?.header.maxTimestamp;
  }

  /**
   * Whether `task` must go to a new segment, given the active segment's would-be size and end
   * and the maxTimestamp of its first batch (`undefined` when it would hold none before `task`).
   */
  private shouldRoll(task: PendingAppend, sizeBytes: number, nextOffset: number, segmentFirstMaxTimestamp: number | undefined): boolean {
    const active = this.activeSegment;
    if (nextOffset === active.baseOffset) return false; // an empty segment takes any batch
    const lastOffset = nextOffset + task.header.lastOffsetDelta;
    const firstBatchMaxTimestamp = segmentFirstMaxTimestamp ?? task.header.maxTimestamp;
    return (
      sizeBytes + task.batch.length > this.config.segmentBytes ||
      sizeBytes + task.batch.length > this.segmentPositionMax ||
      lastOffset - active.baseOffset > this.relativeOffsetMax ||
      task.header.maxTimestamp - firstBatchMaxTimestamp > this.config.segmentMs
    );
  }

  /**
   * One writev of batches that all fit the active segment, placed after the written end.
   * Idempotent batches are checked here, in queue order, against the producer state plus the
   * run's earlier batches (a retry queued behind its original is caught as its duplicate).
   * Verdicts are provisional until the write succeeds: if it fails, every append of the run
   * fails with the storage error and the producer state stays as it was.
   *
   * Under flush=always the run's fdatasync is started, not awaited (pipelined group commit):
   * the writer goes on to write the next run while it runs, and `completeUnsynced` makes the
   * run visible and acknowledges it afterwards, in write order. A run is written while at most
   * one earlier run's fdatasync runs; it is completed (or failed) before this run's own starts.
   */
  private async writeRun(run: PendingAppend[]): Promise<void> {
    if (this.unsynced !== undefined && this.context.handles.hasWaiters) {
      // Other files wait for a descriptor (FileHandleCache): complete the earlier run so its
      // lease goes back before this run asks for one. Otherwise a partition written without a
      // pause would hold its descriptor for good while others wait (each run shares the
      // earlier one's lease). Costs the overlap of this write with that fdatasync, only while
      // descriptors are short.
      const failure = await this.completeUnsynced();
      if (failure !== undefined) {
        this.rejectAll(run, failure);
        return;
      }
    }
    const active = this.activeSegment;
    const earlier = this.unsynced;
    assert(earlier === undefined || earlier.segment === active, 'a roll completes the unsynced run first');
    const end = this.writtenEnd();
    const startPosition = end.sizeBytes;
    let position = startPosition;
    let offset = end.nextOffset;
    const placed: PlacedAppend[] = [];
    // Both allocated only once the run holds an idempotent batch: plain appends pay nothing.
    let producerChanges: ProducerStateChanges | undefined;
    let unwritten: UnwrittenAppend[] | undefined;
    for (const task of run) {
      if (offset + task.header.lastOffsetDelta > limits.offsetMax) {
        await this.completeUnsynced();
        this.rejectAll(run, new BrokerError('INVALID_REQUEST', 'partition offsets are exhausted', { topic: this.topic, partition: this.partition }));
        return;
      }
      if (task.header.producerId >= 0) {
        producerChanges ??= this.producers.beginChanges(this.clock.nowMs(), earlier?.producerChanges);
        const verdict = producerChanges.check(task.header, offset);
        if (verdict.kind !== 'append') {
          (unwritten ??= []).push({ task, verdict });
          continue;
        }
      }
      setBatchBaseOffset(task.batch, offset);
      if (task.leaderEpoch !== undefined) setBatchLeaderEpoch(task.batch, task.leaderEpoch);
      placed.push({ task, header: { ...task.header, baseOffset: offset, partitionLeaderEpoch: task.leaderEpoch ?? task.header.partitionLeaderEpoch }, position });
      position += task.batch.length;
      offset += task.header.lastOffsetDelta + 1;
    }

    if (placed.length === 0) {
      // Only duplicates and rejections: they resolve with offsets already acknowledged, so the
      // run they may point into completes first.
      const failure = await this.completeUnsynced();
      if (failure !== undefined) this.rejectAll(run, failure);
      else this.finishUnwritten(unwritten);
      return;
    }

    let lease: HandleLease;
    try {
      // The earlier run's lease is held until its fdatasync is done: share it, never ask the
      // cache again while holding one (file-handle-cache.ts, no deadlock).
      lease = earlier === undefined ? await active.lease() : earlier.lease.share();
    } catch (error) {
      await this.completeUnsynced();
      this.rejectAll(run, isBrokerError(error) ? error : storageError('open', active.logPath, error));
      return;
    }
    try {
      await writeAll(lease.handle, placed.map(({ task }) => task.batch), startPosition);
      // The bytes are in the page cache: a process crash keeps them, a power loss may tear
      // them (recovery truncates a torn tail). Nothing is acknowledged yet.
    } catch (error) {
      const failure = storageError('append to', active.logPath, error);
      // The earlier run's bytes lie before ours: settle it first. If its fdatasync failed it
      // cut the file back to its own start, which removes ours too.
      const earlierFailure = await this.completeUnsynced();
      if (earlierFailure === undefined) await this.undoWrite(lease.handle, startPosition, failure);
      lease.release();
      this.rejectAll(run, earlierFailure ?? failure); // `producerChanges` is dropped: the rollback
      return;
    }
    // While this run was written, the earlier run's fdatasync ran: wait for it to finish.
    const earlierError = earlier === undefined ? undefined : await earlier.synced;
    if (earlier !== undefined && earlierError !== undefined) {
      // It failed: the earlier run is cut back from the file, and this run with it (it lay after).
      this.unsynced = undefined;
      const failure = await this.failUnsynced(earlier, earlierError);
      lease.release();
      this.rejectAll(run, failure);
      return;
    }
    // An append queued under flush=always keeps that promise when the policy changed since.
    if (this.config.flush.kind !== 'always' && !run.some((task) => task.isSyncedAck)) {
      lease.release();
      this.unsynced = undefined;
      if (earlier !== undefined) this.finishSynced(earlier);
      this.finishRun(active, placed, producerChanges, unwritten, false);
      return;
    }
    // This run's fdatasync starts before the earlier run is acknowledged, so the CRC checks of
    // the batches its appenders send next run while it does, not before it is issued.
    // Crash from here until it returns: none of the run's appends has been acknowledged, and
    // any of its bytes may or may not be on disk. A process crash keeps them all (recovery
    // accepts and syncs them); a power cut may keep a prefix (recovery cuts the torn tail) or,
    // if writeback went out of order, a hole before valid batches (offline until repaired).
    this.unsynced = {
      segment: active,
      lease,
      run,
      placed,
      producerChanges,
      unwritten,
      startPosition,
      endPosition: position,
      endOffset: offset,
      synced: lease.handle.datasync().then(
        () => undefined,
        (error: unknown) => error ?? new Error('fdatasync failed'),
      ),
    };
    if (earlier !== undefined) this.finishSynced(earlier);
  }

  /**
   * Waits for the unsynced run's fdatasync (if any) and completes it: visible and acknowledged
   * when it succeeded; otherwise its appends fail, the file is cut back to the run's start
   * (which also removes any later run written after it), and the failure is returned.
   */
  private async completeUnsynced(): Promise<BrokerError | undefined> {
    const pending = this.unsynced;
    if (pending === undefined) return undefined;
    const error = await pending.synced;
    this.unsynced = undefined;
    if (error !== undefined) return this.failUnsynced(pending, error);
    this.finishSynced(pending);
    return undefined;
  }

  /** An unsynced run whose fdatasync succeeded: on stable storage, acknowledged durable (flush=always). */
  private finishSynced(pending: UnsyncedRun): void {
    pending.lease.release();
    this.finishRun(pending.segment, pending.placed, pending.producerChanges, pending.unwritten, true);
  }

  /** An unsynced run whose fdatasync failed: its appends fail and the file is cut back to its start. */
  private async failUnsynced(pending: UnsyncedRun, error: unknown): Promise<BrokerError> {
    const failure = storageError('fdatasync', pending.segment.logPath, error);
    this.hasFailedSync = true;
    // Cut back to the end of the last acknowledged batch: a failed fdatasync may have dropped
    // the dirty pages, so nothing after that end can be trusted to reach the disk.
    await this.undoWrite(pending.lease.handle, pending.startPosition, failure);
    pending.lease.release();
    this.rejectAll(pending.run, failure); // `producerChanges` is dropped: the rollback
    if (this.flushed < this.logEndOffset) {
      // Acknowledged bytes before the run that no fdatasync had covered yet (written under
      // interval or never before the topic changed to always) may have been dropped with it,
      // and the kernel reports that once: the next fdatasync would pass and `flushed` would
      // claim them durable. As after a failed background flush (flushActive): offline, and a
      // restart recovers what the disk holds (io-errors.test.ts "lie unsynced before").
      this.goOffline(failure);
    }
    return failure;
  }

  /**
   * Acknowledgement point of a written run: durable (`isSynced`) under flush=always, in the
   * page cache otherwise. The producer state moves in the same synchronous step as the
   * visible log end.
   */
  private finishRun(
    segment: Segment,
    placed: readonly PlacedAppend[],
    producerChanges: ProducerStateChanges | undefined,
    unwritten: UnwrittenAppend[] | undefined,
    isSynced: boolean,
  ): void {
    producerChanges?.commit();
    segment.recordAppended(placed);
    if (isSynced) this.flushed = segment.nextOffset;
    else if (this.status.kind === 'offline') this.syncWhileOffline(); // written as a reader went offline
    else this.maybeScheduleFlush();
    for (const { task, header } of placed) {
      const result: AppendResult = { baseOffset: header.baseOffset, lastOffset: header.baseOffset + header.lastOffsetDelta, isDuplicate: false };
      this.pendingAcks.push(() => task.resolve(result));
    }
    // With more appends queued (and nothing left to sync), the writer goes on to the next
    // write first (`deferAcks`); otherwise nothing would overlap, and they go out at once.
    if (this.queue.length > 0 && !isSynced) this.deferAcks();
    else this.settleAcksNow();
    if (this.appendListeners.size > 0) {
      const appended = placed.map(({ task, header }) => ({ bytes: task.batch, baseOffset: header.baseOffset, nextOffset: header.baseOffset + header.lastOffsetDelta + 1 }));
      for (const listener of this.appendListeners) listener(segment.nextOffset, appended);
    }
    // Duplicates resolve with offsets already acknowledged (earlier, or just above).
    this.finishUnwritten(unwritten);
  }

  private finishUnwritten(unwritten: UnwrittenAppend[] | undefined): void {
    if (unwritten === undefined) return;
    this.settleAcksNow();
    for (const { task, verdict } of unwritten) settleUnwritten(task, verdict);
  }

  /**
   * After a failed write or fdatasync: cut the file back to `position`, the end of the last
   * acknowledged batch, so no unacknowledged byte stays (a later append would otherwise land
   * after it). If the cut fails the log's tail is unknown: the partition goes offline.
   * Crash before the cut lands: recovery cuts a torn tail, but whole batches among the
   * unacknowledged bytes pass its checks and stay. Their appends failed, yet they may appear
   * after a restart, as in Kafka; an idempotent producer's retry of one is then answered as
   * a duplicate (the producer state is rebuilt from the log).
   */
  private async undoWrite(handle: { truncate(sizeBytes: number): Promise<void> }, position: number, cause: BrokerError): Promise<void> {
    try {
      await handle.truncate(position);
      this.logger.warn({ position, ...errorFields(cause) }, 'append failed; log cut back to the last acknowledged batch');
    } catch (truncateError) {
      this.goOffline(storageError('truncate after a failed append', this.activeSegment.logPath, truncateError));
    }
  }

  /**
   * Before the first byte after a clean open, partition.state must stop saying "clean", or a
   * crash would make the next start-up trust a log it should scan.
   */
  private async maybeMarkDirty(): Promise<void> {
    if (!this.isMarkedClean) return;
    const { clean: _clean, ...dirty } = this.state;
    try {
      await this.writeState(dirty);
    } catch (error) {
      throw storageError('update', `${this.dir}/partition.state`, error);
    }
    // Durable: a crash from here on makes start-up scan from the checkpoint. (An offline mark
    // a reader persisted meanwhile stays: its write went after this one.)
    this.state = this.state.offline === undefined ? dirty : { ...dirty, offline: this.state.offline };
    this.isMarkedClean = false;
  }

  /**
   * Replaces partition.state, one write at a time: the writer (mark dirty, roll, close) and a
   * reader that found damage (persistOffline) may both write, and two replaces at once would
   * share the .tmp file, so one could write into the file the other had already renamed.
   */
  private writeState(state: PartitionState): Promise<void> {
    const write = this.stateWrites.then(() => writePartitionState(this.context.fileSystem, this.dir, state));
    this.stateWrites = write.catch(() => undefined);
    return write;
  }

  /**
   * Seals the active segment and starts a new one. Order matters for crash safety:
   * 1. fdatasync the old log: its batches are durable. A crash after: the checkpoint still
   *    names the old segment, so recovery re-scans it (complete, valid).
   * 2. write its index files (atomic replace each). A crash after: as 1.
   * 3. create the new, empty segment file and fsync the directory. A crash after: recovery
   *    scans the old segment (complete) and the empty new one.
   * 4. write producer.snapshot as of the new base (atomic replace). Every batch below it is
   *    durable since step 1, so the snapshot never describes bytes a crash can take. A crash
   *    after: as 3, and the scan replays nothing into the producer state (all of it is below
   *    the snapshot). A crash before: the older snapshot plus the scan of the old segment.
   * 5. move the recovery checkpoint to the new segment. A crash after: only the new segment
   *    is scanned at start-up, and the snapshot of step 4 covers everything before it, so
   *    the producer state never needs the sealed segments (which retention may delete).
   * If any step fails, the old segment stays active (a new file from step 3 is removed, or
   * recovery would see an old segment that kept growing before its successor) and the
   * append that needed the roll fails. A snapshot from step 4 may stay behind: it is still
   * true of the log's first `newBase` offsets, which are durable.
   */
  private async rollActive(): Promise<void> {
    const old = this.activeSegment;
    if (old.isEmpty) return;
    const newBase = old.nextOffset;
    const fresh = Segment.active(this.context, {
      baseOffset: newBase,
      nextOffset: newBase,
      sizeBytes: 0,
      builder: new SegmentIndexBuilder(newBase, this.config.indexIntervalBytes),
    });
    let isCreated = false;
    try {
      const lease = await old.lease();
      try {
        await lease.handle.datasync();
      } catch (error) {
        // As in flushActive: acknowledged batches not yet known durable may never reach the
        // disk (the kernel may drop dirty pages after a failed fsync, and report it once, so a
        // retried roll's fdatasync could pass without them and move the checkpoint past them).
        this.hasFailedSync = true;
        if (this.flushed < old.nextOffset) this.goOffline(storageError('fdatasync', old.logPath, error));
        throw error;
      } finally {
        lease.release();
      }
      await old.writeIndexFiles();
      const handle = await this.context.fileSystem.open(fresh.logPath, 'create');
      isCreated = true;
      await handle.close();
      await this.context.fileSystem.syncDirectory(this.dir);
      await this.writeProducerSnapshotAt(newBase);
      await this.writeState({ ...this.state, recoveryCheckpoint: newBase });
    } catch (error) {
      if (isCreated) {
        try {
          await this.context.fileSystem.unlink(fresh.logPath);
          await this.context.fileSystem.syncDirectory(this.dir);
        } catch (unlinkError) {
          this.goOffline(storageError('remove a half-made segment', fresh.logPath, unlinkError));
        }
      }
      throw storageError('roll', old.logPath, error);
    }
    old.seal();
    this.state = { ...this.state, recoveryCheckpoint: newBase };
    this.flushed = Math.max(this.flushed, newBase);
    this.segments = [...this.segments, fresh];
    this.logger.debug({ baseOffset: newBase, sealed: old.baseOffset }, 'rolled segment');
  }

  /**
   * Replaces producer.snapshot with the committed producer state, which is the state as of
   * `offset` = the log end (only the writer calls this, between runs). The caller makes sure
   * every batch below `offset` is durable first. Expired producers are dropped here.
   */
  private async writeProducerSnapshotAt(offset: number): Promise<void> {
    assert(offset === this.logEndOffset, `a producer snapshot is taken at the log end ${this.logEndOffset}, not ${offset}`);
    this.producers.removeExpired(this.clock.nowMs());
    // Unknown until the replace finishes: a failure may leave the old file or the new one.
    this.producerSnapshotOffset = undefined;
    await writeProducerSnapshot(this.context.fileSystem, this.dir, { offset, producers: this.producers.allEntries() });
    this.producerSnapshotOffset = offset;
  }

  private async runControlTask(task: ControlTask): Promise<void> {
    try {
      switch (task.kind) {
        case 'roll':
          this.throwIfNotWritable();
          await this.maybeMarkDirty();
          await this.rollActive();
          break;
        case 'flush':
          await this.flushActive();
          break;
        case 'retention':
          await this.deleteExpiredSegments();
          break;
        case 'close':
          await this.closeNow();
          break;
      }
      this.settleAcksNow();
      task.resolve();
    } catch (error) {
      this.settleAcksNow();
      task.reject(error);
    }
  }

  // ---- Flush ---------------------------------------------------------------------------------

  private maybeScheduleFlush(): void {
    const policy = this.config.flush;
    if (policy.kind !== 'interval' || this.cancelFlushTimer !== undefined) return;
    this.cancelFlushTimer = this.clock.setTimer(policy.intervalMs, () => {
      this.cancelFlushTimer = undefined;
      if (this.status.kind !== 'online') return;
      this.flush().catch((error: unknown) => {
        // A failed fdatasync took the log offline (flushActive). Any other failure (the file
        // could not be opened: EMFILE, EIO) synced nothing and left the log online with its
        // acknowledged bytes still dirty: try again after another interval, or nothing would
        // sync them before the next append, roll or close (io-errors.test.ts "tries again").
        if (this.status.kind !== 'online') return;
        this.repeatLogger.warn({ ...errorFields(error) }, 'interval flush failed; trying again after the interval');
        this.maybeScheduleFlush();
      });
    });
  }

  private async flushActive(): Promise<void> {
    if (this.status.kind !== 'online') return;
    const active = this.activeSegment;
    const target = active.nextOffset;
    if (target <= this.flushed) return;
    const lease = await active.lease();
    try {
      await lease.handle.datasync();
      // Everything below `target` is on stable storage now.
      this.flushed = Math.max(this.flushed, target);
    } catch (error) {
      // Acknowledged bytes may never reach the disk (the kernel may drop dirty pages after a
      // failed fsync): stop serving this log rather than pretend.
      const failure = storageError('fdatasync', active.logPath, error);
      this.hasFailedSync = true;
      this.goOffline(failure);
      throw failure;
    } finally {
      lease.release();
    }
  }

  // ---- Retention -----------------------------------------------------------------------------

  private async deleteExpiredSegments(): Promise<void> {
    if (this.status.kind !== 'online') return;
    let segments = this.segments;
    const sizesBytes: number[] = [];
    for (const segment of segments) sizesBytes.push(await segment.knownSizeBytes());
    // Largest timestamps only as far as the decision needs them (at most one segment past the
    // deleted ones), and most are remembered by their segments (segment.ts
    // `sealedMaxTimestamp`): reading every segment's loaded all their indexes into the shared
    // cache at each run, pushing out the ones readers were using.
    let count = await countSegmentsToDeleteLazily(
      { sizesBytes, maxTimestampAt: (index) => this.guard(() => (segments[index] as Segment).maxTimestamp()) },
      { retentionMs: this.config.retentionMs, retentionBytes: this.config.retentionBytes, nowMs: this.clock.nowMs() },
    );
    // A reader that found damage may have taken the log offline meanwhile: its files stay for repair.
    if (count === 0 || this.status.kind !== 'online') return;
    if (count === segments.length) {
      // The active segment has expired too (a topic that went quiet): roll, so an empty
      // segment at the log end stays active, then delete every sealed one. A crash after the
      // roll leaves an extra sealed segment that the next retention run deletes; a failed roll
      // changes nothing and fails this run (rollActive).
      await this.maybeMarkDirty();
      await this.rollActive();
      segments = this.segments;
      count = segments.length - 1;
    }
    const firstKeptBaseOffset = (segments[count] as Segment).baseOffset;
    if (this.producerSnapshotOffset === undefined || this.producerSnapshotOffset < firstKeptBaseOffset) {
      // The snapshot on disk is missing or older than the segments about to go, which may hold
      // the only trace of some producers: snapshot first, once everything is durable (so the
      // snapshot describes only durable batches). A failure here keeps every segment.
      await this.flushActive();
      await this.writeProducerSnapshotAt(this.logEndOffset);
    }
    if (this.status.kind !== 'online') return; // as above, during the roll or the snapshot
    // Only this writer changes the list; it is still `segments` after the awaits above.
    assert(this.segments === segments, 'segment list changed outside the writer');
    const doomed = segments.slice(0, count);
    // Readers see the new start before any file goes (a read of a deleted segment is then
    // OFFSET_OUT_OF_RANGE, not an I/O error).
    this.segments = segments.slice(count);
    let deletedCount = 0;
    for (const segment of doomed) {
      segment.forget();
      // Oldest first, and the .log first: once it is gone the segment is gone for start-up
      // too. A .log that cannot be deleted stops the run with it and every later segment kept
      // (deleting those would leave a hole in the offsets at the next start); the next run
      // tries again. Leftover index files are removed as orphans at the next open.
      try {
        await this.context.fileSystem.unlink(segment.logPath);
      } catch (error) {
        this.repeatLogger.error({ ...errorFields(error), segmentBaseOffset: segment.baseOffset }, 'could not delete an expired segment; it and the later ones stay until the next retention run');
        this.keepSegments(doomed.slice(deletedCount));
        break;
      }
      deletedCount++;
      for (const path of [segment.indexPath, segment.timeIndexPath]) {
        await this.context.fileSystem.unlink(path).catch((error: unknown) => {
          this.repeatLogger.warn({ ...errorFields(error), path }, 'could not delete an index file of a deleted segment; it is removed at the next open');
        });
      }
      // Each .log's removal is made durable before the next one starts. A power cut may keep
      // any of the unlinks since the last directory fsync and lose others, so with one fsync at
      // the end an older .log could come back while a newer one stayed gone: a hole in the
      // offsets, which start-up takes for damage (offline). This way what a power cut leaves is
      // always the segments from some point on. If the fsync fails, the unlink may not last:
      // stop here and keep the later segments, as for a failed unlink.
      try {
        await this.context.fileSystem.syncDirectory(this.dir);
      } catch (error) {
        this.repeatLogger.error({ ...errorFields(error), segmentBaseOffset: segment.baseOffset }, 'could not make the deletion of an expired segment durable; the later ones stay until the next retention run');
        this.keepSegments(doomed.slice(deletedCount));
        break;
      }
    }
    if (deletedCount > 0) {
      this.logger.info({ deletedSegments: deletedCount, logStartOffset: this.logStartOffset }, 'retention deleted old segments');
      // A reader parked below the log end (short of its minBytes) may now be below the log
      // start: it reads again and gets OFFSET_OUT_OF_RANGE now, not at the end of its wait.
      for (const listener of [...this.appendListeners]) listener(this.logEndOffset, []);
    }
  }

  /** Puts back, at the front of the list, the expired segments a retention run could not delete (readers see the start move back). */
  private keepSegments(kept: readonly Segment[]): void {
    for (const stays of kept) stays.remember();
    this.segments = [...kept, ...this.segments];
  }

  // ---- Read ----------------------------------------------------------------------------------

  /**
   * Whole batches starting with the one that holds `offset`, up to `bytesMax` (at least one
   * whole batch). `offset` may equal the log end offset (empty result). Every returned batch
   * has passed its CRC check. Never waits for appends.
   *
   * Rejects with OFFSET_OUT_OF_RANGE (below the log start or above the log end),
   * CORRUPT_DATA (damage found; the partition goes offline), PARTITION_OFFLINE, STORAGE_ERROR.
   */
  async read(options: ReadOptions): Promise<ReadResult> {
    this.throwIfUnreadable();
    // Snapshot: the list is replaced, never mutated; the active segment's visible size and
    // end offset change together, synchronously, in recordAppended.
    const segments = this.segments;
    const active = segments[segments.length - 1] as Segment;
    const activeVisibleBytes = active.sizeBytes ?? 0;
    const logEndOffset = active.nextOffset;
    const logStartOffset = (segments[0] as Segment).baseOffset;
    const result = (bytes: Buffer, nextOffset: number): ReadResult => ({ bytes, nextOffset, logStartOffset, logEndOffset });
    if (!Number.isSafeInteger(options.offset) || options.offset < logStartOffset || options.offset > logEndOffset) {
      throw this.offsetOutOfRange(options.offset, logStartOffset, logEndOffset);
    }
    if (options.offset === logEndOffset) return result(Buffer.alloc(0), logEndOffset);
    const bytesMax = Math.max(1, Math.min(options.bytesMax, limits.readBytesMax));
    for (let i = findSegmentIndex(segments, options.offset); i < segments.length; i++) {
      const segment = segments[i] as Segment;
      let read;
      try {
        const visibleBytes = segment === active ? activeVisibleBytes : await this.guard(() => segment.knownSizeBytes());
        read = await this.guard(() => segment.read({ offset: Math.max(options.offset, segment.baseOffset), bytesMax, visibleBytes }));
      } catch (error) {
        // Retention may have deleted the segment since the snapshot.
        if (!this.segments.includes(segment) && this.status.kind === 'online') {
          throw this.offsetOutOfRange(options.offset, this.logStartOffset, this.logEndOffset);
        }
        throw error;
      }
      if (read !== undefined) return result(read.bytes, read.nextOffset);
    }
    return result(Buffer.alloc(0), logEndOffset);
  }

  /**
   * The base offset of the first batch whose maxTimestamp ≥ `timestamp` (Kafka's ListOffsets
   * by time, at batch granularity), or `undefined` when every batch is older. Searches the log
   * below its end as of the call (a batch appended meanwhile is not looked at): a caller that
   * answers "none" with the log end takes `logEndOffset` just before calling.
   */
  async offsetForTimestamp(timestamp: number): Promise<number | undefined> {
    this.throwIfUnreadable();
    const segments = this.segments;
    const active = segments[segments.length - 1] as Segment;
    const activeVisibleBytes = active.sizeBytes ?? 0;
    for (const segment of segments) {
      let offset;
      try {
        if ((await this.guard(() => segment.maxTimestamp())) < timestamp) continue;
        const visibleBytes = segment === active ? activeVisibleBytes : await this.guard(() => segment.knownSizeBytes());
        offset = await this.guard(() => segment.firstOffsetAtOrAfterTimestamp(timestamp, visibleBytes));
      } catch (error) {
        // Retention may have deleted the segment since the snapshot: its offsets are gone, and
        // any later batch at or after `timestamp` is in a later segment.
        if (!this.segments.includes(segment) && this.status.kind === 'online') continue;
        throw error;
      }
      if (offset !== undefined) return offset;
    }
    return undefined;
  }

  // ---- Close ---------------------------------------------------------------------------------

  /**
   * Stops taking appends (those still queued fail with SHUTTING_DOWN; those already written
   * complete), makes everything durable, writes the active indexes and marks the log clean
   * so the next open skips the scan. Idempotent (a second call's options are ignored).
   *
   * `shouldSummarizeForRetention: false` leaves no `retentionSummary`, for a caller that will
   * never use it (the manager at shutdown, a partition being deleted): taking one costs a
   * size lookup per sealed segment whose size is not known yet and may load the oldest
   * segment's indexes.
   *
   * `isDiscarding: true`, for files about to be deleted: appends end as above, but nothing is
   * made durable and no file is written (no fdatasync, index files, snapshot or clean mark),
   * and no summary is taken. The log is left as a crash leaves it: if the files stay after all,
   * their next open recovers them by a scan.
   */
  async close(options: { shouldSummarizeForRetention?: boolean; isDiscarding?: boolean } = {}): Promise<void> {
    if (this.status.kind === 'closed' || this.status.kind === 'closing') return this.closing;
    const wasOnline = this.status.kind === 'online';
    this.status = { kind: 'closing' };
    this.closingWasOnline = wasOnline;
    this.isDiscardingAtClose = options.isDiscarding === true;
    this.shouldSummarizeAtClose = !this.isDiscardingAtClose && (options.shouldSummarizeForRetention ?? true);
    this.closing = new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'close', resolve, reject });
      void this.runWriter();
    });
    return this.closing;
  }

  private closing: Promise<void> = Promise.resolve();
  /** The last partition.state write (`writeState`), settled or not. */
  private stateWrites: Promise<void> = Promise.resolve();
  private closingWasOnline = false;
  private isDiscardingAtClose = false;
  private shouldSummarizeAtClose = true;
  /** Set by a clean close (`summarizeForRetentionAtClose`); see `retentionSummary`. */
  private summaryAtClose: RetentionSummary | undefined;
  /** Set by a clean close (`statsOfClosingLog`); see `statsAtCleanClose`. */
  private statsAtClose: PartitionLogStats | undefined;

  private async closeNow(): Promise<void> {
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = undefined;
    try {
      if (this.isDiscardingAtClose) {
        // Nothing to keep: the caller deletes the files next (a crash here leaves them as any
        // crash does, and the deletion is finished at the next start).
      } else if (this.closingWasOnline && !this.isMarkedClean) {
        // Not untouched since a clean open (then partition.state would still describe the files
        // exactly): make everything durable and mark the log clean.
        const active = this.activeSegment;
        const lease = await active.lease();
        try {
          await lease.handle.datasync();
        } finally {
          lease.release();
        }
        await active.writeIndexFiles();
        // Everything is durable: the snapshot at the log end goes before the clean mark, so a
        // clean open never replays. Crash between the two: start-up scans the active segment
        // and replays nothing into the producer state (the snapshot is at the log end).
        await this.maybeWriteProducerSnapshotAtLogEnd();
        // Crash before this: the state is "dirty" and start-up scans the active segment.
        await this.writeState({
          ...this.state,
          clean: { logEndOffset: active.nextOffset, activeBaseOffset: active.baseOffset, activeSizeBytes: active.sizeBytes ?? 0 },
        });
        this.flushed = active.nextOffset;
      } else if (this.closingWasOnline) {
        // Clean open, nothing appended, so every batch is durable (the last close synced it).
        // The open may still have rebuilt the producer state because the snapshot was missing
        // or behind: write it so the next open need not. Only a saving, so a failure is not one.
        await this.maybeWriteProducerSnapshotAtLogEnd().catch((error: unknown) => {
          this.logger.warn({ ...errorFields(error) }, 'could not write the producer snapshot at close; the next open rebuilds it');
        });
      }
      if (this.closingWasOnline && this.shouldSummarizeAtClose) {
        this.summaryAtClose = await this.summarizeForRetentionAtClose();
        this.statsAtClose = await this.statsOfClosingLog();
      }
    } catch (error) {
      // A failed sync or file write (ENOSPC, EIO): the log stays unclean and is recovered at
      // its next open. Typed, so the caller's log line says DISK_FULL and what to do.
      throw storageError('close', this.dir, error);
    } finally {
      this.status = { kind: 'closed' };
      for (const segment of this.segments) segment.forget();
      const listeners = [...this.appendListeners];
      this.appendListeners.clear();
      for (const listener of listeners) listener(this.logEndOffset, []);
    }
  }

  /**
   * What retention needs to know of this log to skip it while it is closed (retention.ts
   * `RetentionSummary`), taken by a clean close after the writer's last task, so nothing
   * changes the files after it until the log is opened again. `undefined` before the close
   * finished, when the log was not online, when the close failed (the next open then
   * recovers the log and may cut it), or when the caller asked for none (`close`).
   */
  get retentionSummary(): RetentionSummary | undefined {
    return this.status.kind === 'closed' ? this.summaryAtClose : undefined;
  }

  /**
   * `stats()` as the log was when a clean close took the retention summary (same conditions),
   * status online: nothing changes the files after it until the log is opened again, so the
   * manager describes a closed partition from it without opening it (`LogManager.partitionStats`).
   */
  get statsAtCleanClose(): PartitionLogStats | undefined {
    return this.status.kind === 'closed' ? this.statsAtClose : undefined;
  }

  /** `stats()` of a log being closed cleanly, after its writer's last task. Only a saving: a failure gives none. */
  private async statsOfClosingLog(): Promise<PartitionLogStats | undefined> {
    try {
      let sizeBytes = 0;
      for (const segment of this.segments) sizeBytes += await segment.knownSizeBytes();
      return this.statsWith({ sizeBytes, pendingAppends: 0, status: 'online', offlineReason: undefined });
    } catch {
      return undefined;
    }
  }

  /**
   * The retention summary as the close leaves the log. Sizes are known for every segment a
   * retention run or a read looked at (a stat for the others), and the oldest segment's
   * largest timestamp is its time index's last entry (cached, or one file read). Only a
   * saving, so a failure gives no summary (the log is then opened to be checked), not a
   * failed close.
   */
  private async summarizeForRetentionAtClose(): Promise<RetentionSummary | undefined> {
    try {
      const candidates: RetentionCandidate[] = [];
      for (const [index, segment] of this.segments.entries()) {
        // Only the oldest segment's timestamp decides (`isRetentionDue`), and only it is read
        // (`summarizeForRetention`): the others' would cost an index load each.
        candidates.push({ sizeBytes: await segment.knownSizeBytes(), maxTimestamp: index === 0 ? await segment.maxTimestamp() : -1 });
      }
      return summarizeForRetention(candidates);
    } catch (error) {
      this.logger.debug({ ...errorFields(error) }, 'no retention summary at close; the next retention run opens the log');
      return undefined;
    }
  }

  /** Writes producer.snapshot at the log end unless the one on disk is already there; returns whether it wrote. */
  private async maybeWriteProducerSnapshotAtLogEnd(): Promise<boolean> {
    if (this.producerSnapshotOffset === this.logEndOffset) return false;
    await this.writeProducerSnapshotAt(this.logEndOffset);
    return true;
  }

  // ---- Status helpers ------------------------------------------------------------------------

  /** Runs `work`, turning damage it finds into the offline state (persisted) and CORRUPT_DATA. */
  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof CorruptionFound)) throw error;
      const mark: OfflineMark = {
        reason: 'CORRUPT_DATA',
        segmentBaseOffset: error.segmentBaseOffset,
        position: error.position,
        detail: error.detail,
        detectedAtMs: this.clock.nowMs(),
      };
      const failure = this.corruptDataError(mark);
      if (this.status.kind === 'online') {
        this.logger.error({ ...mark, dir: this.dir }, 'damaged log found; partition going offline until repaired: stop the broker, check it with `runnel log verify <dir>`, then `runnel log repair <dir>` after saving a copy');
        this.goOffline(failure);
        await this.persistOffline(mark);
      }
      throw failure;
    }
  }

  private async persistOffline(mark: OfflineMark): Promise<void> {
    const { clean: _clean, ...rest } = this.state;
    this.state = { ...rest, offline: mark };
    this.isMarkedClean = false;
    await this.writeState(this.state).catch((error: unknown) => {
      this.logger.error({ ...errorFields(error) }, 'could not persist the offline mark; the damage will be found again');
    });
  }

  private goOffline(error: BrokerError): void {
    if (this.status.kind !== 'online') return;
    this.status = { kind: 'offline', error };
    this.cancelFlushTimer?.();
    this.cancelFlushTimer = undefined;
    if (error.reason !== 'CORRUPT_DATA') this.logger.error({ ...errorFields(error) }, 'partition going offline');
    this.syncWhileOffline();
    const pending = this.queue.splice(0).filter((task) => task.kind !== 'close');
    this.queuedBytes = 0;
    this.rejectAll(pending, error);
    // Readers parked at the log end would otherwise wait out their whole wait (a Subscribe
    // 30 s) before they learn why nothing comes; they read again and get the error now.
    for (const listener of [...this.appendListeners]) listener(this.logEndOffset, []);
  }

  /**
   * Offline, the log runs no more flush tasks, yet its batches acknowledged under
   * flush=interval or never were promised an fdatasync (within the interval, or at close,
   * which skips an offline log). Unless an fdatasync failed, their bytes are whole in the page
   * cache whatever took the log offline (damage a reader found, a cut back that failed after a
   * failed write): sync them here, outside the writer queue. An fdatasync that overlaps a
   * write still covers every byte written before it started, i.e. up to `target`. Never after
   * a failed fdatasync (`hasFailedSync`): a retry could pass and claim dropped pages durable.
   * A failure changes nothing but the log line: the partition is offline already.
   */
  private syncWhileOffline(): void {
    if (this.hasFailedSync || this.flushed >= this.logEndOffset) return;
    const active = this.activeSegment;
    const target = active.nextOffset;
    const sync = async (): Promise<void> => {
      const lease = await active.lease();
      try {
        await lease.handle.datasync();
      } finally {
        lease.release();
      }
      this.flushed = Math.max(this.flushed, target);
    };
    sync().catch((error: unknown) => {
      this.logger.error({ ...errorFields(error) }, 'could not fdatasync the acknowledged batches of an offline partition; a power loss may take them');
    });
  }

  private corruptDataError(mark: OfflineMark): BrokerError {
    return new BrokerError(
      'CORRUPT_DATA',
      `partition ${this.topic}-${this.partition} is offline: damaged log in segment ${mark.segmentBaseOffset} at position ${mark.position} (${mark.detail}); run \`runnel log repair\` on ${this.dir} after saving a copy`,
      { topic: this.topic, partition: this.partition, details: { segmentBaseOffset: mark.segmentBaseOffset, position: mark.position } },
    );
  }

  private unavailableError(): BrokerError {
    switch (this.status.kind) {
      case 'offline':
        return this.status.error;
      case 'closing':
      case 'closed':
        return new BrokerError('SHUTTING_DOWN', `partition ${this.topic}-${this.partition} is closed`, { topic: this.topic, partition: this.partition });
      case 'online':
        return new BrokerError('PARTITION_OFFLINE', 'unexpected', { topic: this.topic, partition: this.partition });
    }
  }

  private throwIfNotWritable(): void {
    if (this.status.kind !== 'online') throw this.unavailableError();
  }

  private throwIfUnreadable(): void {
    // A closing log still serves reads of what it holds; a closed or offline one does not.
    if (this.status.kind === 'offline' || this.status.kind === 'closed') throw this.unavailableError();
  }

  private offsetOutOfRange(offset: number, logStartOffset: number, logEndOffset: number): BrokerError {
    return new BrokerError(
      'OFFSET_OUT_OF_RANGE',
      `offset ${offset} is outside ${this.topic}-${this.partition}'s range [${logStartOffset}, ${logEndOffset}]`,
      { topic: this.topic, partition: this.partition, details: { offset: String(offset), logStartOffset, logEndOffset } },
    );
  }

  private rejectAll(tasks: readonly WriterTask[], error: unknown): void {
    this.settleAcksNow();
    const failure = isBrokerError(error) ? error : storageError('write', this.dir, error);
    for (const task of tasks) task.reject(failure);
  }

  /**
   * Settles the acknowledgements of the last write on the next turn of the event loop, not
   * now. The log end, the indexes and the producer state have already moved, so nothing but
   * the callers' continuations waits; meanwhile the writer, still on this turn's microtasks,
   * issues the next queued group's writev. The acknowledged appenders then validate their next
   * batches (CRC) while that writev runs in the thread pool, instead of before it is issued
   * (bench/RESULTS.md, run 5 "What changed append"). Every other settlement of an append or a
   * control task first settles these, so callers see results in queue order.
   */
  private deferAcks(): void {
    if (this.isAckScheduled) return;
    this.isAckScheduled = true;
    setImmediate(() => this.settleAcksNow());
  }

  private settleAcksNow(): void {
    this.isAckScheduled = false;
    if (this.pendingAcks.length === 0) return;
    const acks = this.pendingAcks;
    this.pendingAcks = [];
    for (const ack of acks) ack();
  }
}

/** Resolves a duplicate with its original offsets, or rejects a fenced or out-of-order batch. */
function settleUnwritten(task: PendingAppend, verdict: ProducerVerdict): void {
  switch (verdict.kind) {
    case 'duplicate':
      task.resolve({ baseOffset: verdict.batch.baseOffset, lastOffset: verdict.batch.lastOffset, isDuplicate: true, maxTimestamp: verdict.batch.maxTimestamp });
      break;
    case 'rejected':
      task.reject(verdict.error);
      break;
    case 'append':
      assert(false, 'an accepted batch is written, not settled');
  }
}

/** Index of the segment holding `offset`: the last one whose base offset is ≤ it. */
function findSegmentIndex(segments: readonly Segment[], offset: number): number {
  let low = 0;
  let high = segments.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if ((segments[middle] as Segment).baseOffset <= offset) low = middle;
    else high = middle - 1;
  }
  return low;
}
