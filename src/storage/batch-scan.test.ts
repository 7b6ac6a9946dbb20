import fc from 'fast-check';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limits } from '../config/limits.js';
import { BatchField, crc32c, BATCH_CRC_START, encodeBatch } from '../protocol/index.js';
import { findValidBatchAfter, scanBatches } from './batch-scan.js';
import { ForwardingFileHandle, nodeFileSystem, type FileHandle } from './file-system.js';

/** A read-only segment held in memory. */
class BytesFileHandle implements FileHandle {
  readonly path = 'memory.log';
  constructor(private readonly bytes: Buffer) {}
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    const count = Math.max(0, Math.min(length, this.bytes.length - position));
    this.bytes.copy(buffer, offset, position, position + count);
    return Promise.resolve(count);
  }
  writev(): Promise<number> {
    throw new Error('read-only');
  }
  datasync(): Promise<void> {
    return Promise.resolve();
  }
  truncate(): Promise<void> {
    throw new Error('read-only');
  }
  sizeBytes(): Promise<number> {
    return Promise.resolve(this.bytes.length);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Notes the largest buffer any read was given: what the scan allocated for one batch. */
class ReadSizeRecorder extends ForwardingFileHandle {
  bufferBytesMax = 0;
  override read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    this.bufferBytesMax = Math.max(this.bufferBytesMax, buffer.length);
    return super.read(buffer, offset, length, position);
  }
}

describe('scanBatches and findValidBatchAfter on a damaged length field', () => {
  let dir: string;
  let handle: FileHandle;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'runnel-batch-scan-'));
  });
  afterEach(async () => {
    await handle?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A segment of one good batch, then a batch whose batchLength says 64 MiB + 1 KiB (one bit
   * flipped in a 1 KiB batch), a good batch, then sparse bytes up to 66 MiB: a length no append could have
   * written (`limits.batchBytesMax`), but one the file is long enough to hold.
   */
  async function segmentWithHugeLength(): Promise<{ recorder: ReadSizeRecorder; firstBytes: number; nextPosition: number; sizeBytes: number }> {
    const first = encodeBatch({ records: [{ key: null, value: Buffer.alloc(100), headers: [], timestamp: 1 }] });
    const damaged = encodeBatch({ records: [{ key: null, value: Buffer.alloc(1000), headers: [], timestamp: 1 }], baseOffset: 1 });
    damaged.writeInt32BE(damaged.readInt32BE(BatchField.batchLength) | 0x0400_0000, BatchField.batchLength);
    damaged.writeUInt32BE(crc32c(damaged.subarray(BATCH_CRC_START)), BatchField.crc);
    const next = encodeBatch({ records: [{ key: null, value: null, headers: [], timestamp: 1 }], baseOffset: 2 });
    const path = join(dir, '00000000000000000000.log');
    handle = await nodeFileSystem.open(path, 'create');
    await handle.writev([first, damaged, next], 0);
    const sizeBytes = 66 * 1024 * 1024;
    expect(damaged.readInt32BE(BatchField.batchLength)).toBeGreaterThan(limits.batchBytesMax);
    await handle.truncate(sizeBytes);
    return { recorder: new ReadSizeRecorder(handle), firstBytes: first.length, nextPosition: first.length + damaged.length, sizeBytes };
  }

  it('reports a batch longer than the largest batch an append accepts as a bad header, without reading it into memory', async () => {
    const { recorder, firstBytes, sizeBytes } = await segmentWithHugeLength();
    const result = await scanBatches(recorder, { fromPosition: 0, toPosition: sizeBytes, expectedBaseOffset: 0, chunkBytes: 64 * 1024 });
    expect(result).toMatchObject({ validEndPosition: firstBytes, nextOffset: 1, batchCount: 1, problem: { kind: 'bad-header', position: firstBytes } });
    expect(result.problem?.detail).toMatch(/larger than the largest batch/);
    expect(recorder.bufferBytesMax).toBeLessThanOrEqual(64 * 1024);
  });

  it('steps over a batch longer than the largest an append accepts, without reading it, when looking past damage', async () => {
    const { recorder, firstBytes, nextPosition, sizeBytes } = await segmentWithHugeLength();
    expect(await findValidBatchAfter(recorder, { fromPosition: firstBytes, toPosition: sizeBytes, offsetAtLeast: 1 }, 1024 * 1024)).toBe(nextPosition);
    expect(recorder.bufferBytesMax).toBeLessThanOrEqual(1024 * 1024);
  });
});

