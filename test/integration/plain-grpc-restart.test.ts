/**
 * 100,000 keyed records through plain-record gRPC (no Runnel client: each record's partition
 * is picked the way Kafka's Java client would, murmur2 of the key), read back in order per
 * partition; then the broker is stopped cleanly and read again, then SIGKILLed mid-stream of
 * more produces and read again: every acknowledged record is there, once, in order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { partitionForKey } from '../../src/protocol/index.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';
import { rawClients, unary } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const PARTITIONS = 4;
const dataDir = mkdtempSync(join(tmpdir(), 'runnel-plain-'));
afterAll(async () => {
  await stopAllBrokerProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Sends records [from, to) keyed `key-<i % 1000>`, 1,000 per request; returns acked offsets per partition. */
async function produceRange(broker: BrokerProcess, from: number, to: number, acked: Map<number, string[]>): Promise<void> {
  const clients = rawClients(broker.address);
  try {
    for (let start = from; start < to; start += 1000) {
      const byPartition = new Map<number, { key: Buffer; value: Buffer }[]>();
      for (let i = start; i < Math.min(start + 1000, to); i++) {
        const key = Buffer.from(`key-${i % 1000}`);
        const partition = partitionForKey(key, PARTITIONS);
        const list = byPartition.get(partition) ?? [];
        list.push({ key, value: Buffer.from(`value-${i}`) });
        byPartition.set(partition, list);
      }
      const response = await unary<Any, Any>(clients.log, 'Produce', {
        acks: 'ACKS_ALL',
        topics: [{ topic: 'plain', partitions: [...byPartition].map(([partition, records]) => ({ partition, records: { records } })) }],
      });
      for (const result of response.topics[0].partitions) {
        expect(result.error).toBeNull();
        const list = acked.get(result.partition) ?? [];
        list.push(...(byPartition.get(result.partition) ?? []).map((record) => record.value.toString()));
        acked.set(result.partition, list);
      }
    }
  } finally {
    clients.close();
  }
}

/** More Fetch replies than reading a partition of this test takes (300,000 records at most, 1 MiB a reply). */
const FETCHES_PER_PARTITION_MAX = 1_000;

async function readAll(broker: BrokerProcess): Promise<Map<number, { key: string; value: string }[]>> {
  const clients = rawClients(broker.address);
  const result = new Map<number, { key: string; value: string }[]>();
  try {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const records: { key: string; value: string }[] = [];
      // Bounded: every reply must move the offset on, and there are at most so many replies.
      for (let offset = 0, fetches = 0; ; fetches++) {
        expect(fetches, `partition ${partition} still unread at offset ${offset}`).toBeLessThan(FETCHES_PER_PARTITION_MAX);
        const response = await unary<Any, Any>(clients.log, 'Fetch', { topic: 'plain', partition, offset: String(offset), maxBytes: 1 << 20 });
        for (const record of response.records) {
          expect(Number(record.offset), 'offsets are dense from 0').toBe(records.length);
          records.push({ key: record.key.toString(), value: record.value.toString() });
        }
        const nextOffset = Number(response.nextOffset);
        if (nextOffset >= Number(response.highWatermark)) break;
        expect(nextOffset, `a Fetch at ${offset} below the high watermark ${response.highWatermark} moved no further`).toBeGreaterThan(offset);
        offset = nextOffset;
      }
      result.set(partition, records);
    }
  } finally {
    clients.close();
  }
  return result;
}

function expectEverythingAcked(read: Map<number, { key: string; value: string }[]>, acked: Map<number, string[]>): void {
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const records = read.get(partition) ?? [];
    expect(records.map((record) => record.value)).toEqual(acked.get(partition) ?? []);
    for (const record of records) expect(partitionForKey(Buffer.from(record.key), PARTITIONS)).toBe(partition);
  }
}

it('keeps 100,000 plain-record produces in order per partition across a clean restart and a SIGKILL', async () => {
  const acked = new Map<number, string[]>();
  let broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  const admin = rawClients(broker.address);
  await unary(admin.admin, 'CreateTopic', { name: 'plain', partitions: PARTITIONS });
  admin.close();
  await produceRange(broker, 0, 100_000, acked);
  expectEverythingAcked(await readAll(broker), acked);

  expect(await broker.stop()).toBe(0);
  broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  expectEverythingAcked(await readAll(broker), acked);

  // More produces, then SIGKILL while a request may be in flight: only acked records count.
  const ackedCount = (): number => [...acked.values()].reduce((sum, list) => sum + list.length, 0);
  const before = ackedCount();
  const inFlight = produceRange(broker, 100_000, 300_000, acked).catch(() => undefined);
  await waitFor(() => ackedCount() >= before + 5_000, { timeoutMs: 60_000, describe: () => `only ${ackedCount() - before} more acked` });
  await broker.kill('SIGKILL');
  await inFlight;
  broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  const read = await readAll(broker);
  // Every acked record is there in order; records whose reply the kill swallowed may follow.
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const values = (read.get(partition) ?? []).map((record) => record.value);
    const expected = acked.get(partition) ?? [];
    let at = 0;
    for (const value of values) if (value === expected[at]) at++;
    expect(at).toBe(expected.length);
    expect(new Set(values).size).toBe(values.length);
  }
  await broker.stop();
}, 240_000);
