/**
 * All partition logs of one data directory: which exist, which are open, and the background
 * work over them (retention, closing idle logs).
 *
 * Many partitions (10,000 partitions, 100,000 segments) stay cheap because nothing is opened
 * before it is used: `start` only lists the data directory; a new partition is an empty
 * directory (`createPartitions`), described and retention-checked without an open, also after
 * a restart (`isUnopenedEmpty`); a partition's log opens on first use (a clean open reads one
 * small state file and the active segment's indexes); the least recently used idle logs close
 * (cleanly: they reopen without a scan) past `openPartitionsMax` or after `partitionIdleMs`. Segment descriptors and sealed indexes live in the shared,
 * bounded `FileHandleCache` and `IndexCache`. At most `limits.logOpensClosesInFlightMax` logs
 * open or close at once (each holds descriptors of its own meanwhile); the idle ones to close
 * are picked when a close can start, so a log used meanwhile stays open. A retention check
 * opens no closed log that has nothing due: a clean close leaves a few numbers that decide it
 * (retention.ts `RetentionSummary`), so a check over quiet partitions costs no I/O.
 *
 * Owner of mutable state: this object — the entry map, each entry's open/opening/closing
 * promise, pin count, retention summary and parked readers (`onAppend`), the timers. A log is
 * never closed while pinned (`withPartition`); a parked reader does not pin it.
 */
import { join } from 'node:path';
import type { Clock } from '../common/clock.js';
import { Slots } from '../common/slots.js';
import { limits } from '../config/limits.js';
import { validateTopicName, isValidTopicName } from '../config/topic-name.js';
import { BrokerError } from '../errors/index.js';
import { errorFields, limitRepeats, RepeatLimiter, type Logger } from '../observability/index.js';
import { storageError } from './errors.js';
import { FileHandleCache } from './file-handle-cache.js';
import { partitionDirName, tryParsePartitionDirName, tryParseSegmentFileName } from './file-names.js';
import { ClosableFileSystem, nodeFileSystem, withDescriptorSlots, type FileSystem } from './file-system.js';
import { IndexCache } from './index-cache.js';
import { PartitionLog, type AppendedBatch, type AppendListener, type PartitionLogConfig, type PartitionLogStats } from './partition-log.js';
import { isRetentionDue, type RetentionSummary } from './retention.js';

export interface LogManagerOptions {
  dataDir: string;
  fileSystem?: FileSystem;
  clock: Clock;
  logger: Logger;
  /**
   * The effective config of a topic (broker defaults merged with its overrides), or
   * `undefined` when the topic has no record: its directories are left as they are, never
   * opened, served or touched by retention.
   */
  configForTopic(topic: string): PartitionLogConfig | undefined;
  openFilesMax: number;
  indexCacheBytesMax: number;
  openPartitionsMax: number;
  partitionIdleMs: number;
  retentionCheckIntervalMs: number;
  /** Idempotent producer state expiry; `defaults.producerIdExpirationMs` when absent. */
  producerIdExpirationMs?: number;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

interface Entry extends TopicPartition {
  readonly key: string;
  readonly dir: string;
  log: PartitionLog | undefined;
  opening: Promise<PartitionLog> | undefined;
  closing: Promise<void> | undefined;
  pins: number;
  lastUsedMs: number;
  isDeleted: boolean;
  /**
   * True: not opened since `createPartitions` made it, or since start-up found its directory
   * empty (`isUnopenedEmpty`); its log (the first segment and partition.state) is made by the
   * first open, and describing it or checking its retention needs no open. False once an open
   * starts. Undefined for a directory found at start-up and not looked into yet (start-up only
   * lists the data directory).
   */
  isUnopenedNew: boolean | undefined;
  /**
   * What retention needs to know of the log, left by its last clean close; defined only while
   * the log is closed (dropped when an open starts). See `runRetentionOn`.
   */
  retentionSummary: RetentionSummary | undefined;
  /**
   * The log's stats as its last clean close left them (`PartitionLog.statsAtCleanClose`);
   * defined only while the log is closed, like `retentionSummary`. Describing a closed
   * partition answers from it instead of opening the log.
   */
  statsAtClose: PartitionLogStats | undefined;
  /**
   * Readers parked on the partition (`onAppend`). Kept here, not on the log, so a parked reader
   * does not keep the log open: an idle close leaves them parked, and the next append (which
   * opens the log again) wakes them. Bounded by the caller (Broker: `waitersPerPartitionMax`).
   */
  readonly appendListeners: Set<AppendListener>;
}

/** What `PartitionLog.stats` says of a new log after its first open (recovery.ts `createFirstSegment`). */
const NEW_PARTITION_STATS: PartitionLogStats = Object.freeze({
  logStartOffset: 0,
  logEndOffset: 0,
  flushedOffset: 0,
  segmentCount: 1,
  sizeBytes: 0,
  pendingAppends: 0,
  producerCount: 0,
  status: 'online',
  offlineReason: undefined,
});

/** Renamed partition directories waiting for removal end with this (never a valid partition name). */
const DELETED_SUFFIX = '.deleted';
/**
 * The name of a directory `deletePartitions` renamed away: `<topic>-<partition>.<ms>-<n>.deleted`
 * (the partition name possibly cut short), or `<topic>-<partition>.<ms>.deleted` from brokers
 * before the count was added; group 1 is the partition name. See `isDeletedPartitionDirName`.
 */
const DELETED_NAME = /^(.+)\.\d+(-\d+)?\.deleted$/;
/**
 * Longest file name ext4, xfs, btrfs and tmpfs take, in bytes. A partition directory's name
 * fits (a topic name has at most 249 ASCII characters), but with the deletion suffix appended
 * it may not: the rename failed with ENAMETOOLONG, so a topic named with 232 characters or more
 * could never be deleted.
 */
const FILE_NAME_BYTES_MAX = 255;
/**
 * Whether start-up removes `name`, a directory of the data directory: only a name
 * `deletePartitions` gives, a partition directory name (valid topic, `-<partition>`) and the
 * deletion suffix, or, when the partition name was cut short to fit, a name of exactly
 * `FILE_NAME_BYTES_MAX` bytes whose cut part holds only topic characters. A name that merely
 * ends in `.deleted` (an operator's `keep.deleted`, `backup.2024.deleted`) is not the broker's.
 */
function isDeletedPartitionDirName(name: string): boolean {
  const partitionName = DELETED_NAME.exec(name)?.[1];
  if (partitionName === undefined) return false;
  const parsed = tryParsePartitionDirName(partitionName);
  if (parsed !== undefined && isValidTopicName(parsed.topic)) return true;
  return Buffer.byteLength(name) === FILE_NAME_BYTES_MAX && /^[a-zA-Z0-9._-]+$/.test(partitionName);
}

/** Names of the data directory that are expected and not partitions: not reported as ignored. */
const IGNORED_QUIETLY = new Set(['meta', 'broker.lock', 'lost+found']);

export class LogManager {
  readonly handles: FileHandleCache;
  readonly indexCache: IndexCache;
  /** Every file storage opens only for a moment (under `fileSystem`'s slots), ended at close. */
  private readonly shortLivedFiles: ClosableFileSystem;
  /** `shortLivedFiles` under the descriptor bound `limits.storageFileOpsInFlightMax`: what the logs use. */
  private readonly fileSystem: FileSystem;
  private readonly entries = new Map<string, Entry>();
  /** Open entries, least recently used first (Map keeps insertion order). */
  private readonly openEntries = new Map<string, Entry>();
  /** Opens and closes running (`limits.logOpensClosesInFlightMax`) and those waiting to. */
  private readonly lifecycleSlots = new Slots(limits.logOpensClosesInFlightMax);
  /** Closes of idle logs started by `startIdleCloses` and not finished. */
  private idleClosesRunning = 0;
  /** Partition deletes begun by this manager: keeps the renamed names of one millisecond apart. */
  private deletionCount = 0;
  private cancelTimers: (() => void)[] = [];
  private isClosed = false;
  private backgroundWork: Promise<void> = Promise.resolve();
  /**
   * For lines a failing disk repeats on every request, retention run or interval flush of a
   * partition: one per partition and message per `REPEAT_INTERVAL_MS`, with the count of those
   * dropped (observability/repeat-limit.ts). Shared by every log, so a log closed and opened
   * again stays limited.
   */
  private readonly repeatLogger: Logger;

