/**
 * One segment of a partition log: a .log file of record batches plus its sparse offset and
 * time indexes. Every batch in the file has base offsets ≥ `baseOffset`, densely following one
 * another, and the next segment starts where this one ends.
 *
 * Two lives:
 * - **Active** (the last segment): the partition's single writer appends to it; its indexes
 *   live in memory and its visible size only grows (or shrinks back after a failed write that
 *   was never visible).
 * - **Sealed**: immutable. Its file handle and indexes are loaded on first use through the
 *   broker-wide `FileHandleCache` and `IndexCache` and dropped when cold, so a broker can hold
 *   100,000 segments with a bounded number of descriptors and bounded index memory. Its
 *   largest timestamp, once seen, stays (one number), so retention needs no index for it.
 *
 * Reads never take the writer's path: they capture a visible size first and read below it.
 * Every batch a read returns has its structure and CRC checked; damage raises
 * `CorruptionFound`, which the partition turns into DATA_LOSS (partition-log.ts).
 */
import { assert, AssertionError } from '../common/assert.js';
import { KiB } from '../common/units.js';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, isBatchCrcValid, tryReadBatchHeader, type BatchHeader } from '../protocol/index.js';
import { readRange, scanBatches, type ScanResult } from './batch-scan.js';
import type { BrokerError } from '../errors/index.js';
import { storageClosedError, storageError } from './errors.js';
import type { FileHandleCache, HandleLease } from './file-handle-cache.js';
import { segmentFilePath } from './file-names.js';
import { writeFilesAtomically, type FileSystem } from './file-system.js';
import type { IndexCache, SegmentIndexes } from './index-cache.js';
import { OffsetIndex } from './offset-index.js';
import { TimeIndex } from './time-index.js';

/** What the segments of one partition share. */
export interface SegmentContext {
  readonly dir: string;
  readonly fileSystem: FileSystem;
  readonly handles: FileHandleCache;
  readonly indexCache: IndexCache;
  readonly indexIntervalBytes: number;
}

/** Damage found in a log file: never skipped, always surfaced (partition-log.ts). */
export class CorruptionFound extends Error {
  constructor(
    readonly segmentBaseOffset: number,
    readonly position: number,
    readonly detail: string,
  ) {
    super(`damaged log at segment ${segmentBaseOffset}, position ${position}: ${detail}`);
    this.name = 'CorruptionFound';
  }
}

/** An index entry pointed at a position that does not start the expected batch. */
class IndexMismatch extends Error {}

export interface SegmentReadResult {
  /** Whole batches, back to back, exactly as stored. */
  bytes: Buffer;
  /** Offset after the last batch returned. */
  nextOffset: number;
}

/** Smallest window a read asks the file for, so tiny budgets still read efficiently. */
const READ_WINDOW_BYTES_MIN = 64 * KiB;

export class Segment {
  readonly baseOffset: number;
  readonly logPath: string;
  /** Offset after the last visible batch; for a sealed segment, the next segment's base. */
  nextOffset: number;
  /** Visible bytes; `undefined` for a sealed segment not yet looked at. */
  sizeBytes: number | undefined;
  private isActive: boolean;
  /** Set by `forget`: indexes rebuilt after it are neither cached nor written (`rebuildIndexes`). */
  private isForgotten = false;
  /** Active only: the in-memory indexes and the writer's bookkeeping. */
  private active: SegmentIndexBuilder | undefined;
  /**
   * Sealed only: the largest batch maxTimestamp (−1 when none), taken from the time index
   * whenever this segment's indexes are in hand (sealed, loaded, rebuilt), so retention and
   * seeks by time need not load them again once the shared cache dropped them: a retention
   * run over a partition of thousands of sealed segments loaded every one's indexes and
   * pushed out those readers were using. A sealed segment's largest timestamp never changes
   * (a rebuild after a bad index sets it again). Costs one number per segment of an open log,
   * measured at 24 bytes (the field and a boxed double): 2.4 MB for 100,000 segments, next to
   * the object and path string each already costs; it goes with the log when it closes.
   */
  private sealedMaxTimestamp: number | undefined;

