/**
 * A client that is not ours produces and fetches: test/python/runnel_client_test.py, run with
 * Debian's /usr/bin/python3 and python3-grpcio, with stubs it generates from proto/ at run time
 * (Debian's protoc + grpc_python_plugin), against a real `runnel broker` process on a fresh
 * data dir. The script checks every field it reads back and prints a JSON summary last.
 *
 * The toolchain comes from apt via scripts/install-test-deps.sh, run here only when something
 * is missing. When it cannot be installed (not root, no apt) the test fails with the script's
 * message: a silent skip would hide that the contract went untested from a foreign client.
 */
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = '/usr/bin/python3';
const SCRIPT = join(REPO_ROOT, 'test/python/runnel_client_test.py');
const INSTALL = join(REPO_ROOT, 'scripts/install-test-deps.sh');
const SCRIPT_TIMEOUT_MS = 60_000;

interface Summary {
  ok: boolean;
  passed: number;
  failed: string[];
  generator: string;
  grpcio: string;
  protobuf: string;
  elapsed_ms: number;
}

function toolchainPresent(): boolean {
  if (!existsSync('/usr/bin/protoc') || !existsSync('/usr/bin/grpc_python_plugin') || !existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', 'import grpc, google.protobuf'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

/** Runs a command with a time limit, killing it (by PID) when the limit passes. */
function run(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

let dataDir: string;
let broker: BrokerProcess | undefined;
let installError: string | undefined;

beforeAll(async () => {
  if (!toolchainPresent()) {
    // apt-get update + install takes seconds on a good mirror; allow for a slow one.
    const installed = await run('bash', [INSTALL], 540_000);
    if (installed.code !== 0 || !toolchainPresent()) {
      installError =
        `scripts/install-test-deps.sh could not provide the Python gRPC toolchain ` +
        `(exit ${String(installed.code)}${installed.timedOut ? ', timed out' : ''}):\n${installed.stdout.slice(-2000)}${installed.stderr}`;
    }
  }
  dataDir = mkdtempSync(join(tmpdir(), 'runnel-python-'));
  broker = await startBrokerProcess({ dataDir });
}, 600_000);

afterAll(async () => {
  await broker?.stop();
  await stopAllBrokerProcesses();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

describe('a client generated from proto/ by tooling that is not ours', () => {
  it('Debian python3-grpcio creates a topic, produces, fetches, lists offsets, long-polls and subscribes', async () => {
    if (installError !== undefined) throw new Error(installError);
    const result = await run(PYTHON, [SCRIPT, (broker as BrokerProcess).address, 'py-client'], SCRIPT_TIMEOUT_MS);
    const output = `exit ${String(result.code)}${result.timedOut ? ' (killed after the time limit)' : ''}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
    expect(result.timedOut, output).toBe(false);
    expect(result.code, output).toBe(0);
    const lastLine = result.stdout.trim().split('\n').at(-1) ?? '';
    const summary = JSON.parse(lastLine) as Summary;
    expect(summary, output).toMatchObject({ ok: true, failed: [] });
    expect(summary.passed).toBeGreaterThan(100);
    expect(summary.grpcio).toMatch(/^1\./);
    expect(summary.generator).toMatch(/^libprotoc 3\./);
  });
});
