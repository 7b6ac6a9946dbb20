/**
 * The acknowledged-set oracle (STYLE H11) for one partition log: after the faults, the log
 * must hold exactly the batches whose appends were acknowledged, densely, byte for byte.
 */
import { expect } from 'vitest';
import { tryReadBatchHeader } from '../../src/protocol/index.js';
import type { PartitionLog } from '../../src/storage/index.js';

export interface Acked {
  baseOffset: number;
  lastOffset: number;
  /** The batch as stored (after the log wrote its base offset in place). */
  bytes: Buffer;
}

/** An acknowledged batch where only its place and bytes are checked (`expectAckedKept`). */
export type AckedBatch = Pick<Acked, 'baseOffset' | 'bytes'>;

/** The log holds exactly `acked`, densely and byte for byte, and nothing else. */
export async function expectExactlyAcked(log: PartitionLog, acked: readonly Acked[]): Promise<void> {
  const byBase = new Map(acked.map((batch) => [batch.baseOffset, batch]));
  let offset = log.logStartOffset;
  let seen = 0;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 1024 * 1024 });
    let position = 0;
    while (position < read.bytes.length) {
      const header = tryReadBatchHeader(read.bytes, position);
      expect(header?.baseOffset, 'offsets are dense').toBe(offset);
      const size = header?.sizeBytes ?? 0;
      const expected = byBase.get(offset);
      expect(expected, `batch at ${offset} was never acknowledged`).toBeDefined();
      expect(read.bytes.subarray(position, position + size).equals(expected?.bytes ?? Buffer.alloc(0)), `bytes at ${offset}`).toBe(true);
      seen++;
      position += size;
      offset = (expected?.lastOffset ?? offset) + 1;
    }
  }
  expect(seen).toBe(acked.length);
}

/**
 * After a crash: every batch in `acked` is at its offset, byte for byte, in a dense log.
 * Batches written but not acknowledged before the crash may be there too.
 */
export async function expectAckedKept(log: PartitionLog, acked: readonly AckedBatch[], where: string): Promise<void> {
  const stored = new Map<number, Buffer>();
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 1 << 20 });
    let position = 0;
    while (position < read.bytes.length) {
      const header = tryReadBatchHeader(read.bytes, position);
      expect(header?.baseOffset, `${where}: offsets are dense`).toBe(offset);
      if (header === undefined) return;
      stored.set(header.baseOffset, read.bytes.subarray(position, position + header.sizeBytes));
      position += header.sizeBytes;
      offset = header.baseOffset + header.lastOffsetDelta + 1;
    }
  }
  for (const batch of acked) {
    expect(stored.get(batch.baseOffset)?.equals(batch.bytes), `${where}: acknowledged batch at ${batch.baseOffset}`).toBe(true);
  }
}
