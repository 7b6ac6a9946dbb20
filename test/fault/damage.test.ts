/**
 * Damage to the files of a stopped partition.
 *
 * Goal: start-up and reads tell the damage a crash leaves (a torn or zero-filled tail, stale
 * or missing index and state files) from real damage (changed bytes in the middle of a log),
 * repair the first silently and safely, and refuse to serve the second: the partition goes
 * offline with CORRUPT_DATA, the mark survives a restart, and not one byte is cut or skipped.
 *
 * Method: each test writes a log with known batches (their exact stored bytes are kept), stops
 * it (a clean close, or an unclean stop by copying the files while the log is still open),
 * edits the files with node:fs as a crash, a bad disk or an operator would, and reopens. Byte
 * positions and batches to damage are picked by seeded random numbers so several shapes of the
 * same damage are covered.
 */
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, appendFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Reason } from '../../src/errors/index.js';
import type { Logger } from '../../src/observability/index.js';
import { BatchField, decodeBatches, tryReadBatchHeader } from '../../src/protocol/index.js';
import { nodeFileSystem, type FileHandle, type FileSystem, type PartitionLog, type PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { recordingLogger } from '../support/recording-logger.js';
import { expectReason, rejectionOf } from '../support/rejections.js';
import { seededRandom } from '../support/seeded-random.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

// ---- Harness -------------------------------------------------------------------------------



/** A batch as stored: where it lives and its exact bytes. */
interface StoredBatch {
  baseOffset: number;
  lastOffset: number;
  bytes: Buffer;
  segmentBaseOffset: number;
  /** Byte position inside its segment's .log file. */
  position: number;
}

/** Small segments and a small index interval, so a few dozen batches span several segments with many index entries. */
const DAMAGE_CONFIG: Partial<PartitionLogConfig> = { segmentBytes: 16 * 1024, indexIntervalBytes: 512, flush: { kind: 'never' } };

function tempDir(): string {
  const temp = makeTempDir('runnel-damage-');
  cleanups.push(temp.remove);
  return temp.dir;
}

async function openLog(dir: string, logger: Logger = recordingLogger()): Promise<PartitionLog> {
  const log = await openTestLog({ dir, config: DAMAGE_CONFIG, logger });
  cleanups.push(() => log.close());
  return log;
}

/**
 * Appends `count` batches of varied sizes (1–3 records of 100–700 bytes) and returns them as
 * stored. `tag` keeps contents distinct between calls.
 */
async function appendBatches(log: PartitionLog, options: { count: number; tag: string; seed: number }): Promise<StoredBatch[]> {
  const random = seededRandom(options.seed);
  const stored: StoredBatch[] = [];
  for (let i = 0; i < options.count; i++) {
    const batch = makeBatch({ count: random.int(1, 3), valueBytes: random.int(100, 700), tag: `${options.tag}-${i}`, timestamp: 1_700_000_000_000 + i * 1000 });
    const { baseOffset, lastOffset } = await log.append(batch);
    stored.push({ baseOffset, lastOffset, bytes: Buffer.from(batch), segmentBaseOffset: -1, position: -1 });
  }
  return stored;
}

/** Fills in each batch's segment and position from the .log files (which must hold exactly these batches). */
function locateBatches(dir: string, batches: StoredBatch[]): StoredBatch[] {
  const bases = logFileBases(dir);
  let batchIndex = 0;
  for (const base of bases) {
    const file = readFileSync(logPath(dir, base));
    let position = 0;
    while (position < file.length) {
      const batch = batches[batchIndex++];
      if (batch === undefined) throw new Error(`more bytes in segment ${base} than batches appended`);
      expect(file.subarray(position, position + batch.bytes.length).equals(batch.bytes), `batch ${batch.baseOffset} is stored as appended`).toBe(true);
      batch.segmentBaseOffset = base;
      batch.position = position;
      position += batch.bytes.length;
    }
  }
  expect(batchIndex).toBe(batches.length);
  return batches;
}

/** Appends `count` batches, stops with a clean close, and returns them located in their files. */
async function writeClosedLog(dir: string, options: { count: number; seed: number }): Promise<StoredBatch[]> {
  const log = await openTestLog({ dir, config: DAMAGE_CONFIG });
  const batches = await appendBatches(log, { count: options.count, tag: 'before', seed: options.seed });
  await log.close();
  return locateBatches(dir, batches);
}

function segmentFileName(baseOffset: number, kind: 'log' | 'index' | 'timeindex'): string {
  return `${String(baseOffset).padStart(20, '0')}.${kind}`;
}

function logPath(dir: string, baseOffset: number): string {
  return join(dir, segmentFileName(baseOffset, 'log'));
}

function logFileBases(dir: string): number[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .map((name) => Number(name.slice(0, 20)))
    .sort((a, b) => a - b);
}

/** Sizes of every .log file, by name. */
function logFileSizes(dir: string): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const base of logFileBases(dir)) sizes[segmentFileName(base, 'log')] = statSync(logPath(dir, base)).size;
  return sizes;
}

