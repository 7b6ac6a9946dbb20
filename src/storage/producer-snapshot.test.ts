import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileSystem } from './file-system.js';
import { encodeProducerSnapshot, tryDecodeProducerSnapshot, tryReadProducerSnapshot, writeProducerSnapshot, type ProducerSnapshot } from './producer-snapshot.js';
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
      batches: [{ firstSequence: 0x7fff_fffe, lastSequence: 0, baseOffset: 10, lastOffset: 12 }],
    },
    {
      producerId: 0,
      epoch: 0,
      lastTimestamp: 1_700_000_000_000,
      batches: [1, 2, 3, 4, 5].map((i) => ({ firstSequence: i * 10, lastSequence: i * 10 + 9, baseOffset: 100 * i, lastOffset: 100 * i + 9 })),
    },
  ],
};

describe('producer snapshot', () => {
  it('round-trips every field at the ends of its range', () => {
    const bytes = encodeProducerSnapshot(snapshot);
    expect(bytes.length).toBe(22 + 2 * 19 + 6 * 20);
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