  private constructor(private readonly options: LogManagerOptions) {
    const fileSystem = options.fileSystem ?? nodeFileSystem;
    // Segment files are bounded by the cache; everything else storage opens, by the slots.
    this.handles = new FileHandleCache(fileSystem, options.openFilesMax);
    this.shortLivedFiles = new ClosableFileSystem(fileSystem);
    this.fileSystem = withDescriptorSlots(this.shortLivedFiles, new Slots(limits.storageFileOpsInFlightMax));
    this.indexCache = new IndexCache(options.indexCacheBytesMax);
    this.repeatLogger = limitRepeats(options.logger, new RepeatLimiter({ clock: options.clock }), ['topic', 'partition', 'path', 'segmentBaseOffset']);
  }

  /** Lists the data directory (creating it if needed) and starts the background timers. */
  static async start(options: LogManagerOptions): Promise<LogManager> {
    const manager = new LogManager(options);
    await manager.discover();
    manager.scheduleRetention();
    manager.scheduleIdleSweep();
    return manager;
  }

  private async discover(): Promise<void> {
    const { dataDir } = this.options;
    let names: string[];
    try {
      await this.fileSystem.mkdir(dataDir);
      names = await this.fileSystem.readdir(dataDir);
    } catch (error) {
      throw storageError('list', dataDir, error);
    }
    const ignored: string[] = [];
    for (const name of names) {
      if (isDeletedPartitionDirName(name)) {
        await this.discoverDeleted(join(dataDir, name));
        continue;
      }
      const parsed = tryParsePartitionDirName(name);
      if (parsed === undefined || !isValidTopicName(parsed.topic)) {
        if (!IGNORED_QUIETLY.has(name)) ignored.push(name);
        continue;
      }
      this.register(parsed.topic, parsed.partition);
    }
    if (ignored.length > 0) {
      // Kafka ignores them too; one line (ten names at most) so a misnamed directory is noticed.
      this.options.logger.info(
        { dataDir, names: ignored.slice(0, 10), count: ignored.length },
        'ignoring entries of the data directory that are not partition directories (<topic>-<partition>); they are left as they are',
      );
    }
    this.options.logger.info({ dataDir, partitions: this.entries.size }, 'storage started');
  }

  /**
   * A partition directory a delete renamed away and a crash kept from removing: its removal is
   * started (in the background), if it is a directory; a file of that name is someone else's
   * and is left alone. Looked at before start-up returns, so the removal is under way before
   * anything can close the manager.
   */
  private async discoverDeleted(path: string): Promise<void> {
    try {
      await this.fileSystem.readdir(path);
    } catch (error) {
      this.options.logger.warn({ path, ...errorFields(error) }, 'left alone: named like a deleted partition directory, but not a directory that can be listed; remove it by hand if it is not needed');
      return;
    }
    this.options.logger.info({ path }, 'removing a partition directory whose delete a crash interrupted');
    // Crash during the removal: part of the tree is left under the same name, which the next
    // start removes again. Nothing in it is served: its topic's record is gone or marked.
    this.removeInBackground(path);
  }