  private constructor(
    private readonly context: SegmentContext,
    baseOffset: number,
    nextOffset: number,
    sizeBytes: number | undefined,
  ) {
    this.baseOffset = baseOffset;
    this.nextOffset = nextOffset;
    this.sizeBytes = sizeBytes;
    this.logPath = segmentFilePath(context.dir, baseOffset, 'log');
    this.isActive = false;
  }

  /** A sealed segment known only by name; files are opened on first use. */
  static sealed(context: SegmentContext, baseOffset: number, nextOffset: number): Segment {
    return new Segment(context, baseOffset, nextOffset, undefined);
  }

  /**
   * An active segment from its verified state: a builder filled by a recovery scan, by index
   * files trusted after a clean shutdown, or empty for a new segment.
   */
  static active(context: SegmentContext, state: { baseOffset: number; nextOffset: number; sizeBytes: number; builder: SegmentIndexBuilder }): Segment {
    const segment = new Segment(context, state.baseOffset, state.nextOffset, state.sizeBytes);
    segment.isActive = true;
    segment.active = state.builder;
    return segment;
  }

  get indexPath(): string {
    return segmentFilePath(this.context.dir, this.baseOffset, 'index');
  }

  get timeIndexPath(): string {
    return segmentFilePath(this.context.dir, this.baseOffset, 'timeindex');
  }

  get isEmpty(): boolean {
    return this.nextOffset === this.baseOffset;
  }

  /** Active only: the maxTimestamp of its first batch (segment.ms rolls count from it). */
  get firstBatchMaxTimestamp(): number | undefined {
    return this.active?.firstBatchMaxTimestamp;
  }

  get isSealed(): boolean {
    return !this.isActive;
  }

  /** The cache key of this segment's indexes. */
  private get indexKey(): string {
    return this.logPath;
  }

  // ---- Writer side (the partition's single writer only) -------------------------------------

  /**
   * Records batches just written at `position` (and made durable per the flush policy):
   * adds index entries and makes them visible to readers.
   */
  recordAppended(batches: readonly { header: BatchHeader; position: number }[]): void {
    const builder = this.active;
    assert(builder !== undefined && this.isActive, 'only the active segment takes appends');
    for (const { header, position } of batches) {
      if (header.baseOffset !== this.nextOffset) throw new AssertionError(`append at ${header.baseOffset} must follow ${this.nextOffset}`);
      if (position !== this.sizeBytes) throw new AssertionError(`append position ${position} must be the segment end ${String(this.sizeBytes)}`);
      builder.add(header, position);
      this.sizeBytes = position + header.sizeBytes;
      this.nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
    }
  }

  /**
   * Writes this segment's index files atomically, ending the time index with the segment's
   * largest timestamp. The segment stays active (see `seal`).
   *
   * Crash behaviour: index files are replaced whole (tmp + rename) or not at all; a missing or
   * stale index file is rebuilt from the log (recovery.ts), so no crash point here loses data.
   */
  async writeIndexFiles(): Promise<void> {
    const builder = this.active;
    assert(builder !== undefined, 'only an active segment has unwritten indexes');
    await this.writeIndexBytes(builder.finish());
  }

  /**
   * Turns the segment sealed, with no I/O: its indexes move to the shared cache and it takes
   * no more appends. The caller wrote the index files first (`writeIndexFiles`).
   */
  seal(): void {
    const builder = this.active;
    assert(builder !== undefined, 'only an active segment can be sealed');
    const indexes = builder.finish(); // the final time entry is in already: adds nothing
    this.isActive = false;
    this.cacheIndexes(indexes);
    this.active = undefined;
  }

  // ---- Reader side ---------------------------------------------------------------------------

  /**
   * Leases this segment's log file (read-write for the active one, so the writer shares it).
   * Rejects SHUTTING_DOWN once the segment is forgotten (`forget`: deleted, or its log
   * closed), also when that happened while the lease waited for a descriptor: the cache keys
   * handles by path, so a descriptor opened for a forgotten segment and left cached would be
   * handed to whatever file is later created at that path (a partition deleted and created
   * again), and its writes would go to the old, deleted file (partition-log.test.ts "leaves
   * no descriptor behind"). A read of a segment retention deleted turns this into
   * OFFSET_OUT_OF_RANGE (partition-log.ts `read`).
   */
  async lease(): Promise<HandleLease> {
    if (this.isForgotten) throw this.forgottenError();
    try {
      const lease = await this.context.handles.acquire(this.logPath, this.isActive ? 'read-write' : 'read');
      if (this.isForgotten) {
        // Forgotten while the acquire waited: its `discard` may have come before this
        // descriptor was opened. Drop it now, so it closes when released here.
        this.context.handles.discard(this.logPath);
        lease.release();
        throw this.forgottenError();
      }
      if (this.sizeBytes === undefined) {
        try {
          this.sizeBytes = await lease.handle.sizeBytes();
        } catch (error) {
          lease.release();
          throw error;
        }
      }
      return lease;
    } catch (error) {
      throw storageError('open', this.logPath, error);
    }
  }

