/**
 * Bench: how close does PartitionLog.append get to the disk?
 *
 * (a) flush=never, a broker-like handful of appends in flight, against a plain Node loop that
 *     writes 1 MiB buffers sequentially with fs.write to a file in the same directory (same
 *     total bytes). Target: ≥ 70 % of the raw MB/s.
 * (b) flush=always with 64 concurrent appenders (group commit), against (a) for the same
 *     record and batch size. Target: ≥ 50 % of flush=never. Also printed, for reading (b): a
 *     raw loop that fdatasyncs every 1 MiB / 16 MiB, the log's group sizes here, and the same
 *     loop pipelined as the log's group commit is (the next group written while the last one's
 *     fdatasync runs) with the groups 64 × 16 KiB in flight allow: the disk's own ceiling for
 *     (b) at 16 KiB, which says whether (a) and (b) can hold together there (both need
 *     flush=always ≥ 35 % of raw).
 * Also printed per shape: append's validation (CRC-32C) alone, and the "serial bound" of
 * validating then writing, which is where flush=never ends up when the two never overlap.
 * Segment size: the default 1 GiB and runs of ≤ 1 GiB, so no run rolls a segment.
 *
 * Shapes: 100 B and 1 KiB records in batches of 16 KiB, 256 KiB and 1 MiB. Batches are encoded
 * once before any timing; each appender re-appends its own copy (append rewrites the base
 * offset in place), so encoding is never measured. Batch validation (including the CRC check
 * append does) is measured: it is part of append.
 *
 * Runs are interleaved (raw, then each shape, per round) so drift in page-cache speed hits
 * every series alike; each figure is the median of the rounds. Before every timed run (raw or
 * log) the previous files are removed, `sync` runs, and a scratch file of the run's size is
 * written and removed ("prewarm"): on a VM whose balloon reports free pages to the host, the
 * first touch of returned memory costs a host page fault and buffered writes swing between
 * ~0.5 and ~5 GB/s with it (FINDINGS "Files"); writing into just-freed memory measures the
 * software instead. Disable with --no-prewarm.
 *
 * Run: npm run bench, or node --import tsx bench/storage-append.ts [--total-mib 1024]
 *      [--rounds-never 7] [--rounds-always 5] [--in-flight 16] [--appenders 64] [--segment-mib 1024]
 *      [--no-prewarm]
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { KiB, MiB } from '../src/common/units.js';
import { validateBatchOrThrow } from '../src/protocol/index.js';
import type { FlushPolicy } from '../src/storage/index.js';
import {
  appendCopies,
  benchLogConfig,
  buildBatch,
  countingFileSystem,
  emptyIoCounts,
  fmt,
  freshDataDir,
  loadLine,
  mbPerSecond,
  median,
  openBenchLog,
  pct,
  prepareWriteRun,
  printHeader,
  rawPipelinedSyncWrite,
  rawSequentialWrite,
  removeDir,
  runsText,
  seconds,
  verdict,
  type BenchBatch,
  type IoCounts,
} from './common.js';

const { values: args } = parseArgs({
  options: {
    'total-mib': { type: 'string', default: '1024' },
    'rounds-never': { type: 'string', default: '7' },
    'rounds-always': { type: 'string', default: '5' },
    'in-flight': { type: 'string', default: '16' },
    appenders: { type: 'string', default: '64' },
    'segment-mib': { type: 'string', default: '1024' },
    'no-prewarm': { type: 'boolean', default: false },
  },
});

const totalBytes = Number(args['total-mib']) * MiB;
const roundsNever = Number(args['rounds-never']);
const roundsAlways = Number(args['rounds-always']);
const inFlight = Number(args['in-flight']);
const appenders = Number(args.appenders);
const segmentBytes = Number(args['segment-mib']) * MiB;
const isPrewarm = !args['no-prewarm'];
if (!(roundsNever >= 1 && roundsAlways >= 1 && inFlight >= 1 && appenders >= 1)) throw new Error('rounds, --in-flight and --appenders must be ≥ 1');

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
const warmPath = join(dataDir, 'warm.bin');
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
  rawBaseline: 'fs.write of 1 MiB at increasing positions, one at a time, no fsync (for (b), informational: also with fdatasync every 1 MiB and every 16 MiB, and pipelined: the next group written while the last one\'s fdatasync runs)',
  betweenRuns: `files removed, sync${isPrewarm ? ', prewarm (write + remove a scratch file of the run size)' : ''} (not timed); log close (fdatasync) not timed`,
  shapes: shapes.map((shape) => ({ shape: shape.name, batchBytes: shape.built.batch.length, recordsPerBatch: shape.built.recordCount, batches: shape.batchCount })),
});

/**
 * The CPU floor of an append: the validation append does before queueing (header checks and
 * CRC-32C over the whole batch), alone, on a hot buffer. MB/s, median of 3 × 128 MiB.
 */