  private register(topic: string, partition: number): Entry {
    const key = partitionDirName(topic, partition);
    const entry: Entry = {
      key,
      topic,
      partition,
      dir: join(this.options.dataDir, key),
      log: undefined,
      opening: undefined,
      closing: undefined,
      pins: 0,
      lastUsedMs: 0,
      isDeleted: false,
      isUnopenedNew: undefined,
      retentionSummary: undefined,
      statsAtClose: undefined,
      appendListeners: new Set(),
    };
    this.entries.set(key, entry);
    return entry;
  }

  // ---- Catalogue -----------------------------------------------------------------------------

  /** Every partition in the data directory, sorted by topic then partition. */
  listPartitions(): TopicPartition[] {
    return [...this.entries.values()]
      .map(({ topic, partition }) => ({ topic, partition }))
      .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  }

  hasPartition(topic: string, partition: number): boolean {
    return this.entries.has(partitionDirName(topic, partition));
  }

  get openPartitionCount(): number {
    return this.openEntries.size;
  }

  /**
   * Creates an empty partition log. Rejects INVALID_TOPIC_NAME, INVALID_REQUEST (partition
   * number out of range) or TOPIC_ALREADY_EXISTS; on rejection nothing is created.
   */
  createPartition(topic: string, partition: number): Promise<void> {
    return this.createPartitions(topic, [partition]);
  }

  /**
   * Creates empty partition logs, all or none: rejects as `createPartition` does (checked for
   * every partition before anything is made), or with DISK_FULL/STORAGE_ERROR, and then
   * removes what it made.
   *
   * A new partition is an empty directory; its log makes its first segment and partition.state
   * when it is first used (recovery.ts opens an empty directory as a new log at offset 0). So a
   * topic of 10,000 partitions costs 10,000 mkdirs and one fsync of the data directory. Before,
   * each partition's log was opened at create and stayed open, about 14 fsyncs per partition
   * with its close, and past `openPartitionsMax` every create closed another log.
   */
  async createPartitions(topic: string, partitions: readonly number[]): Promise<void> {
    this.throwIfClosed();
    validateTopicName(topic);
    const wanted = new Set<number>();
    for (const partition of partitions) {
      if (!Number.isInteger(partition) || partition < 0 || partition >= limits.partitionsPerTopicMax) {
        throw new BrokerError('INVALID_REQUEST', `partition must be an integer in [0, ${limits.partitionsPerTopicMax})`, { topic });
      }
      if (this.hasPartition(topic, partition) || wanted.has(partition)) {
        throw new BrokerError('TOPIC_ALREADY_EXISTS', `partition ${topic}-${partition} already exists`, { topic, partition });
      }
      wanted.add(partition);
    }
    for (const partition of wanted) {
      // A directory no entry knows (a delete whose rename failed, or one put there by hand)
      // holds some earlier topic's data: never serve it as the new partition.
      if (await this.directoryExists(join(this.options.dataDir, partitionDirName(topic, partition)))) {
        throw new BrokerError('TOPIC_ALREADY_EXISTS', `a directory for ${topic}-${partition} already exists in ${this.options.dataDir}; move it out of the data directory first`, {
          topic,
          partition,
          details: { leftoverDirectory: partitionDirName(topic, partition) },
        });
      }
    }
    const made: Entry[] = [];
    try {
      for (const partition of wanted) {
        const entry = this.register(topic, partition);
        entry.isUnopenedNew = true;
        made.push(entry);
        await this.fileSystem.mkdir(entry.dir).catch((error: unknown) => {
          throw storageError('create', entry.dir, error);
        });
      }
      // One fsync makes every new name durable. Crash before it returns: some of the
      // directories may be gone at the next start, and the caller's record (written first)
      // makes start-up create them again; an empty directory that stayed is a new log.
      await this.fileSystem.syncDirectory(this.options.dataDir).catch((error: unknown) => {
        throw storageError('sync', this.options.dataDir, error);
      });
    } catch (error) {
      await this.createPartitionsUndo(topic, made);
      throw error;
    }
  }

  /**
   * Removes the directories a failed `createPartitions` made. They were not there before
   * (looked for first): they are this create's, and a rejected create leaves nothing a later
   * create of the name would refuse as a leftover. The removals are fsynced before the caller
   * goes on to take its record back: a power cut after that could otherwise keep the mkdirs
   * (written back meanwhile) and lose the removals, leaving empty directories with no record,
   * which start-up leaves alone and a create of the name refuses. That fsync is best effort:
   * the create has failed already, and its error is the one to report.
   */
  private async createPartitionsUndo(topic: string, made: readonly Entry[]): Promise<void> {
    for (const entry of made) {
      entry.isDeleted = true;
      this.entries.delete(entry.key);
      await this.closeEntry(entry).catch(() => undefined); // one used meanwhile
      this.wakeParked(entry);
      await this.fileSystem.removeTree(entry.dir).catch((removeError: unknown) => {
        this.options.logger.error({ topic, partition: entry.partition, ...errorFields(removeError) }, 'could not remove the directory of a partition whose create failed');
      });
    }
    if (made.length === 0) return;
    // Crash before this returns: the directories may come back, empty (see above).
    await this.fileSystem.syncDirectory(this.options.dataDir).catch((syncError: unknown) => {
      this.options.logger.error(
        { topic, partitions: made.map((entry) => entry.partition), paths: made.map((entry) => entry.dir), ...errorFields(syncError) },
        'could not fsync the data directory after removing the partitions of a failed create; after a power cut before its next fsync, their empty directories (paths) may come back and refuse a create of the name: remove them (they hold nothing)',
      );
    });
  }