  /** Visible size, looking at the file once if it was never opened. */
  async knownSizeBytes(): Promise<number> {
    if (this.sizeBytes !== undefined) return this.sizeBytes;
    const size = await this.context.fileSystem.trySizeBytes(this.logPath).catch((error: unknown) => {
      throw storageError('stat', this.logPath, error);
    });
    if (size === undefined) throw storageError('stat', this.logPath, Object.assign(new Error('segment file is missing'), { code: 'ENOENT' }));
    this.sizeBytes = size;
    return size;
  }

  /**
   * Largest batch maxTimestamp in the segment, or −1 when it holds no timestamped batch. No
   * I/O for the active segment, nor for a sealed one whose indexes were in hand before
   * (`sealedMaxTimestamp`); otherwise its indexes are loaded (or rebuilt).
   */
  async maxTimestamp(): Promise<number> {
    if (this.active !== undefined) return this.active.maxTimestamp;
    if (this.sealedMaxTimestamp !== undefined) return this.sealedMaxTimestamp;
    return maxTimestampOf(await this.indexes());
  }

  /**
   * Whole batches from the batch that holds `offset`, up to `bytesMax` (at least one whole
   * batch, even a larger one), reading no further than `visibleBytes`. `undefined` when the
   * segment holds no batch at or after `offset` below that size.
   */
  async read(options: { offset: number; bytesMax: number; visibleBytes: number }): Promise<SegmentReadResult | undefined> {
    const lease = await this.lease();
    try {
      try {
        return await this.readWith(lease, options, await this.indexes(lease));
      } catch (error) {
        if (!(error instanceof IndexMismatch)) throw error;
        // The index pointed somewhere wrong: rebuild it from the log and try once more.
        return await this.readWith(lease, options, await this.rebuildIndexesAfterMismatch(lease));
      }
    } finally {
      lease.release();
    }
  }

  private async readWith(
    lease: HandleLease,
    options: { offset: number; bytesMax: number; visibleBytes: number },
    indexes: SegmentIndexes,
  ): Promise<SegmentReadResult | undefined> {
    const entry = indexes.offsetIndex.floor(options.offset - this.baseOffset);
    let position = entry?.position ?? 0;
    let expectedBaseOffset = this.baseOffset + (entry?.relativeOffset ?? 0);
    let isFromIndex = entry !== undefined;
    const windowBytes = Math.max(options.bytesMax, READ_WINDOW_BYTES_MIN) + this.context.indexIntervalBytes;
    let window: Buffer = Buffer.alloc(0);
    let windowStart = position;

    // Walk batch headers from the index entry to the batch that holds `offset`.
    for (;;) {
      if (position >= options.visibleBytes) {
        if (!this.isActive && this.nextOffset > expectedBaseOffset && options.visibleBytes === this.sizeBytes) {
          throw new CorruptionFound(this.baseOffset, position, `segment ends at offset ${expectedBaseOffset} but the next segment starts at ${this.nextOffset}`);
        }
        return undefined;
      }
      if (position + BATCH_HEADER_BYTES > windowStart + window.length) {
        window = await readRange(lease.handle, position, Math.min(windowBytes, options.visibleBytes - position));
        windowStart = position;
      }
      const header = this.checkedHeader(window, position - windowStart, position, options.visibleBytes, expectedBaseOffset, isFromIndex);
      isFromIndex = false;
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      if (lastOffset >= options.offset) break;
      position += header.sizeBytes;
      expectedBaseOffset = lastOffset + 1;
    }

    // The window covers the budget past the batch found when index entries are at most
    // `indexIntervalBytes` apart. A segment rolled after index.interval.bytes grew at runtime
    // has them further apart, and the walk may have used up most of the window: read on from
    // the batch found, or the read would return far less than its budget (one batch at worst).
    if (position + Math.min(options.bytesMax, options.visibleBytes - position) > windowStart + window.length) {
      window = await readRange(lease.handle, position, Math.min(windowBytes, options.visibleBytes - position));
      windowStart = position;
    }

    // Collect whole batches from `position` within the budget (always at least one).
    const start = position;
    let nextOffset = expectedBaseOffset;
    for (;;) {
      if (position >= options.visibleBytes) break;
      if (position + BATCH_HEADER_BYTES > windowStart + window.length) break;
      const header = this.checkedHeader(window, position - windowStart, position, options.visibleBytes, nextOffset, false);
      const isFirst = position === start;
      if (!isFirst && position + header.sizeBytes - start > options.bytesMax) break;
      if (position + header.sizeBytes > windowStart + window.length) {
        if (!isFirst) break;
        // The first batch is larger than the window: read exactly it.
        window = await readRange(lease.handle, position, header.sizeBytes);
        windowStart = position;
      }
      if (!isBatchCrcValid(window, header, position - windowStart)) {
        throw new CorruptionFound(this.baseOffset, position, 'CRC-32C mismatch');
      }
      position += header.sizeBytes;
      nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
    }
    return { bytes: window.subarray(start - windowStart, position - windowStart), nextOffset };
  }

