/**
 * A retried idempotent batch on a LogAppendTime topic, through a real broker process: the
 * broker recognises the retry as a duplicate and answers with the original's offsets and the
 * log-append time stamped on the original, as Kafka does, not the retry's own time. That holds
 * after a clean restart (producer state from the snapshot) and after SIGKILL (rebuilt by the
 * recovery scan). Method: plain grpc-js, one batch per partition with a producer id from
 * InitProducerId, sent again byte for byte later; partition 0 carries a prebuilt batch,
 * partition 1 plain records with ProducerInfo (the broker encodes the batch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { encodeBatch } from '../../src/protocol/index.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';
import { rawClients, unary } from '../support/raw-grpc.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOPIC = 'append-time';
const dataDir = mkdtempSync(join(tmpdir(), 'runnel-lat-'));
afterAll(async () => {
  await stopAllBrokerProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Answer {
  baseOffset: string;
  logAppendTimeMs: number;
}

/** Sends the same two partitions' data (same producer id, epoch and sequence) and returns both answers. */
async function send(broker: BrokerProcess, producer: { producerId: string; producerEpoch: number }): Promise<Answer[]> {
  const clients = rawClients(broker.address);
  try {
    const batch = encodeBatch({
      records: [0, 1].map((i) => ({ key: null, value: Buffer.from(`batch-${i}`), headers: [], timestamp: 1_000 + i })),
      producerId: Number(producer.producerId),
      producerEpoch: producer.producerEpoch,
      baseSequence: 0,
    });
    const response = await unary<Any, Any>(clients.log, 'Produce', {
      acks: 'ACKS_ALL',
      topics: [
        {
          topic: TOPIC,
          partitions: [
            { partition: 0, recordBatch: batch },
            { partition: 1, records: { records: [{ value: Buffer.from('plain-0') }, { value: Buffer.from('plain-1') }] }, producer: { ...producer, baseSequence: 0 } },
          ],
        },
      ],
    });
    const results = [...response.topics[0].partitions].sort((a: Any, b: Any) => a.partition - b.partition);
    return results.map((result: Any) => {
      expect(result.error).toBeNull();
      return { baseOffset: String(result.baseOffset), logAppendTimeMs: Number(result.logAppendTimeMs) };
    });
  } finally {
    clients.close();
  }
}

/** Waits until the wall clock is past `timeMs`, so a retry's own append time would differ. */
async function clockPast(timeMs: number): Promise<void> {
  await waitFor(() => Date.now() > timeMs + 5, { timeoutMs: 5_000, describe: () => `the clock never passed ${timeMs}` });
}

it('answers a retried batch with the original log-append time, also after a clean restart and after SIGKILL', async () => {
  let broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  const clients = rawClients(broker.address);
  await unary(clients.admin, 'CreateTopic', { name: TOPIC, partitions: 2, configs: { 'message.timestamp.type': 'LogAppendTime' } });
  const producer = await unary<Any, Any>(clients.log, 'InitProducerId', {});
  clients.close();
  const ids = { producerId: String(producer.producerId), producerEpoch: Number(producer.producerEpoch) };

  const original = await send(broker, ids);
  expect(original.map((answer) => answer.baseOffset)).toEqual(['0', '0']);
  for (const answer of original) expect(answer.logAppendTimeMs).toBeGreaterThan(1_000_000);

  await clockPast(Math.max(...original.map((answer) => answer.logAppendTimeMs)));
  expect(await send(broker, ids), 'a retry while the broker runs').toEqual(original);

  await broker.stop();
  broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  expect(await send(broker, ids), 'a retry after a clean restart').toEqual(original);

  await broker.kill('SIGKILL');
  broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'] });
  expect(await send(broker, ids), 'a retry after SIGKILL').toEqual(original);

  const read = rawClients(broker.address);
  try {
    const fetched = await unary<Any, Any>(read.log, 'Fetch', { topic: TOPIC, partition: 0, offset: '0' });
    expect(fetched.records.map((record: Any) => Number(record.timestampMs)), 'stored once, with the original time').toEqual([original[0]?.logAppendTimeMs, original[0]?.logAppendTimeMs]);
    expect(fetched.highWatermark).toBe('2');
  } finally {
    read.close();
    await broker.stop();
  }
}, 120_000);
