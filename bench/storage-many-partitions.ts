/**
 * Question: what does the segment-file bound cost when more partitions are written at once
 * than it allows? `openSegmentFilesMax` (LogManager `openFilesMax`) caps the segment files
 * storage holds open; past it, a write to a partition whose file was given up opens it again
 * (FileHandleCache: an acquire needing a new descriptor waits, and busy files are given up
 * for waiters). This bench appends to P partitions at once, round robin, with a small cap
 * (the pressured run) and with a cap above P (the baseline, in the same round), and reports
 * MB/s, the ratio, segment-file opens per 1,000 appends and the most descriptors held.
 *
 * Method: per run, a fresh data dir with P partitions (created and given one append each, not
 * timed), then `--in-flight` appenders, each with its own copy of one encoded batch, append to
 * partitions 0, 1, … P-1, 0, … until `--total-mib` is written (flush=never unless `--flush`), through
 * `LogManager.withPartition` as the broker does. Opens and closes are counted at the
 * FileSystem seam. Runs alternate (pressured, baseline) per round; figures are medians.
 *
 * Run: node --import tsx bench/storage-many-partitions.ts [--partitions 2000] [--open-files 64]
 *      [--in-flight 256] [--batch-kib 16] [--total-mib 512] [--rounds 3] [--flush never]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../src/common/clock.js';
import { KiB, MiB } from '../src/common/units.js';
import { silentLogger } from '../src/observability/index.js';
import { LogManager, nodeFileSystem, OnCloseFileHandle, parseFlushPolicy, type FileSystem } from '../src/storage/index.js';
import { benchLogConfig, buildBatch, fmt, freshDataDir, loadLine, mbPerSecond, median, pct, printHeader, removeDir, runsText, seconds } from './common.js';

const { values: args } = parseArgs({
  options: {
    partitions: { type: 'string', default: '2000' },
    'open-files': { type: 'string', default: '64' },
    'in-flight': { type: 'string', default: '256' },
    'batch-kib': { type: 'string', default: '16' },
    'total-mib': { type: 'string', default: '512' },
    rounds: { type: 'string', default: '3' },
    flush: { type: 'string', default: 'never' },
  },
});

const partitions = Number(args.partitions);
const openFilesPressured = Number(args['open-files']);
const inFlight = Number(args['in-flight']);
const batchBytes = Number(args['batch-kib']) * KiB;
const totalBytes = Number(args['total-mib']) * MiB;
const rounds = Number(args.rounds);
const flush = parseFlushPolicy(args.flush);
if (![partitions, openFilesPressured, inFlight, batchBytes, totalBytes, rounds].every((n) => Number.isInteger(n) && n >= 1)) {
  throw new Error('--partitions, --open-files, --in-flight, --batch-kib, --total-mib and --rounds must be positive integers');
}
if (openFilesPressured >= partitions) throw new Error('--open-files must be below --partitions, or nothing is under pressure');
// The baseline's cap: every partition's active segment stays open.
const openFilesBaseline = partitions + 64;
const TOPIC = 'bench';

const built = buildBatch(100, batchBytes);
const batchCount = Math.floor(totalBytes / built.batch.length);
const dataRoot = freshDataDir('many-partitions');

printHeader('storage-many-partitions', 'Q: append MB/s to many partitions at once with fewer segment files allowed open than partitions written, vs a cap above the partition count.', dataRoot, {
  partitions,
  openFilesPressured,
  openFilesBaseline,
  inFlight,
  batchBytes: built.batch.length,
  recordsPerBatch: built.recordCount,
  batchesPerRun: batchCount,
  totalBytesPerRun: batchCount * built.batch.length,
  flush: args.flush,
  rounds,
  order: 'partitions 0..P-1 round robin, each appender with its own batch copy',
});

interface Counts {
  logOpens: number;
  open: number;
  peakOpen: number;
}

/** Counts opens of segment files and the descriptors held at once (every file storage opens). */
function countingOpens(counts: Counts, inner: FileSystem = nodeFileSystem): FileSystem {
  return {
    ...inner,
    async open(path, mode) {
      const handle = await inner.open(path, mode);
      if (path.endsWith('.log')) counts.logOpens++;
      counts.open++;
      counts.peakOpen = Math.max(counts.peakOpen, counts.open);
      return new OnCloseFileHandle(handle, () => counts.open--);
    },
  };
}