  /** Reads and checks a header; a header at an index entry that does not match means a bad index. */
  private checkedHeader(
    window: Buffer,
    at: number,
    position: number,
    visibleBytes: number,
    expectedBaseOffset: number,
    isFromIndex: boolean,
  ): BatchHeader {
    const header = tryReadBatchHeader(window, at);
    const problem =
      header === undefined
        ? 'unreadable batch header'
        : header.magic !== BATCH_MAGIC
          ? `batch magic ${header.magic}`
          : header.baseOffset !== expectedBaseOffset
            ? `batch base offset ${header.baseOffset}, expected ${expectedBaseOffset}`
            : position + header.sizeBytes > visibleBytes
              ? `batch of ${header.sizeBytes} bytes runs past the segment end ${visibleBytes}`
              : undefined;
    if (problem === undefined && header !== undefined) return header;
    if (isFromIndex) throw new IndexMismatch(problem);
    throw new CorruptionFound(this.baseOffset, position, problem ?? 'unreadable batch header');
  }

  /**
   * The base offset of the first batch whose maxTimestamp ≥ `timestamp`, looking no further
   * than `visibleBytes`; `undefined` when there is none in this segment.
   */
  async firstOffsetAtOrAfterTimestamp(timestamp: number, visibleBytes: number): Promise<number | undefined> {
    const lease = await this.lease();
    try {
      try {
        return await this.firstOffsetAtOrAfterTimestampWith(lease, { timestamp, visibleBytes, isIndexRebuilt: false }, await this.indexes(lease));
      } catch (error) {
        if (!(error instanceof IndexMismatch)) throw error;
        // As in `read`: the scan began at an index entry, and what it met there or after it
        // may be the index's fault, not the log's. The rebuild reads the whole log with CRC
        // checks, so real damage still raises CorruptionFound from it or from the retry.
        return await this.firstOffsetAtOrAfterTimestampWith(lease, { timestamp, visibleBytes, isIndexRebuilt: true }, await this.rebuildIndexesAfterMismatch(lease));
      }
    } finally {
      lease.release();
    }
  }

