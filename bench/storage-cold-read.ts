/**
 * Bench: how close does a sequential consumer reading a partition with PartitionLog.read get
 * to a plain read of a file of the same size, from a cold page cache and from a hot one?
 *
 * Set-up: a 1 GiB partition of 1 MiB batches of 1 KiB records (flush=never, then close), and a
 * raw file of exactly the same size in the same directory. Each round, interleaved:
 * - raw: sync + drop caches, read the file start to end with 1 MiB fs.read calls one at a time
 *   (cold), then once more (hot);
 * - log, for each budget (1 MiB and 4 MiB): open the partition fresh (new handle and index
 *   pools), sync + drop caches, read offset 0 to the end with `log.read({offset, bytesMax})`
 *   one call at a time (cold), then once more with the same open log (hot).
 * Target: cold log read ≥ 70 % of the cold raw read. Medians of the rounds.
 *
 * Needs root for /proc/sys/vm/drop_caches; without it the "cold" figures are warm and say so.
 *
 * Run: npm run bench, or node --import tsx bench/storage-cold-read.ts [--total-mib 1024]
 *      [--rounds 5] [--segment-mib 256]
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KiB, MiB } from '../src/common/units.js';
import { isBatchCrcValid, tryReadBatchHeader } from '../src/protocol/index.js';
import {
  appendCopies,
  benchLogConfig,
  buildBatch,
  countingFileSystem,
  dirSizeBytes,
  dropCaches,
  emptyIoCounts,
  fmt,
  freshDataDir,
  loadLine,
  mbPerSecond,
  median,
  openBenchLog,
  pct,
  printHeader,
  rawSequentialRead,
  rawSequentialWrite,
  readToEnd,
  removeDir,
  runsText,
  seconds,
  syncAll,
  verdict,
  type IoCounts,
} from './common.js';

const { values: args } = parseArgs({
  options: {
    'total-mib': { type: 'string', default: '1024' },
    rounds: { type: 'string', default: '5' },
    'segment-mib': { type: 'string', default: '256' },
  },
});
const totalBytes = Number(args['total-mib']) * MiB;
const rounds = Number(args.rounds);
const segmentBytes = Number(args['segment-mib']) * MiB;
const budgets = [1 * MiB, 4 * MiB];
const TARGET = 0.7;

const dataDir = freshDataDir('cold-read');
const logDir = join(dataDir, 'log');
const rawPath = join(dataDir, 'raw.bin');
const config = benchLogConfig({ segmentBytes, flush: { kind: 'never' } });
const { batch, recordCount } = buildBatch(1 * KiB, 1 * MiB);
const batchCount = Math.floor(totalBytes / batch.length);

printHeader('storage-cold-read', 'Q: sequential PartitionLog.read throughput (cold and hot page cache) vs a raw 1 MiB fs.read loop over a file of the same size.', dataDir, {
  partitionBytes: batchCount * batch.length,
  batches: batchCount,
  batchBytes: batch.length,
  recordsPerBatch: recordCount,
  recordBytes: 1 * KiB,
  segmentBytes,
  indexIntervalBytes: config.indexIntervalBytes,
  flush: 'never, then close (clean)',
  readBudgets: budgets,
  rounds,
  rawBaseline: 'fs.read of 1 MiB into a fresh buffer, one at a time, start to end',
  cold: 'sync + echo 3 > /proc/sys/vm/drop_caches before each cold pass',
});

interface ReadFigures {
  cold: number;
  hot: number;
  io: IoCounts;
  hotIo: IoCounts;
  hotSeconds: number;
  reads: number;
}

/** CRC-32C over the batch the way every read checks it, hot in memory: the read path's CPU floor. */
function crcMbPerSecond(): number {
  const header = tryReadBatchHeader(batch, 0);
  if (header === undefined) throw new Error('unreadable batch');
  const start = process.hrtime.bigint();
  const count = 512;
  for (let i = 0; i < count; i++) if (!isBatchCrcValid(batch, header, 0)) throw new Error('bad CRC');
  return mbPerSecond(count * batch.length, seconds(start));
}