function flipByte(path: string, position: number): void {
  const bytes = readFileSync(path);
  bytes[position] = (bytes[position] as number) ^ 0xff;
  writeFileSync(path, bytes);
}

function readStateFile(dir: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(dir, 'partition.state'), 'utf8')) as Record<string, unknown>;
}

/** Every batch reads back byte for byte at its base offset (and at its last offset). */
async function expectBatchesReadBack(log: PartitionLog, batches: readonly StoredBatch[]): Promise<void> {
  for (const batch of batches) {
    for (const offset of new Set([batch.baseOffset, batch.lastOffset])) {
      const read = await log.read({ offset, bytesMax: 1 });
      const header = tryReadBatchHeader(read.bytes);
      expect(header?.baseOffset, `the batch holding offset ${offset}`).toBe(batch.baseOffset);
      expect(read.bytes.subarray(0, header?.sizeBytes).equals(batch.bytes), `bytes of the batch at ${batch.baseOffset}`).toBe(true);
    }
  }
}

async function expectRejection(promise: Promise<unknown>, reason: Reason): Promise<void> {
  expectReason(await rejectionOf(promise), reason);
}

/**
 * Reads from the log start to the end in small steps, so every batch and index entry is
 * visited. Each read must move on (a read that does not would otherwise loop for ever).
 */
async function readThrough(log: PartitionLog): Promise<void> {
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const { nextOffset } = await log.read({ offset, bytesMax: 2048 });
    expect(nextOffset, `a read at ${offset} below the log end ${log.logEndOffset} moved no further`).toBeGreaterThan(offset);
    offset = nextOffset;
  }
}

/** Copies a partition directory while its log is open: what a crash would leave (no clean mark). */
function copyUncleanly(fromDir: string): string {
  const toDir = tempDir();
  cpSync(fromDir, toDir, { recursive: true });
  return toDir;
}

// ---- Tests ---------------------------------------------------------------------------------