  private async firstOffsetAtOrAfterTimestampWith(
    lease: HandleLease,
    options: { timestamp: number; visibleBytes: number; isIndexRebuilt: boolean },
    indexes: SegmentIndexes,
  ): Promise<number | undefined> {
    const entry = indexes.timeIndex.entryBefore(options.timestamp);
    const scanFrom = indexes.offsetIndex.floor(entry?.relativeOffset ?? 0);
    // The entry (T, O) says every batch before O is below T and the batch at O is at T: the
    // first batch at or after the time lies at O or later. A batch found before O, or O not
    // at T, means the index file is wrong (edited by hand), not the log: rebuild it.
    const checked = entry === undefined || options.isIndexRebuilt ? undefined : { offset: this.baseOffset + entry.relativeOffset, timestamp: entry.timestamp };
    let isEntryWrong = false;
    let found: number | undefined;
    const scan = await this.scanFrom(lease, scanFrom?.position ?? 0, this.baseOffset + (scanFrom?.relativeOffset ?? 0), options.visibleBytes, (header) => {
      if (checked !== undefined && contradictsTimeEntry(header, checked)) {
        isEntryWrong = true;
        return false;
      }
      if (found === undefined && header.maxTimestamp >= options.timestamp) found = header.baseOffset;
      return found === undefined;
    });
    if (isEntryWrong) throw new IndexMismatch(`time index entry (${checked?.timestamp}, ${checked?.offset}) does not match the log`);
    if (found !== undefined || scan.problem === undefined) return found;
    if (scanFrom !== undefined && !options.isIndexRebuilt) throw new IndexMismatch(scan.problem.detail);
    throw new CorruptionFound(this.baseOffset, scan.problem.position, scan.problem.detail);
  }

  /** Header-only walk (no CRC) from a trusted position; `visit` returns false to stop. */
  private async scanFrom(
    lease: HandleLease,
    fromPosition: number,
    expectedBaseOffset: number,
    toPosition: number,
    visit: (header: BatchHeader) => boolean,
  ): Promise<{ problem?: { position: number; detail: string } }> {
    let position = fromPosition;
    let nextOffset = expectedBaseOffset;
    let window: Buffer = Buffer.alloc(0);
    let windowStart = position;
    while (position < toPosition) {
      if (position + BATCH_HEADER_BYTES > windowStart + window.length) {
        window = await readRange(lease.handle, position, Math.min(64 * KiB, toPosition - position));
        windowStart = position;
        if (window.length < BATCH_HEADER_BYTES) return { problem: { position, detail: 'truncated batch header' } };
      }
      const header = tryReadBatchHeader(window, position - windowStart);
      if (header === undefined || header.magic !== BATCH_MAGIC || header.baseOffset !== nextOffset || position + header.sizeBytes > toPosition) {
        return { problem: { position, detail: 'unexpected batch header' } };
      }
      if (!visit(header)) return {};
      position += header.sizeBytes;
      nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
    }
    return {};
  }

  // ---- Indexes -------------------------------------------------------------------------------

  /**
   * This segment's indexes: in memory when active, else cached, loaded or rebuilt. A caller
   * that holds a lease on this segment passes it, so a rebuild reads through it (see
   * `rebuildIndexes`).
   */
  async indexes(heldLease?: HandleLease): Promise<SegmentIndexes> {
    if (this.active !== undefined) return this.active.indexes;
    const cached = this.context.indexCache.get(this.indexKey);
    if (cached !== undefined) {
      this.sealedMaxTimestamp = maxTimestampOf(cached);
      return cached;
    }
    const loaded = await this.tryLoadIndexes();
    if (loaded !== undefined && (await this.isTimeIndexTailTrue(loaded, heldLease))) {
      // Forgotten while the files were read (its log closed, or retention deleted it): the
      // indexes serve this caller only, as in `rebuildIndexes`. Cached, they would stay, and
      // count against the bound every partition shares, for a segment nothing can use.
      if (!this.isForgotten) this.cacheIndexes(loaded);
      return loaded;
    }
    return this.rebuildIndexes(heldLease);
  }

  /**
   * Whether the time index's last entry (T, O), which stands for the segment's largest
   * timestamp (retention, lookups by time), names the batch at O with maxTimestamp T. A file
   * that loads (whole entries, increasing, in range) can still say otherwise when edited by
   * hand (no crash writes one: index files are replaced whole): it is then rebuilt from the
   * log. Costs one short header walk from the offset index entry at or before O.
   */
  private async isTimeIndexTailTrue(indexes: SegmentIndexes, heldLease: HandleLease | undefined): Promise<boolean> {
    const last = indexes.timeIndex.lastEntry();
    if (last === undefined) return true;
    const checked = { offset: this.baseOffset + last.relativeOffset, timestamp: last.timestamp };
    const from = indexes.offsetIndex.floor(last.relativeOffset);
    const lease = heldLease ?? (await this.lease());
    try {
      let isTrue = false;
      const scan = await this.scanFrom(lease, from?.position ?? 0, this.baseOffset + (from?.relativeOffset ?? 0), await this.knownSizeBytes(), (header) => {
        if (contradictsTimeEntry(header, checked)) return false;
        if (header.baseOffset < checked.offset) return true;
        isTrue = header.baseOffset === checked.offset;
        return false;
      });
      return scan.problem === undefined && isTrue;
    } finally {
      if (lease !== heldLease) lease.release();
    }
  }

