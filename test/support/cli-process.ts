/**
 * `runnel …` as a child process for tests, as users run it: `node --import tsx
 * src/cli/run.ts …` (the same `main()` that bin/runnel.js runs from dist/, without needing a
 * build), stdin, stdout and stderr piped. Each one is killed by PID after its deadline;
 * `killAllCliProcesses` (call it in afterEach) kills any still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI_TIMEOUT_MS_DEFAULT = 30_000;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliProcess {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  write(text: string | Buffer): void;
  endInput(): void;
  signal(signal: NodeJS.Signals): void;
  /** Settles when the process exits; rejects (after SIGKILL) when it outlives its deadline. */
  readonly result: Promise<CliResult>;
}

const running = new Set<ChildProcess>();

export interface CliProcessOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /**
   * Stop reading stdout once this many characters arrived, as a reader that stalls: the pipe
   * then fills and the command's writes wait.
   */
  stdoutReadCharsMax?: number;
  /** A descriptor for the command's stdout instead of a pipe (stdout() is then empty). */
  stdout?: number;
}

export function startCliProcess(args: string[], options: CliProcessOptions = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'src/cli/run.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, RUNNEL_DEBUG: '', ...options.env },
    stdio: ['pipe', options.stdout ?? 'pipe', 'pipe'],
  });
  running.add(child);
  const pid = child.pid as number;
  let stdout = '';
  let stderr = '';
  let hasExited = false;
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    stdout += text;
    if (options.stdoutReadCharsMax !== undefined && stdout.length >= options.stdoutReadCharsMax && !hasExited) child.stdout?.pause();
  });
  // A paused stdout never ends, and 'close' waits for it: once the process is gone, read the rest.
  child.once('exit', () => {
    hasExited = true;
    child.stdout?.resume();
  });
  // Piped always (only stdout may be given a descriptor instead).
  const [stdin, stderrStream] = [child.stdin as Writable, child.stderr as Readable];
  stderrStream.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  stdin.on('error', () => undefined); // the CLI may exit before reading all its input
  const timeoutMs = options.timeoutMs ?? CLI_TIMEOUT_MS_DEFAULT;
  const result = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      killByPid(child);
      reject(new Error(`runnel ${args.join(' ')} did not finish within ${timeoutMs} ms; stdout: ${stdout.slice(-500)}; stderr: ${stderr}`));
    }, timeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, signal, stdout, stderr });
    });
  });
  return {
    pid,
    stdout: () => stdout,
    stderr: () => stderr,
    write: (text) => stdin.write(text),
    endInput: () => stdin.end(),
    signal: (signal) => process.kill(pid, signal),
    result,
  };
}

/** Kills (SIGKILL, by PID) every CLI process still running; for afterEach. */
export function killAllCliProcesses(): void {
  for (const child of running) killByPid(child);
  running.clear();
}

function killByPid(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
}