  /**
   * Closes and deletes a partition's files. The directory is first renamed out of the way
   * (atomic: after a crash it is either still there whole, or renamed and removed at the
   * next start), then removed.
   */
  deletePartition(topic: string, partition: number): Promise<void> {
    return this.deletePartitions(topic, [partition]);
  }

  /**
   * Deletes partitions as `deletePartition` does, one fsync of the data directory for them all.
   * Each log is closed without making anything durable first (no clean mark, index or snapshot
   * writes: about 12 fsyncs a partition before). Stops at the first directory it cannot
   * rename, which stays known (a retried delete removes it) and fails the call; those renamed
   * before it are gone.
   *
   * The data directory is fsynced also when no partition is left to delete (`partitions`
   * empty): that is the retry of a delete whose fsync failed, in this process or before a
   * restart, and its renames are durable only once an fsync succeeds. The caller drops its
   * record after this resolves; without the fsync, a power cut after that could bring the
   * directories back under their own names, whole, with no record: served to nobody, and
   * blocking a create of the name.
   */
  async deletePartitions(topic: string, partitions: readonly number[]): Promise<void> {
    this.throwIfClosed();
    const entries = partitions.map((partition) => this.entryOrThrow(topic, partition));
    let failure: unknown;
    const renamed: string[] = [];
    for (const entry of entries) {
      entry.isDeleted = true;
      // A close that makes files durable is of no use to files about to go, and must not stop
      // their removal (it writes files: ENOSPC on a full disk). If the rename below fails, the
      // log is left unclean, and its next open recovers it by a scan, as after a crash.
      await this.closeEntry(entry, { isDiscarding: true }).catch((error: unknown) => {
        this.options.logger.warn({ topic, partition: entry.partition, ...errorFields(error) }, 'closing a partition being deleted failed; deleting it anyway');
      });
      // Readers parked while its log was closed (an open log's close woke those already).
      this.wakeParked(entry);
      // `<topic>-<partition>.<ms>-<n>.deleted`, the partition name cut short when the whole
      // would not fit in a file name (two cut names differ in their millisecond or count).
      const suffix = `.${this.options.clock.nowMs()}-${this.deletionCount++}${DELETED_SUFFIX}`;
      const doomed = join(this.options.dataDir, `${entry.key.slice(0, FILE_NAME_BYTES_MAX - suffix.length)}${suffix}`);
      try {
        await this.fileSystem.rename(entry.dir, doomed);
      } catch (error) {
        // Still there: keep knowing it, so a retried delete removes it (and a re-created topic
        // of the same name cannot take it over).
        entry.isDeleted = false;
        failure = storageError('delete', entry.dir, error);
        break;
      }
      this.entries.delete(entry.key);
      renamed.push(doomed);
    }
    // Not when the first rename failed: this call changed nothing, and it fails anyway.
    if (renamed.length > 0 || failure === undefined) {
      try {
        // Crash before this returns: the next start finds each directory under either name,
        // whole; a renamed one is removed then. This includes the renames of an earlier call
        // whose fsync failed (see above).
        await this.fileSystem.syncDirectory(this.options.dataDir);
      } catch (error) {
        // The renames happened (in the page cache at least): the partitions are gone for this
        // process, and a power cut may bring some back whole.
        failure ??= storageError('sync', this.options.dataDir, error);
      }
      for (const doomed of renamed) this.removeInBackground(doomed);
    }
    if (failure !== undefined) throw failure;
  }

  private async directoryExists(path: string): Promise<boolean> {
    try {
      await this.fileSystem.readdir(path);
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw storageError('look for', path, error);
    }
  }

  // ---- Use -----------------------------------------------------------------------------------

  /**
   * Runs `work` with the partition's log open, and keeps it open until `work` settles.
   * Rejects PARTITION_NOT_FOUND for an unknown partition, SHUTTING_DOWN after close.
   */
  async withPartition<T>(topic: string, partition: number, work: (log: PartitionLog) => Promise<T>): Promise<T> {
    this.throwIfClosed();
    return this.withEntry(this.entryOrThrow(topic, partition), work);
  }

  /**
   * Runs `work` on the partition's log only if it is open or opening, and returns whether it
   * ran. For changes a closed log picks up by itself when it next opens (topic configs, read
   * through `configForTopic` at open), so a change never opens every partition of a topic and
   * never fails on one that cannot be opened. A log whose open fails is skipped.
   */
  async withOpenPartition(topic: string, partition: number, work: (log: PartitionLog) => Promise<void> | void): Promise<boolean> {
    this.throwIfClosed();
    const entry = this.entryOrThrow(topic, partition);
    // An open that began before the caller's change may have read the old config: wait for it.
    const log = entry.log ?? (await entry.opening?.catch(() => undefined));
    if (log === undefined || entry.log !== log) return false;
    entry.pins++;
    try {
      await work(log);
      return true;
    } finally {
      entry.pins--;
    }
  }

  /**
   * Calls `listener` as `PartitionLog.onAppend` does (after each append, when retention moves
   * the log start, when the log goes offline, also when it opens offline), with no batches
   * when an open of the log fails, and once with no batches when the partition is
   * deleted or the manager closes, without keeping the log open: a log closed as idle (past
   * `openPartitionsMax` or `partitionIdleMs`) leaves its listeners waiting, and the append that
   * opens it again wakes them. Before, a parked Fetch or Subscribe listened on the log inside
   * `withPartition`, pinning it for its whole wait (up to `limits.fetchWaitMsMax`): 10,000
   * tailing readers kept all 10,000 logs open, five times `openPartitionsMax`. Call it while
   * the log is in use (inside `withPartition`) after reading, so no append lands unseen
   * between the read and listening. Returns the function that stops listening.
   */
  onAppend(topic: string, partition: number, listener: AppendListener): () => void {
    const entry = this.entryOrThrow(topic, partition);
    entry.appendListeners.add(listener);
    return () => entry.appendListeners.delete(listener);
  }

