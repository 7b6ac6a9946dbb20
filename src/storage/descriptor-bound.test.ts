/**
 * No hold-and-wait on segment descriptors (file-handle-cache.ts): a caller that holds a lease
 * never waits for a new descriptor, so even a cache of one descriptor cannot deadlock.
 *
 * These tests build the interleavings that used to break it, with a file system that holds one
 * chosen call until the test lets it go. The random mixes are in
 * descriptor-bound.property.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, rmSync } from 'node:fs';
import { ManualClock } from '../common/clock.js';
import { waitFor } from '../../test/support/wait-for.js';
import { FileHandleCache } from './file-handle-cache.js';
import { nodeFileSystem, type FileSystem } from './file-system.js';
import { segmentFilePath } from './file-names.js';
import { makeBatch, makeTempDir, openTestLog } from './test-helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const HOUR_MS = 3_600_000;

/** nodeFileSystem that holds the first `tryReadFile` of `path` until `release()`. */
function holdFirstReadOf(path: string): { fileSystem: FileSystem; readonly isReached: boolean; release(): void } {
  let isReached = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let isHeldOnce = false;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    async tryReadFile(candidate) {
      if (candidate === path && !isHeldOnce) {
        isHeldOnce = true;
        isReached = true;
        await released;
      }
      return nodeFileSystem.tryReadFile(candidate);
    },
  };
  return {
    fileSystem,
    get isReached() {
      return isReached;
    },
    release: () => release(),
  };
}

describe('segment descriptors under a hard bound', () => {
  it('a read that must rebuild the indexes of a segment retention deleted under it finishes with one descriptor', async () => {
    // Goal: Segment.read holds a lease on its segment while it loads the indexes; when they
    // must be rebuilt, the rebuild reads through that same lease. It used to ask the cache for
    // a second one, which is a new descriptor once retention has discarded the first: with
    // every descriptor held (here the only one, by the reader itself) it waited forever, and
    // so did every later append, read and close of every partition sharing the cache.
    // Method: three segments, the oldest expired and its index files missing (as after a
    // best-effort index write that failed); the reader's index-file read is held until
    // retention has deleted the segment, then let go.
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const clock = new ManualClock(1_700_000_000_000);
    const oldestIndexPath = segmentFilePath(temp.dir, 0, 'index');
    const held = holdFirstReadOf(oldestIndexPath);
    const handles = new FileHandleCache(held.fileSystem, 1);
    const log = await openTestLog({ dir: temp.dir, config: { retentionMs: HOUR_MS }, fileSystem: held.fileSystem, clock, handles, indexCacheBytesMax: 1 });
    let outcome: string | undefined;
    // A stuck read would hold the close up too: leave the log to the process then.
    cleanups.push(() => (outcome === undefined ? undefined : log.close()));
    const old = clock.nowMs() - 2 * HOUR_MS;
    for (let i = 0; i < 3; i++) await log.append(makeBatch({ count: 2, tag: `old-${i}`, timestamp: old }));
    await log.roll();
    for (let i = 0; i < 3; i++) await log.append(makeBatch({ count: 2, tag: `new-${i}`, timestamp: clock.nowMs() }));
    await log.roll();
    await log.append(makeBatch({ count: 2, tag: 'active', timestamp: clock.nowMs() }));
    // The oldest segment's indexes are neither cached (the cache holds one entry) nor on disk.
    rmSync(oldestIndexPath);
    rmSync(segmentFilePath(temp.dir, 0, 'timeindex'));

    const reading = log.read({ offset: 0, bytesMax: 1024 }).then(
      (result) => (outcome = `read ${result.bytes.length} bytes`),
      (error: unknown) => (outcome = `failed: ${String(error)}`),
    );
    await waitFor(() => held.isReached, { timeoutMs: 5_000, describe: () => 'the read never looked for the index file' });
    // Retention discards the reader's descriptor and unlinks the files while the read waits.
    await log.applyRetention();
    expect(log.logStartOffset).toBe(6);
    held.release();
    await waitFor(() => outcome, {
      timeoutMs: 5_000,
      describe: () => `the read of the deleted segment never finished (descriptors held ${handles.descriptorCount} of 1): it waits for a second descriptor while holding the only one`,
    });
    await reading;
    expect(outcome).toMatch(/^read [1-9]/);
    // The rebuilt indexes of a deleted segment are not written back as orphan files.
    expect(existsSync(oldestIndexPath)).toBe(false);
    // Nothing is left holding the descriptor: the other segments are still readable and writable.
    await log.append(makeBatch({ count: 1, tag: 'after', timestamp: clock.nowMs() }));
    const later = await log.read({ offset: 6, bytesMax: 1024 });
    expect(later.bytes.length).toBeGreaterThan(0);
    expect(handles.descriptorCount).toBeLessThanOrEqual(1);
  });
});
