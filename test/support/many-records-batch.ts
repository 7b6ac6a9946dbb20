/**
 * One gzip batch of many tiny records, the shape a topic with a raised max.message.bytes can
 * hold millions of (a few hundred KiB for 200,000 records): for tests that a reader decodes
 * such a batch a slice at a time. Sent with plain gRPC Produce, since a producer splits its
 * batches far smaller.
 */
import { encodeBatch } from '../../src/protocol/index.js';
import { unary, type RawClients } from './raw-grpc.js';

/** `count` records from offset 0: no key, value the last digit of the offset in ASCII, timestamps `timestampMs` + offset. */
export function manyTinyRecordsBatch(count: number, timestampMs = Date.now()): Buffer {
  return encodeBatch({
    records: Array.from({ length: count }, (_, index) => ({ key: null, value: Buffer.from(String(index % 10)), headers: [], timestamp: timestampMs + index })),
    compression: 'gzip',
  });
}

/** Appends `batch` to partition 0 of `topic` (acks all); rejects when the broker refuses it. */
export async function produceRawBatch(clients: RawClients, topic: string, batch: Buffer): Promise<void> {
  const response = await unary<object, { topics: { partitions: { error: { reason: string; message: string } | null }[] }[] }>(clients.log, 'Produce', {
    acks: 'ACKS_ALL',
    topics: [{ topic, partitions: [{ partition: 0, recordBatch: batch }] }],
  });
  const error = response.topics[0]?.partitions[0]?.error;
  if (error !== null && error !== undefined) throw new Error(`produce to ${topic} refused: ${error.reason} ${error.message}`);
}