  /**
   * `onAppend` for a reader at the log end of a closed log, without opening it: when the log
   * is closed (no open or close under way) and `offset` is its log end as known without an
   * open (0 for a partition never used; what its last clean close left otherwise), starts
   * listening and returns the log's offsets with the function that stops listening.
   * Undefined otherwise: the caller reads through `withPartition`. Nothing can append to the
   * log before it is opened again, and that open's append tells the listener, so no append
   * is missed. Before, a tailing reader whose wait ran out (a Subscribe waits 30 s at a time)
   * opened its closed log only to find nothing new: 10,000 idle tailing readers past
   * `openPartitionsMax` opened and closed about 700 logs a second, for ever.
   */
  onAppendAtClosedLogEnd(
    topic: string,
    partition: number,
    offset: number,
    listener: AppendListener,
  ): { logStartOffset: number; logEndOffset: number; stopListening: () => void } | undefined {
    this.throwIfClosed();
    const entry = this.entryOrThrow(topic, partition);
    if (entry.isDeleted) return undefined;
    // Never opened since made or found empty (an open clears the mark as it starts), or closed.
    const known = entry.isUnopenedNew === true ? NEW_PARTITION_STATS : this.statsWhileClosed(entry);
    if (known === undefined || known.status !== 'online' || known.logEndOffset !== offset || known.logStartOffset > offset) return undefined;
    return { logStartOffset: known.logStartOffset, logEndOffset: known.logEndOffset, stopListening: this.onAppend(topic, partition, listener) };
  }

  private onLogAppend(entry: Entry, log: PartitionLog, logEndOffset: number, appended: readonly AppendedBatch[]): void {
    if (log.isClosed) {
      // An idle close: nothing a reader waits for has happened, and the log opens again for
      // the next append. Otherwise the partition is going or the manager is closing.
      if (entry.isDeleted || this.isClosed) this.wakeParked(entry, logEndOffset);
      return;
    }
    this.tellParked(entry, logEndOffset, appended);
  }

  /** Calls every reader parked on the partition (a copy of the set: a listener may stop listening). */
  private tellParked(entry: Entry, logEndOffset: number, appended: readonly AppendedBatch[]): void {
    for (const listener of [...entry.appendListeners]) listener(logEndOffset, appended);
  }

  /** Wakes (with no batches) and forgets every reader parked on the partition: it is going, or the manager is closing. */
  private wakeParked(entry: Entry, logEndOffset = entry.log?.logEndOffset ?? entry.statsAtClose?.logEndOffset ?? 0): void {
    const parked = [...entry.appendListeners];
    entry.appendListeners.clear();
    for (const listener of parked) listener(logEndOffset, []);
  }

  /**
   * The partition's `PartitionLog.stats`, from its open log. A partition made by
   * `createPartitions` and not used since is described as the empty log its first open will
   * make, without opening it: describing a new topic of 10,000 partitions opened all of them.
   */
  async partitionStats(topic: string, partition: number): Promise<PartitionLogStats> {
    this.throwIfClosed();
    const entry = this.entryOrThrow(topic, partition);
    // Closed cleanly since it was last opened, or never used: its stats are known without
    // opening it. Before, describing a topic of 10,000 used partitions opened each one (and
    // closed most again past openPartitionsMax), 9–16 s a call, past the CLI's 15 s deadline.
    const known = await this.statsKnownWithoutOpening(entry);
    if (known !== undefined) return { ...known };
    return this.withEntry(entry, (log) => log.stats());
  }

  /**
   * The partition's log start and end offsets when they are known without opening its log: a
   * partition never used (an empty log to be: 0 and 0), or one closed cleanly since its last
   * use (what that close left). Undefined otherwise: the caller opens the log. ListOffsets for
   * the earliest or latest offset answers from it; before, listing the offsets of a topic of
   * 10,000 never-used partitions opened every one, making its first segment and
   * partition.state (~5 s), and a used, closed one was opened to read two numbers.
   */
  async offsetRangeIfClosed(topic: string, partition: number): Promise<{ logStartOffset: number; logEndOffset: number } | undefined> {
    this.throwIfClosed();
    const known = await this.statsKnownWithoutOpening(this.entryOrThrow(topic, partition));
    return known === undefined ? undefined : { logStartOffset: known.logStartOffset, logEndOffset: known.logEndOffset };
  }

  /** The stats of a partition never used (`isUnopenedEmpty`), or of one closed cleanly since its last use (`statsWhileClosed`). */
  private async statsKnownWithoutOpening(entry: Entry): Promise<PartitionLogStats | undefined> {
    return (await this.isUnopenedEmpty(entry)) ? NEW_PARTITION_STATS : this.statsWhileClosed(entry);
  }

  /** What the last clean close left of the log, while it stays closed (no open or close under way). */
  private statsWhileClosed(entry: Entry): PartitionLogStats | undefined {
    return entry.log === undefined && entry.opening === undefined && entry.closing === undefined ? entry.statsAtClose : undefined;
  }

  /**
   * Whether the partition's directory is empty and no open has made it a log since this manager
   * made or found it (`Entry.isUnopenedNew`). A directory found at start-up is listed once to
   * know: without that, after a restart, describing a topic of 10,000 partitions never used, or
   * the first retention check, opened each one, making its first segment and partition.state
   * (and closed it again), as every create did before partitions were made empty. A directory
   * that cannot be listed counts as not empty: the open then reports why.
   */
  private async isUnopenedEmpty(entry: Entry): Promise<boolean> {
    if (entry.log !== undefined || entry.opening !== undefined || entry.closing !== undefined) return false;
    if (entry.isUnopenedNew !== undefined) return entry.isUnopenedNew;
    const names = await this.fileSystem.readdir(entry.dir).catch(() => undefined);
    // An open started meanwhile set the mark (false): its files may be there by now.
    if (entry.isUnopenedNew !== undefined || names === undefined) return entry.isUnopenedNew === true;
    entry.isUnopenedNew = names.length === 0;
    return entry.isUnopenedNew;
  }