describe('a torn or extended tail of the active segment', () => {
  for (const seed of [11, 12, 13, 14, 15, 16]) {
    const isClean = seed % 2 === 0;
    const outcome = isClean ? 'is no torn write after a clean close: offline with CORRUPT_DATA, nothing cut' : 'is cut back to the last whole batch after an unclean stop, and appends continue there';
    it(`${outcome} (seed ${seed})`, async () => {
      const random = seededRandom(seed);
      let dir = tempDir();
      const log = await openTestLog({ dir, config: DAMAGE_CONFIG });
      // Sealed segments first, then a roll and a few batches, so the active segment holds several.
      const batches = await appendBatches(log, { count: 30 + random.int(0, 20), tag: 'before', seed });
      await log.roll();
      batches.push(...(await appendBatches(log, { count: 3 + random.int(0, 5), tag: 'tail', seed: seed + 100 })));
      if (isClean) await log.close();
      else dir = copyUncleanly(dir);
      locateBatches(dir, batches);
      if (!isClean) await log.close();

      // Cut inside one of the last three batches of the active segment, anywhere from its
      // first byte after the start to its last byte (header included).
      const activeBase = Math.max(...logFileBases(dir));
      const active = batches.filter((batch) => batch.segmentBaseOffset === activeBase);
      expect(active.length).toBeGreaterThanOrEqual(3);
      const torn = active[active.length - 1 - random.int(0, 2)] as StoredBatch;
      const cutPosition = torn.position + random.int(1, torn.bytes.length - 1);
      truncateSync(logPath(dir, activeBase), cutPosition);

      const logger = recordingLogger();
      const reopened = await openLog(dir, logger);
      if (isClean) {
        // The clean mark says the log held every batch: a shorter file lost acknowledged records.
        expect(reopened.isOnline).toBe(false);
        expect((await reopened.stats()).offlineReason).toBe('CORRUPT_DATA');
        expect(statSync(logPath(dir, activeBase)).size).toBe(cutPosition);
        await expect(reopened.read({ offset: 0, bytesMax: 1 })).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
        return;
      }
      expect(reopened.isOnline).toBe(true);
      expect(reopened.logEndOffset).toBe(torn.baseOffset);
      expect(statSync(logPath(dir, activeBase)).size).toBe(torn.position);
      const kept = batches.filter((batch) => batch.baseOffset < torn.baseOffset);
      await expectBatchesReadBack(reopened, kept);
      const warning = logger.calls.find((call) => call.level === 'warn' && /torn tail/.test(call.message));
      expect(warning, 'a warning names the truncation').toBeDefined();
      expect(warning?.fields.truncatedBytes).toBe(cutPosition - torn.position);

      const next = await reopened.append(makeBatch({ count: 2, tag: 'after' }));
      expect(next.baseOffset).toBe(torn.baseOffset);
      await expectBatchesReadBack(reopened, kept);
      expect(decodeValue(await reopened.read({ offset: next.baseOffset, bytesMax: 1 }))).toMatch(/^after-0:/);
    });
  }

  it('cut at a batch boundary after a clean close (an older copy restored): offline with CORRUPT_DATA, its offsets not handed out again', async () => {
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 50, seed: 23 });
    const activeBase = Math.max(...logFileBases(dir));
    const active = batches.filter((batch) => batch.segmentBaseOffset === activeBase);
    const last = active.at(-1) as StoredBatch;
    truncateSync(logPath(dir, activeBase), last.position);

    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(false);
    expect((await reopened.stats()).offlineReason).toBe('CORRUPT_DATA');
    await expect(reopened.append(makeBatch({ tag: 'after' }))).rejects.toMatchObject({ reason: 'CORRUPT_DATA' });
    expect(statSync(logPath(dir, activeBase)).size).toBe(last.position);
  });

  it('drops zeros appended past the last batch, as a power loss that extended the file leaves', async () => {
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 50, seed: 21 });
    const activeBase = Math.max(...logFileBases(dir));
    const sizeBefore = statSync(logPath(dir, activeBase)).size;
    appendFileSync(logPath(dir, activeBase), Buffer.alloc(8192));

    const logger = recordingLogger();
    const reopened = await openLog(dir, logger);
    expect(reopened.isOnline).toBe(true);
    expect(statSync(logPath(dir, activeBase)).size).toBe(sizeBefore);
    expect(reopened.logEndOffset).toBe((batches.at(-1) as StoredBatch).lastOffset + 1);
    await expectBatchesReadBack(reopened, batches);
    expect(logger.calls.some((call) => call.level === 'warn' && call.fields.truncatedBytes === 8192)).toBe(true);
    const next = await reopened.append(makeBatch({ tag: 'after' }));
    expect(next.baseOffset).toBe((batches.at(-1) as StoredBatch).lastOffset + 1);
  });

  it('drops zeros written into an empty active segment', async () => {
    const dir = tempDir();
    const log = await openTestLog({ dir, config: DAMAGE_CONFIG });
    const batches = await appendBatches(log, { count: 10, tag: 'before', seed: 22 });
    await log.roll();
    await log.close();
    const activeBase = Math.max(...logFileBases(dir));
    expect(statSync(logPath(dir, activeBase)).size).toBe(0);
    appendFileSync(logPath(dir, activeBase), Buffer.alloc(300));

    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(true);
    expect(statSync(logPath(dir, activeBase)).size).toBe(0);
    await expectBatchesReadBack(reopened, batches);
    const next = await reopened.append(makeBatch({ tag: 'after' }));
    expect(next.baseOffset).toBe(activeBase);
  });
});

