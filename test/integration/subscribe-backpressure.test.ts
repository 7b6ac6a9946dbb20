/**
 * A subscriber that stops reading must not make the broker buffer without bound. Method: a
 * real broker process holds a 160 MB partition; a subscriber in its own process subscribes
 * with 2 GiB of credit (so credit alone would not stop the broker), receives its first
 * message, and is then frozen with SIGSTOP, so nothing reads its socket. The broker's writes
 * then block on HTTP/2 flow control (call.write → 'drain'), so its resident memory must level
 * off far below the partition size. After SIGCONT the subscriber receives every byte.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { encodeBatch } from '../../src/protocol/index.js';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { rawClients, unary } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait-for.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = mkdtempSync(join(tmpdir(), 'runnel-stall-'));
const children = new Set<ChildProcess>();
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid as number, 'SIGKILL');
  await stopAllBrokerProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) * 1024;
}

it('keeps broker memory bounded while a subscriber with ample credit stops reading', async () => {
  const broker = await startBrokerProcess({ dataDir });
  const clients = rawClients(broker.address);
  await unary(clients.admin, 'CreateTopic', { name: 'stall', partitions: 1 });
  const value = Buffer.alloc(1000, 0x61);
  const batchCount = 160;
  for (let i = 0; i < batchCount; i++) {
    const batch = encodeBatch({ records: Array.from({ length: 1000 }, () => ({ key: null, value, headers: [], timestamp: Date.now() })) });
    await unary(clients.log, 'Produce', { acks: 'ACKS_ALL', topics: [{ topic: 'stall', partitions: [{ partition: 0, recordBatch: batch }] }] });
  }
  const totalBytes = batchCount * (1000 * 1000);
  const before = residentBytes(broker.pid);

  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/support/subscribe-child.ts'), broker.address, 'stall', String(2 ** 31)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  let received = 0;
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const [kind, bytes] = line.split(' ');
    if (kind === 'first' && received === 0) received = Number(bytes);
    if (kind === 'total') received = Number(bytes);
  });
  await waitFor(() => received > 0, { timeoutMs: 20_000, describe: () => 'the subscriber got no first message' });
  process.kill(child.pid as number, 'SIGSTOP');
  let peak = before;
  let stableSamples = 0;
  let previous = before;
  await waitFor(
    () => {
      const now = residentBytes(broker.pid);
      peak = Math.max(peak, now);
      stableSamples = Math.abs(now - previous) < 2 * 1024 * 1024 ? stableSamples + 1 : 0;
      previous = now;
      return stableSamples >= 20; // about a second of flat memory
    },
    { timeoutMs: 30_000, describe: () => `broker memory still moving: ${(previous / 2 ** 20).toFixed(0)} MiB` },
  );
  expect(peak - before).toBeLessThan(48 * 1024 * 1024);
  process.kill(child.pid as number, 'SIGCONT');
  await waitFor(() => received >= totalBytes - 8 * 1024 * 1024, { timeoutMs: 60_000, describe: () => `received ${received} of ${totalBytes} bytes` });
  child.kill('SIGKILL');
  clients.close();
  await broker.stop();
}, 120_000);