  /**
   * The bytes in a partition's segment (.log) files, found without opening its log: for
   * describing a partition whose log cannot be opened. Undefined when the directory cannot be
   * listed either.
   */
  async segmentBytesOnDisk(topic: string, partition: number): Promise<number | undefined> {
    const entry = this.entryOrThrow(topic, partition);
    let names: string[];
    try {
      names = await this.fileSystem.readdir(entry.dir);
    } catch {
      return undefined;
    }
    let bytes = 0;
    for (const name of names) {
      if (tryParseSegmentFileName(name)?.kind === 'log') bytes += (await this.fileSystem.trySizeBytes(join(entry.dir, name)).catch(() => undefined)) ?? 0;
    }
    return bytes;
  }

  private async withEntry<T>(entry: Entry, work: (log: PartitionLog) => Promise<T>): Promise<T> {
    entry.pins++;
    try {
      const log = await this.ensureOpen(entry);
      entry.lastUsedMs = this.options.clock.nowMs();
      this.openEntries.delete(entry.key);
      this.openEntries.set(entry.key, entry);
      return await work(log);
    } finally {
      entry.pins--;
      this.closeLeastRecentlyUsed();
    }
  }

  private async ensureOpen(entry: Entry): Promise<PartitionLog> {
    // A close in progress finishes first; the log then reopens cleanly (no scan).
    while (entry.closing !== undefined) await entry.closing;
    // The manager may have closed meanwhile (that close waited for this log's close too): a log
    // opened now would never be closed, and its appends would make the next start recover it.
    this.throwIfClosed();
    if (entry.isDeleted) throw this.notFound(entry.topic, entry.partition);
    if (entry.log !== undefined) return entry.log;
    if (entry.opening === undefined) {
      const config = this.options.configForTopic(entry.topic);
      if (config === undefined) throw this.notFound(entry.topic, entry.partition);
      const knownLogEndOffset = entry.statsAtClose?.logEndOffset ?? 0; // told to readers if the open fails
      // From here on the log may change its files: the summary of the last close is stale.
      entry.retentionSummary = undefined;
      entry.statsAtClose = undefined;
      entry.isUnopenedNew = false;
      entry.opening = this.lifecycleSlots.run(() => PartitionLog.open({
        dir: entry.dir,
        topic: entry.topic,
        partition: entry.partition,
        config,
        fileSystem: this.fileSystem,
        handles: this.handles,
        indexCache: this.indexCache,
        clock: this.options.clock,
        logger: this.options.logger.child({ topic: entry.topic, partition: entry.partition }), // component: 'storage' is bound already
        repeatLogger: this.repeatLogger.child({ topic: entry.topic, partition: entry.partition }),
        ...(this.options.producerIdExpirationMs === undefined ? {} : { producerIdExpirationMs: this.options.producerIdExpirationMs }),
      })).then(
        (log) => {
          entry.log = log;
          entry.opening = undefined;
          this.openEntries.set(entry.key, entry);
          log.onAppend((logEndOffset, appended) => this.onLogAppend(entry, log, logEndOffset, appended));
          // Opened offline (damage found by recovery): the log told no one, as nobody listened
          // yet. Readers parked while it was closed read again and get the error now. Before,
          // they waited out their whole wait (a Subscribe 30 s) and were answered with nothing.
          if (!log.isOnline) this.onLogAppend(entry, log, log.logEndOffset, []);
          // One line per open and close (debug): opens per second say whether the LRU thrashes.
          this.options.logger.debug({ topic: entry.topic, partition: entry.partition, openPartitions: this.openEntries.size }, 'partition log opened');
          return log;
        },
        (error: unknown) => {
          entry.opening = undefined;
          // Readers parked while the log was closed read again and get the error (their read
          // tries the open again). Before, nobody told them: they waited out their whole wait
          // (a Subscribe 30 s) and were answered with nothing.
          this.tellParked(entry, knownLogEndOffset, []);
          // Every request to the partition tries the open again: one line per interval.
          this.repeatLogger.error({ topic: entry.topic, partition: entry.partition, ...errorFields(error) }, 'partition log cannot be opened; requests to it fail until the cause is fixed');
          throw error;
        },
      );
    }
    return entry.opening;
  }

  /** Closes the least recently used idle logs while more than `openPartitionsMax` are open. */
  private closeLeastRecentlyUsed(): void {
    if (this.openEntries.size > this.options.openPartitionsMax) this.startIdleCloses();
  }

  /**
   * Starts closing idle logs, least recently used first, while closes are below
   * `limits.logOpensClosesInFlightMax`: those over `openPartitionsMax`, and those unused for
   * `partitionIdleMs`. Each finished close picks the next, so a log used in the meantime is
   * never picked, and a burst over thousands of partitions closes them a few at a time.
   */
  private startIdleCloses(): void {
    while (!this.isClosed && this.idleClosesRunning < limits.logOpensClosesInFlightMax) {
      const entry = this.nextIdleToClose();
      if (entry === undefined) return;
      this.idleClosesRunning++;
      void this.closeEntry(entry)
        .catch((error: unknown) => this.logCloseFailure(entry, error))
        .finally(() => {
          this.idleClosesRunning--;
          this.startIdleCloses();
        });
    }
  }