describe('a changed byte inside a log', () => {
  it('in a sealed segment: reading through it fails with CORRUPT_DATA, the partition stays offline across a restart, and nothing is cut', async () => {
    const random = seededRandom(31);
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 90, seed: 31 });
    const bases = logFileBases(dir);
    expect(bases.length).toBeGreaterThanOrEqual(3);
    // A byte from the magic on: the leader epoch before it is, as in Kafka, outside the CRC.
    const sealed = batches.filter((batch) => batch.segmentBaseOffset === bases[1]);
    const victim = sealed[random.int(0, sealed.length - 1)] as StoredBatch;
    flipByte(logPath(dir, victim.segmentBaseOffset), victim.position + random.int(BatchField.magic, victim.bytes.length - 1));
    const sizesBefore = logFileSizes(dir);

    const logger = recordingLogger();
    const log = await openLog(dir, logger);
    // A clean open does not read sealed segments; the damage is found when a read reaches it.
    expect(log.isOnline).toBe(true);
    await expectBatchesReadBack(
      log,
      batches.filter((batch) => batch.baseOffset < victim.baseOffset && batch.segmentBaseOffset !== victim.segmentBaseOffset),
    );
    await expectRejection(readThrough(log), 'CORRUPT_DATA');
    expect(log.isOnline).toBe(false);
    expect((await log.stats()).status).toBe('offline');
    await expectRejection(log.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
    await expectRejection(log.read({ offset: 0, bytesMax: 1 }), 'CORRUPT_DATA');
    expect(logger.calls.filter((call) => call.level === 'error')).toHaveLength(1);
    expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: victim.segmentBaseOffset, position: victim.position });
    await log.close();

    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(false);
    await expectRejection(reopened.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
    await expectRejection(reopened.read({ offset: 0, bytesMax: 1 }), 'CORRUPT_DATA');
    await reopened.close();
    expect(logFileSizes(dir)).toEqual(sizesBefore);
  });

  it('found by a read while the writer replaces partition.state: both replaces land whole, the offline mark last', async () => {
    const random = seededRandom(33);
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 90, seed: 33 });
    const bases = logFileBases(dir);
    const victim = batches.filter((batch) => batch.segmentBaseOffset === bases[0])[0] as StoredBatch;
    flipByte(logPath(dir, victim.segmentBaseOffset), victim.position + random.int(BatchField.magic, victim.bytes.length - 1));

    // The first append after a clean open marks the state dirty; hold that replace's write.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    let isHeld = false;
    const gated: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        const handle = await nodeFileSystem.open(path, mode);
        if (isHeld || !path.endsWith('partition.state.tmp')) return handle;
        isHeld = true;
        const heldHandle = Object.create(handle) as FileHandle; // everything else as the real one
        heldHandle.writev = async (buffers, position) => {
          await held;
          return handle.writev(buffers, position);
        };
        return heldHandle;
      },
    };
    const log = await openTestLog({ dir, config: DAMAGE_CONFIG, fileSystem: gated, logger: recordingLogger() });
    cleanups.push(() => log.close());
    const appended = log.append(makeBatch({ tag: 'after' })).then(
      () => 'appended',
      (error: unknown) => String(error),
    );
    await waitFor(() => isHeld, { timeoutMs: 5_000, describe: () => 'the first append never marked the state dirty' });
    const reading = readThrough(log); // finds the damage and persists the offline mark
    await waitFor(() => !log.isOnline, { timeoutMs: 5_000, describe: () => 'the read never found the damage' });
    for (let turn = 0; turn < 100; turn++) await new Promise((resolve) => setImmediate(resolve)); // its replace runs, if it may
    release();
    await expectRejection(reading, 'CORRUPT_DATA');
    await appended;
    await log.close();
    expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: victim.segmentBaseOffset, position: victim.position });
    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(false);
  });

  it('in a sealed segment that a full scan reads at open (no partition.state): offline at once, persisted, nothing cut', async () => {
    const random = seededRandom(32);
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 90, seed: 32 });
    const bases = logFileBases(dir);
    const sealed = batches.filter((batch) => batch.segmentBaseOffset === bases[0]);
    const victim = sealed[random.int(0, sealed.length - 1)] as StoredBatch;
    flipByte(logPath(dir, victim.segmentBaseOffset), victim.position + random.int(BatchField.magic, victim.bytes.length - 1));
    unlinkSync(join(dir, 'partition.state'));
    const sizesBefore = logFileSizes(dir);

    const log = await openLog(dir);
    expect(log.isOnline).toBe(false);
    await expectRejection(log.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
    expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: victim.segmentBaseOffset, position: victim.position });
    await log.close();
    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(false);
    expect(logFileSizes(dir)).toEqual(sizesBefore);
  });

  for (const seed of [41, 42, 43]) {
    it(`in the middle of the active segment with valid batches after it, after an unclean stop: offline with CORRUPT_DATA, nothing cut (seed ${seed})`, async () => {
      const random = seededRandom(seed);
      const liveDir = tempDir();
      // One big segment, so the damage is in the active one.
      const live = await openTestLog({ dir: liveDir, config: { ...DAMAGE_CONFIG, segmentBytes: 1024 * 1024 } });
      const batches = await appendBatches(live, { count: 40, tag: 'before', seed });
      const dir = copyUncleanly(liveDir);
      await live.close();
      locateBatches(dir, batches);
      expect(logFileBases(dir)).toHaveLength(1);
      const victim = batches[random.int(5, 30)] as StoredBatch;
      flipByte(logPath(dir, victim.segmentBaseOffset), victim.position + random.int(BatchField.magic, victim.bytes.length - 1));
      const sizesBefore = logFileSizes(dir);

      const logger = recordingLogger();
      const log = await openLog(dir, logger);
      expect(log.isOnline).toBe(false);
      await expectRejection(log.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
      await expectRejection(log.read({ offset: 0, bytesMax: 1 }), 'CORRUPT_DATA');
      expect(logger.calls.some((call) => call.level === 'error' && call.fields.position === victim.position)).toBe(true);
      expect(logger.calls.some((call) => call.level === 'warn' && /torn tail/.test(call.message))).toBe(false);
      expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: 0, position: victim.position });
      await log.close();

      const reopened = await openLog(dir);
      expect(reopened.isOnline).toBe(false);
      await expectRejection(reopened.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
      expect(logFileSizes(dir)).toEqual(sizesBefore);
    });
  }
});

