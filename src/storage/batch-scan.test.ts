import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { limits } from '../config/limits.js';
import { BatchField, crc32c, BATCH_CRC_START, encodeBatch } from '../protocol/index.js';
import { findValidBatchAfter, scanBatches } from './batch-scan.js';
import { ForwardingFileHandle, nodeFileSystem, type FileHandle } from './file-system.js';

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
