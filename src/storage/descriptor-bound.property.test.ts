/**
 * Property test: a hard descriptor bound never deadlocks storage, and is never exceeded.
 *
 * Goal: with the FileHandleCache bound as small as it goes (1 to 3 segment descriptors for 8
 * partitions), every mix of concurrent appends (flush=always, pipelined; flush=interval;
 * flush=never), rolls from small segments, reads of old segments, seeks by time, flushes,
 * retention runs, idle closes and reopens, and index files vanishing (so reads rebuild them)
 * finishes, and no more segment files are open at once than the bound allows.
 *
 * Method: random waves of operations through a LogManager; the operations of one wave start
 * together and must all settle before a deadline, else the run fails naming what is still
 * pending and what the cache holds. The file system under the manager yields a seeded number
 * of event-loop turns before each call, so each run explores other interleavings (the long
 * stalls it adds now and then found the read that waited for a second descriptor while holding
 * one, fixed in segment.ts `rebuildIndexes`, in about 1 run of 130), and counts
 * the segment files open through it (read or read-write: only the cache opens those) at every
 * call. The oracle at the end: each partition's log end equals the records its acknowledged
 * appends hold, and everything still kept reads back with its checksums.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { isBrokerError } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { seededRandom } from '../../test/support/seeded-random.js';
import { waitFor } from '../../test/support/wait-for.js';
import { nodeFileSystem, type FileHandle, type FileSystem } from './file-system.js';
import { LogManager } from './log-manager.js';
import type { PartitionLog, PartitionLogConfig } from './partition-log.js';
import { makeBatch, makeTempDir, propertyRunSettings, testConfig } from './test-helpers.js';

const HOUR_MS = 3_600_000;
const PARTITION_IDLE_MS = 60_000;
const INTERVAL_FLUSH_MS = 50;
/** How long one wave may take before the run counts as stuck (a healthy wave takes milliseconds). */
const WAVE_DEADLINE_MS = 10_000;

/** Eight partitions over three topics, one per flush policy. */
const PARTITIONS: readonly { topic: string; partition: number }[] = [
  { topic: 'always', partition: 0 },
  { topic: 'always', partition: 1 },
  { topic: 'always', partition: 2 },
  { topic: 'never', partition: 0 },
  { topic: 'never', partition: 1 },
  { topic: 'never', partition: 2 },
  { topic: 'interval', partition: 0 },
  { topic: 'interval', partition: 1 },
];

function configFor(topic: string): PartitionLogConfig {
  const flush: PartitionLogConfig['flush'] =
    topic === 'always' ? { kind: 'always' } : topic === 'interval' ? { kind: 'interval', intervalMs: INTERVAL_FLUSH_MS } : { kind: 'never' };
  // Small segments roll every few appends; retention keeps about three of them and deletes
  // segments older than an hour.
  return { ...testConfig, segmentBytes: 1024, indexIntervalBytes: 128, retentionBytes: 3072, retentionMs: HOUR_MS, flush };
}

type Operation =
  | { kind: 'append'; at: number; count: number; valueBytes: number; ageMs: number }
  /** Several appends to one partition at once: under flush=always they pipeline. */
  | { kind: 'appendBurst'; at: number; appends: number }
  /** A read at `fraction` of the way from the log start to the log end. */
  | { kind: 'read'; at: number; fraction: number }
  | { kind: 'seek'; at: number; ageMs: number }
  | { kind: 'flush'; at: number }
  | { kind: 'roll'; at: number }
  | { kind: 'retention' }
  /** Time passes past the idle limit and the idle sweep runs: the unused logs close. */
  | { kind: 'closeIdle' }
  /** Index files of the partition's segments vanish from disk: the next load rebuilds them. */
  | { kind: 'dropIndexFiles'; at: number }
  /** Time passes a little: flush=interval timers fire. */
  | { kind: 'tick' };