describe('a .log whose name does not match the base offsets of its batches', () => {
  // Its first batch is whole, with a valid CRC, and older than the name says: no crash writes
  // that. Cutting it as a torn tail would drop every batch of the file.
  for (const isStateKept of [true, false]) {
    it(`as the only segment: offline with CORRUPT_DATA and nothing cut (${isStateKept ? 'after an unclean stop' : 'no partition.state'})`, async () => {
      const liveDir = tempDir();
      const config = { ...DAMAGE_CONFIG, segmentBytes: 1024 * 1024 };
      let live = await openTestLog({ dir: liveDir, config });
      await appendBatches(live, { count: 20, tag: 'before', seed: 81 });
      if (isStateKept) {
        // A new log has no partition.state until its first roll or close: close, then append
        // again, so the copy holds a state without a clean mark, as any unclean stop leaves.
        await live.close();
        live = await openTestLog({ dir: liveDir, config });
        await appendBatches(live, { count: 1, tag: 'again', seed: 82 });
      }
      const dir = copyUncleanly(liveDir);
      await live.close();
      expect(logFileBases(dir)).toEqual([0]);
      renameSync(logPath(dir, 0), logPath(dir, 1000));
      if (!isStateKept) rmSync(join(dir, 'partition.state'), { force: true });
      expect(existsSync(join(dir, 'partition.state'))).toBe(isStateKept);
      const sizesBefore = logFileSizes(dir);

      const logger = recordingLogger();
      const reopened = await openLog(dir, logger);
      expect(reopened.isOnline).toBe(false);
      expect(logger.calls.some((call) => call.level === 'warn' && /torn tail/.test(call.message))).toBe(false);
      expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: 1000, position: 0 });
      await expectRejection(reopened.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
      await reopened.close();
      expect(logFileSizes(dir)).toEqual(sizesBefore);
    });
  }
});

