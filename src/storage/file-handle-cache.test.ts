import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileHandleCache, type HandleLease } from './file-handle-cache.js';
import { nodeFileSystem, readFully, type FileHandle, type FileSystem, type OpenMode } from './file-system.js';
import { makeTempDir } from './test-helpers.js';

/**
 * nodeFileSystem with a ledger: every handle it opened, how often each was closed, and the
 * close calls still in flight (so a test can wait for them instead of sleeping).
 */
class CountingFileSystem {
  readonly opened: { path: string; mode: OpenMode; closeCalls: number }[] = [];
  private readonly closing = new Set<Promise<void>>();
  readonly fileSystem: FileSystem;

  constructor() {
    this.fileSystem = {
      ...nodeFileSystem,
      open: async (path, mode) => {
        const handle = await nodeFileSystem.open(path, mode);
        const record = { path, mode, closeCalls: 0 };
        this.opened.push(record);
        const counted: FileHandle = {
          path: handle.path,
          read: (buffer, offset, length, position) => handle.read(buffer, offset, length, position),
          writev: (buffers, position) => handle.writev(buffers, position),
          datasync: () => handle.datasync(),
          truncate: (sizeBytes) => handle.truncate(sizeBytes),
          sizeBytes: () => handle.sizeBytes(),
          close: () => {
            record.closeCalls++;
            const closed = handle.close();
            const tracked = closed.catch(() => undefined);
            this.closing.add(tracked);
            void tracked.then(() => this.closing.delete(tracked));
            return closed;
          },
        };
        return counted;
      },
    };
  }

  /** Handles opened and never closed. */
  get liveCount(): number {
    return this.opened.filter((record) => record.closeCalls === 0).length;
  }

  closeCallsOf(path: string): number[] {
    return this.opened.filter((record) => record.path === path).map((record) => record.closeCalls);
  }

  /** Waits until every close call issued so far has finished (closes run in the background). */
  async settled(): Promise<void> {
    // A close is issued once the open promise settles: let those callbacks run first.
    for (let round = 0; round < 3; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await Promise.all([...this.closing]);
    }
  }
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setUp(openFilesMax: number, fileCount: number): { counting: CountingFileSystem; cache: FileHandleCache; paths: string[] } {
  const temp = makeTempDir('runnel-handles-');
  cleanups.push(temp.remove);
  const paths = Array.from({ length: fileCount }, (_, i) => {
    const path = join(temp.dir, `file-${i}.log`);
    writeFileSync(path, `contents of file ${i}`);
    return path;
  });
  const counting = new CountingFileSystem();
  const cache = new FileHandleCache(counting.fileSystem, openFilesMax);
  cleanups.push(() => cache.closeAll());
  return { counting, cache, paths };
}

async function readText(lease: HandleLease): Promise<string> {
  const buffer = Buffer.alloc(64);
  const read = await readFully(lease.handle, buffer, buffer.length, 0);
  return buffer.subarray(0, read).toString();
}

describe('FileHandleCache', () => {
  it('keeps at most openFilesMax handles open when every lease is released', async () => {
    const { counting, cache, paths } = setUp(3, 10);
    for (let round = 0; round < 3; round++) {
      for (const [i, path] of paths.entries()) {
        const lease = await cache.acquire(path, 'read');
        expect(await readText(lease)).toBe(`contents of file ${i}`);
        lease.release();
        expect(cache.openCount).toBeLessThanOrEqual(3);
        await counting.settled();
        expect(counting.liveCount).toBeLessThanOrEqual(3);
      }
    }
    expect(cache.openCount).toBe(3);
  });

  it('reuses a cached handle instead of opening the file again', async () => {
    const { counting, cache, paths } = setUp(2, 1);
    const path = paths[0] as string;
    for (let i = 0; i < 5; i++) (await cache.acquire(path, 'read')).release();
    expect(counting.opened.length).toBe(1);
  });

  it('closes the least recently used idle handle first', async () => {
    const { counting, cache, paths } = setUp(2, 3);
    const [a, b, c] = paths as [string, string, string];
    (await cache.acquire(a, 'read')).release();
    (await cache.acquire(b, 'read')).release();
    (await cache.acquire(a, 'read')).release(); // a is now the most recently used
    (await cache.acquire(c, 'read')).release(); // one over the bound: b goes
    await counting.settled();
    expect(counting.closeCallsOf(b)).toEqual([1]);
    expect(counting.closeCallsOf(a)).toEqual([0]);
    expect(counting.closeCallsOf(c)).toEqual([0]);
  });

  it('goes over the bound rather than close a handle in use, and comes back under on release', async () => {
    const { counting, cache, paths } = setUp(1, 3);
    const [a, b, c] = paths as [string, string, string];
    const leaseA = await cache.acquire(a, 'read');
    const leaseB = await cache.acquire(b, 'read');
    const leaseC = await cache.acquire(c, 'read');
    expect(cache.openCount).toBe(3);
    expect(await readText(leaseA)).toBe('contents of file 0');
    leaseB.release();
    leaseC.release();
    await counting.settled();
    expect(cache.openCount).toBe(1);
    expect(counting.liveCount).toBe(1);
    expect(await readText(leaseA)).toBe('contents of file 0');
    leaseA.release();
    expect(cache.openCount).toBe(1);
  });

  it('does not close a handle discarded while leased until its lease is released', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    const lease = await cache.acquire(path, 'read');
    cache.discard(path);
    expect(cache.openCount).toBe(0);
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([0]);
    expect(await readText(lease)).toBe('contents of file 0');
    lease.release();
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([1]);
  });

  it('closes a discarded handle only after its last lease is released', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    const first = await cache.acquire(path, 'read');
    const second = await cache.acquire(path, 'read');
    cache.discard(path);
    first.release();
    first.release(); // a second release of the same lease counts once
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([0]);
    expect(await readText(second)).toBe('contents of file 0');
    second.release();
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([1]);
  });

