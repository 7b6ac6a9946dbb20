/**
 * Property test of retention over closed logs in LogManager.
 *
 * Goal: a retention check skips a closed log, without opening it, only when a run over it
 * would delete nothing (log-manager.ts `runRetentionOn`), whatever happened to the log before
 * it closed and whatever happened while it was closed: appends with timestamps old, new and
 * from the future, rolls, retention runs, time passing, retention.ms and retention.bytes
 * altered (retention.bytes also to the edge of the size rule for the files as they are).
 *
 * Method: random sequences of those steps over two partitions; logs close when the idle sweep
 * finds them unused (partitionIdleMs 1 ms, so every clock step may close them) or at a `close`
 * step. After every retention check, the oracle opens each partition and runs retention on it
 * directly (the log's own decision, as before closed logs were skipped): it must find nothing
 * more to delete. A skip that hid due data fails here.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { silentLogger } from '../observability/index.js';
import { waitFor } from '../../test/support/wait-for.js';
import { tryParseSegmentFileName } from './file-names.js';
import { nodeFileSystem, type FileSystem } from './file-system.js';
import { LogManager } from './log-manager.js';
import type { PartitionLogConfig } from './partition-log.js';
import { makeBatch, makeTempDir, propertyRunSettings, testConfig } from './test-helpers.js';

const HOUR_MS = 3_600_000;
const PARTITION_COUNT = 2;

type Step =
  | { kind: 'append'; partition: number; ageMs: number; count: number; valueBytes: number }
  | { kind: 'roll'; partition: number }
  | { kind: 'close' }
  | { kind: 'advance'; ms: number }
  | { kind: 'alter'; retentionMs: number; retentionBytes: number }
  /** retention.bytes set to what the partition's segments after its oldest hold, ± `delta`: the size rule's edge. */
  | { kind: 'alterToSizeEdge'; partition: number; delta: number }
  | { kind: 'check' };

const partitionArbitrary = fc.integer({ min: 0, max: PARTITION_COUNT - 1 });
const retentionMsArbitrary = fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 1, max: 2 * HOUR_MS }));
const retentionBytesArbitrary = fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 1, max: 3000 }));

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('append' as const), partition: partitionArbitrary, ageMs: fc.integer({ min: -HOUR_MS, max: 3 * HOUR_MS }), count: fc.integer({ min: 1, max: 3 }), valueBytes: fc.integer({ min: 16, max: 400 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('roll' as const), partition: partitionArbitrary }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'close' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 * HOUR_MS })) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('alter' as const), retentionMs: retentionMsArbitrary, retentionBytes: retentionBytesArbitrary }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('alterToSizeEdge' as const), partition: partitionArbitrary, delta: fc.integer({ min: -1, max: 1 }) }) },
  { weight: 4, arbitrary: fc.constant({ kind: 'check' as const }) },
);

/** Bytes in the partition's .log files after the oldest, read from the directory (the log stays closed). */
async function laterSegmentBytes(partitionDir: string): Promise<number> {
  const logs = (await readdir(partitionDir)).filter((name) => tryParseSegmentFileName(name)?.kind === 'log').sort();
  let bytes = 0;
  for (const name of logs.slice(1)) bytes += (await stat(join(partitionDir, name))).size;
  return bytes;
}

const settings = propertyRunSettings(40, 1_000);
/** Checks that found every log closed and opened none: the property is not vacuous. */
let checksSkippingEveryLog = 0;

async function runSteps(steps: readonly Step[], initial: { retentionMs: number; retentionBytes: number }): Promise<void> {
  const { dir, remove } = makeTempDir('runnel-retention-closed-');
  const clock = new ManualClock();
  const config: PartitionLogConfig = { ...testConfig, segmentBytes: 2048, ...initial };
  let partitionOpens = 0;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    mkdir(path) {
      if (path !== dir) partitionOpens++; // the first step of a log's open
      return nodeFileSystem.mkdir(path);
    },
  };
  const manager = await LogManager.start({
    dataDir: dir,
    fileSystem,
    clock,
    logger: silentLogger,
    configForTopic: () => ({ ...config }),
    openFilesMax: 16,
    indexCacheBytesMax: 64 * 1024,
    openPartitionsMax: PARTITION_COUNT,
    partitionIdleMs: 1,
    retentionCheckIntervalMs: 1_000 * HOUR_MS,
  });
  try {
    for (let p = 0; p < PARTITION_COUNT; p++) await manager.createPartition('t', p);
    for (const [index, step] of steps.entries()) {
      const where = `step ${index} ${JSON.stringify(step)}`;
      switch (step.kind) {
        case 'append':
          await manager.withPartition('t', step.partition, (log) =>
            log.append(makeBatch({ count: step.count, valueBytes: step.valueBytes, timestamp: clock.nowMs() - step.ageMs })),
          );
          break;
        case 'roll':
          await manager.withPartition('t', step.partition, (log) => log.roll());
          break;
        case 'close':
          clock.advance(1);
          manager.closeIdle();
          await waitFor(() => manager.openPartitionCount === 0, { timeoutMs: 5_000, describe: () => `${where}: ${manager.openPartitionCount} logs open` });
          break;
        case 'advance':
          clock.advance(step.ms);
          break;
        case 'alter':
          // As the broker alters a topic: the record first, then the logs that are open.
          config.retentionMs = step.retentionMs;
          config.retentionBytes = step.retentionBytes;
          for (let p = 0; p < PARTITION_COUNT; p++) await manager.withOpenPartition('t', p, (log) => log.updateConfig({ ...config }));
          break;
        case 'alterToSizeEdge':
          config.retentionBytes = Math.max(0, (await laterSegmentBytes(join(dir, `t-${step.partition}`))) + step.delta);
          for (let p = 0; p < PARTITION_COUNT; p++) await manager.withOpenPartition('t', p, (log) => log.updateConfig({ ...config }));
          break;
        case 'check': {
          const wereAllClosed = manager.openPartitionCount === 0;
          const opensBefore = partitionOpens;
          await manager.runRetention();
          if (wereAllClosed && partitionOpens === opensBefore) checksSkippingEveryLog++;
          // The oracle: each log's own retention run finds nothing the check left due.
          for (let p = 0; p < PARTITION_COUNT; p++) {
            await manager.withPartition('t', p, async (log) => {
              const startBefore = log.logStartOffset;
              await log.applyRetention();
              expect(log.logStartOffset, `${where}: partition ${p} had segments due that the check left`).toBe(startBefore);
            });
          }
          break;
        }
      }
    }
  } finally {
    await manager.close();
    remove();
  }
}

describe('LogManager retention over closed logs (property)', () => {
  it(
    'skips a closed log only when a retention run over it would delete nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(stepArbitrary, { minLength: 5, maxLength: 40 }),
          fc.record({ retentionMs: retentionMsArbitrary, retentionBytes: retentionBytesArbitrary }),
          (steps, initial) => runSteps(steps, initial),
        ),
        // Stop (and report the seed) before vitest's timeout would cut the report off.
        { numRuns: settings.runs, plugins: [fc.interruptAfterTimeLimit(settings.interruptAfterMs, { failOnInterrupt: true })], ...settings.replay },
      );
      expect(checksSkippingEveryLog, 'some checks found every log closed and opened none').toBeGreaterThan(0);
    },
    settings.testTimeoutMs,
  );
});