describe('damaged index files of a sealed segment', () => {
  type IndexDamage = { name: string; kind: 'index' | 'timeindex'; damage: (bytes: Buffer, batches: readonly StoredBatch[]) => Buffer | undefined };
  const damages: IndexDamage[] = [
    { name: 'a deleted offset index', kind: 'index', damage: () => undefined },
    { name: 'a deleted time index', kind: 'timeindex', damage: () => undefined },
    { name: 'an offset index of random bytes', kind: 'index', damage: (bytes) => seededRandom(51).bytes(bytes.length + 3) },
    { name: 'a time index of random bytes', kind: 'timeindex', damage: (bytes) => seededRandom(52).bytes(bytes.length) },
    { name: 'an offset index whose entries point one byte past their batch', kind: 'index', damage: (bytes) => shiftIndexPositions(bytes, () => 1) },
    {
      name: 'an offset index whose entries point at the start of the next batch',
      kind: 'index',
      damage: (bytes, batches) =>
        shiftIndexPositions(bytes, (position) => {
          const at = batches.findIndex((batch) => batch.position === position);
          const next = batches[at + 1];
          return next === undefined ? 0 : next.position - position;
        }),
    },
  ];

  for (const { name, kind, damage } of damages) {
    it(`${name}: reads still return the right batches and the file is rebuilt`, async () => {
      const dir = tempDir();
      const batches = await writeClosedLog(dir, { count: 90, seed: 61 });
      const bases = logFileBases(dir);
      expect(bases.length).toBeGreaterThanOrEqual(3);
      const sealedBase = bases[1] as number;
      const sealed = batches.filter((batch) => batch.segmentBaseOffset === sealedBase);
      const path = join(dir, segmentFileName(sealedBase, kind));
      const original = readFileSync(path);
      expect(original.length).toBeGreaterThan(kind === 'index' ? 8 : 12); // more than one entry to damage
      const damaged = damage(original, sealed);
      if (damaged === undefined) unlinkSync(path);
      else writeFileSync(path, damaged);

      const log = await openLog(dir);
      expect(log.isOnline).toBe(true);
      await expectBatchesReadBack(log, batches);
      await readThrough(log);
      expect(log.isOnline).toBe(true);
      const firstTimestamp = tryReadBatchHeader((sealed[0] as StoredBatch).bytes)?.maxTimestamp as number;
      expect(await log.offsetForTimestamp(firstTimestamp)).toBe((sealed[0] as StoredBatch).baseOffset);
      expect(existsSync(path)).toBe(true);
      expect(readFileSync(path).equals(original), `${kind} file rebuilt as it was written`).toBe(true);
    });
  }
});

