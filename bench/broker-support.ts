/**
 * Shared orchestration of the broker benches (STYLE H14): starts the compiled broker
 * (`node bin/runnel.js broker`, never tsx), runs the measured client as a separate child
 * process on compiled JS (the `*-client.mjs` files, which import `dist/client`), reads a
 * process's CPU time from /proc, and measures the two baselines every broker figure is
 * compared with in the same run: the raw disk (bench/common.ts) and bare grpc-js
 * (transport-baseline.mjs).
 *
 * The orchestrators run under tsx (they import bench/common.ts); nothing timed runs in them.
 * `npm run build` must have run: `ensureBuilt` refuses stale or missing dist/ output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fmt, median, mbPerSecond, rawSequentialRead, rawSequentialWrite, removeDir, repoRoot, runsText } from './common.js';

export const MiB = 1024 * 1024;
export const KiB = 1024;

const CLOCK_TICKS_PER_SECOND = 100; // getconf CLK_TCK on Linux x86-64/arm64

// ---- Build check ---------------------------------------------------------------------------

/** Fails when dist/ is missing or older than a file under src/ (the benches measure dist/). */
export function ensureBuilt(): void {
  const distEntry = join(repoRoot, 'dist/client/index.js');
  if (!fs.existsSync(distEntry)) throw new Error('dist/ is missing: run `npm run build` first');
  const distMs = fs.statSync(join(repoRoot, 'dist/server/server.js')).mtimeMs;
  const newer: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && fs.statSync(path).mtimeMs > distMs) newer.push(path);
    }
  };
  walk(join(repoRoot, 'src'));
  if (newer.length > 0) console.log(`WARNING: ${newer.length} source file(s) newer than dist/ (e.g. ${newer[0]}): run \`npm run build\``);
}

// ---- CPU time ------------------------------------------------------------------------------

/** utime + stime of `pid` in seconds (10 ms resolution), from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds per thread name of `pid` (main thread "node", libuv pool, V8 GC helpers…). */
export function threadCpuSeconds(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const label = tid === String(pid) ? `main thread (${name})` : name;
      byName.set(label, (byName.get(label) ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND);
    } catch {
      // thread gone
    }
  }
  return byName;
}

/** `after − before` per thread name, largest first, as "name 1.23 s" strings. */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): string[] {
  return [...after]
    .map(([name, seconds]) => [name, seconds - (before.get(name) ?? 0)] as const)
    .filter(([, seconds]) => seconds > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, seconds]) => `${name} ${seconds.toFixed(2)} s`);
}

// ---- Broker process ------------------------------------------------------------------------