interface Run {
  mbps: number;
  logOpensPerThousand: number;
  peakOpen: number;
}

async function measure(openFilesMax: number): Promise<Run> {
  const dataDir = join(dataRoot, `run-${openFilesMax}`);
  const counts: Counts = { logOpens: 0, open: 0, peakOpen: 0 };
  const manager = await LogManager.start({
    dataDir,
    clock: systemClock,
    logger: silentLogger,
    fileSystem: countingOpens(counts),
    configForTopic: () => benchLogConfig({ flush }),
    openFilesMax,
    indexCacheBytesMax: 64 * MiB,
    openPartitionsMax: partitions,
    partitionIdleMs: 3_600_000,
    retentionCheckIntervalMs: 3_600_000,
  });
  try {
    let next = 0;
    const workers = (count: number, work: () => Promise<void>) => Promise.all(Array.from({ length: count }, work));
    await workers(32, async () => {
      while (next < partitions) await manager.createPartition(TOPIC, next++);
    });
    // One append each, not timed: every partition has written before, as in a running broker.
    next = 0;
    await workers(32, async () => {
      const batch = Buffer.from(built.batch);
      while (next < partitions) {
        const partition = next++;
        await manager.withPartition(TOPIC, partition, (log) => log.append(batch));
      }
    });
    counts.logOpens = 0;
    counts.peakOpen = counts.open;
    let issued = 0;
    const start = process.hrtime.bigint();
    await workers(inFlight, async () => {
      const batch = Buffer.from(built.batch);
      while (issued < batchCount) {
        const partition = issued++ % partitions;
        await manager.withPartition(TOPIC, partition, (log) => log.append(batch));
      }
    });
    const elapsed = seconds(start);
    return {
      mbps: mbPerSecond(batchCount * built.batch.length, elapsed),
      logOpensPerThousand: (counts.logOpens * 1000) / batchCount,
      peakOpen: counts.peakOpen,
    };
  } finally {
    await manager.close();
    removeDir(dataDir);
  }
}

try {
  const pressured: Run[] = [];
  const baseline: Run[] = [];
  for (let round = 0; round < rounds; round++) {
    pressured.push(await measure(openFilesPressured));
    baseline.push(await measure(openFilesBaseline));
  }
  const show = (name: string, runs: readonly Run[], against?: number) => {
    const mbps = median(runs.map((run) => run.mbps));
    console.log(
      `${name.padEnd(34)} ${fmt(mbps).padStart(6)} MB/s${against === undefined ? '        ' : `  ${pct(mbps / against).padStart(5)}`}  ${fmt(median(runs.map((run) => run.logOpensPerThousand)), 1).padStart(8)}  ${fmt(median(runs.map((run) => run.peakOpen))).padStart(9)}  ${runsText(runs.map((run) => run.mbps))}`,
    );
    return mbps;
  };
  console.log(`\n${partitions} partitions, ${inFlight} appends in flight, ${fmt(built.batch.length / KiB, 1)} KiB batches, flush=${args.flush}`);
  console.log('run                                  MB/s     ratio  .log opens/1000 appends  peak fds  runs MB/s');
  const base = show(`open files ${openFilesBaseline} (above P, baseline)`, baseline);
  show(`open files ${openFilesPressured} (under pressure)`, pressured, base);
  console.log('\nratio = pressured MB/s / baseline MB/s, same rounds; .log opens are segment-file opens during the timed appends; peak fds = most storage descriptors open at once.');
  console.log(loadLine());
} finally {
  removeDir(dataRoot);
}