  /** Puts a sealed segment's indexes in the shared cache and remembers its largest timestamp. */
  private cacheIndexes(indexes: SegmentIndexes): void {
    this.context.indexCache.set(this.indexKey, indexes);
    this.sealedMaxTimestamp = maxTimestampOf(indexes);
  }

  private async tryLoadIndexes(): Promise<SegmentIndexes | undefined> {
    const logSizeBytes = await this.knownSizeBytes();
    const relativeOffsetEnd = this.nextOffset - this.baseOffset;
    let offsetBytes: Buffer | undefined;
    let timeBytes: Buffer | undefined;
    try {
      offsetBytes = await this.context.fileSystem.tryReadFile(this.indexPath);
      timeBytes = await this.context.fileSystem.tryReadFile(this.timeIndexPath);
    } catch (error) {
      throw storageError('read the indexes of', this.logPath, error);
    }
    if (offsetBytes === undefined || timeBytes === undefined) return undefined;
    const offsetIndex = OffsetIndex.tryFromBytes(offsetBytes, { logSizeBytes, relativeOffsetEnd });
    const timeIndex = TimeIndex.tryFromBytes(timeBytes, { relativeOffsetEnd });
    // A non-empty segment always has an entry for its first batch in both indexes.
    if (offsetIndex === undefined || timeIndex === undefined) return undefined;
    if (logSizeBytes > 0 && (offsetIndex.entryCount === 0 || offsetIndex.floor(0)?.position !== 0)) return undefined;
    return { offsetIndex, timeIndex };
  }

  /**
   * Rebuilds a sealed segment's indexes by scanning its whole log with CRC checks (damage
   * raises `CorruptionFound`), then rewrites the index files. Writing them is best effort: the
   * indexes are correct in memory either way and a later open rebuilds again if needed.
   *
   * A caller holding a lease on this segment passes it (`heldLease`), and the scan reads
   * through it: asking the cache for another could need a new descriptor (the held one may
   * have been discarded meanwhile, by retention or close), and one that waits for a descriptor
   * while holding one can deadlock the bounded cache (file-handle-cache.ts;
   * descriptor-bound.test.ts). Once the segment is forgotten (deleted or its log closed),
   * the indexes serve only this caller: they are neither cached nor written.
   */
  async rebuildIndexes(heldLease?: HandleLease): Promise<SegmentIndexes> {
    assert(this.active === undefined, 'the active segment keeps its indexes in memory');
    const lease = heldLease ?? (await this.lease());
    let indexes: SegmentIndexes;
    try {
      const built = await buildIndexes(lease, {
        fromPosition: 0,
        toPosition: await this.knownSizeBytes(),
        baseOffset: this.baseOffset,
        indexIntervalBytes: this.context.indexIntervalBytes,
      });
      if (built.scan.problem !== undefined) {
        throw new CorruptionFound(this.baseOffset, built.scan.problem.position, built.scan.problem.detail);
      }
      if (built.scan.nextOffset !== this.nextOffset) {
        throw new CorruptionFound(this.baseOffset, built.scan.validEndPosition, `segment ends at offset ${built.scan.nextOffset} but the next segment starts at ${this.nextOffset}`);
      }
      indexes = built.builder.finish();
    } finally {
      if (lease !== heldLease) lease.release();
    }
    if (!this.isForgotten) await this.persistIndexes(indexes, { isBestEffort: true });
    return indexes;
  }

  /**
   * After an index entry pointed somewhere wrong: this segment's indexes rebuilt from its log,
   * in its index files and cache when sealed (`rebuildIndexes`), in memory when active
   * (`rebuildActiveIndexes`). Damage raises CorruptionFound.
   */
  private async rebuildIndexesAfterMismatch(lease: HandleLease): Promise<SegmentIndexes> {
    if (this.active !== undefined) {
      const rebuilt = await this.rebuildActiveIndexes(lease);
      if (rebuilt !== undefined) return rebuilt;
    }
    return this.rebuildIndexes(lease);
  }