function validateMbPerSecond(shape: Shape): number {
  const count = Math.ceil((128 * MiB) / shape.built.batch.length);
  const runs: number[] = [];
  for (let run = 0; run < 3; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) validateBatchOrThrow(shape.built.batch, { batchBytesMax: 64 * MiB });
    runs.push(mbPerSecond(count * shape.built.batch.length, seconds(start)));
  }
  return median(runs);
}

/** Not timed: previous files gone, disk idle, and (prewarm) free memory the guest owns. */
function prepare(): Promise<void> {
  return prepareWriteRun({ files: [rawPath], dirs: [logDir], ...(isPrewarm ? { warm: { path: warmPath, bytes: totalBytes } } : {}) });
}

async function measureRaw(syncEveryBytes = 0): Promise<number> {
  await prepare();
  const elapsed = await rawSequentialWrite(rawPath, totalBytes, MiB, syncEveryBytes);
  rmSync(rawPath, { force: true });
  return mbPerSecond(totalBytes, elapsed);
}

/** `rawPipelinedSyncWrite` with groups of `groupBytes`: MB/s. */
async function measureRawPipelined(groupBytes: number): Promise<number> {
  await prepare();
  const elapsed = await rawPipelinedSyncWrite(rawPath, totalBytes, groupBytes);
  rmSync(rawPath, { force: true });
  return mbPerSecond(totalBytes, elapsed);
}

