import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeFileSystem, writeAll, WRITE_CALL_BYTES_MAX, type FileHandle } from './file-system.js';
import { makeTempDir } from './test-helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A real file whose writev calls are recorded, and cut short to `shortTo` bytes when set. */
async function recordingHandle(shortTo?: number): Promise<{ handle: FileHandle; path: string; calls: number[] }> {
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const path = join(temp.dir, 'file.bin');
  const real = await nodeFileSystem.open(path, 'create');
  cleanups.push(() => real.close());
  const calls: number[] = [];
  const handle: FileHandle = {
    ...real,
    path,
    read: real.read.bind(real),
    datasync: real.datasync.bind(real),
    truncate: real.truncate.bind(real),
    sizeBytes: real.sizeBytes.bind(real),
    close: real.close.bind(real),
    writev(buffers, position) {
      const bytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
      calls.push(bytes);
      if (shortTo === undefined || bytes <= shortTo) return real.writev(buffers, position);
      return real.writev([Buffer.concat(buffers as Buffer[]).subarray(0, shortTo)], position);
    },
  };
  return { handle, path, calls };
}

function patterned(length: number, seed: number): Buffer {
  const buffer = Buffer.alloc(length);
  for (let i = 0; i < length; i++) buffer[i] = (i * 31 + seed) & 0xff;
  return buffer;
}

describe('writeAll', () => {
  it('splits a large vector into writev calls of at most WRITE_CALL_BYTES_MAX, bytes intact', async () => {
    const { handle, path, calls } = await recordingHandle();
    const buffers = [patterned(700_000, 1), patterned(2 * WRITE_CALL_BYTES_MAX + 5, 2), patterned(10, 3), Buffer.alloc(0), patterned(400_000, 4)];
    await writeAll(handle, buffers, 0);
    const expected = Buffer.concat(buffers);
    expect(calls.reduce((sum, bytes) => sum + bytes, 0)).toBe(expected.length);
    expect(Math.max(...calls)).toBeLessThanOrEqual(WRITE_CALL_BYTES_MAX);
    expect(calls.length).toBe(Math.ceil(expected.length / WRITE_CALL_BYTES_MAX));
    expect(readFileSync(path).equals(expected)).toBe(true);
  });

  it('continues after short writes at the right position', async () => {
    const { handle, path, calls } = await recordingHandle(1000);
    const buffers = [patterned(2500, 5), patterned(1700, 6)];
    await writeAll(handle, buffers, 0);
    expect(calls.length).toBeGreaterThan(2);
    expect(readFileSync(path).equals(Buffer.concat(buffers))).toBe(true);
  });
});