  it('closes an idle handle as soon as it is discarded', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    (await cache.acquire(path, 'read')).release();
    cache.discard(path);
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([1]);
    cache.discard(path); // discarding an unknown path is a no-op
    expect(cache.openCount).toBe(0);
  });

  it('opens the file again when it is acquired after a discard', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    const lease = await cache.acquire(path, 'read');
    cache.discard(path);
    const again = await cache.acquire(path, 'read');
    expect(counting.opened.length).toBe(2);
    expect(cache.openCount).toBe(1);
    lease.release();
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([1, 0]);
    expect(await readText(again)).toBe('contents of file 0');
    again.release();
  });

  it('serves a read lease from a cached read-write handle', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    const writer = await cache.acquire(path, 'read-write');
    const reader = await cache.acquire(path, 'read');
    expect(reader.handle).toBe(writer.handle);
    expect(counting.opened.map((record) => record.mode)).toEqual(['read-write']);
    reader.release();
    writer.release();
  });

  it('replaces a cached read-only handle for a writer without closing it under its reader', async () => {
    const { counting, cache, paths } = setUp(4, 1);
    const path = paths[0] as string;
    const reader = await cache.acquire(path, 'read');
    const writer = await cache.acquire(path, 'read-write');
    expect(counting.opened.map((record) => record.mode)).toEqual(['read', 'read-write']);
    await writer.handle.writev([Buffer.from('CONTENTS')], 0);
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([0, 0]);
    expect(await readText(reader)).toBe('CONTENTS of file 0');
    reader.release();
    await counting.settled();
    expect(counting.closeCallsOf(path)).toEqual([1, 0]);
    writer.release();
  });

  it('does not cache a file that failed to open, and opens it once it exists', async () => {
    const { cache, paths } = setUp(4, 1);
    const missing = `${paths[0] as string}.missing`;
    await expect(cache.acquire(missing, 'read')).rejects.toMatchObject({ code: 'ENOENT' });
    expect(cache.openCount).toBe(0);
    writeFileSync(missing, 'late');
    const lease = await cache.acquire(missing, 'read');
    expect(await readText(lease)).toBe('late');
    lease.release();
  });

  describe('closeAll', () => {
    it('closes every idle handle exactly once', async () => {
      const { counting, cache, paths } = setUp(8, 4);
      for (const path of paths) (await cache.acquire(path, 'read')).release();
      await cache.closeAll();
      await counting.settled();
      expect(cache.openCount).toBe(0);
      for (const path of paths) expect(counting.closeCallsOf(path)).toEqual([1]);
    });

    it('leaves a leased handle open until its lease is released', async () => {
      const { counting, cache, paths } = setUp(8, 2);
      const [a, b] = paths as [string, string];
      const lease = await cache.acquire(a, 'read');
      (await cache.acquire(b, 'read')).release();
      await cache.closeAll();
      await counting.settled();
      expect(cache.openCount).toBe(0);
      expect(counting.closeCallsOf(b)).toEqual([1]);
      expect(counting.closeCallsOf(a)).toEqual([0]);
      expect(await readText(lease)).toBe('contents of file 0');
      lease.release();
      await counting.settled();
      expect(counting.closeCallsOf(a)).toEqual([1]);
    });
  });
});
