/**
 * Model-based property test of PartitionLog.
 *
 * Goal: random sequences of appends (concurrent ones too), reads, seeks by time, rolls,
 * retention runs, clean reopens and crash-reopens never make the log disagree with a trivially
 * correct model: the list of acknowledged batches still retained, plus the log start and end
 * offsets.
 *
 * Method: each run picks small settings (segment.bytes 1–8 KiB, index interval 64–1024 bytes,
 * a handle pool and index cache small enough to evict) so segments, index entries and
 * reloads are many, plus random retention.bytes / retention.ms driven by a ManualClock. After
 * every step the log's offsets are compared with the model; reads and seeks are compared with
 * the model's answer; after rolls, retention and reopens every retained batch is read back.
 * A crash-reopen abandons the PartitionLog without closing it (flush=never: the page cache
 * keeps every acknowledged byte, so nothing acknowledged may be lost) and opens the directory
 * again with fresh caches, as a restarted process would.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.js';
import { isBrokerError } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { decodeBatches, encodeBatch, tryReadBatchHeader, type LogRecord } from '../protocol/index.js';
import { FileHandleCache } from './file-handle-cache.js';
import { tryParseSegmentFileName } from './file-names.js';
import { nodeFileSystem } from './file-system.js';
import { IndexCache } from './index-cache.js';
import { PartitionLog, type PartitionLogConfig, type ReadResult } from './partition-log.js';
import { makeTempDir, propertyRunSettings, testConfig } from './test-helpers.js';

// ---- Generated input -----------------------------------------------------------------------

interface RunSettings {
  segmentBytes: number;
  indexIntervalBytes: number;
  retentionBytes: number;
  retentionMs: number;
  segmentMs: number;
  openFilesMax: number;
  indexCacheBytesMax: number;
}

interface RecordSpec {
  valueBytes: number;
  /** Record timestamp = clock now + this (so timestamps go back and forth). */
  timestampDeltaMs: number;
}

/**
 * Puts a retention run on the edge of a rule: `time` moves the clock to where segment n's
 * newest batch is exactly retention.ms old (± 1 ms); `size` sets retention.bytes to what the
 * segments from n on hold (± 1 byte). Each applies only when that rule is on for the run.
 */
type RetentionBoundary = { by: 'time' | 'size'; n: number; delta: number };

type OffsetTarget = { at: 'inside' | 'start' | 'end' | 'belowStart' | 'aboveEnd' | 'batchLast'; n: number };
type TimeTarget = { from: 'now' | 'batch'; n: number; deltaMs: number };
/** A read issued while the appends are in flight, after `hops` turns of the event loop. */
type ConcurrentRead = { target: OffsetTarget; bytesMax: number; hops: number };

type Operation =
  | { kind: 'append'; batches: RecordSpec[][]; concurrentRead: ConcurrentRead | null }
  | { kind: 'read'; target: OffsetTarget; bytesMax: number }
  | { kind: 'offsetForTimestamp'; target: TimeTarget }
  | { kind: 'roll' }
  | { kind: 'retention'; boundary: RetentionBoundary | null }
  | { kind: 'advanceClock'; ms: number }
  | { kind: 'reopen'; isSharingCaches: boolean }
  | { kind: 'crashReopen' };

const WEEK_MS = 7 * 24 * 3_600_000;

const settingsArbitrary: fc.Arbitrary<RunSettings> = fc.record({
  segmentBytes: fc.integer({ min: 1024, max: 8192 }),
  indexIntervalBytes: fc.integer({ min: 64, max: 1024 }),
  retentionBytes: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 24_000 })),
  retentionMs: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 120_000 })),
  segmentMs: fc.oneof(fc.constant(WEEK_MS), fc.integer({ min: 1000, max: 120_000 })),
  openFilesMax: fc.integer({ min: 1, max: 8 }),
  indexCacheBytesMax: fc.integer({ min: 0, max: 4096 }),
});