describe('a seek by time that meets a damaged index first', () => {
  it('of a sealed segment: answers from the log, stays online and rebuilds the index', async () => {
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 90, seed: 62 });
    const bases = logFileBases(dir);
    const sealedBase = bases[1] as number;
    const sealed = batches.filter((batch) => batch.segmentBaseOffset === sealedBase);
    const path = join(dir, segmentFileName(sealedBase, 'index'));
    const original = readFileSync(path);
    writeFileSync(path, shiftIndexPositions(original, () => 1));

    // No read first: the seek is the first thing to use the damaged index.
    const log = await openLog(dir);
    const target = sealed[sealed.length - 1] as StoredBatch;
    const targetTimestamp = tryReadBatchHeader(target.bytes)?.maxTimestamp as number;
    expect(await log.offsetForTimestamp(targetTimestamp)).toBe(target.baseOffset);
    expect(log.isOnline).toBe(true);
    expect(readStateFile(dir).offline).toBeUndefined();
    expect(readFileSync(path).equals(original), 'index file rebuilt as it was written').toBe(true);
    await expectBatchesReadBack(log, batches);
  });
});

describe('a damaged offset index of the active segment, adopted at a clean open', () => {
  // A clean open checks the active segment's index files for shape only (increasing, inside
  // the log); entries that point at the wrong byte are found on use, as for a sealed segment.
  for (const use of ['read', 'seek by time'] as const) {
    it(`is rebuilt when a ${use} meets it: right answers, online, and appends continue`, async () => {
      const dir = tempDir();
      const log = await openTestLog({ dir, config: { ...DAMAGE_CONFIG, segmentBytes: 1024 * 1024 } });
      const batches = await appendBatches(log, { count: 40, tag: 'before', seed: 63 });
      await log.close();
      locateBatches(dir, batches);
      expect(logFileBases(dir)).toEqual([0]);
      const path = join(dir, segmentFileName(0, 'index'));
      expect(readFileSync(path).length).toBeGreaterThan(8);
      writeFileSync(path, shiftIndexPositions(readFileSync(path), () => 1));

      const reopened = await openLog(dir);
      const target = batches[30] as StoredBatch;
      if (use === 'read') {
        await expectBatchesReadBack(reopened, [target]);
      } else {
        expect(await reopened.offsetForTimestamp(tryReadBatchHeader(target.bytes)?.maxTimestamp as number)).toBe(target.baseOffset);
      }
      expect(reopened.isOnline).toBe(true);
      await expectBatchesReadBack(reopened, batches);
      const next = await reopened.append(makeBatch({ count: 2, tag: 'after' }));
      expect(next.baseOffset).toBe((batches.at(-1) as StoredBatch).lastOffset + 1);
      expect(decodeValue(await reopened.read({ offset: next.baseOffset, bytesMax: 1 }))).toMatch(/^after-0:/);
      await expectBatchesReadBack(reopened, batches);
      expect(reopened.isOnline).toBe(true);
      expect(readStateFile(dir).offline).toBeUndefined();
    });
  }
});

/** Adds `deltaFor(position)` to every entry's position except the first (which must stay 0). */
function shiftIndexPositions(bytes: Buffer, deltaFor: (position: number) => number): Buffer {
  const shifted = Buffer.from(bytes);
  for (let at = 8; at + 8 <= shifted.length; at += 8) {
    const position = shifted.readUInt32BE(at + 4);
    shifted.writeUInt32BE(position + deltaFor(position), at + 4);
  }
  return shifted;
}