try {
  // ---- Set-up (not timed) ------------------------------------------------------------------
  const log = await openBenchLog({ dir: logDir, config });
  await appendCopies(log, batch, batchCount, 16);
  await log.close();
  const logBytes = dirSizeBytes(logDir, '.log');
  const segments = readdirSync(logDir).filter((name) => name.endsWith('.log')).length;
  await rawSequentialWrite(rawPath, logBytes);
  syncAll();
  console.log(`set-up: partition of ${fmt(logBytes)} B in ${segments} segment(s); raw file ${fmt(logBytes)} B`);

  const raw: { cold: number; hot: number }[] = [];
  const logRuns = new Map<number, ReadFigures[]>(budgets.map((budget) => [budget, []]));
  for (let round = 0; round < rounds; round++) {
    dropCaches();
    const rawCold = await rawSequentialRead(rawPath);
    const rawHot = await rawSequentialRead(rawPath);
    if (rawCold.bytes !== logBytes) throw new Error(`raw read ${rawCold.bytes} B`);
    raw.push({ cold: mbPerSecond(rawCold.bytes, rawCold.seconds), hot: mbPerSecond(rawHot.bytes, rawHot.seconds) });

    for (const budget of budgets) {
      const io = emptyIoCounts();
      const reader = await openBenchLog({ dir: logDir, config, fileSystem: countingFileSystem(io) });
      dropCaches();
      Object.assign(io, emptyIoCounts());
      const cold = await readToEnd(reader, budget);
      const coldIo = { ...io };
      Object.assign(io, emptyIoCounts());
      const hot = await readToEnd(reader, budget);
      const hotIo = { ...io };
      await reader.close();
      if (cold.bytes !== logBytes || hot.bytes !== logBytes) throw new Error(`log read ${cold.bytes} / ${hot.bytes} B of ${logBytes}`);
      (logRuns.get(budget) as ReadFigures[]).push({ cold: mbPerSecond(cold.bytes, cold.seconds), hot: mbPerSecond(hot.bytes, hot.seconds), io: coldIo, hotIo, hotSeconds: hot.seconds, reads: cold.reads });
    }
  }

  const rawCold = median(raw.map((run) => run.cold));
  const rawHot = median(raw.map((run) => run.hot));
  console.log(`\nraw 1 MiB fs.read: cold median ${fmt(rawCold)} MB/s ${runsText(raw.map((run) => run.cold))}; hot median ${fmt(rawHot)} MB/s ${runsText(raw.map((run) => run.hot))}`);
  console.log(`\nlog.read, offset 0 → end, one call at a time (target: cold ≥ ${pct(TARGET)} of raw cold)`);
  console.log('bytesMax   cold MB/s  vs raw cold   hot MB/s  vs raw hot  log.read calls  file reads  bytes read/returned   cold runs / hot runs');
  for (const budget of budgets) {
    const runs = logRuns.get(budget) as ReadFigures[];
    const cold = median(runs.map((run) => run.cold));
    const hot = median(runs.map((run) => run.hot));
    const first = runs[0] as ReadFigures;
    console.log(
      `${`${budget / MiB} MiB`.padEnd(8)} ${fmt(cold).padStart(10)}  ${pct(cold / rawCold).padStart(10)}  ${fmt(hot).padStart(9)}  ${pct(hot / rawHot).padStart(10)}  ${fmt(first.reads).padStart(14)}  ${fmt(first.io.readCalls).padStart(10)}  ${(first.io.readBytes / logBytes).toFixed(3).padStart(19)}   ${runsText(runs.map((run) => run.cold))} / ${runsText(runs.map((run) => run.hot))}  ${verdict(cold / rawCold, TARGET)}`,
    );
  }
  console.log(`(file reads and bytes read/returned: first round's cold pass, counted at the FileSystem seam; index files read: ${fmt((logRuns.get(budgets[0] as number) as ReadFigures[])[0]?.io.readFileBytes ?? 0)} B)`);
  const crc = median([crcMbPerSecond(), crcMbPerSecond(), crcMbPerSecond()]);
  console.log(`\nwhere a hot log.read pass spends its time (first round; file reads timed at the FileSystem seam):`);
  for (const budget of budgets) {
    const first = (logRuns.get(budget) as ReadFigures[])[0] as ReadFigures;
    const inReads = first.hotIo.readSeconds;
    console.log(
      `  bytesMax ${budget / MiB} MiB: ${fmt(first.hotSeconds * 1000)} ms total, ${fmt(inReads * 1000)} ms waiting on file reads (${fmt(mbPerSecond(first.hotIo.readBytes, inReads))} MB/s while reading), ${fmt((first.hotSeconds - inReads) * 1000)} ms on the thread (CRC check, headers, allocation)`,
    );
  }
  console.log(`  CRC-32C check alone (isBatchCrcValid on a hot ${fmt(batch.length)} B batch): ${fmt(crc)} MB/s → ${fmt((logBytes / 1e6 / crc) * 1000)} ms per pass`);
  console.log(`${loadLine()} (at end)`);
} finally {
  rmSync(rawPath, { force: true });
  removeDir(dataDir);
}
