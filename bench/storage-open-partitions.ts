/**
 * Question: how long does a broker's storage take to open 10,000 partitions holding 100,000
 * segments, after a clean shutdown and after a crash (no clean marks)? Target: under 5 s,
 * not growing with the bytes stored.
 *
 * Method: write the partitions straight to disk (test/support/partition-fixture.ts), then
 * time `LogManager.start` plus opening every partition (32 opens in flight), three times
 * each; for the crash case, remove the clean-shutdown mark from every partition.state first
 * (each open then scans its active segment). Baseline in the same run: a bare
 * readdir + readFile of partition.state per partition, the least any open can do.
 *
 * Run: node --import tsx bench/storage-open-partitions.ts [--partitions N] [--segments N]
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../src/common/clock.js';
import { silentLogger } from '../src/observability/index.js';
import { LogManager } from '../src/storage/index.js';
import { testConfig } from '../src/storage/test-helpers.js';
import { writePartitionFixture } from '../test/support/partition-fixture.js';
import { fmt, freshDataDir, median, printHeader, removeDir, runsText, seconds } from './common.js';

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const PARTITIONS = argument('partitions', 10_000);
const SEGMENTS = argument('segments', 10);
const IN_FLIGHT = 32;
const RUNS = 3;

async function inBatches(count: number, work: (index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

async function timeOpenAll(dataDir: string): Promise<number> {
  const start = process.hrtime.bigint();
  const manager = await LogManager.start({
    dataDir,
    clock: systemClock,
    logger: silentLogger,
    configForTopic: () => testConfig,
    openFilesMax: 1024,
    indexCacheBytesMax: 64 * 1024 * 1024,
    openPartitionsMax: PARTITIONS,
    partitionIdleMs: 3_600_000,
    retentionCheckIntervalMs: 3_600_000,
  });
  await inBatches(PARTITIONS, (p) =>
    manager.withPartition('bench', p, async (log) => {
      if (log.logEndOffset !== SEGMENTS) throw new Error(`partition ${p} ends at ${log.logEndOffset}`);
    }),
  );
  const elapsed = seconds(start);
  await manager.close();
  return elapsed;
}

async function timeBaseline(dataDir: string): Promise<number> {
  const start = process.hrtime.bigint();
  const names = await fs.promises.readdir(dataDir);
  await inBatches(names.length, async (i) => {
    const dir = join(dataDir, names[i] as string);
    await fs.promises.readdir(dir);
    await fs.promises.readFile(join(dir, 'partition.state'));
  });
  return seconds(start);
}

function removeCleanMarks(dataDir: string): void {
  for (const name of fs.readdirSync(dataDir)) {
    const path = join(dataDir, name, 'partition.state');
    const state = JSON.parse(fs.readFileSync(path, 'utf8')) as Record<string, unknown>;
    delete state.clean;
    fs.writeFileSync(path, `${JSON.stringify(state)}\n`);
  }
}

const dataDir = freshDataDir('open-partitions');
printHeader('storage-open-partitions', 'Time to open many partitions (LogManager.start + first use of each).', dataDir, {
  partitions: PARTITIONS,
  segmentsPerPartition: SEGMENTS,
  opensInFlight: IN_FLIGHT,
  runs: RUNS,
  uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
});
try {
  const fixtureStart = process.hrtime.bigint();
  writePartitionFixture({ dataDir, topic: 'bench', partitionCount: PARTITIONS, segmentsPerPartition: SEGMENTS });
  console.log(`fixture:  ${fmt(PARTITIONS)} partitions, ${fmt(PARTITIONS * SEGMENTS)} segments written in ${seconds(fixtureStart).toFixed(1)} s`);

  const baseline: number[] = [];
  const clean: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    baseline.push(await timeBaseline(dataDir));
    clean.push(await timeOpenAll(dataDir));
  }
  const unclean: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    removeCleanMarks(dataDir);
    unclean.push(await timeOpenAll(dataDir));
  }
  console.log(`baseline: readdir + read partition.state per partition: median ${median(baseline).toFixed(2)} s ${runsText(baseline, 2)}`);
  console.log(`clean:    open all after clean shutdown: median ${median(clean).toFixed(2)} s ${runsText(clean, 2)} (${(median(clean) / median(baseline)).toFixed(1)}× baseline)`);
  console.log(`crash:    open all with no clean marks (scan each active segment): median ${median(unclean).toFixed(2)} s ${runsText(unclean, 2)}`);
  const worst = Math.max(median(clean), median(unclean));
  console.log(`target:   open ${fmt(PARTITIONS)} partitions in < 5 s: ${worst < 5 ? 'MET' : 'MISSED'} (worst median ${worst.toFixed(2)} s)`);
} finally {
  removeDir(dataDir);
}
