/**
 * A subscriber that stops reading must not make the broker buffer without bound. Method: a
 * real broker process holds a 96 MiB partition; a raw gRPC client subscribes with 2 GiB of
 * credit (so credit alone would not stop the broker) and then reads nothing. The broker's
 * writes then block on HTTP/2 flow control (call.write → 'drain'), so its resident memory must
 * level off far below the partition size. Finally the client reads, and every byte arrives.
 */
import type * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { encodeBatch } from '../../src/protocol/index.js';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { rawClients, unary } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait-for.js';

const dataDir = mkdtempSync(join(tmpdir(), 'runnel-stall-'));
afterAll(async () => {
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
  const batchCount = 96;
  for (let i = 0; i < batchCount; i++) {
    const batch = encodeBatch({ records: Array.from({ length: 1000 }, () => ({ key: null, value, headers: [], timestamp: Date.now() })) });
    await unary(clients.log, 'Produce', { acks: 'ACKS_ALL', topics: [{ topic: 'stall', partitions: [{ partition: 0, recordBatch: batch }] }] });
  }
  const totalBytes = batchCount * (1000 * 1000);
  const before = residentBytes(broker.pid);

  const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<object, { recordBatches: Buffer }> }).Subscribe();
  call.on('error', () => undefined);
  call.write({ start: { topic: 'stall', partition: 0, offset: '0', creditBytes: 2 ** 31, format: 'RECORD_FORMAT_BATCHES' } });
  // No 'data' listener: the client stream stays paused and stops taking bytes off the socket.
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
    { timeoutMs: 20_000, describe: () => `broker memory still moving: ${(previous / 2 ** 20).toFixed(0)} MiB` },
  );
  expect(peak - before).toBeLessThan(48 * 1024 * 1024);

  let received = 0;
  call.on('data', (message) => {
    received += message.recordBatches.length;
  });
  await waitFor(() => received >= totalBytes, { timeoutMs: 60_000, describe: () => `received ${received} of ${totalBytes} bytes` });
  call.cancel();
  clients.close();
  await broker.stop();
}, 120_000);