  /**
   * Replaces the active segment's in-memory indexes with ones built from its log. Appends and
   * recovery scans build them from the batches themselves, so only index files adopted at a
   * clean open can be wrong (recovery.ts `tryOpenClean` checks their shape, not where each
   * entry points). The writer may append while this scans, so the scan goes on up to the
   * visible size until it has caught up, and the builder is swapped in the same synchronous
   * step as that check: no append is missed. `undefined` when the segment was sealed
   * meanwhile (the caller then rebuilds it as a sealed one).
   */
  private async rebuildActiveIndexes(lease: HandleLease): Promise<SegmentIndexes | undefined> {
    const builder = new SegmentIndexBuilder(this.baseOffset, this.context.indexIntervalBytes);
    let position = 0;
    let nextOffset = this.baseOffset;
    for (;;) {
      // After each await: the writer may have appended (visible size grew) or sealed the segment.
      if (this.active === undefined) return undefined;
      const toPosition = this.sizeBytes ?? 0;
      if (position === toPosition) {
        assert(nextOffset === this.nextOffset, `rebuilt active index ends at offset ${nextOffset}, the segment at ${this.nextOffset}`);
        this.active = builder;
        return builder.indexes;
      }
      const scan = await scanBatches(lease.handle, {
        fromPosition: position,
        toPosition,
        expectedBaseOffset: nextOffset,
        onBatch: (header, at) => builder.add(header, at),
      });
      if (scan.problem !== undefined) throw new CorruptionFound(this.baseOffset, scan.problem.position, scan.problem.detail);
      position = scan.validEndPosition;
      nextOffset = scan.nextOffset;
    }
  }

  /**
   * Writes rebuilt indexes of a sealed segment to its index files and caches them. Best effort
   * for read-time rebuilds (the in-memory copy is correct either way); required by recovery
   * before the checkpoint moves past the segment.
   */
  async persistIndexes(indexes: SegmentIndexes, options: { isBestEffort: boolean }): Promise<void> {
    try {
      await this.writeIndexBytes(indexes);
    } catch (error) {
      if (!options.isBestEffort) throw error;
    }
    this.cacheIndexes(indexes);
  }

  private async writeIndexBytes(indexes: SegmentIndexes): Promise<void> {
    try {
      // A crash leaves each file old or new, whole, but maybe one of each (as two replaces one
      // after the other did). At a roll or close nothing trusts the pair before partition.state
      // says so, written after this returns (a checkpoint past this segment, a clean mark):
      // until then recovery scans the segment and writes both again. A pair rewritten after a
      // rebuild keeps the old file's defect, which the checks that found it find again.
      await writeFilesAtomically(this.context.fileSystem, [
        { path: this.indexPath, data: indexes.offsetIndex.toBytes() },
        { path: this.timeIndexPath, data: indexes.timeIndex.toBytes() },
      ]);
    } catch (error) {
      throw storageError('write the index files of', this.logPath, error);
    }
  }

  private forgottenError(): BrokerError {
    return storageClosedError('open', this.logPath);
  }

  /** Drops cached state before the files go (retention, deletion) or the log closes. */
  forget(): void {
    this.isForgotten = true;
    this.context.indexCache.delete(this.indexKey);
    this.context.handles.discard(this.logPath);
  }

  /** Undoes `forget` for a segment that stays after all (retention could not delete its .log). */
  remember(): void {
    this.isForgotten = false;
  }
}

/** The time index's last entry is the segment's largest timestamp (`SegmentIndexBuilder.finish`). */
function maxTimestampOf(indexes: SegmentIndexes): number {
  return indexes.timeIndex.lastEntry()?.timestamp ?? -1;
}

/**
 * Builds a segment's two sparse indexes batch by batch, with the same rule for appends,
 * recovery scans and rebuilds. A rebuilt index can differ from the one appends made where a
 * segment stayed active across a clean restart (the first batch after reopening always gets
 * an entry); both satisfy every lookup invariant, which is all readers rely on.
 */
export class SegmentIndexBuilder {
  readonly indexes: SegmentIndexes;
  private bytesSinceOffsetEntry = 0;
  private bytesSinceTimeEntry = 0;
  /** Largest batch maxTimestamp so far, −1 when none. */
  maxTimestamp = -1;
  private offsetOfMaxTimestamp = 0;
  firstBatchMaxTimestamp: number | undefined;

