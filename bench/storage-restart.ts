/**
 * Bench: how long does PartitionLog.open take after an unclean shutdown (SIGKILL) of a large
 * partition, and after a clean one? Target: unclean open < 1 s, because recovery scans only
 * the active segment (recovery.ts), not the whole partition.
 *
 * Set-up: a child process builds a ~1 GiB partition in 8 segments of 128 MiB (1 MiB batches of
 * 1 KiB records, flush=never), calls flush() and is SIGKILLed (never closed: no clean mark).
 * Then, per cycle: a child opens the log, appends a few more MiB (the first append marks the
 * state dirty), flush(), and is SIGKILLed; a fresh process times `PartitionLog.open` (module
 * loading and process start are not in the figure), checks the log end offset, and closes the
 * log cleanly. Cycles alternate hot (page cache as a process crash leaves it) and cold (sync +
 * drop caches first, as after a host reboot). Then clean restarts: open, close, repeat.
 *
 * Sizes: the build stops 48 MiB short of 1 GiB so the active segment is 88–128 MiB at the
 * measured opens (six cycles × 8 MiB) and the partition holds 1 GiB in 8 segments at the end.
 * A full active segment would roll on the next append and leave recovery nothing to scan.
 *
 * Run: npm run bench, or node --import tsx bench/storage-restart.ts [--cycles 3]
 *      Internal roles (child processes): --role build|dirty|open
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { KiB, MiB } from '../src/common/units.js';
import type { Logger } from '../src/observability/index.js';
import {
  appendCopies,
  benchLogConfig,
  buildBatch,
  countingFileSystem,
  dropCaches,
  emptyIoCounts,
  fmt,
  freshDataDir,
  loadLine,
  median,
  openBenchLog,
  printHeader,
  removeDir,
  runsText,
  seconds,
  type IoCounts,
} from './common.js';

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: 'main' },
    dir: { type: 'string', default: '' },
    batches: { type: 'string', default: '0' },
    'expect-end': { type: 'string', default: '-1' },
    cycles: { type: 'string', default: '3' },
  },
});

const SEGMENT_BYTES = 128 * MiB;
const SEGMENT_COUNT = 8;
const CYCLE_BATCHES = 8;
const TARGET_SECONDS = 1;
const config = benchLogConfig({ segmentBytes: SEGMENT_BYTES, flush: { kind: 'never' } });
const { batch, recordCount } = buildBatch(1 * KiB, 1 * MiB);
const batchesPerSegment = Math.floor(SEGMENT_BYTES / batch.length);

// ---- Child roles -----------------------------------------------------------------------------

/** Appends, makes it durable, says READY and waits to be SIGKILLed: never closes. */
async function roleAppendThenWait(dir: string, batchCount: number): Promise<void> {
  const log = await openBenchLog({ dir, config });
  await appendCopies(log, batch, batchCount, 16);
  await log.flush();
  process.stdout.write(`READY ${JSON.stringify({ logEndOffset: log.logEndOffset, segments: log.segmentCount })}\n`);
  setInterval(() => undefined, 60_000);
}

interface OpenReport {
  openSeconds: number;
  recovery: Record<string, unknown> | undefined;
  truncated: boolean;
  io: IoCounts;
  logEndOffset: number;
  segments: number;
}

/** Times PartitionLog.open, checks the end offset, then closes cleanly. */
async function roleOpen(dir: string, expectEnd: number): Promise<void> {
  const io = emptyIoCounts();
  let recovery: Record<string, unknown> | undefined;
  let truncated = false;
  const logger: Logger = {
    error: () => undefined,
    warn: (_fields, message) => {
      if (message.startsWith('truncated')) truncated = true;
    },
    info: (fields, message) => {
      if (message.startsWith('recovered partition')) recovery = { ...fields };
    },
    debug: () => undefined,
    child: () => logger,
  };
  const fileSystem = countingFileSystem(io);
  const start = process.hrtime.bigint();
  const log = await openBenchLog({ dir, config, fileSystem, logger });
  const openSeconds = seconds(start);
  const opened = { ...io };
  if (expectEnd >= 0 && log.logEndOffset !== expectEnd) throw new Error(`log end offset ${log.logEndOffset}, expected ${expectEnd}`);
  if (!log.isOnline) throw new Error('log opened offline');
  const report: OpenReport = { openSeconds, recovery, truncated, io: opened, logEndOffset: log.logEndOffset, segments: log.segmentCount };
  await log.close();
  process.stdout.write(`RESULT ${JSON.stringify(report)}\n`);
}