export interface BrokerHandle {
  readonly pid: number;
  readonly port: number;
  readonly address: string;
  readonly dataDir: string;
  /**
   * Major (mark-compact) GCs so far, from the broker's --trace-gc lines (with `countGc`).
   * They explain most run-to-run variance here: see BROKER-RESULTS.md, "GC storms".
   */
  majorGcCount(): number;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * The node flags on bin/runnel.js's `#!/usr/bin/env -S node …` line: a broker started here
 * runs exactly as `runnel broker` and `npm start` run it. `nodeArgs` come after, so an
 * experiment can override them (e.g. `--initial-old-space-size=16`).
 */
export const BIN_NODE_FLAGS: readonly string[] = (() => {
  const shebang = fs.readFileSync(join(repoRoot, 'bin/runnel.js'), 'utf8').split('\n')[0] ?? '';
  const match = /^#!\/usr\/bin\/env -S node(.*)$/.exec(shebang);
  if (match === null) throw new Error(`bin/runnel.js starts with ${JSON.stringify(shebang)}, not "#!/usr/bin/env -S node …"`);
  return (match[1] ?? '').split(' ').filter((flag) => flag.length > 0);
})();

/** Starts the compiled broker on 127.0.0.1, port 0; resolves when it logs "broker started". */
export async function startBroker(options: {
  dataDir: string;
  flush: 'never' | 'always' | `interval:${number}`;
  nodeArgs?: string[];
  extraArgs?: string[];
  env?: NodeJS.ProcessEnv;
  /** Every stdout line (log lines, and e.g. --trace-gc output). */
  onLine?: (line: string) => void;
  /** Adds --trace-gc (one short line per GC on stdout) and counts major GCs. */
  countGc?: boolean;
}): Promise<BrokerHandle> {
  fs.mkdirSync(options.dataDir, { recursive: true });
  let majorGcs = 0;
  const args = [
    ...(options.countGc === true ? ['--trace-gc'] : []),
    ...BIN_NODE_FLAGS,
    ...(options.nodeArgs ?? []),
    join(repoRoot, 'bin/runnel.js'),
    'broker',
    '--data-dir',
    options.dataDir,
    '--port',
    '0',
    '--host',
    '127.0.0.1',
    '--flush',
    options.flush,
    // "broker started" (with the port) is an info line: at warn the port is never printed.
    // Info adds only lifecycle lines (topic created/deleted), nothing per request.
    '--log-level',
    'info',
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start in 30 s: ${stderr.join('')}`)), 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      options.onLine?.(line);
      if (line.includes(' ms: Mark-Compact') || line.includes(' ms: Mark-sweep')) majorGcs++;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg === 'broker started' && typeof entry.port === 'number') {
          clearTimeout(timer);
          resolve(entry.port);
        }
      } catch {
        // not a log line
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`broker exited before starting: ${stderr.join('')}`));
    });
  });
  const pid = child.pid as number;
  return {
    pid,
    port,
    address: `127.0.0.1:${port}`,
    dataDir: options.dataDir,
    majorGcCount: () => majorGcs,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---- Measured child processes --------------------------------------------------------------

/**
 * Runs `node <script> <args>` (a compiled-JS client), forwards its stderr, and resolves with
 * the JSON object it prints as its last stdout line. Rejects on a non-zero exit.
 */
export async function runClient<T>(script: string, args: string[], options: { nodeArgs?: string[] } = {}): Promise<T> {
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), join(repoRoot, 'bench', script), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => lines.push(line));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  await new Promise((resolve) => setImmediate(resolve));
  const last = lines.at(-1);
  if (code !== 0 || last === undefined) throw new Error(`${script} ${args.join(' ')} exited with ${String(code)}; stdout: ${lines.join('\n')}`);
  return JSON.parse(last) as T;
}

/**
 * Starts `node bench/<script> <args>` and exposes its first stdout JSON line (`ready`: the
 * child says it is set up) and its last one (`done`, at a zero exit). For long-lived
 * children (the bare gRPC server) and for two clients that must run at once (latency).
 */
export function spawnJsonChild<Ready, Done = Ready>(script: string, args: string[]): { pid: number; ready: Promise<Ready>; done: Promise<Done>; stop(): Promise<void> } {
  const child = spawn(process.execPath, [join(repoRoot, 'bench', script), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let onFirst: ((line: string) => void) | undefined;
  const first = new Promise<string>((resolve) => (onFirst = resolve));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(line);
    if (lines.length === 1) onFirst?.(line);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = Promise.race([
    first.then((line) => JSON.parse(line) as Ready),
    exited.then((code) => Promise.reject(new Error(`${script} exited with ${String(code)} before it was ready`))),
  ]);
  const done = exited.then(async (code) => {
    await new Promise((resolve) => setImmediate(resolve));
    const last = lines.at(-1);
    if (code !== 0 || last === undefined) throw new Error(`${script} ${args.join(' ')} exited with ${String(code)}; stdout: ${lines.join('\n')}`);
    return JSON.parse(last) as Done;
  });
  ready.catch(() => undefined);
  done.catch(() => undefined);
  return {
    pid: child.pid as number,
    ready,
    done,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

// ---- Baselines -----------------------------------------------------------------------------

export interface DiskBaseline {
  writeMBps: number;
  readMBps: number;
}

/**
 * Raw sequential write (1 MiB `fs.write`s, no fsync, as flush=never) and then a (hot) read of
 * the same file, `bytes` long, in `dir` (same file system as the broker's data).
 * With `syncEveryBytes` the write fdatasyncs after each such group (the flush=always shape).
 */
export async function diskBaseline(dir: string, bytes: number, syncEveryBytes = 0): Promise<DiskBaseline> {
  fs.mkdirSync(dir, { recursive: true });
  const path = join(dir, 'raw-baseline.bin');
  try {
    const writeSeconds = await rawSequentialWrite(path, bytes, MiB, syncEveryBytes);
    const read = await rawSequentialRead(path, MiB);
    return { writeMBps: mbPerSecond(bytes, writeSeconds), readMBps: mbPerSecond(read.bytes, read.seconds) };
  } finally {
    fs.rmSync(path, { force: true });
  }
}

/** Latency of one small append + fdatasync (the disk's part of a flush=always round trip), ms. */
export async function fdatasyncLatency(dir: string, count: number, writeBytes = 4 * KiB): Promise<{ p50Ms: number; p99Ms: number; maxMs: number }> {
  fs.mkdirSync(dir, { recursive: true });
  const path = join(dir, 'raw-fsync.bin');
  const handle = await fs.promises.open(path, 'w');
  const chunk = Buffer.alloc(writeBytes, 0x61);
  const samples: number[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const start = process.hrtime.bigint();
      await handle.write(chunk, 0, chunk.length, index * writeBytes);
      await handle.datasync();
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  } finally {
    await handle.close();
    fs.rmSync(path, { force: true });
  }
  samples.sort((a, b) => a - b);
  return { p50Ms: samples[Math.floor(samples.length * 0.5)] as number, p99Ms: samples[Math.floor(samples.length * 0.99)] as number, maxMs: samples.at(-1) as number };
}

export interface TransportBaseline {
  /** Client-streaming upload of 1 MiB messages that the server discards. */
  uploadMBps: number;
  /** Server-streaming download of 1 MiB messages. */
  downloadMBps: number;
  /** Server process CPU per MB, both directions (µs). */
  uploadServerCpuUsPerMB: number;
  downloadServerCpuUsPerMB: number;
}

/**
 * Bare grpc-js between two processes, CHANNEL_OPTIONS from dist/protocol/grpc.js on both
 * ends; `widenWindow` also raises the server's HTTP/2 receive window as src/server does.
 */
export async function transportBaseline(options: { widenWindow: boolean; bytes: number }): Promise<TransportBaseline> {
  const server = spawnJsonChild<{ port: number }>('transport-baseline.mjs', ['server', options.widenWindow ? '--widen-window' : '--default-window']);
  try {
    const address = `127.0.0.1:${(await server.ready).port}`;
    const cpu0 = processCpuSeconds(server.pid);
    const upload = await runClient<{ bytes: number; seconds: number }>('transport-baseline.mjs', ['upload', address, String(options.bytes)]);
    const cpu1 = processCpuSeconds(server.pid);
    const download = await runClient<{ bytes: number; seconds: number }>('transport-baseline.mjs', ['download', address, String(options.bytes)]);
    const cpu2 = processCpuSeconds(server.pid);
    return {
      uploadMBps: mbPerSecond(upload.bytes, upload.seconds),
      downloadMBps: mbPerSecond(download.bytes, download.seconds),
      uploadServerCpuUsPerMB: ((cpu1 - cpu0) * 1e6) / (upload.bytes / 1e6),
      downloadServerCpuUsPerMB: ((cpu2 - cpu1) * 1e6) / (download.bytes / 1e6),
    };
  } finally {
    await server.stop();
  }
}

// ---- Reporting -----------------------------------------------------------------------------

export function medianLine(label: string, values: readonly number[], unit: string, digits = 0): string {
  return `${label}: ${fmt(median(values), digits)} ${unit} (runs ${runsText(values, digits)})`;
}

export function targetVerdict(value: number, target: number, isAtMost = false): string {
  const met = isAtMost ? value <= target : value >= target;
  return `${met ? 'MET' : 'MISSED'} (target ${isAtMost ? '≤' : '≥'} ${fmt(target, isAtMost ? 1 : 0)})`;
}

export { median, removeDir };

/** What every measured produce or consume client prints, with the CPU accounting of its window. */
export interface ClientRun {
  records: number;
  seconds: number;
  recordsPerSec: number;
  valueMBps: number;
  brokerCpuSeconds: number;
  clientCpuSeconds: number;
  /** Whole machine, all cores: minus broker and client, what else ran meanwhile. */
  machineBusySeconds: number;
  /** Broker mark-compact GCs during the run (set by the orchestrator). */
  majorGcs?: number;
}

/** CPU (in cores) used by everything but the broker and the client during a run. */
export function otherCores(result: ClientRun): number {
  return Math.max(0, result.machineBusySeconds - result.brokerCpuSeconds - result.clientCpuSeconds) / result.seconds;
}

/** Command-line `--name value` flags into a record (strings; the caller converts). */
export { parseFlags } from './client-flags.mjs';
