import { afterEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isBrokerError } from '../errors/index.js';
import { FileHandleCache, type HandleLease } from './file-handle-cache.js';
import { nodeFileSystem, readFully, type FileHandle, type FileSystem, type OpenMode } from './file-system.js';
import { makeTempDir } from './test-helpers.js';

/**
 * nodeFileSystem with a ledger: every handle it opened, how often each was closed, and the
 * close calls still in flight (so a test can wait for them instead of sleeping).
 */
class CountingFileSystem {
  readonly opened: { path: string; mode: OpenMode; closeCalls: number; closesFinished: number }[] = [];
  /** Paths asked to open, counted when asked (before the open finishes). */
  readonly openCalls: string[] = [];
  /** Called as an open is asked for, before it starts: lets a test act at that exact point. */
  onOpenCall: ((path: string) => void) | undefined;
  private readonly closing = new Set<Promise<void>>();
  readonly fileSystem: FileSystem;

  constructor() {
    this.fileSystem = {
      ...nodeFileSystem,
      open: async (path, mode) => {
        this.openCalls.push(path);
        this.onOpenCall?.(path);
        const handle = await nodeFileSystem.open(path, mode);
        const record = { path, mode, closeCalls: 0, closesFinished: 0 };
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
            const closed = handle.close().finally(() => record.closesFinished++);
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

  /** Descriptors opened whose close has not finished (never asked for, or still running). */
  get descriptorsOpen(): number {
    return this.opened.filter((record) => record.closesFinished === 0).length;
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

/** A promise's state as of now, updated as it settles (read it after letting callbacks run). */
function track<T>(promise: Promise<T>): { readonly state: 'pending' | 'fulfilled' | 'rejected'; readonly error: unknown } {
  const tracked = { state: 'pending' as 'pending' | 'fulfilled' | 'rejected', error: undefined as unknown };
  void promise.then(
    () => (tracked.state = 'fulfilled'),
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}

/** Acquires `path` and releases it at once, recording in `served` when it got it. */
async function acquireAndRelease(cache: FileHandleCache, path: string, mode: OpenMode, served: string[], name: string): Promise<void> {
  const lease = await cache.acquire(path, mode);
  served.push(name);
  lease.release();
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

  it('waits for a release rather than go over the bound, first come first served', async () => {
    const { counting, cache, paths } = setUp(1, 3);
    const [a, b, c] = paths as [string, string, string];
    const leaseA = await cache.acquire(a, 'read');
    const order: string[] = [];
    const pendingB = cache.acquire(b, 'read').then((lease) => (order.push('b'), lease));
    const pendingC = cache.acquire(c, 'read').then((lease) => (order.push('c'), lease));
    await counting.settled();
    expect(order).toEqual([]);
    expect(counting.openCalls).toEqual([a]);
    expect(cache.hasWaiters).toBe(true);
    expect(counting.liveCount).toBe(1);
    expect(cache.descriptorCount).toBe(1);

    leaseA.release();
    const leaseB = await pendingB;
    await counting.settled();
    expect(order).toEqual(['b']);
    expect(counting.liveCount).toBe(1);
    expect(await readText(leaseB)).toBe('contents of file 1');

    leaseB.release();
    const leaseC = await pendingC;
    expect(order).toEqual(['b', 'c']);
    expect(cache.hasWaiters).toBe(false);
    await counting.settled();
    expect(counting.liveCount).toBe(1);
    expect(await readText(leaseC)).toBe('contents of file 2');
    leaseC.release();
  });

  it('shares a file already open without waiting while nobody waits for a descriptor', async () => {
    const { counting, cache, paths } = setUp(1, 1);
    const [a] = paths as [string];
    const leaseA = await cache.acquire(a, 'read');
    const again = await cache.acquire(a, 'read');
    expect(again.handle).toBe(leaseA.handle);
    again.release();
    leaseA.release();
    expect(counting.opened.map((record) => record.path)).toEqual([a]);
  });

  it('never waits for a lease shared from one held, even while others wait', async () => {
    const { counting, cache, paths } = setUp(1, 2);
    const [a, b] = paths as [string, string];
    const leaseA = await cache.acquire(a, 'read');
    const pendingB = cache.acquire(b, 'read');
    const shared = leaseA.share();
    expect(shared.handle).toBe(leaseA.handle);
    leaseA.release();
    expect(await readText(shared)).toBe('contents of file 0');
    shared.release();
    (await pendingB).release();
    expect(counting.opened.map((record) => record.path)).toEqual([a, b]);
    await counting.settled();
    expect(counting.liveCount).toBe(1);
  });

  it('serves a waiter even while the leases on every open file overlap without a break', async () => {
    // Readers of one busy file, each starting before the previous one is done, used to keep
    // its descriptor for good: a new lease on a file already open never waited, so its users
    // never all let go at once, and a waiter for another file waited forever.
    const { counting, cache, paths } = setUp(1, 2);
    const [a, b] = paths as [string, string];
    let current = await cache.acquire(a, 'read');
    let isBServed = false;
    const pendingB = cache.acquire(b, 'read').then((lease) => {
      isBServed = true;
      lease.release();
    });
    for (let round = 0; round < 20 && !isBServed; round++) {
      const next = cache.acquire(a, 'read'); // the next reader arrives while `current` reads
      await counting.settled();
      current.release();
      current = await next;
      expect(cache.descriptorCount).toBeLessThanOrEqual(1);
    }
    expect(isBServed, 'the waiter for another file was served').toBe(true);
    await pendingB;
    expect(await readText(current)).toBe('contents of file 0');
    current.release();
  });

  it('lets waiters for the same file share the handle the first of them opens', async () => {
    const { counting, cache, paths } = setUp(1, 2);
    const [a, b] = paths as [string, string];
    const leaseA = await cache.acquire(a, 'read');
    const waiting = [cache.acquire(b, 'read'), cache.acquire(b, 'read'), cache.acquire(b, 'read')];
    leaseA.release();
    const leases = await Promise.all(waiting);
    expect(new Set(leases.map((lease) => lease.handle)).size).toBe(1);
    expect(counting.opened.map((record) => record.path)).toEqual([a, b]);
    for (const lease of leases) lease.release();
  });

  it('hands the slot of a failed open to the next waiter', async () => {
    const { counting, cache, paths } = setUp(1, 2);
    const [a, b] = paths as [string, string];
    const leaseA = await cache.acquire(a, 'read');
    const missing = cache.acquire(`${b}.missing`, 'read');
    const pendingB = cache.acquire(b, 'read');
    leaseA.release();
    await expect(missing).rejects.toMatchObject({ code: 'ENOENT' });
    const leaseB = await pendingB;
    expect(await readText(leaseB)).toBe('contents of file 1');
    await counting.settled();
    expect(counting.liveCount).toBe(1);
    expect(cache.descriptorCount).toBe(1);
    leaseB.release();
  });

  it('keeps a discarded handle still leased within the bound', async () => {
    const { counting, cache, paths } = setUp(1, 2);
    const [a, b] = paths as [string, string];
    const leaseA = await cache.acquire(a, 'read');
    cache.discard(a);
    expect(cache.openCount).toBe(0);
    const pendingB = cache.acquire(b, 'read');
    expect(counting.openCalls).toEqual([a]);
    leaseA.release();
    (await pendingB).release();
    await counting.settled();
    expect(counting.liveCount).toBe(1);
  });

  it('serves many concurrent users of many files within the bound', async () => {
    const { counting, cache, paths } = setUp(4, 40);
    let liveMax = 0;
    await Promise.all(
      Array.from({ length: 400 }, async (_, i) => {
        const index = (i * 7) % paths.length;
        const lease = await cache.acquire(paths[index] as string, i % 3 === 0 ? 'read-write' : 'read');
        liveMax = Math.max(liveMax, counting.liveCount);
        expect(cache.descriptorCount).toBeLessThanOrEqual(4);
        expect(await readText(lease)).toBe(`contents of file ${index}`);
        lease.release();
      }),
    );
    expect(liveMax).toBeLessThanOrEqual(4);
    expect(cache.hasWaiters).toBe(false);
  });

  it('serves thousands of waiters first come first served, those of a file opened meanwhile sharing it', async () => {
    // Past the waiter queue's compaction size (1,024), with waiters taken out of its middle: every
    // second file is asked for twice, and the second asker shares the handle the first one opens.
    const { counting, cache, paths } = setUp(2, 3000);
    const blocker = await cache.acquire(paths[0] as string, 'read');
    const served: number[] = [];
    const asked = Array.from({ length: 3000 }, (_, i) => i + 1).flatMap((i) => (i % 2 === 0 ? [i % 3000, i % 3000] : [i % 3000]));
    const pending = asked.map(async (index) => {
      const lease = await cache.acquire(paths[index] as string, 'read');
      served.push(index);
      expect(cache.descriptorCount).toBeLessThanOrEqual(2);
      // Held a moment, so the waiters behind it queue up.
      await new Promise<void>((resolve) => setImmediate(resolve));
      lease.release();
    });
    await counting.settled();
    expect(cache.hasWaiters).toBe(true);
    blocker.release();
    await Promise.all(pending);
    expect([...served].sort((x, y) => x - y)).toEqual([...asked].sort((x, y) => x - y));
    expect(cache.hasWaiters).toBe(false);
    // First come first served: descriptors went to the files in the order they were asked for,
    // and the second asker of a file shared its handle (file 0 opened twice: the blocker's handle
    // was given up for the waiters).
    const firstAsks = asked.filter((index, position) => asked[position - 1] !== index);
    expect(counting.openCalls).toEqual([paths[0], ...firstAsks.map((index) => paths[index])]);
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

  it('keeps the place of a waiter for read-write when the one ahead of it opens its file read-only', async () => {
    // The read-only handle cannot serve it. It used to be woken to share that handle anyway,
    // give it up, and queue again behind every acquire that came after it.
    const { cache, paths } = setUp(1, 3);
    const [a, b, c] = paths as [string, string, string];
    const leaseA = await cache.acquire(a, 'read');
    const served: string[] = [];
    const all = Promise.all([
      acquireAndRelease(cache, b, 'read', served, 'b read'),
      acquireAndRelease(cache, b, 'read-write', served, 'b read-write'),
      acquireAndRelease(cache, c, 'read', served, 'c'),
    ]);
    leaseA.release();
    await all;
    expect(served).toEqual(['b read', 'b read-write', 'c']);
    expect(cache.descriptorCount).toBeLessThanOrEqual(1);
  });

  it('keeps the place of a waiter woken to share a file that is given up before it runs', async () => {
    // b's second waiter is woken to share the handle b's first waiter opens. Before it runs,
    // an acquire of d arrives (queued as b's open is asked for, so it runs first) and the cache
    // gives b up to make room. The waiter must then wait again ahead of c and d, which came
    // after it; it used to queue behind them.
    const { counting, cache, paths } = setUp(1, 4);
    const [a, b, c, d] = paths as [string, string, string, string];
    const leaseA = await cache.acquire(a, 'read');
    const served: string[] = [];
    const waiting = [
      acquireAndRelease(cache, b, 'read', served, 'b first'),
      acquireAndRelease(cache, b, 'read', served, 'b second'),
      acquireAndRelease(cache, c, 'read', served, 'c'),
    ];
    counting.onOpenCall = (path) => {
      if (path !== b) return;
      counting.onOpenCall = undefined;
      queueMicrotask(() => waiting.push(acquireAndRelease(cache, d, 'read', served, 'd')));
    };
    leaseA.release();
    await waiting[0]; // d has joined by then: it came as b was opened
    await Promise.all(waiting);
    expect(served).toEqual(['b first', 'b second', 'c', 'd']);
    expect(counting.openCalls).toEqual([a, b, b, c, d]);
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

    it('waits for a leased handle, closing it only once its lease is released', async () => {
      const { counting, cache, paths } = setUp(8, 2);
      const [a, b] = paths as [string, string];
      const lease = await cache.acquire(a, 'read');
      (await cache.acquire(b, 'read')).release();
      const closing = track(cache.closeAll());
      await counting.settled();
      expect(cache.openCount).toBe(0);
      expect(counting.closeCallsOf(b)).toEqual([1]);
      expect(counting.closeCallsOf(a)).toEqual([0]);
      expect(closing.state).toBe('pending');
      expect(await readText(lease)).toBe('contents of file 0');
      lease.release();
      await cache.closeAll();
      expect(counting.closeCallsOf(a)).toEqual([1]);
      expect(counting.descriptorsOpen).toBe(0);
    });

    it('waits for the closes of handles given up before it was called', async () => {
      // A log's close forgets its segments (discard) before the manager calls closeAll: those
      // closes ran on after closeAll returned, and their descriptors outlived the cache.
      const { counting, cache, paths } = setUp(8, 3);
      for (const path of paths) (await cache.acquire(path, 'read')).release();
      for (const path of paths) cache.discard(path);
      await cache.closeAll();
      expect(counting.descriptorsOpen).toBe(0);
      expect(cache.descriptorCount).toBe(0);
      for (const path of paths) expect(counting.closeCallsOf(path)).toEqual([1]);
    });

    it('waits for a handle drained for a waiter while leased, once its lease is released', async () => {
      const { counting, cache, paths } = setUp(1, 2);
      const [a, b] = paths as [string, string];
      const leaseA = await cache.acquire(a, 'read');
      const pendingB = track(cache.acquire(b, 'read')); // gives a up: closed on release
      const closing = track(cache.closeAll());
      await counting.settled();
      expect(closing.state).toBe('pending');
      leaseA.release();
      await cache.closeAll();
      expect(counting.descriptorsOpen).toBe(0);
      expect(pendingB.state).toBe('rejected');
    });

    it('makes a later acquire fail with SHUTTING_DOWN and open nothing', async () => {
      // A read still running when its log closed could open a descriptor after closeAll that
      // nobody would ever close.
      const { counting, cache, paths } = setUp(4, 1);
      const [a] = paths as [string];
      await cache.closeAll();
      await expect(cache.acquire(a, 'read')).rejects.toSatisfy((error) => isBrokerError(error, 'SHUTTING_DOWN'));
      expect(counting.openCalls).toEqual([]);
      expect(cache.descriptorCount).toBe(0);
    });

    it('fails the acquires waiting for a descriptor with SHUTTING_DOWN instead of leaving them hanging', async () => {
      const { counting, cache, paths } = setUp(1, 3);
      const [a, b, c] = paths as [string, string, string];
      const leaseA = await cache.acquire(a, 'read');
      const pendingB = track(cache.acquire(b, 'read'));
      const pendingC = track(cache.acquire(c, 'read-write'));
      const closing = track(cache.closeAll());
      await counting.settled();
      expect(pendingB.state).toBe('rejected');
      expect(isBrokerError(pendingB.error, 'SHUTTING_DOWN')).toBe(true);
      expect(pendingC.state).toBe('rejected');
      expect(isBrokerError(pendingC.error, 'SHUTTING_DOWN')).toBe(true);
      expect(cache.hasWaiters).toBe(false);
      expect(closing.state).toBe('pending'); // a is still leased
      leaseA.release();
      await cache.closeAll();
      expect(counting.openCalls).toEqual([a]);
      expect(counting.descriptorsOpen).toBe(0);
    });

    it('fails an acquire whose file is still opening when it is called, and closes that file', async () => {
      const { counting, cache, paths } = setUp(4, 1);
      const [a] = paths as [string];
      const acquiring = cache.acquire(a, 'read');
      const closing = cache.closeAll();
      await expect(acquiring).rejects.toSatisfy((error) => isBrokerError(error, 'SHUTTING_DOWN'));
      await closing;
      expect(counting.closeCallsOf(a)).toEqual([1]);
      expect(counting.descriptorsOpen).toBe(0);
    });

    it('still lets the holder of a lease share it, and closes the file after both are released', async () => {
      const { counting, cache, paths } = setUp(4, 1);
      const [a] = paths as [string];
      const lease = await cache.acquire(a, 'read');
      const closing = track(cache.closeAll());
      const shared = lease.share();
      lease.release();
      expect(await readText(shared)).toBe('contents of file 0');
      await counting.settled();
      expect(closing.state).toBe('pending');
      shared.release();
      await cache.closeAll();
      expect(counting.closeCallsOf(a)).toEqual([1]);
    });
  });
});
