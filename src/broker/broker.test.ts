import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadBrokerConfig } from '../config/broker-config.js';
import { silentLogger } from '../observability/index.js';
import { decodeBatches, encodeBatch } from '../protocol/index.js';
import { PartitionLog } from '../storage/index.js';
import { Broker } from './broker.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function openBroker(): Promise<Broker> {
  const dataDir = mkdtempSync(join(tmpdir(), 'runnel-broker-unit-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const broker = await Broker.open({ config: { ...loadBrokerConfig({}), dataDir, logLevel: 'silent' }, logger: silentLogger });
  cleanups.push(() => broker.close());
  await broker.createTopic({ name: 'tail', partitions: 1, replicationFactor: 1, configs: {} });
  return broker;
}

function batch(values: string[]): Buffer {
  return encodeBatch({ records: values.map((value, i) => ({ key: null, value: Buffer.from(value), headers: [], timestamp: 1_700_000_000_000 + i })) });
}

const produce = (broker: Broker, values: string[]) => broker.produce({ topic: 'tail', partition: 0, batch: batch(values), acks: 'leader', timeoutMs: 10_000 });
const fetchAt = (broker: Broker, offset: number, options: { maxBytes?: number; minBytes?: number } = {}) =>
  broker.fetch({ topic: 'tail', partition: 0, offset, maxBytes: options.maxBytes ?? 1 << 20, minBytes: options.minBytes ?? 1, maxWaitMs: 10_000 });

describe('Broker.fetch parked at the log end', () => {
  it('is answered with the appended batches themselves, byte for byte what a read returns, without reading', async () => {
    const broker = await openBroker();
    await produce(broker, ['a0', 'a1']);
    const reads = vi.spyOn(PartitionLog.prototype, 'read');
    const parked = fetchAt(broker, 2);
    await vi.waitFor(() => expect(reads).toHaveBeenCalledTimes(1)); // the first read found nothing and parked
    await produce(broker, ['b0', 'b1', 'b2']);
    const handed = await parked;
    expect(reads).toHaveBeenCalledTimes(1);
    reads.mockRestore();

    const read = await fetchAt(broker, 2);
    expect(handed.bytes.equals(read.bytes)).toBe(true);
    expect(handed.nextOffset).toBe(read.nextOffset);
    expect(handed.highWatermark).toBe(5);
    expect([...decodeBatches(handed.bytes)].map((record) => [record.offset, record.value?.toString()])[0]).toEqual([2, 'b0']);
  });

  it('keeps to maxBytes with at least one whole batch, like a read', async () => {
    const broker = await openBroker();
    const parked = fetchAt(broker, 0, { maxBytes: 10 });
    await produce(broker, ['x'.repeat(100)]);
    const handed = await parked;
    const read = await fetchAt(broker, 0, { maxBytes: 10 });
    expect(handed.bytes.equals(read.bytes)).toBe(true);
    expect(handed.nextOffset).toBe(1);
  });

  it('falls back to reading when the wake-up batches do not start at its offset (minBytes not yet met)', async () => {
    const broker = await openBroker();
    const parked = fetchAt(broker, 0, { minBytes: 150 });
    await produce(broker, ['small']);
    await produce(broker, ['z'.repeat(200)]);
    const result = await parked;
    expect([...decodeBatches(result.bytes)].map((record) => record.offset)).toEqual([0, 1]);
    expect(result.nextOffset).toBe(2);
  });
});