describe('scanBatches and findValidBatchAfter on damaged segments', () => {
  /**
   * Three good batches back to back, then bytes changed, cut or added anywhere (the CRC left
   * as it is, as damage leaves it, or recomputed for a damaged header field): the scan never
   * throws, stops at a batch boundary it reports, counts only whole valid batches before it,
   * and the search past damage never throws nor answers a position outside its range.
   */
  it('reports every damage as a problem at a batch boundary, never throwing', async () => {
    const batchArbitrary = fc.array(fc.uint8Array({ maxLength: 200 }), { minLength: 1, maxLength: 4 });
    const damageArbitrary = fc.oneof(
      fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }), isCrcFixed: fc.boolean() }),
      fc.record({ kind: fc.constant('length' as const), batchIndex: fc.nat({ max: 2 }), value: fc.constantFrom(-1, 0, 48, 49, 0x7fff_ffff, limits.batchBytesMax, 1 << 20) }),
      fc.record({ kind: fc.constant('cut' as const), to: fc.nat() }),
      fc.record({ kind: fc.constant('append' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 80 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.tuple(batchArbitrary, batchArbitrary, batchArbitrary), damageArbitrary, fc.integer({ min: 61, max: 4096 }), async (values, damage, chunkBytes) => {
        let baseOffset = 0;
        const batches = values.map((recordValues) => {
          const batch = encodeBatch({ records: recordValues.map((value) => ({ key: null, value: Buffer.from(value), headers: [], timestamp: 1 })), baseOffset });
          baseOffset += recordValues.length;
          return batch;
        });
        const starts = [0, batches[0]!.length, batches[0]!.length + batches[1]!.length];
        let segment = Buffer.concat(batches);
        if (damage.kind === 'byte') {
          const at = damage.at % segment.length;
          segment[at] = damage.value;
          const batchIndex = starts.findLastIndex((start) => start <= at);
          const start = starts[batchIndex]!;
          if (damage.isCrcFixed) segment.writeUInt32BE(crc32c(segment.subarray(start + BATCH_CRC_START, start + batches[batchIndex]!.length)), start + BatchField.crc);
        }
        if (damage.kind === 'length') segment.writeInt32BE(damage.value, starts[damage.batchIndex]! + BatchField.batchLength);
        if (damage.kind === 'cut') segment = segment.subarray(0, damage.to % (segment.length + 1));
        if (damage.kind === 'append') segment = Buffer.concat([segment, damage.extra]);

        const handle = new BytesFileHandle(segment);
        const result = await scanBatches(handle, { fromPosition: 0, toPosition: segment.length, expectedBaseOffset: 0, chunkBytes });
        expect([...starts, starts[2]! + batches[2]!.length, segment.length]).toContain(result.validEndPosition);
        expect(result.validEndPosition).toBeLessThanOrEqual(segment.length);
        expect(result.batchCount).toBe(starts.filter((start) => start < result.validEndPosition).length);
        if (result.problem !== undefined) expect(result.problem.position).toBe(result.validEndPosition);
        else expect(result.validEndPosition).toBe(segment.length);
        const found = await findValidBatchAfter(handle, { fromPosition: result.validEndPosition, toPosition: segment.length, offsetAtLeast: result.nextOffset }, chunkBytes);
        if (found !== undefined) expect(found).toBeGreaterThanOrEqual(result.validEndPosition);
      }),
      { seed: 20261122, numRuns: 400 },
    );
  });
});
