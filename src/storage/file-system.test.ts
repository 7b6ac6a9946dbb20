import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Slots } from '../common/slots.js';
import { isBrokerError } from '../errors/index.js';
import { ClosableFileSystem, nodeFileSystem, withDescriptorSlots, writeAll, writeFilesAtomically, WRITE_CALL_BYTES_MAX, type FileHandle, type FileSystem } from './file-system.js';
import { makeTempDir, syncRecordingFileSystem } from './test-helpers.js';
import { waitFor } from '../../test/support/wait-for.js';

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

/** nodeFileSystem whose `readdir` calls wait until `release()`. */
function heldListings(): { fileSystem: FileSystem; readonly heldCount: number; release(): void } {
  let heldCount = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    async readdir(path) {
      heldCount++;
      await released;
      return nodeFileSystem.readdir(path);
    },
  };
  return {
    fileSystem,
    get heldCount() {
      return heldCount;
    },
    release: () => release(),
  };
}

/** A promise's state once the callbacks already due have run. */
async function stateOf(promise: Promise<unknown>): Promise<'pending' | 'settled'> {
  let state: 'pending' | 'settled' = 'pending';
  void promise.then(
    () => (state = 'settled'),
    () => (state = 'settled'),
  );
  for (let round = 0; round < 3; round++) await new Promise<void>((resolve) => setImmediate(resolve));
  return state;
}

describe('writeFilesAtomically', () => {
  /** The node file system, its durability calls recorded, and a failing open of one file when asked. */
  function recordingFileSystem(options: { failOpenOf?: string } = {}): { fileSystem: FileSystem; calls: string[] } {
    const calls: string[] = [];
    const recording = syncRecordingFileSystem(calls);
    const fileSystem: FileSystem = {
      ...recording,
      async open(path, mode) {
        if (basename(path) !== options.failOpenOf) return recording.open(path, mode);
        calls.push(`open ${basename(path)} failed`);
        throw Object.assign(new Error(`ENOSPC: no space left on device, open '${path}'`), { code: 'ENOSPC' });
      },
    };
    return { fileSystem, calls };
  }

  /** A directory holding a.index and a.timeindex ("old a", "old b"), and new contents for both. */
  function twoOldFiles(): { dir: string; a: string; b: string; replacements: { path: string; data: Buffer }[] } {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const a = join(temp.dir, 'a.index');
    const b = join(temp.dir, 'a.timeindex');
    writeFileSync(a, 'old a');
    writeFileSync(b, 'old b');
    return { dir: temp.dir, a, b, replacements: [{ path: a, data: patterned(10_000, 1) }, { path: b, data: patterned(3_000, 2) }] };
  }

  it('replaces each file, both temporary files synced before the first rename, with one directory fsync after the last', async () => {
    const { dir, a, b, replacements } = twoOldFiles();
    const { fileSystem, calls } = recordingFileSystem();
    await writeFilesAtomically(fileSystem, replacements);
    expect(readFileSync(a).equals(patterned(10_000, 1))).toBe(true);
    expect(readFileSync(b).equals(patterned(3_000, 2))).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['a.index', 'a.timeindex']);
    const firstRename = calls.findIndex((call) => call.startsWith('rename'));
    expect(calls.slice(0, firstRename).sort()).toEqual(['datasync a.index.tmp', 'datasync a.timeindex.tmp']);
    expect(calls.slice(firstRename)).toEqual(['rename a.index.tmp', 'rename a.timeindex.tmp', `syncDirectory ${basename(dir)}`]);
  });

  it('renames nothing when one temporary file cannot be written, and throws only once the other has settled', async () => {
    const { a, b, replacements } = twoOldFiles();
    const { fileSystem, calls } = recordingFileSystem({ failOpenOf: 'a.index.tmp' });
    await expect(writeFilesAtomically(fileSystem, replacements)).rejects.toMatchObject({ code: 'ENOSPC' });
    // Both old files stand; the other temporary file was finished (a leftover .tmp, which a
    // log's open removes), so no write of it runs on after the failure was reported.
    expect(readFileSync(a, 'utf8')).toBe('old a');
    expect(readFileSync(b, 'utf8')).toBe('old b');
    expect(calls).toContain('datasync a.timeindex.tmp');
    expect(calls.some((call) => call.startsWith('rename') || call.startsWith('syncDirectory'))).toBe(false);
  });

  it('refuses files of different directories, whose renames one directory fsync would not cover', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    await expect(writeFilesAtomically(nodeFileSystem, [
      { path: join(temp.dir, 'a'), data: Buffer.from('a') },
      { path: join(temp.dir, 'sub', 'b'), data: Buffer.from('b') },
    ])).rejects.toThrow(/one directory/);
    expect(readdirSync(temp.dir)).toEqual([]);
  });
});

describe('ClosableFileSystem', () => {
  it('refuses every call after closeAll with SHUTTING_DOWN, touching no file', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const files = new ClosableFileSystem(nodeFileSystem);
    await files.closeAll();
    const path = join(temp.dir, 'never');
    const refused = (e: unknown): boolean => isBrokerError(e, 'SHUTTING_DOWN');
    await expect(files.open(path, 'create')).rejects.toSatisfy(refused);
    await expect(files.tryReadFile(path)).rejects.toSatisfy(refused);
    await expect(files.readdir(temp.dir)).rejects.toSatisfy(refused);
    await expect(files.syncDirectory(temp.dir)).rejects.toSatisfy(refused);
    await expect(files.mkdir(path)).rejects.toSatisfy(refused);
    await expect(files.removeTree(temp.dir)).rejects.toSatisfy(refused);
    expect(await nodeFileSystem.readdir(temp.dir)).toEqual([]);
  });

  it('resolves closeAll once the calls running and the handles open then are done, and those handles keep working', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const held = heldListings();
    const files = new ClosableFileSystem(held.fileSystem);
    const handle = await files.open(join(temp.dir, 'open'), 'create');
    const listing = files.readdir(temp.dir);
    expect(held.heldCount).toBe(1);
    const closing = files.closeAll();
    expect(files.inUse).toEqual([`open ${join(temp.dir, 'open')}`, `list ${temp.dir}`]);
    await writeAll(handle, [Buffer.from('still works')], 0);
    held.release();
    expect(await listing).toEqual(['open']);
    expect(await stateOf(closing), 'closeAll returned while a handle was open').toBe('pending');
    await handle.close();
    await closing;
    expect(files.inUse).toEqual([]);
    expect(readFileSync(join(temp.dir, 'open'), 'utf8')).toBe('still works');
  });

  it('under descriptor slots, refuses a call that was waiting for a slot at closeAll once it gets one', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const held = heldListings();
    const files = new ClosableFileSystem(held.fileSystem);
    const slots = new Slots(1);
    const slotted = withDescriptorSlots(files, slots);
    const running = slotted.readdir(temp.dir);
    await waitFor(() => held.heldCount === 1, { timeoutMs: 5_000, describe: () => 'the listing never started' });
    const waiting = slotted.tryReadFile(join(temp.dir, 'absent')).catch((error: unknown) => error);
    expect(slots.heldCount).toBe(1);
    const closing = files.closeAll();
    held.release();
    await running;
    expect(isBrokerError(await waiting, 'SHUTTING_DOWN')).toBe(true);
    await closing;
    expect(slots.heldCount).toBe(0);
  });
});
