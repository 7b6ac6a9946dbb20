/**
 * The test harness's broker processes (test/support/broker-process.ts) leave nothing running
 * and signal only their own PID. Method: a real `runnel broker` child process given a start
 * deadline far shorter than its start-up, so the start fails; the PID it names must be gone by
 * the time the start rejects, without any call to `stopAllBrokerProcesses` (as in a test file
 * that never makes one). And a broker a signal already ended is not signalled again by
 * `stop()` (an afterAll's stop after a SIGKILL, or after a crash).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { rejectionOf } from '../support/rejections.js';

let dataDir: string | undefined;

afterEach(async () => {
  await stopAllBrokerProcesses();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}

it('kills, by PID, a broker that did not start by its deadline before the start fails', async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'runnel-start-deadline-'));
  // Loading the sources through tsx alone takes longer than 50 ms.
  const failure = await rejectionOf(startBrokerProcess({ dataDir, startTimeoutMs: 50 }));
  const message = failure instanceof Error ? failure.message : String(failure);
  const pid = Number(/broker \(pid (\d+)\) did not start within 50 ms/.exec(message)?.[1]);
  expect(pid, message).toBeGreaterThan(0);
  expect(isRunning(pid), `broker ${pid} still running after its start failed`).toBe(false);
});

it('stops a broker that a signal already ended without signalling its PID again', async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'runnel-stop-after-kill-'));
  const broker = await startBrokerProcess({ dataDir });
  await broker.kill('SIGKILL');
  await expect(broker.stop()).resolves.toBeNull();
});