describe('a segment file missing after a clean close', () => {
  it('the active one, which held records: offline with CORRUPT_DATA, not a shorter log whose offsets are used again', async () => {
    const dir = tempDir();
    const batches = await writeClosedLog(dir, { count: 90, seed: 91 });
    const bases = logFileBases(dir);
    const activeBase = bases.at(-1) as number;
    expect(batches.some((batch) => batch.segmentBaseOffset === activeBase)).toBe(true);
    unlinkSync(logPath(dir, activeBase));
    const sizesBefore = logFileSizes(dir);

    const reopened = await openLog(dir);
    expect(reopened.isOnline).toBe(false);
    await expectRejection(reopened.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
    expect(readStateFile(dir).offline).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: activeBase });
    await reopened.close();
    expect(logFileSizes(dir)).toEqual(sizesBefore);
  });

  it('the only one, which held records: offline with CORRUPT_DATA, also at the next start, not a new log at offset 0', async () => {
    // Most partitions have one segment: with its .log gone, no file is left to recover from,
    // and starting an empty log would give offsets 0, 1, … to new records a second time.
    const dir = tempDir();
    const log = await openTestLog({ dir, config: { ...DAMAGE_CONFIG, segmentBytes: 1024 * 1024 } });
    await appendBatches(log, { count: 5, tag: 'before', seed: 92 });
    const logEndOffset = log.logEndOffset;
    await log.close();
    expect(logFileBases(dir)).toEqual([0]);
    unlinkSync(logPath(dir, 0));

    for (const attempt of ['first open', 'next open']) {
      const reopened = await openLog(dir);
      expect(reopened.isOnline, attempt).toBe(false);
      await expectRejection(reopened.append(makeBatch({ tag: 'after' })), 'CORRUPT_DATA');
      expect(readStateFile(dir).offline, attempt).toMatchObject({ reason: 'CORRUPT_DATA', segmentBaseOffset: 0 });
      expect(String((readStateFile(dir).offline as { detail: string }).detail)).toContain(`0..${logEndOffset - 1}`);
      await reopened.close();
      expect(logFileBases(dir), attempt).toEqual([]); // nothing created in its place
    }
  });
});

describe('a missing or unreadable partition.state', () => {
  const variants: { name: string; edit: (path: string) => void }[] = [
    { name: 'a missing partition.state', edit: (path) => unlinkSync(path) },
    { name: 'a partition.state of garbage', edit: (path) => writeFileSync(path, seededRandom(71).bytes(200)) },
    { name: 'a partition.state cut in half', edit: (path) => writeFileSync(path, readFileSync(path).subarray(0, 20)) },
  ];
  for (const { name, edit } of variants) {
    it(`${name}: start-up scans every segment and loses nothing`, async () => {
      const dir = tempDir();
      const batches = await writeClosedLog(dir, { count: 90, seed: 72 });
      const segmentCount = logFileBases(dir).length;
      expect(segmentCount).toBeGreaterThanOrEqual(3);
      edit(join(dir, 'partition.state'));

      const logger = recordingLogger();
      const log = await openLog(dir, logger);
      expect(log.isOnline).toBe(true);
      const recovered = logger.calls.find((call) => call.level === 'info' && /recovered partition/.test(call.message));
      expect(recovered?.fields.scannedSegments).toBe(segmentCount);
      expect(log.logEndOffset).toBe((batches.at(-1) as StoredBatch).lastOffset + 1);
      await expectBatchesReadBack(log, batches);
      expect(readStateFile(dir).recoveryCheckpoint).toBe(Math.max(...logFileBases(dir)));
      const next = await log.append(makeBatch({ tag: 'after' }));
      expect(next.baseOffset).toBe((batches.at(-1) as StoredBatch).lastOffset + 1);
    });
  }
});

function decodeValue(read: { bytes: Buffer }): string {
  return decodeBatches(read.bytes)[0]?.value?.toString() ?? '';
}