async function measureLog(shape: Shape, flush: FlushPolicy, concurrency: number): Promise<LogRun> {
  await prepare();
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

interface Summary {
  mbps: number;
  recordsPerSecond: number;
  elu: number;
  cpuPerWall: number;
  bytesPerWritev: number;
  datasyncs: number;
  datasyncMs: number;
  /** Share of the run's wall time spent inside writev calls / fdatasync calls. */
  writevShare: number;
  datasyncShare: number;
}

function summarize(runs: readonly LogRun[]): Summary {
  const middle = runs.find((run) => run.mbps === median(runs.map((r) => r.mbps))) ?? (runs[0] as LogRun);
  return {
    mbps: median(runs.map((run) => run.mbps)),
    recordsPerSecond: median(runs.map((run) => run.recordsPerSecond)),
    elu: median(runs.map((run) => run.elu)),
    cpuPerWall: median(runs.map((run) => run.cpuSeconds / run.wallSeconds)),
    bytesPerWritev: middle.io.writevBytes / Math.max(1, middle.io.writevCalls),
    datasyncs: middle.io.datasyncCalls,
    datasyncMs: (middle.io.datasyncSeconds * 1000) / Math.max(1, middle.io.datasyncCalls),
    writevShare: median(runs.map((run) => run.io.writevSeconds / run.wallSeconds)),
    datasyncShare: median(runs.map((run) => run.io.datasyncSeconds / run.wallSeconds)),
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
  console.log('shape (record × batch)   MB/s    records/s     vs raw  validate MB/s  serial bound  bytes/writev  in writev  loop-busy  cpu/wall  runs MB/s');
  const neverSummary = new Map<Shape, Summary>();
  for (const shape of shapes) {
    const runs = never.get(shape) as LogRun[];
    const s = summarize(runs);
    neverSummary.set(shape, s);
    const ratio = s.mbps / rawMedian;
    const validate = validateMbPerSecond(shape);
    const bound = 1 / (1 / rawMedian + 1 / validate);
    console.log(
      `${shape.name.padEnd(22)} ${fmt(s.mbps).padStart(6)} ${fmt(s.recordsPerSecond).padStart(12)}  ${pct(ratio).padStart(6)}  ${fmt(validate).padStart(13)}  ${`${fmt(bound)} (${pct(bound / rawMedian)})`.padStart(12)}  ${fmt(s.bytesPerWritev / KiB).padStart(8)} KiB  ${pct(s.writevShare).padStart(9)}  ${pct(s.elu).padStart(8)}  ${s.cpuPerWall.toFixed(2).padStart(8)}  ${runsText(runs.map((run) => run.mbps))}  ${verdict(ratio, NEVER_TARGET)}`,
    );
  }

  // ---- (b) flush=always vs flush=never -------------------------------------------------------
  const always = new Map<Shape, LogRun[]>(shapes.map((shape) => [shape, []]));
  // Informational: what the file system and disk do with the same write-then-fdatasync pattern
  // (the log's groups are ~1 MiB for 16 KiB batches × 64 appenders, else 16 MiB, its cap).
  const syncGroups = [1 * MiB, 16 * MiB];
  const rawSynced = new Map<number, number[]>(syncGroups.map((group) => [group, []]));
  // The disk's ceiling for the smallest batches: their appenders hold only appenders × batch
  // bytes in flight, which the log's group commit splits into two groups taking turns.
  const smallestBatchBytes = Math.min(...shapes.map((shape) => shape.batchBytes));
  const pipelinedGroupBytes = (appenders * smallestBatchBytes) / 2;
  const rawPipelined: number[] = [];
  for (let round = 0; round < roundsAlways; round++) {
    for (const group of syncGroups) (rawSynced.get(group) as number[]).push(await measureRaw(group));
    rawPipelined.push(await measureRawPipelined(pipelinedGroupBytes));
    for (const shape of shapes) (always.get(shape) as LogRun[]).push(await measureLog(shape, { kind: 'always' }, appenders));
  }
  for (const group of syncGroups) {
    const runs = rawSynced.get(group) as number[];
    console.log(`\nraw fs.write 1 MiB + fdatasync every ${group / MiB} MiB (informational): median ${fmt(median(runs))} MB/s, runs ${runsText(runs)}`);
  }
  const ceiling = median(rawPipelined);
  const smallName = `${fmt(smallestBatchBytes / KiB)} KiB`;
  console.log(
    `\nraw fs.write + fdatasync, pipelined, ${fmt(pipelinedGroupBytes / KiB)} KiB groups (${appenders} × ${smallName} in flight; informational): median ${fmt(ceiling)} MB/s (${pct(ceiling / rawMedian)} of raw), runs ${runsText(rawPipelined)}\n` +
      `  = what flush=always can reach for ${smallName} batches on this disk. (a) and (b) hold together only if flush=always ≥ ${pct(NEVER_TARGET * ALWAYS_TARGET)} of raw (${fmt(NEVER_TARGET * ALWAYS_TARGET * rawMedian)} MB/s here); ` +
      (ceiling >= NEVER_TARGET * ALWAYS_TARGET * rawMedian
        ? 'the disk allows it.'
        : `the disk allows ${pct(ceiling / rawMedian)}, so for ${smallName} batches meeting (a) makes (b) at most ${pct(ceiling / (NEVER_TARGET * rawMedian))}, and (b) at 50 % needs flush=never ≤ ${pct((2 * ceiling) / rawMedian)} of raw.`),
  );
  console.log(`\n(b) flush=always, ${appenders} concurrent appenders — ratio vs (a) flush=never, same shape (target ≥ ${pct(ALWAYS_TARGET)})`);
  console.log('shape (record × batch)   MB/s    records/s   vs never  bytes/writev  fdatasyncs  ms/fdatasync  in writev  in fdatasync  loop-busy  runs MB/s');
  for (const shape of shapes) {
    const runs = always.get(shape) as LogRun[];
    const s = summarize(runs);
    const ratio = s.mbps / (neverSummary.get(shape) as Summary).mbps;
    console.log(
      `${shape.name.padEnd(22)} ${fmt(s.mbps).padStart(6)} ${fmt(s.recordsPerSecond).padStart(12)}  ${pct(ratio).padStart(8)}  ${fmt(s.bytesPerWritev / KiB).padStart(8)} KiB  ${fmt(s.datasyncs).padStart(10)}  ${s.datasyncMs.toFixed(2).padStart(12)}  ${pct(s.writevShare).padStart(9)}  ${pct(s.datasyncShare).padStart(12)}  ${pct(s.elu).padStart(8)}  ${runsText(runs.map((run) => run.mbps))}  ${verdict(ratio, ALWAYS_TARGET)}`,
    );
  }
  console.log(
    `\nvalidate MB/s = append's validation (CRC-32C of the whole batch) alone on a hot buffer; serial bound = raw and validate one after the other, 1/(1/raw + 1/validate): what append reaches if validating and writing never overlap.\n` +
      `in writev / in fdatasync = share of the run's wall time inside those calls (timed at the FileSystem seam); loop-busy = event-loop utilization of the appending thread; cpu/wall = process CPU seconds (all threads) per wall second; bytes/writev, fdatasyncs and ms/fdatasync from the median run.`,
  );
  console.log(loadLine());
  console.log(`bench wall time: ${fmt((Date.now() - benchStart) / 1000, 1)} s`);
} finally {
  removeDir(dataDir);
}
