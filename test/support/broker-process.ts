/**
 * Real broker processes for tests: `runnel broker` from sources in a child process, on
 * 127.0.0.1 with port 0 and the given data dir. Resolves once the broker logs "broker
 * started" with its port; one that has not started by its deadline is killed (by PID) before
 * the start fails. Every process started here is tracked; `stopAllBrokerProcesses` (call it
 * in afterEach) kills any still running, by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface BrokerProcess {
  readonly address: string;
  readonly port: number;
  readonly pid: number;
  /** Log lines (JSON) the broker printed so far. */
  readonly logs: string[];
  /** Settles when the process ends, with its exit code (null when a signal ended it). */
  readonly exited: Promise<number | null>;
  /** The signal that ended the process, once it has ended by one (else null). */
  readonly exitSignal: NodeJS.Signals | null;
  /** SIGTERM, then wait for a clean exit; resolves with the exit code (null when a signal ended it, also earlier). */
  stop(): Promise<number | null>;
  /** Sends `signal` (default SIGKILL) and waits for the process to end. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const running = new Set<ChildProcess>();

export interface BrokerProcessOptions {
  dataDir: string;
  /** Extra flags, e.g. ['--flush', 'always']. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Fixed port (for restarts on the same address); 0 by default. */
  port?: number;
  startTimeoutMs?: number;
  /**
   * The script run instead of src/cli/run.ts, and the arguments before `broker`: a test
   * entry that starts the broker over a faulty disk (test/support/hung-disk-broker.ts).
   */
  entry?: { script: string; args: string[] };
  /**
   * Aborting it before the broker has started SIGKILLs the process (by PID) and fails the
   * start: a crash in the middle of start-up and recovery (`test/support/broker-chaos.ts`).
   */
  signal?: AbortSignal;
}

export async function startBrokerProcess(options: BrokerProcessOptions): Promise<BrokerProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', options.entry?.script ?? join(REPO_ROOT, 'src/cli/run.ts'), ...(options.entry?.args ?? []), 'broker', '--data-dir', options.dataDir, '--host', '127.0.0.1', '--port', String(options.port ?? 0), ...(options.args ?? [])],
    { cwd: REPO_ROOT, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  running.add(child);
  let exitSignal: NodeJS.Signals | null = null;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code, signal) => {
    running.delete(child);
    exitSignal = signal;
    resolve(code);
  }));
  const logs: string[] = [];
  const stderr: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const started = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker (pid ${String(child.pid)}) did not start within ${options.startTimeoutMs ?? 30_000} ms; stderr: ${stderr.join('')}`)), options.startTimeoutMs ?? 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      logs.push(line);
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
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${String(code)} before starting; stderr: ${stderr.join('')}`));
    });
    options.signal?.addEventListener('abort', () => reject(new Error(`broker (pid ${String(child.pid)}) start aborted`)), { once: true });
  });
  const pid = child.pid as number;
  let port: number;
  try {
    port = await started;
  } catch (error) {
    // A broker that is still starting when its deadline passes (or its start is aborted) is
    // killed here, by PID, so a failed start leaves no process behind even in a file that
    // never calls `stopAllBrokerProcesses`.
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGKILL');
      await exited;
    }
    throw error;
  }
  return {
    address: `127.0.0.1:${port}`,
    port,
    pid,
    logs,
    exited,
    get exitSignal() {
      return exitSignal;
    },
    async stop() {
      // Already gone (also when a signal ended it): its PID may belong to another process now.
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      process.kill(pid, 'SIGTERM');
      return exited;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(pid, signal);
      await exited;
    },
  };
}

/** Kills (SIGKILL, by PID) every broker process still running; for afterEach. */
export async function stopAllBrokerProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
          child.once('exit', () => resolve());
          process.kill(child.pid, 'SIGKILL');
        }),
    ),
  );
}

/**
 * An afterEach teardown for a test with one broker process and a client of it: closes the
 * client (bounded), kills the broker and any other still running (SIGKILL, by PID) and removes
 * the data directory. Each may be absent (a test that failed before making it).
 */
export async function tearDownBrokerProcess(state: {
  client?: { close(options: { timeoutMs: number }): Promise<unknown> } | undefined;
  broker?: BrokerProcess | undefined;
  dataDir?: string | undefined;
}): Promise<void> {
  await state.client?.close({ timeoutMs: 1_000 });
  await state.broker?.kill('SIGKILL');
  await stopAllBrokerProcesses();
  if (state.dataDir !== undefined) rmSync(state.dataDir, { recursive: true, force: true });
}