// ---- Parent ----------------------------------------------------------------------------------

const thisFile = fileURLToPath(import.meta.url);

/** Runs a child role; resolves with the JSON after `marker` and the child's exit. */
function runChild(role: string, childArgs: string[], marker: 'READY' | 'RESULT'): Promise<{ payload: unknown; wallSeconds: number; signal: string | null }> {
  return new Promise((resolvePromise, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(process.execPath, ['--import', 'tsx', thisFile, '--role', role, ...childArgs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let payload: unknown;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n').find((text) => text.startsWith(`${marker} `));
      if (line !== undefined && payload === undefined) {
        payload = JSON.parse(line.slice(marker.length + 1));
        // The point of the READY roles: an unclean shutdown, no close.
        if (marker === 'READY') child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const wallSeconds = seconds(start);
      if (payload === undefined) reject(new Error(`child ${role} exited (code ${code}, signal ${signal}) without ${marker}: ${out}`));
      else if (marker === 'READY' && signal !== 'SIGKILL') reject(new Error(`child ${role} was not SIGKILLed (code ${code}, signal ${signal})`));
      else resolvePromise({ payload, wallSeconds, signal });
    });
  });
}

function stateSaysClean(dir: string): boolean {
  const state = JSON.parse(readFileSync(join(dir, 'partition.state'), 'utf8')) as { clean?: unknown };
  return state.clean !== undefined;
}

function segmentFiles(dir: string): { count: number; activeBytes: number; totalBytes: number } {
  const logs = readdirSync(dir)
    .filter((name) => name.endsWith('.log'))
    .sort();
  const sizes = logs.map((name) => statSync(join(dir, name)).size);
  return { count: logs.length, activeBytes: sizes[sizes.length - 1] ?? 0, totalBytes: sizes.reduce((a, b) => a + b, 0) };
}

interface Measured {
  kind: 'unclean' | 'clean';
  cache: 'hot' | 'cold';
  activeBytes: number;
  report: OpenReport;
  childWallSeconds: number;
}

async function main(): Promise<void> {
  const cycles = Number(args.cycles);
  const finalBatches = SEGMENT_COUNT * batchesPerSegment;
  const buildBatches = finalBatches - 2 * cycles * CYCLE_BATCHES;
  const dataDir = freshDataDir('restart');
  const logDir = join(dataDir, 'log');
  printHeader('storage-restart', `Q: PartitionLog.open time after SIGKILL (unclean: scans the active segment) and after a clean close; target < ${TARGET_SECONDS} s.`, dataDir, {
    segmentBytes: SEGMENT_BYTES,
    batchBytes: batch.length,
    recordsPerBatch: recordCount,
    recordBytes: 1 * KiB,
    batchesPerSegment,
    buildBatches,
    appendPerCycleBytes: CYCLE_BATCHES * batch.length,
    finalPartitionBytes: finalBatches * batch.length,
    flush: 'never; flush() before SIGKILL',
    indexIntervalBytes: config.indexIntervalBytes,
    cyclesPerCache: cycles,
    timed: 'PartitionLog.open only, in a fresh process (node + tsx start-up and module loading excluded)',
  });
  const measured: Measured[] = [];
  try {
    const built = await runChild('build', ['--dir', logDir, '--batches', String(buildBatches)], 'READY');
    console.log(`built and SIGKILLed: ${JSON.stringify(built.payload)} in ${fmt(built.wallSeconds, 1)} s`);
    let expectedEnd = buildBatches * recordCount;

    // The builder was killed with a dirty tail; open it once (untimed) so every measured cycle
    // starts the same way: clean open, append, flush, SIGKILL.
    await runChild('open', ['--dir', logDir, '--expect-end', String(expectedEnd)], 'RESULT');

    for (let cycle = 0; cycle < 2 * cycles; cycle++) {
      const cache = cycle % 2 === 0 ? 'hot' : 'cold';
      await runChild('dirty', ['--dir', logDir, '--batches', String(CYCLE_BATCHES)], 'READY');
      expectedEnd += CYCLE_BATCHES * recordCount;
      if (stateSaysClean(logDir)) throw new Error('partition.state says clean after SIGKILL: the restart would not be unclean');
      const files = segmentFiles(logDir);
      if (cache === 'cold') dropCaches();
      const opened = await runChild('open', ['--dir', logDir, '--expect-end', String(expectedEnd)], 'RESULT');
      const report = opened.payload as OpenReport;
      measured.push({ kind: 'unclean', cache, activeBytes: files.activeBytes, report, childWallSeconds: opened.wallSeconds });
      console.log(
        `unclean ${cache.padEnd(4)}: open ${fmt(report.openSeconds * 1000, 1).padStart(7)} ms; ${files.count} segments, active ${fmt(files.activeBytes / MiB, 1)} MiB; scanned ${fmt(report.io.readBytes / MiB, 1)} MiB in ${fmt(report.io.readCalls)} reads (${fmt(report.io.readSeconds * 1000, 1)} ms waiting on them); ${report.io.datasyncCalls} fdatasyncs (${fmt(report.io.datasyncSeconds * 1000, 1)} ms); recovery ${JSON.stringify(report.recovery)}${report.truncated ? ' (torn tail truncated)' : ''}; child process ${fmt(opened.wallSeconds, 2)} s`,
      );
    }

    for (let cycle = 0; cycle < 2 * cycles; cycle++) {
      const cache = cycle % 2 === 0 ? 'hot' : 'cold';
      if (!stateSaysClean(logDir)) throw new Error('partition.state is not clean before a clean restart');
      const files = segmentFiles(logDir);
      if (cache === 'cold') dropCaches();
      const opened = await runChild('open', ['--dir', logDir, '--expect-end', String(expectedEnd)], 'RESULT');
      const report = opened.payload as OpenReport;
      measured.push({ kind: 'clean', cache, activeBytes: files.activeBytes, report, childWallSeconds: opened.wallSeconds });
      console.log(
        `clean   ${cache.padEnd(4)}: open ${fmt(report.openSeconds * 1000, 1).padStart(7)} ms; read ${fmt(report.io.readBytes)} B of segment data + ${fmt(report.io.readFileBytes)} B of state/index files; child process ${fmt(opened.wallSeconds, 2)} s`,
      );
    }

    const final = segmentFiles(logDir);
    console.log(`\nfinal partition: ${fmt(final.totalBytes)} B (${fmt(final.totalBytes / MiB, 1)} MiB) in ${final.count} segments`);
    console.log('restart         cache  open ms (median)  runs ms                 scanned MiB (median)  verdict');
    for (const kind of ['unclean', 'clean'] as const) {
      for (const cache of ['hot', 'cold'] as const) {
        const rows = measured.filter((row) => row.kind === kind && row.cache === cache);
        const ms = rows.map((row) => row.report.openSeconds * 1000);
        const scanned = median(rows.map((row) => row.report.io.readBytes / MiB));
        const openMs = median(ms);
        const verdictText = kind === 'unclean' ? (openMs < TARGET_SECONDS * 1000 ? `MET (target < ${TARGET_SECONDS} s)` : `MISSED (target < ${TARGET_SECONDS} s)`) : '(comparison)';
        console.log(`${kind.padEnd(15)} ${cache.padEnd(5)}  ${fmt(openMs, 1).padStart(15)}  ${runsText(ms, 1).padEnd(22)}  ${fmt(scanned, 1).padStart(20)}  ${verdictText}`);
      }
    }
    console.log(loadLine());
  } finally {
    removeDir(dataDir);
  }
}

switch (args.role) {
  case 'main':
    await main();
    break;
  case 'build':
  case 'dirty':
    await roleAppendThenWait(args.dir as string, Number(args.batches));
    break;
  case 'open':
    await roleOpen(args.dir as string, Number(args['expect-end']));
    break;
  default:
    throw new Error(`unknown role ${args.role}`);
}