  private nextIdleToClose(): Entry | undefined {
    const isOverBound = this.openEntries.size > this.options.openPartitionsMax;
    const idleSinceMs = this.options.clock.nowMs() - this.options.partitionIdleMs;
    // Least recently used first: past the first entry used since `idleSinceMs`, only the
    // bound can make one a candidate.
    for (const entry of this.openEntries.values()) {
      const isIdleLongEnough = entry.lastUsedMs <= idleSinceMs;
      if (!isOverBound && !isIdleLongEnough) return undefined;
      if (this.isIdle(entry)) return entry;
    }
    return undefined;
  }

  /** Whether a log may be closed as idle. Never one offline after a failed fdatasync (`PartitionLog.hasFailedSyncOffline`): it stays offline until the process restarts. */
  private isIdle(entry: Entry): boolean {
    return entry.pins === 0 && entry.log !== undefined && !entry.log.isBusy && !entry.log.hasFailedSyncOffline && entry.closing === undefined;
  }

  /** `isDiscarding`: the files are about to be deleted (`PartitionLog.close`). */
  private async closeEntry(entry: Entry, options: { isDiscarding?: boolean } = {}): Promise<void> {
    if (entry.closing !== undefined) return entry.closing;
    const opening = entry.opening;
    if (opening !== undefined) await opening.catch(() => undefined);
    const log = entry.log;
    if (log === undefined) return;
    this.openEntries.delete(entry.key);
    // A summary is only of use to later retention checks: none once the manager is closing or
    // the partition is going (it costs a size lookup per sealed segment not yet looked at).
    const shouldSummarizeForRetention = !this.isClosed && !entry.isDeleted;
    const isDiscarding = options.isDiscarding === true;
    entry.closing = this.lifecycleSlots.run(() => log.close({ shouldSummarizeForRetention, isDiscarding })).finally(() => {
      this.options.logger.debug({ topic: entry.topic, partition: entry.partition, openPartitions: this.openEntries.size }, 'partition log closed');
      entry.log = undefined;
      entry.closing = undefined;
      // Undefined after a failed close: the next open recovers the log and may change it.
      entry.retentionSummary = log.retentionSummary;
      entry.statsAtClose = log.statsAtCleanClose;
    });
    return entry.closing;
  }

  private logCloseFailure(entry: Entry, error: unknown): void {
    this.repeatLogger.error({ topic: entry.topic, partition: entry.partition, ...errorFields(error) }, 'closing an idle partition failed');
  }

  // ---- Background work -----------------------------------------------------------------------

  private scheduleRetention(): void {
    const tick = (): void => {
      if (this.isClosed) return;
      this.backgroundWork = this.runRetention().finally(() => {
        if (!this.isClosed) this.cancelTimers.push(this.options.clock.setTimer(this.options.retentionCheckIntervalMs, tick));
      });
    };
    this.cancelTimers.push(this.options.clock.setTimer(this.options.retentionCheckIntervalMs, tick));
  }

  /**
   * Applies retention to every partition, one at a time. Errors are logged per partition; one
   * bad log does not stop the rest.
   */
  async runRetention(): Promise<void> {
    for (const entry of [...this.entries.values()]) {
      if (this.isClosed) return;
      // A directory without a topic record (meta/ lost or restored from an old copy) keeps
      // everything: no retention settings can be known for it.
      if (entry.log === undefined && this.options.configForTopic(entry.topic) === undefined) continue;
      try {
        await this.runRetentionOn(entry);
      } catch (error) {
        // Every run (retentionCheckIntervalMs, 1 s at the least) fails again until the disk is fixed.
        this.repeatLogger.error({ topic: entry.topic, partition: entry.partition, ...errorFields(error) }, 'retention failed');
      }
    }
  }

  /**
   * Retention is not use: it leaves an open log's idle time and LRU place as they were, and
   * closes again a log it had to open (unless someone used it meanwhile). Counted as use, a
   * retention check more frequent than `partitionIdleMs` (the defaults: 5 and 10 minutes) kept
   * every partition open forever, and each run reopened them all up to `openPartitionsMax`.
   *
   * A closed log is not opened when the summary its last clean close left says a run would
   * delete nothing, under the topic's retention settings as they are now and at the present
   * time (retention.ts `isRetentionDue`, which agrees exactly with the run's own decision).
   * Without it, every check opened and closed every closed partition: 10,000 quiet partitions
   * cost 10,000 opens every 5 minutes. The summary holds timestamps and sizes, not a verdict,
   * so time passing and an altered retention.ms or retention.bytes are judged afresh; the
   * files change only through an open, which drops the summary (`ensureOpen`) until the next
   * clean close takes a new one; a deleted partition's entry goes with it, and a re-created or
   * added one starts without one. A log never closed cleanly since start-up has none, and is
   * opened once to be checked (its close then leaves one), unless its directory is empty (never
   * used: `isUnopenedEmpty`, one listing). Not persisted: partition.state
   * would have to drop it before every retention delete as well as every append, and a
   * summary trusted without opening the log could not notice files restored or changed
   * behind the broker's back.
   */
  private async runRetentionOn(entry: Entry): Promise<void> {
    // A close under way (an idle close) leaves a summary: wait for it rather than reopen the
    // log. A failed one leaves none, and the log is opened below.
    while (entry.closing !== undefined) await entry.closing.catch(() => undefined);
    // Being deleted (its close for the delete was what it waited for), or gone since the run
    // began: nothing to keep, and its open would be refused (PARTITION_NOT_FOUND), which the
    // run would log as a retention failure.
    if (entry.isDeleted) return;
    // Created (or found at start-up) empty and never used: an empty directory holds nothing to delete.
    if (await this.isUnopenedEmpty(entry)) return;
    if (this.isNothingDueWhileClosed(entry)) return;
    const wasOpen = (entry.log !== undefined && entry.closing === undefined) || entry.opening !== undefined;
    const lastUsedMs = entry.lastUsedMs;
    entry.pins++;
    try {
      const log = await this.ensureOpen(entry);
      if (log.isOnline) await log.applyRetention();
    } finally {
      entry.pins--;
    }
    // Not `isIdle`: the writer may still be winding down from the retention task; a close
    // queues behind it.
    const isUnused = entry.pins === 0 && entry.lastUsedMs === lastUsedMs && entry.log !== undefined && entry.closing === undefined;
    if (!wasOpen && isUnused) await this.closeEntry(entry).catch((error: unknown) => this.logCloseFailure(entry, error));
  }

