/**
 * Bench: how close does PartitionLog.append get to the disk?
 *
 * (a) flush=never, a broker-like handful of appends in flight, against a plain Node loop that
 *     writes 1 MiB buffers sequentially with fs.write to a file in the same directory (same
 *     total bytes). Target: ≥ 70 % of the raw MB/s.
 * (b) flush=always with 64 concurrent appenders (group commit), against (a) for the same
 *     record and batch size. Target: ≥ 50 % of flush=never.
 *
 * Shapes: 100 B and 1 KiB records in batches of 16 KiB, 256 KiB and 1 MiB. Batches are encoded
 * once before any timing; each appender re-appends its own copy (append rewrites the base
 * offset in place), so encoding is never measured. Batch validation (including the CRC check
 * append does) is measured: it is part of append.
 *
 * Runs are interleaved (raw, then each shape, per round) so drift in page-cache speed hits
 * every series alike; each figure is the median of the rounds.
 *
 * Run: npm run bench, or node --import tsx bench/storage-append.ts [--total-mib 1024]
 *      [--rounds-never 5] [--rounds-always 3] [--in-flight 16] [--appenders 64] [--segment-mib 1024]
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KiB, MiB } from '../src/common/units.js';
import type { FlushPolicy } from '../src/storage/index.js';
import {
  appendCopies,
  benchLogConfig,
  buildBatch,
  countingFileSystem,
  emptyIoCounts,
  fmt,
  freshDataDir,
  mbPerSecond,
  median,
  openBenchLog,
  pct,
  printHeader,
  rawSequentialWrite,
  removeDir,
  runsText,
  syncAll,
  verdict,
  type BenchBatch,
  type IoCounts,
} from './common.js';

const { values: args } = parseArgs({
  options: {
    'total-mib': { type: 'string', default: '1024' },
    'rounds-never': { type: 'string', default: '5' },
    'rounds-always': { type: 'string', default: '3' },
    'in-flight': { type: 'string', default: '16' },
    appenders: { type: 'string', default: '64' },
    'segment-mib': { type: 'string', default: '1024' },
  },
});

const totalBytes = Number(args['total-mib']) * MiB;
const roundsNever = Number(args['rounds-never']);
const roundsAlways = Number(args['rounds-always']);
const inFlight = Number(args['in-flight']);
const appenders = Number(args.appenders);
const segmentBytes = Number(args['segment-mib']) * MiB;

const NEVER_TARGET = 0.7;
const ALWAYS_TARGET = 0.5;

interface Shape {
  name: string;
  recordBytes: number;
  batchBytes: number;
  built: BenchBatch;
  batchCount: number;
}

interface LogRun {
  mbps: number;
  recordsPerSecond: number;
  elu: number;
  cpuSeconds: number;
  wallSeconds: number;
  io: IoCounts;
}

const dataDir = freshDataDir('append');
const rawPath = join(dataDir, 'raw.bin');
const logDir = join(dataDir, 'log');

const shapes: Shape[] = [];
for (const recordBytes of [100, 1 * KiB]) {
  for (const batchBytes of [16 * KiB, 256 * KiB, 1 * MiB]) {
    const built = buildBatch(recordBytes, batchBytes);
    shapes.push({
      name: `${recordBytes === 100 ? '100 B' : '1 KiB'} × ${batchBytes >= MiB ? `${batchBytes / MiB} MiB` : `${batchBytes / KiB} KiB`}`,
      recordBytes,
      batchBytes,
      built,
      // Never more than the segment holds: no roll inside a run with the default 1 GiB segments.
      batchCount: Math.floor(Math.min(totalBytes, segmentBytes) / built.batch.length),
    });
  }
}

printHeader('storage-append', 'Q: PartitionLog.append throughput vs a raw sequential fs.write loop (flush=never), and flush=always vs flush=never.', dataDir, {
  totalBytesPerRun: totalBytes,
  segmentBytes,
  indexIntervalBytes: benchLogConfig({}).indexIntervalBytes,
  neverInFlight: inFlight,
  alwaysAppenders: appenders,
  roundsNever,
  roundsAlways,
  rawBaseline: 'fs.write of 1 MiB at increasing positions, one at a time, no fsync',
  betweenRuns: 'files removed, then sync (not timed); log close (fdatasync) not timed',
  shapes: shapes.map((shape) => ({ shape: shape.name, batchBytes: shape.built.batch.length, recordsPerBatch: shape.built.recordCount, batches: shape.batchCount })),
});

async function measureRaw(): Promise<number> {
  rmSync(rawPath, { force: true });
  syncAll();
  const elapsed = await rawSequentialWrite(rawPath, totalBytes);
  rmSync(rawPath, { force: true });
  return mbPerSecond(totalBytes, elapsed);
}

async function measureLog(shape: Shape, flush: FlushPolicy, concurrency: number): Promise<LogRun> {
  removeDir(logDir);
  syncAll();
  const io = emptyIoCounts();
  const log = await openBenchLog({ dir: logDir, config: benchLogConfig({ segmentBytes, flush }), fileSystem: countingFileSystem(io) });
  Object.assign(io, emptyIoCounts()); // opening a new partition writes partition.state: not part of the run
  const eluStart = performance.eventLoopUtilization();
  const cpuStart = process.cpuUsage();
  const wallSeconds = await appendCopies(log, shape.built.batch, shape.batchCount, concurrency);
  const cpu = process.cpuUsage(cpuStart);
  const elu = performance.eventLoopUtilization(eluStart).utilization;
  const runIo = { ...io };
  if (log.logEndOffset !== shape.batchCount * shape.built.recordCount) throw new Error(`log end ${log.logEndOffset} after ${shape.batchCount} batches`);
  await log.close();
  removeDir(logDir);
  const bytes = shape.batchCount * shape.built.batch.length;
  return {
    mbps: mbPerSecond(bytes, wallSeconds),
    recordsPerSecond: (shape.batchCount * shape.built.recordCount) / wallSeconds,
    elu,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds,
    io: runIo,
  };
}

function summarize(runs: readonly LogRun[]): { mbps: number; recordsPerSecond: number; elu: number; cpuPerWall: number; bytesPerWritev: number; datasyncs: number; datasyncMs: number } {
  const middle = runs.find((run) => run.mbps === median(runs.map((r) => r.mbps))) ?? (runs[0] as LogRun);
  return {
    mbps: median(runs.map((run) => run.mbps)),
    recordsPerSecond: median(runs.map((run) => run.recordsPerSecond)),
    elu: median(runs.map((run) => run.elu)),
    cpuPerWall: median(runs.map((run) => run.cpuSeconds / run.wallSeconds)),
    bytesPerWritev: middle.io.writevBytes / Math.max(1, middle.io.writevCalls),
    datasyncs: middle.io.datasyncCalls,
    datasyncMs: (middle.io.datasyncSeconds * 1000) / Math.max(1, middle.io.datasyncCalls),
  };
}

const benchStart = Date.now();
try {
  // ---- (a) flush=never vs raw ----------------------------------------------------------------
  const raw: number[] = [];
  const never = new Map<Shape, LogRun[]>(shapes.map((shape) => [shape, []]));
  for (let round = 0; round < roundsNever; round++) {
    raw.push(await measureRaw());
    for (const shape of shapes) (never.get(shape) as LogRun[]).push(await measureLog(shape, { kind: 'never' }, inFlight));
  }
  const rawMedian = median(raw);
  console.log(`\nraw baseline (fs.write 1 MiB, sequential, ${fmt(totalBytes / MiB)} MiB): median ${fmt(rawMedian)} MB/s, runs ${runsText(raw)}`);

  console.log(`\n(a) flush=never, ${inFlight} appends in flight — ratio vs raw fs.write (target ≥ ${pct(NEVER_TARGET)})`);
  console.log('shape (record × batch)   MB/s    records/s     vs raw  bytes/writev  loop-busy  cpu/wall  runs MB/s');
  const neverSummary = new Map<Shape, ReturnType<typeof summarize>>();
  for (const shape of shapes) {
    const runs = never.get(shape) as LogRun[];
    const s = summarize(runs);
    neverSummary.set(shape, s);
    const ratio = s.mbps / rawMedian;
    console.log(
      `${shape.name.padEnd(22)} ${fmt(s.mbps).padStart(6)} ${fmt(s.recordsPerSecond).padStart(12)}  ${pct(ratio).padStart(6)}  ${fmt(s.bytesPerWritev / KiB).padStart(8)} KiB  ${pct(s.elu).padStart(8)}  ${s.cpuPerWall.toFixed(2).padStart(8)}  ${runsText(runs.map((run) => run.mbps))}  ${verdict(ratio, NEVER_TARGET)}`,
    );
  }

  // ---- (b) flush=always vs flush=never -------------------------------------------------------
  const always = new Map<Shape, LogRun[]>(shapes.map((shape) => [shape, []]));
  for (let round = 0; round < roundsAlways; round++) {
    for (const shape of shapes) (always.get(shape) as LogRun[]).push(await measureLog(shape, { kind: 'always' }, appenders));
  }
  console.log(`\n(b) flush=always, ${appenders} concurrent appenders — ratio vs (a) flush=never, same shape (target ≥ ${pct(ALWAYS_TARGET)})`);
  console.log('shape (record × batch)   MB/s    records/s   vs never  bytes/writev  fdatasyncs  ms/fdatasync  loop-busy  runs MB/s');
  for (const shape of shapes) {
    const runs = always.get(shape) as LogRun[];
    const s = summarize(runs);
    const ratio = s.mbps / (neverSummary.get(shape) as ReturnType<typeof summarize>).mbps;
    console.log(
      `${shape.name.padEnd(22)} ${fmt(s.mbps).padStart(6)} ${fmt(s.recordsPerSecond).padStart(12)}  ${pct(ratio).padStart(8)}  ${fmt(s.bytesPerWritev / KiB).padStart(8)} KiB  ${fmt(s.datasyncs).padStart(10)}  ${s.datasyncMs.toFixed(2).padStart(12)}  ${pct(s.elu).padStart(8)}  ${runsText(runs.map((run) => run.mbps))}  ${verdict(ratio, ALWAYS_TARGET)}`,
    );
  }
  console.log(`\nloop-busy = event-loop utilization of the appending thread; cpu/wall = process CPU seconds (all threads) per wall second.`);
  console.log(`bench wall time: ${fmt((Date.now() - benchStart) / 1000, 1)} s`);
} finally {
  removeDir(dataDir);
}