  constructor(
    private readonly baseOffset: number,
    private readonly indexIntervalBytes: number,
    indexes: SegmentIndexes = { offsetIndex: OffsetIndex.empty(), timeIndex: TimeIndex.empty() },
  ) {
    this.indexes = indexes;
    const first = indexes.timeIndex.firstEntry();
    const last = indexes.timeIndex.lastEntry();
    if (first !== undefined && last !== undefined) {
      // Index files written at seal or clean close: the first time entry is the first batch's
      // timestamp and the last one the segment's largest (writeIndexFiles). The next batch
      // starts a fresh interval and gets entries of its own.
      this.firstBatchMaxTimestamp = first.timestamp;
      this.maxTimestamp = last.timestamp;
      this.offsetOfMaxTimestamp = last.relativeOffset;
      this.bytesSinceOffsetEntry = indexIntervalBytes;
      this.bytesSinceTimeEntry = indexIntervalBytes;
    }
  }

  add(header: BatchHeader, position: number): void {
    const relativeOffset = header.baseOffset - this.baseOffset;
    if (this.bytesSinceOffsetEntry >= this.indexIntervalBytes || this.indexes.offsetIndex.entryCount === 0) {
      this.indexes.offsetIndex.append(relativeOffset, position);
      this.bytesSinceOffsetEntry = 0;
    }
    if (this.firstBatchMaxTimestamp === undefined) this.firstBatchMaxTimestamp = header.maxTimestamp;
    if (header.maxTimestamp > this.maxTimestamp) {
      this.maxTimestamp = header.maxTimestamp;
      this.offsetOfMaxTimestamp = relativeOffset;
    }
    if (this.bytesSinceTimeEntry >= this.indexIntervalBytes || this.indexes.timeIndex.entryCount === 0) {
      if (this.indexes.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp)) this.bytesSinceTimeEntry = 0;
    }
    this.bytesSinceOffsetEntry += header.sizeBytes;
    this.bytesSinceTimeEntry += header.sizeBytes;
  }

  /** Adds the final time entry (the largest timestamp) and returns the indexes. */
  finish(): SegmentIndexes {
    if (this.maxTimestamp >= 0) this.indexes.timeIndex.maybeAppend(this.maxTimestamp, this.offsetOfMaxTimestamp);
    return this.indexes;
  }
}

export interface BuiltIndexes {
  builder: SegmentIndexBuilder;
  scan: ScanResult;
}

/**
 * Scans a log range with full checks (structure, CRC, dense offsets) and feeds each valid
 * batch to a builder (and to `onBatch`, in log order). Stops at the first invalid batch; the
 * caller decides what that means, so `onBatch` may have seen batches before a problem.
 */
export async function buildIndexes(
  lease: HandleLease,
  options: { fromPosition: number; toPosition: number; baseOffset: number; indexIntervalBytes: number; onBatch?: (header: BatchHeader) => void },
): Promise<BuiltIndexes> {
  const builder = new SegmentIndexBuilder(options.baseOffset, options.indexIntervalBytes);
  const onBatch = options.onBatch;
  const scan = await scanBatches(lease.handle, {
    fromPosition: options.fromPosition,
    toPosition: options.toPosition,
    expectedBaseOffset: options.baseOffset,
    onBatch: (header, position) => {
      builder.add(header, position);
      onBatch?.(header);
    },
  });
  return { builder, scan };
}

/**
 * Whether `header`, met walking the log up to a time-index entry (T at offset O), contradicts
 * it: a batch before O reaching T, O inside a batch rather than at one's base, or the batch at
 * O not at exactly T (`SegmentIndexBuilder` writes (T, O) when the running largest timestamp
 * first reaches T, at batch O). Batches past O say nothing about it.
 */
function contradictsTimeEntry(header: BatchHeader, entry: { offset: number; timestamp: number }): boolean {
  if (header.baseOffset > entry.offset) return false;
  if (header.baseOffset === entry.offset) return header.maxTimestamp !== entry.timestamp;
  return header.baseOffset + header.lastOffsetDelta >= entry.offset || header.maxTimestamp >= entry.timestamp;
}