  private isNothingDueWhileClosed(entry: Entry): boolean {
    const summary = entry.retentionSummary;
    if (summary === undefined || entry.log !== undefined || entry.opening !== undefined || entry.closing !== undefined) return false;
    const config = this.options.configForTopic(entry.topic);
    if (config === undefined) return true; // no topic record: never opened for retention (`runRetention`)
    return !isRetentionDue(summary, { retentionMs: config.retentionMs, retentionBytes: config.retentionBytes, nowMs: this.options.clock.nowMs() });
  }

  private scheduleIdleSweep(): void {
    const periodMs = Math.max(1_000, Math.floor(this.options.partitionIdleMs / 4));
    const tick = (): void => {
      if (this.isClosed) return;
      this.closeIdle();
      this.cancelTimers.push(this.options.clock.setTimer(periodMs, tick));
    };
    this.cancelTimers.push(this.options.clock.setTimer(periodMs, tick));
  }

  /** Starts closing every open log unused for `partitionIdleMs` (a few at a time). */
  closeIdle(): void {
    this.startIdleCloses();
  }

  private removeInBackground(path: string): void {
    this.fileSystem.removeTree(path).catch((error: unknown) => {
      this.options.logger.error({ path, ...errorFields(error) }, 'could not remove a deleted partition directory; it is removed at next start');
    });
  }

  /**
   * The partitions whose log is open, opening or closing: during `close`, those whose close
   * (and clean-shutdown mark) has not finished yet. A stop that hangs names them.
   */
  partitionsNotClosed(): TopicPartition[] {
    return [...this.entries.values()]
      .filter((entry) => entry.log !== undefined || entry.opening !== undefined || entry.closing !== undefined)
      .map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Stops background work, closes every log cleanly, then every file (waiting for the closes,
   * and refusing storage any file from then on; `closeFiles`). The order matters: a log's close
   * writes its clean mark, producer snapshot and index files through the short-lived files,
   * so those are ended only after every log has closed.
   */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    for (const cancel of this.cancelTimers.splice(0)) cancel();
    // Parked readers answer now rather than at the end of their wait (up to fetchWaitMsMax),
    // those on closed logs too, which no log close would wake.
    for (const entry of this.entries.values()) this.wakeParked(entry);
    await this.backgroundWork.catch(() => undefined);
    const results = await Promise.allSettled([...this.entries.values()].map((entry) => this.closeEntry(entry)));
    await this.closeFiles();
    const failures = results.filter((result) => result.status === 'rejected');
    if (failures.length > 0) {
      this.options.logger.error({ failures: failures.length }, 'some partitions did not close cleanly; they are recovered at next start');
    }
  }

  /**
   * Closes every file and waits for the closes, so no descriptor outlives the manager and
   * storage is quiet once close returns (a broker exits then; a test or `runnel log` tool may
   * remove or reuse the data directory): the segment files (`FileHandleCache.closeAll`) and
   * the short-lived ones (`ClosableFileSystem.closeAll`: state, snapshots, index files,
   * directory fsyncs). Both refuse every new use at once with SHUTTING_DOWN. Every log is
   * closed by now, and reads still running are the only users left: a segment lease, or an
   * index file a read is loading or rebuilding. That is normal, not a bug to assert against: a
   * read does not go through its log's writer queue, so a log's close does not wait for it (a
   * Fetch may be reading as the broker stops). So they are waited for, up to
   * `limits.closeReadWaitMsMax` for both together, past which close returns and names what is
   * still in use. Reads that go on fail with SHUTTING_DOWN at their next file. Tested in
   * log-manager.test.ts, describe 'close'.
   */
  private async closeFiles(): Promise<void> {
    let cancelTimer = (): void => undefined;
    const timedOut = new Promise<'timed out'>((resolve) => {
      cancelTimer = this.options.clock.setTimer(limits.closeReadWaitMsMax, () => resolve('timed out'));
    });
    const allClosed = Promise.all([this.handles.closeAll(), this.shortLivedFiles.closeAll()]);
    const outcome = await Promise.race([allClosed.then(() => 'closed' as const), timedOut]);
    cancelTimer();
    if (outcome === 'timed out') {
      const inUse = this.shortLivedFiles.inUse;
      this.options.logger.warn(
        {
          segmentDescriptors: this.handles.descriptorCount,
          // At most `storageFileOpsInFlightMax` of these hold a descriptor; ten name the problem.
          otherFilesInUse: inUse.slice(0, 10),
          otherFileUseCount: inUse.length,
          waitedMs: limits.closeReadWaitMsMax,
        },
        'files still in use after every partition closed; they close when the reads (or directory removals) using them end',
      );
    }
  }

  private entryOrThrow(topic: string, partition: number): Entry {
    const entry = this.entries.get(partitionDirName(topic, partition));
    if (entry === undefined) throw this.notFound(topic, partition);
    return entry;
  }

  private notFound(topic: string, partition: number): BrokerError {
    return new BrokerError('PARTITION_NOT_FOUND', `partition ${topic}-${partition} does not exist on this broker`, { topic, partition });
  }

  private throwIfClosed(): void {
    if (this.isClosed) throw new BrokerError('SHUTTING_DOWN', 'the log manager is closed');
  }
}