const recordArbitrary: fc.Arbitrary<RecordSpec> = fc.record({
  // Mostly small values (many batches per segment), sometimes up to 2000 bytes.
  valueBytes: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 0, max: 120 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2000 }) }),
  timestampDeltaMs: fc.integer({ min: -60_000, max: 60_000 }),
});

const offsetTargetArbitrary: fc.Arbitrary<OffsetTarget> = fc.record({
  at: fc.constantFrom('inside' as const, 'inside' as const, 'start' as const, 'end' as const, 'belowStart' as const, 'aboveEnd' as const, 'batchLast' as const),
  n: fc.integer({ min: 0, max: 1_000_000 }),
});

const bytesMaxArbitrary = fc.oneof(fc.constantFrom(-1, 0, 1, 61), fc.integer({ min: 0, max: 30_000 }));

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('append' as const),
      // More than one batch: appended concurrently, so the writer groups them.
      batches: fc.array(
        // Mostly small batches (many per segment), sometimes up to 20 records.
        fc.oneof(
          { weight: 3, arbitrary: fc.array(recordArbitrary, { minLength: 1, maxLength: 4 }) },
          { weight: 1, arbitrary: fc.array(recordArbitrary, { minLength: 1, maxLength: 20, size: 'max' }) },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      concurrentRead: fc.option(fc.record({ target: offsetTargetArbitrary, bytesMax: bytesMaxArbitrary, hops: fc.integer({ min: 0, max: 4 }) }), { freq: 3 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      target: offsetTargetArbitrary,
      bytesMax: bytesMaxArbitrary,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('offsetForTimestamp' as const),
      target: fc.record({
        from: fc.constantFrom('now' as const, 'batch' as const),
        n: fc.integer({ min: 0, max: 1_000_000 }),
        deltaMs: fc.oneof(fc.constantFrom(-1, 0, 1), fc.integer({ min: -100_000, max: 100_000 })),
      }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'roll' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('retention' as const),
      boundary: fc.option(
        fc.record({ by: fc.constantFrom('time' as const, 'size' as const), n: fc.integer({ min: 0, max: 1_000_000 }), delta: fc.integer({ min: -1, max: 1 }) }),
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advanceClock' as const), ms: fc.integer({ min: 0, max: 60_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const), isSharingCaches: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crashReopen' as const }) },
);

// ---- The model -----------------------------------------------------------------------------

interface ModelRecord {
  value: Buffer;
  timestamp: number;
}

interface ModelBatch {
  baseOffset: number;
  lastOffset: number;
  maxTimestamp: number;
  sizeBytes: number;
  records: ModelRecord[];
}

class Model {
  /** Acknowledged batches still retained, in offset order, densely covering [start, end). */
  batches: ModelBatch[] = [];
  logStartOffset = 0;
  logEndOffset = 0;

  /** Index of the batch holding `offset` (which must be in [start, end)). */
  batchIndexHolding(offset: number): number {
    let low = 0;
    let high = this.batches.length - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.batches[middle] as ModelBatch).lastOffset < offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The log as it looked when it ended at `logEndOffset` (an earlier end). */
  viewEndingAt(logEndOffset: number): Model {
    const view = new Model();
    view.batches = this.batches.filter((batch) => batch.lastOffset < logEndOffset);
    view.logStartOffset = this.logStartOffset;
    view.logEndOffset = logEndOffset;
    return view;
  }

  /** Kafka's ListOffsets by time at batch granularity: first retained batch with maxTimestamp ≥ t. */
  offsetForTimestamp(timestamp: number): number | undefined {
    return this.batches.find((batch) => batch.maxTimestamp >= timestamp)?.baseOffset;
  }
}

// ---- Helpers -------------------------------------------------------------------------------

/** A value that says which batch and record it belongs to, padded to `sizeBytes`. */
function valueFor(serial: number, recordIndex: number, sizeBytes: number): Buffer {
  const value = Buffer.alloc(sizeBytes, (serial * 31 + recordIndex * 7) & 0xff);
  value.write(`${serial}/${recordIndex}|`, 0, 'latin1');
  return value;
}

interface SegmentFile {
  baseOffset: number;
  sizeBytes: number;
}

async function listSegmentFiles(dir: string): Promise<SegmentFile[]> {
  const files: SegmentFile[] = [];
  for (const name of await readdir(dir)) {
    const parsed = tryParseSegmentFileName(name);
    if (parsed?.kind !== 'log') continue;
    files.push({ baseOffset: parsed.baseOffset, sizeBytes: (await stat(join(dir, name))).size });
  }
  return files.sort((a, b) => a.baseOffset - b.baseOffset);
}

/**
 * How many leading segments retention must delete, written from the documented rule (not from
 * retention.ts): oldest first; a segment goes when its newest timestamp is more than
 * retention.ms old (never when it has none) or when the rest still holds ≥ retention.bytes.
 * The last (active) one counts only when it holds data: the log then rolls and deletes all.
 */
function expectedDeletions(
  segments: readonly { sizeBytes: number; maxTimestamp: number }[],
  settings: { retentionMs: number; retentionBytes: number },
  nowMs: number,
): number {
  let remaining = segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
  let count = 0;
  for (const [index, segment] of segments.entries()) {
    if (index === segments.length - 1 && segment.sizeBytes === 0) break;
    const isTooOld = settings.retentionMs >= 0 && segment.maxTimestamp >= 0 && nowMs - segment.maxTimestamp > settings.retentionMs;
    const isNotNeeded = settings.retentionBytes >= 0 && remaining - segment.sizeBytes >= settings.retentionBytes;
    if (!isTooOld && !isNotNeeded) break;
    remaining -= segment.sizeBytes;
    count++;
  }
  return count;
}

function offsetFor(target: OffsetTarget, model: Model): number {
  const span = model.logEndOffset - model.logStartOffset;
  switch (target.at) {
    case 'inside':
      return span === 0 ? model.logEndOffset : model.logStartOffset + (target.n % span);
    case 'start':
      return model.logStartOffset;
    case 'end':
      return model.logEndOffset;
    case 'belowStart':
      return model.logStartOffset - 1 - (target.n % 3);
    case 'aboveEnd':
      return model.logEndOffset + 1 + (target.n % 3);
    case 'batchLast': {
      const batch = model.batches[target.n % Math.max(1, model.batches.length)];
      return batch === undefined ? model.logEndOffset : batch.lastOffset;
    }
  }
}

function timestampFor(target: TimeTarget, model: Model, clock: ManualClock): number {
  const batch = model.batches[target.n % Math.max(1, model.batches.length)];
  if (target.from === 'batch' && batch !== undefined) return batch.maxTimestamp + Math.sign(target.deltaMs);
  return clock.nowMs() + target.deltaMs;
}

/** Checks a read result against the model: whole batches from the one holding `offset`. */
function checkRead(where: string, result: ReadResult, offset: number, bytesMax: number, model: Model): void {
  expect(result.logStartOffset, `${where}: read's logStartOffset`).toBe(model.logStartOffset);
  expect(result.logEndOffset, `${where}: read's logEndOffset`).toBe(model.logEndOffset);
  if (offset === model.logEndOffset) {
    expect(result.bytes.length, `${where}: a read at the log end is empty`).toBe(0);
    expect(result.nextOffset, `${where}: a read at the log end stays there`).toBe(model.logEndOffset);
    return;
  }
  const first = model.batchIndexHolding(offset);
  const expectedBatches: ModelBatch[] = [];
  let position = 0;
  while (position < result.bytes.length) {
    const header = tryReadBatchHeader(result.bytes, position);
    const batch = model.batches[first + expectedBatches.length];
    expect(header, `${where}: readable batch header at byte ${position} of the read`).toBeDefined();
    expect(batch, `${where}: the read returned more batches than the model holds`).toBeDefined();
    if (header === undefined || batch === undefined) return;
    expect(header.baseOffset, `${where}: base offset of batch ${expectedBatches.length} of the read`).toBe(batch.baseOffset);
    expect(header.baseOffset + header.lastOffsetDelta, `${where}: last offset of batch ${expectedBatches.length}`).toBe(batch.lastOffset);
    expect(header.maxTimestamp, `${where}: maxTimestamp of batch at ${batch.baseOffset}`).toBe(batch.maxTimestamp);
    expect(header.sizeBytes, `${where}: size of batch at ${batch.baseOffset}`).toBe(batch.sizeBytes);
    expect(position + header.sizeBytes, `${where}: the read ends with a whole batch`).toBeLessThanOrEqual(result.bytes.length);
    position += header.sizeBytes;
    expectedBatches.push(batch);
  }
  expect(expectedBatches.length, `${where}: a read inside the log returns at least one batch`).toBeGreaterThanOrEqual(1);
  if (expectedBatches.length > 1) {
    expect(result.bytes.length, `${where}: more than one batch only within the budget ${bytesMax}`).toBeLessThanOrEqual(Math.max(1, bytesMax));
  }
  const last = expectedBatches[expectedBatches.length - 1] as ModelBatch;
  expect(result.nextOffset, `${where}: nextOffset after the last batch returned`).toBe(last.lastOffset + 1);

  const records = decodeBatches(result.bytes);
  const expected = expectedBatches.flatMap((batch) => batch.records.map((record, i) => ({ offset: batch.baseOffset + i, ...record })));
  expect(records.length, `${where}: record count`).toBe(expected.length);
  records.forEach((record, i) => {
    const want = expected[i] as ModelRecord & { offset: number };
    if (record.offset !== want.offset || record.timestamp !== want.timestamp || record.value === null || !record.value.equals(want.value)) {
      expect.fail(
        `${where}: record ${i} is offset ${record.offset} t=${record.timestamp} value ${record.value?.subarray(0, 16).toString('latin1')}…(${record.value?.length}), ` +
          `model has offset ${want.offset} t=${want.timestamp} value ${want.value.subarray(0, 16).toString('latin1')}…(${want.value.length})`,
      );
    }
  });
}

/** Fails with `what` when `work` has not settled within `deadlineMs` (a hung append, say). */
async function withDeadline<T>(what: string, deadlineMs: number, work: Promise<T>): Promise<T> {
  let cancel: (() => void) | undefined;
  const deadline = new Promise<never>((_, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: did not settle within ${deadlineMs} ms`)), deadlineMs);
    cancel = () => clearTimeout(timer);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    cancel?.();
  }
}

const STEP_DEADLINE_MS = 5_000;

// ---- The property --------------------------------------------------------------------------

class Harness {
  readonly clock = new ManualClock(1_700_000_000_000);
  readonly model = new Model();
  config: PartitionLogConfig;
  handles: FileHandleCache;
  indexCache: IndexCache;
  log: PartitionLog | undefined;
  private serial = 0;

  constructor(
    readonly dir: string,
    readonly settings: RunSettings,
  ) {
    this.config = {
      ...testConfig,
      segmentBytes: settings.segmentBytes,
      segmentMs: settings.segmentMs,
      indexIntervalBytes: settings.indexIntervalBytes,
      retentionBytes: settings.retentionBytes,
      retentionMs: settings.retentionMs,
      flush: { kind: 'never' },
    };
    this.handles = new FileHandleCache(nodeFileSystem, settings.openFilesMax);
    this.indexCache = new IndexCache(settings.indexCacheBytesMax);
  }

  get current(): PartitionLog {
    if (this.log === undefined) throw new Error('log not open');
    return this.log;
  }

  async open(): Promise<void> {
    this.log = await PartitionLog.open({
      dir: this.dir,
      topic: 'property',
      partition: 0,
      config: this.config,
      fileSystem: nodeFileSystem,
      handles: this.handles,
      indexCache: this.indexCache,
      clock: this.clock,
      logger: silentLogger,
    });
  }

  freshCaches(): void {
    this.handles = new FileHandleCache(nodeFileSystem, this.settings.openFilesMax);
    this.indexCache = new IndexCache(this.settings.indexCacheBytesMax);
  }

  async dispose(): Promise<void> {
    await this.log?.close().catch(() => undefined);
    await this.handles.closeAll();
  }

  async run(step: number, op: Operation): Promise<void> {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const { model } = this;
    switch (op.kind) {
      case 'append': {
        const pending = op.batches.map((specs) => {
          const serial = this.serial++;
          const records: LogRecord[] = specs.map((spec, i) => ({
            key: null,
            value: valueFor(serial, i, spec.valueBytes),
            headers: [],
            timestamp: this.clock.nowMs() + spec.timestampDeltaMs,
          }));
          const bytes = encodeBatch({ records });
          const modelRecords = records.map((record) => ({ value: Buffer.from(record.value as Buffer), timestamp: record.timestamp }));
          return { bytes, sizeBytes: bytes.length, modelRecords, acked: this.current.append(bytes) };
        });
        const oldEnd = model.logEndOffset;
        let concurrent: { offset: number; bytesMax: number; outcome: Promise<ReadResult | Error> } | undefined;
        if (op.concurrentRead !== null) {
          const { target, bytesMax, hops } = op.concurrentRead;
          for (let hop = 0; hop < hops; hop++) await new Promise<void>((resolve) => setImmediate(resolve));
          const offset = offsetFor(target, model);
          const outcome = this.current.read({ offset, bytesMax }).catch((error: unknown) => error as Error);
          concurrent = { offset, bytesMax, outcome };
        }
        const results = await Promise.all(pending.map((p) => p.acked));
        let offset = model.logEndOffset;
        results.forEach((result, i) => {
          const { modelRecords, sizeBytes } = pending[i] as (typeof pending)[number];
          expect(result, `${where}: offsets of concurrent append ${i}`).toEqual({ baseOffset: offset, lastOffset: offset + modelRecords.length - 1, isDuplicate: false });
          model.batches.push({
            baseOffset: offset,
            lastOffset: offset + modelRecords.length - 1,
            maxTimestamp: Math.max(...modelRecords.map((record) => record.timestamp)),
            sizeBytes,
            records: modelRecords,
          });
          offset += modelRecords.length;
        });
        model.logEndOffset = offset;
        if (concurrent !== undefined) {
          // The read saw the log before, between or after these appends, never half of one.
          const outcome = await concurrent.outcome;
          const readWhere = `${where}: read at ${concurrent.offset} during the appends`;
          if (outcome instanceof Error) {
            const isOutside = concurrent.offset < model.logStartOffset || concurrent.offset > oldEnd;
            if (!isOutside || !isBrokerError(outcome, 'OFFSET_OUT_OF_RANGE')) throw outcome;
          } else {
            const ends = [oldEnd, ...model.batches.filter((batch) => batch.baseOffset >= oldEnd).map((batch) => batch.lastOffset + 1)];
            expect(ends, `${readWhere}: the end it saw is a batch end`).toContain(outcome.logEndOffset);
            checkRead(readWhere, outcome, concurrent.offset, concurrent.bytesMax, model.viewEndingAt(outcome.logEndOffset));
          }
        }
        break;
      }
      case 'read': {
        const offset = offsetFor(op.target, model);
        const isInRange = offset >= model.logStartOffset && offset <= model.logEndOffset;
        let result: ReadResult;
        try {
          result = await this.current.read({ offset, bytesMax: op.bytesMax });
        } catch (error) {
          if (!isInRange && isBrokerError(error, 'OFFSET_OUT_OF_RANGE')) break;
          throw error;
        }
        expect(isInRange, `${where}: read at ${offset} outside [${model.logStartOffset}, ${model.logEndOffset}] must fail with OFFSET_OUT_OF_RANGE`).toBe(true);
        checkRead(`${where} at offset ${offset}`, result, offset, op.bytesMax, model);
        break;
      }
      case 'offsetForTimestamp': {
        const timestamp = timestampFor(op.target, model, this.clock);
        const found = await this.current.offsetForTimestamp(timestamp);
        expect(found, `${where}: offsetForTimestamp(${timestamp})`).toBe(model.offsetForTimestamp(timestamp));
        break;
      }
      case 'roll': {
        const before = this.current.segmentCount;
        await this.current.roll();
        const activeBase = (await listSegmentFiles(this.dir)).at(-1)?.baseOffset;
        expect(activeBase, `${where}: after a roll the active segment starts at the log end`).toBe(model.logEndOffset);
        expect(this.current.segmentCount, `${where}: a roll adds at most one segment`).toBeLessThanOrEqual(before + 1);
        await this.checkEverything(where);
        break;
      }
      case 'retention': {
        const files = await listSegmentFiles(this.dir);
        const segments = files.map((file, i) => {
          const nextBase = files[i + 1]?.baseOffset ?? model.logEndOffset;
          const held = model.batches.filter((batch) => batch.baseOffset >= file.baseOffset && batch.baseOffset < nextBase);
          return { ...file, maxTimestamp: held.length === 0 ? -1 : Math.max(...held.map((batch) => batch.maxTimestamp)) };
        });
        this.moveToBoundary(op.boundary, segments);
        const count = expectedDeletions(segments, this.config, this.clock.nowMs());
        const oldStart = model.logStartOffset;
        await this.current.applyRetention();
        const newStart = this.current.logStartOffset;
        // Loose expectations first: whole segments from the front, never past the end.
        expect(newStart, `${where}: retention never moves the start back`).toBeGreaterThanOrEqual(oldStart);
        expect(newStart, `${where}: retention never moves the start past the end`).toBeLessThanOrEqual(model.logEndOffset);
        expect(
          newStart === model.logEndOffset || model.batches.some((batch) => batch.baseOffset === newStart),
          `${where}: the new log start ${newStart} is a batch boundary`,
        ).toBe(true);
        expect(
          newStart === model.logEndOffset || files.some((file) => file.baseOffset === newStart),
          `${where}: the new log start ${newStart} is the base of a segment that existed, or the log end`,
        ).toBe(true);
        expect(this.current.segmentCount, `${where}: a log always has its active segment`).toBeGreaterThanOrEqual(1);
        // Then the exact rule: every segment going means a roll, then only the new empty one stays.
        const expectedStart = count === segments.length ? model.logEndOffset : (segments[count] as SegmentFile).baseOffset;
        expect(newStart, `${where}: retention deletes ${count} of ${JSON.stringify(segments)}`).toBe(expectedStart);
        if (count === segments.length) expect(this.current.segmentCount, `${where}: after deleting everything, one empty segment`).toBe(1);
        model.logStartOffset = newStart;
        model.batches = model.batches.filter((batch) => batch.baseOffset >= newStart);
        await this.checkEverything(where);
        break;
      }
      case 'advanceClock':
        this.clock.advance(op.ms);
        break;
      case 'reopen': {
        await this.current.close();
        // A broker reopens an idle partition with its shared pools; a new process with new ones.
        if (!op.isSharingCaches) {
          await this.handles.closeAll();
          this.freshCaches();
        }
        await this.open();
        await this.checkEverything(where);
        break;
      }
      case 'crashReopen': {
        // Abandon the log: no close, nothing else awaited on it. The process "dies": its
        // descriptors close, its memory is gone.
        this.log = undefined;
        await this.handles.closeAll();
        this.freshCaches();
        await this.open();
        await this.checkEverything(where);
        break;
      }
    }
    expect(this.current.logStartOffset, `${where}: logStartOffset`).toBe(model.logStartOffset);
    expect(this.current.logEndOffset, `${where}: logEndOffset`).toBe(model.logEndOffset);
    expect(this.current.isOnline, `${where}: the log stays online`).toBe(true);
  }

  private moveToBoundary(boundary: RetentionBoundary | null, segments: readonly (SegmentFile & { maxTimestamp: number })[]): void {
    if (boundary === null) return;
    const at = boundary.n % segments.length;
    if (boundary.by === 'time') {
      const segment = segments[at] as { maxTimestamp: number };
      if (this.config.retentionMs < 0 || segment.maxTimestamp < 0) return;
      const targetMs = segment.maxTimestamp + this.config.retentionMs + boundary.delta;
      if (targetMs > this.clock.nowMs()) this.clock.advance(targetMs - this.clock.nowMs());
    } else {
      if (this.config.retentionBytes < 0) return;
      const keptBytes = segments.slice(at).reduce((sum, segment) => sum + segment.sizeBytes, 0);
      this.config = { ...this.config, retentionBytes: Math.max(0, keptBytes + boundary.delta) };
      this.current.updateConfig(this.config);
    }
  }

  /** Offsets, files and every retained batch read back in order. */
  async checkEverything(where: string): Promise<void> {
    const { model } = this;
    const log = this.current;
    expect(log.logStartOffset, `${where}: logStartOffset`).toBe(model.logStartOffset);
    expect(log.logEndOffset, `${where}: logEndOffset`).toBe(model.logEndOffset);
    expect(model.batches[0]?.baseOffset ?? model.logEndOffset, `${where}: model starts at the log start`).toBe(model.logStartOffset);
    const files = await listSegmentFiles(this.dir);
    expect(files.length, `${where}: one .log file per segment`).toBe(log.segmentCount);
    expect(files[0]?.baseOffset, `${where}: the first segment file starts at the log start`).toBe(model.logStartOffset);
    const stats = await log.stats();
    expect(stats.sizeBytes, `${where}: stats size equals the segment files`).toBe(files.reduce((sum, file) => sum + file.sizeBytes, 0));
    const budget = 1 + (model.logEndOffset % 5000);
    let offset = model.logStartOffset;
    while (offset < model.logEndOffset) {
      const result = await log.read({ offset, bytesMax: budget });
      checkRead(`${where}: read-back at ${offset}`, result, offset, budget, model);
      offset = result.nextOffset;
    }
    checkRead(`${where}: read at the end`, await log.read({ offset, bytesMax: budget }), offset, budget, model);
  }
}

/** About 0.2 s per run on a local disk; leave plenty of room, and stop before vitest does. */
const { runs, testTimeoutMs, interruptAfterMs, replay } = propertyRunSettings(30, 1000);

describe('PartitionLog (model-based)', () => {
  it(
    'agrees with a list of acknowledged batches through appends, reads, seeks, rolls, retention, reopens and crashes',
    async () => {
      await fc.assert(
        fc.asyncProperty(settingsArbitrary, fc.array(operationArbitrary, { minLength: 1, maxLength: 60, size: 'max' }), async (settings, operations) => {
          const temp = makeTempDir('runnel-property-');
          const harness = new Harness(temp.dir, settings);
          try {
            await harness.open();
            for (const [step, op] of operations.entries()) {
              await withDeadline(`step ${step} ${JSON.stringify(op)}`, STEP_DEADLINE_MS, harness.run(step, op));
            }
            await withDeadline('end of run', STEP_DEADLINE_MS, harness.checkEverything('end of run'));
          } finally {
            await withDeadline('closing the log', STEP_DEADLINE_MS, harness.dispose()).catch(() => undefined);
            temp.remove();
          }
        }),
        // Stop (and report the seed) before vitest's timeout would cut the report off.
        { numRuns: runs, plugins: [fc.interruptAfterTimeLimit(interruptAfterMs, { failOnInterrupt: true })], ...replay },
      );
    },
    testTimeoutMs,
  );
});