const at = fc.integer({ min: 0, max: PARTITIONS.length - 1 });
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('append' as const), at, count: fc.integer({ min: 1, max: 4 }), valueBytes: fc.integer({ min: 16, max: 300 }), ageMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2 * HOUR_MS })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('appendBurst' as const), at, appends: fc.integer({ min: 2, max: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('read' as const), at, fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('seek' as const), at, ageMs: fc.integer({ min: 0, max: 2 * HOUR_MS }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const), at }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('roll' as const), at }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'retention' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'closeIdle' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropIndexFiles' as const), at }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'tick' as const }) },
);

/**
 * nodeFileSystem that yields a seeded number of event-loop turns before each call (0–3, and
 * now and then 20–200), and counts the segment files open through it. `check` runs at every
 * call.
 */
function shufflingFileSystem(seed: number, check: () => void): { fileSystem: FileSystem; readonly segmentFilesOpen: number; readonly segmentFilesOpenMax: number; readonly openPaths: string[] } {
  const random = seededRandom(seed);
  let segmentFilesOpen = 0;
  let segmentFilesOpenMax = 0;
  const openPaths = new Map<FileHandle, string>();
  const turns = async (): Promise<void> => {
    check();
    // Mostly a few turns; now and then a long stall, so one call can fall behind a whole
    // retention run or close (as a slow disk does).
    const count = random.int(0, 49) === 0 ? random.int(20, 200) : random.int(0, 3);
    for (let i = count; i > 0; i--) await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const fileSystem: FileSystem = {
    async open(path, mode) {
      await turns();
      const handle = await nodeFileSystem.open(path, mode);
      // Only the FileHandleCache opens segment files for read or read-write; the rest of
      // storage creates them ('create') or opens other files.
      const isCached = mode !== 'create' && path.endsWith('.log');
      if (isCached) {
        openPaths.set(handle, `${path} (${mode})`);
        segmentFilesOpen++;
        segmentFilesOpenMax = Math.max(segmentFilesOpenMax, segmentFilesOpen);
      }
      let isClosed = false;
      const wrapped: FileHandle = {
        path: handle.path,
        read: async (buffer, offset, length, position) => (await turns(), handle.read(buffer, offset, length, position)),
        writev: async (buffers, position) => (await turns(), handle.writev(buffers, position)),
        datasync: async () => (await turns(), handle.datasync()),
        truncate: async (sizeBytes) => (await turns(), handle.truncate(sizeBytes)),
        sizeBytes: async () => (await turns(), handle.sizeBytes()),
        close: async () => {
          await turns();
          if (isCached && !isClosed) {
            segmentFilesOpen--;
            openPaths.delete(handle);
          }
          isClosed = true;
          return handle.close();
        },
      };
      return wrapped;
    },
    async tryReadFile(path) {
      await turns();
      const bytes = await nodeFileSystem.tryReadFile(path);
      if (bytes === undefined && path.endsWith('index')) coverage.missingIndexReads++;
      return bytes;
    },
    trySizeBytes: async (path) => (await turns(), nodeFileSystem.trySizeBytes(path)),
    readdir: async (path) => (await turns(), nodeFileSystem.readdir(path)),
    mkdir: async (path) => (await turns(), nodeFileSystem.mkdir(path)),
    rename: async (fromPath, toPath) => (await turns(), nodeFileSystem.rename(fromPath, toPath)),
    unlink: async (path) => (await turns(), nodeFileSystem.unlink(path)),
    removeTree: async (path) => (await turns(), nodeFileSystem.removeTree(path)),
    syncDirectory: async (path) => (await turns(), nodeFileSystem.syncDirectory(path)),
  };
  return {
    fileSystem,
    get segmentFilesOpen() {
      return segmentFilesOpen;
    },
    get openPaths() {
      return [...openPaths.values()];
    },
    get segmentFilesOpenMax() {
      return segmentFilesOpenMax;
    },
  };
}

/** Outcomes an operation may meet by design while others run: retention moved the log start, or a queue was full. */
function isExpectedRefusal(error: unknown): boolean {
  return isBrokerError(error) && (error.reason === 'OFFSET_OUT_OF_RANGE' || error.reason === 'LIMIT_REACHED');
}

const settings = propertyRunSettings(30, 3_000);
/** What the runs went through, so the property is not vacuous. */
const coverage = { checksWithWaiters: 0, missingIndexReads: 0 };

async function runWaves(waves: readonly (readonly Operation[])[], openFilesMax: number, seed: number): Promise<void> {
  const { dir, remove } = makeTempDir('runnel-descriptor-bound-');
  const clock = new ManualClock();
  const boundViolations: string[] = [];
  let manager: LogManager | undefined;
  const checkBound = (): void => {
    const count = manager?.handles.descriptorCount ?? 0;
    if (count > openFilesMax) boundViolations.push(`the cache counted ${count} descriptors`);
    if (manager?.handles.hasWaiters === true) coverage.checksWithWaiters++;
  };
  const files = shufflingFileSystem(seed, checkBound);
  manager = await LogManager.start({
    dataDir: dir,
    fileSystem: files.fileSystem,
    clock,
    logger: silentLogger,
    configForTopic: configFor,
    openFilesMax,
    indexCacheBytesMax: 256,
    openPartitionsMax: 4,
    partitionIdleMs: PARTITION_IDLE_MS,
    retentionCheckIntervalMs: 1_000 * HOUR_MS,
  });
  const logs = manager;
  /** Records acknowledged per partition (every append in this test must be acknowledged or refused by design). */
  const acknowledged = PARTITIONS.map(() => 0);
  const failures: string[] = [];
  try {
    for (const { topic, partition } of PARTITIONS) await logs.createPartition(topic, partition);
    const withLog = <T>(index: number, work: (log: PartitionLog) => Promise<T>): Promise<T> => {
      const { topic, partition } = PARTITIONS[index] as { topic: string; partition: number };
      return logs.withPartition(topic, partition, work);
    };
    const append = async (index: number, count: number, valueBytes: number, ageMs: number): Promise<void> => {
      await withLog(index, (log) => log.append(makeBatch({ count, valueBytes, timestamp: clock.nowMs() - ageMs })));
      acknowledged[index] = (acknowledged[index] as number) + count;
    };
    const run = async (operation: Operation): Promise<void> => {
      switch (operation.kind) {
        case 'append':
          return append(operation.at, operation.count, operation.valueBytes, operation.ageMs);
        case 'appendBurst': {
          const results = await Promise.allSettled(Array.from({ length: operation.appends }, () => append(operation.at, 2, 120, 0)));
          const failed = results.find((result) => result.status === 'rejected');
          if (failed !== undefined) throw failed.reason;
          return;
        }
        case 'read':
          await withLog(operation.at, async (log) => {
            const { logStartOffset, logEndOffset } = log.offsetRangeOrThrow();
            await log.read({ offset: logStartOffset + Math.floor(operation.fraction * (logEndOffset - logStartOffset)), bytesMax: 512 });
          });
          return;
        case 'seek':
          await withLog(operation.at, (log) => log.offsetForTimestamp(clock.nowMs() - operation.ageMs));
          return;
        case 'flush':
          return withLog(operation.at, (log) => log.flush());
        case 'roll':
          return withLog(operation.at, (log) => log.roll());
        case 'retention':
          return logs.runRetention();
        case 'closeIdle':
          clock.advance(PARTITION_IDLE_MS + 1);
          logs.closeIdle();
          return;
        case 'dropIndexFiles': {
          const { topic, partition } = PARTITIONS[operation.at] as { topic: string; partition: number };
          const partitionDir = join(dir, `${topic}-${partition}`);
          for (const name of readdirSync(partitionDir)) {
            if (name.endsWith('.index') || name.endsWith('.timeindex')) rmSync(join(partitionDir, name), { force: true });
          }
          return;
        }
        case 'tick':
          clock.advance(INTERVAL_FLUSH_MS + 1);
          return;
      }
    };

    for (const [waveIndex, wave] of waves.entries()) {
      const pending = new Map<number, Operation>(wave.map((operation, index) => [index, operation]));
      for (const [index, operation] of wave.entries()) {
        void run(operation)
          .catch((error: unknown) => {
            if (!isExpectedRefusal(error)) failures.push(`wave ${waveIndex} ${JSON.stringify(operation)}: ${String(error)}`);
          })
          .finally(() => pending.delete(index));
      }
      await waitFor(() => pending.size === 0, {
        timeoutMs: WAVE_DEADLINE_MS,
        describe: () =>
          `wave ${waveIndex} is stuck with ${pending.size} operations pending: ${JSON.stringify([...pending.values()])}; ` +
          `the cache holds ${logs.handles.descriptorCount} of ${openFilesMax} descriptors (waiters: ${logs.handles.hasWaiters}), ` +
          `${files.segmentFilesOpen} segment files open, ${logs.openPartitionCount} logs open`,
      });
      expect(failures, 'operations failed for reasons other than the designed refusals').toEqual([]);
    }

    // The oracle: nothing acknowledged was lost or doubled, and what is kept reads back.
    for (const [index] of PARTITIONS.entries()) {
      await withLog(index, async (log) => {
        expect(log.isOnline, `${JSON.stringify(PARTITIONS[index])} went offline`).toBe(true);
        expect(log.logEndOffset, `${JSON.stringify(PARTITIONS[index])}: log end vs acknowledged records`).toBe(acknowledged[index]);
        for (let offset = log.logStartOffset; offset < log.logEndOffset; ) {
          const { nextOffset } = await log.read({ offset, bytesMax: 4096 });
          expect(nextOffset, `${JSON.stringify(PARTITIONS[index])}: a read at ${offset} made no progress`).toBeGreaterThan(offset);
          offset = nextOffset;
        }
      });
    }
  } finally {
    const closing = logs.close();
    let isClosed = false;
    void closing.finally(() => (isClosed = true)).catch(() => undefined);
    await waitFor(() => isClosed, {
      timeoutMs: WAVE_DEADLINE_MS,
      describe: () => `the manager's close is stuck; the cache holds ${logs.handles.descriptorCount} of ${openFilesMax} descriptors (waiters: ${logs.handles.hasWaiters})`,
    });
    await closing;
    remove();
  }
  expect(boundViolations, 'the descriptor bound was exceeded').toEqual([]);
  expect(files.segmentFilesOpenMax, 'segment files open at once').toBeLessThanOrEqual(openFilesMax);
  // The manager's close returns only once every segment file is closed, those its logs' closes
  // gave up before its closeAll included.
  expect(files.segmentFilesOpen, `segment files left open after close: ${files.openPaths.join('; ')}`).toBe(0);
}

describe('segment descriptors under a hard bound (property)', () => {
  it(
    'every mix of appends, reads, seeks, flushes, rolls, retention and idle closes finishes within the bound',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(operationArbitrary, { minLength: 1, maxLength: 14 }), { minLength: 2, maxLength: 10 }),
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 0, max: 2 ** 31 - 1 }),
          (waves, openFilesMax, seed) => runWaves(waves, openFilesMax, seed),
        ),
        // Stop (and report the seed) before vitest's timeout would cut the report off.
        { numRuns: settings.runs, plugins: [fc.interruptAfterTimeLimit(settings.interruptAfterMs, { failOnInterrupt: true })], ...settings.replay },
      );
      expect(coverage.checksWithWaiters, 'file system calls made while acquires waited for a descriptor').toBeGreaterThan(0);
      expect(coverage.missingIndexReads, 'index files looked for and missing (rebuilds)').toBeGreaterThan(0);
    },
    settings.testTimeoutMs,
  );
});
