import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c, writeInt64 } from '../protocol/index.js';
import { nodeFileSystem } from './file-system.js';
import { encodeProducerSnapshot, tryDecodeProducerSnapshot, tryDecodeVersion1ProducerSnapshot, tryReadProducerSnapshot, writeProducerSnapshot, type ProducerSnapshot } from './producer-snapshot.js';
import { makeTempDir } from './test-helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

const snapshot: ProducerSnapshot = {
  offset: 1_000_000,
  producers: [
    {
      producerId: 9_007_199_254_740_991,
      epoch: 32_767,
      lastTimestamp: -1,
      batches: [{ firstSequence: 0x7fff_fffe, lastSequence: 0, baseOffset: 10, lastOffset: 12, maxTimestamp: -9_007_199_254_740_991 }],
    },
    {
      producerId: 0,
      epoch: 0,
      lastTimestamp: 1_700_000_000_000,
      batches: [1, 2, 3, 4, 5].map((i) => ({ firstSequence: i * 10, lastSequence: i * 10 + 9, baseOffset: 100 * i, lastOffset: 100 * i + 9, maxTimestamp: 1_699_999_999_995 + i })),
    },
  ],
};

/** The version-1 layout: as version 2 without the batches' maxTimestamp. */
function encodeVersion1(old: ProducerSnapshot): Buffer {
  const parts: Buffer[] = [];
  for (const entry of old.producers) {
    const producer = Buffer.alloc(19);
    writeInt64(producer, entry.producerId, 0);
    producer.writeInt16BE(entry.epoch, 8);
    writeInt64(producer, entry.lastTimestamp, 10);
    producer.writeUInt8(entry.batches.length, 18);
    parts.push(producer);
    for (const batch of entry.batches) {
      const bytes = Buffer.alloc(20);
      bytes.writeInt32BE(batch.firstSequence, 0);
      bytes.writeInt32BE(batch.lastSequence, 4);
      writeInt64(bytes, batch.baseOffset, 8);
      bytes.writeInt32BE(batch.lastOffset - batch.baseOffset, 16);
      parts.push(bytes);
    }
  }
  const header = Buffer.alloc(22);
  header.writeUInt32BE(0x5250_534e, 0);
  header.writeUInt16BE(1, 4);
  writeInt64(header, old.offset, 10);
  header.writeUInt32BE(old.producers.length, 18);
  const bytes = Buffer.concat([header, ...parts]);
  bytes.writeUInt32BE(crc32c(bytes.subarray(10)), 6);
  return bytes;
}

describe('producer snapshot', () => {
  it('round-trips every field at the ends of its range', () => {
    const bytes = encodeProducerSnapshot(snapshot);
    expect(bytes.length).toBe(22 + 2 * 19 + 6 * 28);
    expect(tryDecodeProducerSnapshot(bytes)).toEqual(snapshot);
    expect(tryDecodeProducerSnapshot(encodeProducerSnapshot({ offset: 0, producers: [] }))).toEqual({ offset: 0, producers: [] });
  });

  it('reads as no snapshot when any byte is flipped, or it is cut or extended', () => {
    const bytes = encodeProducerSnapshot(snapshot);
    for (let position = 0; position < bytes.length; position++) {
      const damaged = Buffer.from(bytes);
      damaged[position] = (damaged[position] as number) ^ 0x01;
      expect(tryDecodeProducerSnapshot(damaged), `flipped byte ${position}`).toBeUndefined();
    }
    for (let length = 0; length < bytes.length; length++) expect(tryDecodeProducerSnapshot(bytes.subarray(0, length))).toBeUndefined();
    expect(tryDecodeProducerSnapshot(Buffer.concat([bytes, Buffer.alloc(1)]))).toBeUndefined();
  });

  it('reads a version-1 snapshot (no batch timestamps) as none, so start-up rebuilds the state from the log', () => {
    const bytes = encodeVersion1(snapshot);
    expect(bytes.readUInt16BE(4)).toBe(1);
    expect(tryDecodeProducerSnapshot(bytes)).toBeUndefined();
  });

  it('reads a version-1 snapshot, for the producers retention took out of the log, with each newest batch only', () => {
    const decoded = tryDecodeVersion1ProducerSnapshot(encodeVersion1(snapshot));
    expect(decoded).toEqual({
      offset: snapshot.offset,
      isVersion1: true,
      producers: snapshot.producers.map((entry) => ({ ...entry, batches: [{ ...entry.batches[entry.batches.length - 1], maxTimestamp: entry.lastTimestamp }] })),
    });
    const bytes = encodeVersion1(snapshot);
    expect(tryDecodeVersion1ProducerSnapshot(bytes.subarray(0, bytes.length - 1))).toBeUndefined();
    expect(tryDecodeVersion1ProducerSnapshot(encodeProducerSnapshot(snapshot))).toBeUndefined();
  });

  it('rejects a snapshot that claims batches at or after its own offset', () => {
    const bytes = encodeProducerSnapshot({ ...snapshot, offset: 509 });
    expect(tryDecodeProducerSnapshot(bytes)).toBeUndefined();
  });

  it('is written atomically to producer.snapshot and read back; a missing or garbled file reads as none', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    expect(await tryReadProducerSnapshot(nodeFileSystem, temp.dir)).toBeUndefined();
    await writeProducerSnapshot(nodeFileSystem, temp.dir, snapshot);
    expect(await tryReadProducerSnapshot(nodeFileSystem, temp.dir)).toEqual(snapshot);
    const path = join(temp.dir, 'producer.snapshot');
    writeFileSync(path, readFileSync(path).subarray(0, 30));
    expect(await tryReadProducerSnapshot(nodeFileSystem, temp.dir)).toBeUndefined();
  });
});
