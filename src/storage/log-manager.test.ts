import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { limits } from '../config/limits.js';
import { isBrokerError } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { decodeBatches } from '../protocol/index.js';
import { LogManager, type LogManagerOptions } from './log-manager.js';
import type { PartitionLogConfig } from './partition-log.js';
import { nodeFileSystem, type FileSystem } from './file-system.js';
import { makeBatch, makeTempDir, testConfig } from './test-helpers.js';
import { waitFor } from '../../test/support/wait-for.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startManager(options: Partial<LogManagerOptions> & { dataDir?: string; config?: Partial<PartitionLogConfig> } = {}) {
  const dataDir = options.dataDir ?? makeTempDir().dir;
  const clock = (options.clock as ManualClock | undefined) ?? new ManualClock();
  const manager = await LogManager.start({
    dataDir,
    clock,
    logger: silentLogger,
    configForTopic: () => ({ ...testConfig, ...options.config }),
    openFilesMax: options.openFilesMax ?? 16,
    indexCacheBytesMax: 64 * 1024,
    openPartitionsMax: options.openPartitionsMax ?? 4,
    partitionIdleMs: options.partitionIdleMs ?? 60_000,
    retentionCheckIntervalMs: options.retentionCheckIntervalMs ?? 300_000,
    ...(options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem }),
  });
  cleanups.push(() => manager.close());
  return { manager, dataDir, clock };
}

/**
 * Wraps the node file system, counting the descriptors it holds at any moment: open handles
 * until closed, and one during each call that opens a file or directory for itself.
 */
function countingFileSystem(): { fileSystem: FileSystem; readonly openNow: number; readonly max: number; resetMax(): void } {
  let openNow = 0;
  let max = 0;
  const opened = (): void => {
    openNow++;
    max = Math.max(max, openNow);
  };
  const during = async <T>(work: () => Promise<T>): Promise<T> => {
    opened();
    try {
      return await work();
    } finally {
      openNow--;
    }
  };
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    async open(path, mode) {
      const handle = await nodeFileSystem.open(path, mode);
      opened();
      const close = handle.close.bind(handle);
      handle.close = async () => {
        openNow--;
        await close();
      };
      return handle;
    },
    tryReadFile: (path) => during(() => nodeFileSystem.tryReadFile(path)),
    readdir: (path) => during(() => nodeFileSystem.readdir(path)),
    syncDirectory: (path) => during(() => nodeFileSystem.syncDirectory(path)),
  };
  return {
    fileSystem,
    get openNow() {
      return openNow;
    },
    get max() {
      return max;
    },
    resetMax() {
      max = openNow;
    },
  };
}

describe('LogManager', () => {
  it('creates partitions, lists them, and finds them again after a restart', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartition('orders', 0);
    await manager.createPartition('orders', 1);
    await manager.createPartition('a-b.c_d', 0);
    await manager.withPartition('orders', 1, (log) => log.append(makeBatch({ count: 3 })));
    await manager.close();
    const { manager: again } = await startManager({ dataDir });
    expect(again.listPartitions()).toEqual([
      { topic: 'a-b.c_d', partition: 0 },
      { topic: 'orders', partition: 0 },
      { topic: 'orders', partition: 1 },
    ]);
    expect(await again.withPartition('orders', 1, async (log) => log.logEndOffset)).toBe(3);
  });

  it('rejects invalid names, bad partition numbers and duplicates without creating anything', async () => {
    const { manager, dataDir } = await startManager();
    for (const name of ['', '.', '..', '../x', 'a/b', 'x'.repeat(250)]) {
      await expect(manager.createPartition(name, 0)).rejects.toSatisfy((e) => isBrokerError(e, 'INVALID_TOPIC_NAME'));
    }
    await expect(manager.createPartition('ok', -1)).rejects.toSatisfy((e) => isBrokerError(e, 'INVALID_REQUEST'));
    await expect(manager.createPartition('ok', 1.5)).rejects.toSatisfy((e) => isBrokerError(e, 'INVALID_REQUEST'));
    await manager.createPartition('ok', 0);
    await expect(manager.createPartition('ok', 0)).rejects.toSatisfy((e) => isBrokerError(e, 'TOPIC_ALREADY_EXISTS'));
    expect(readdirSync(dataDir)).toEqual(['ok-0']);
    expect(existsSync(join(dataDir, '..', 'x-0'))).toBe(false);
  });

  it('answers PARTITION_NOT_FOUND for an unknown partition', async () => {
    const { manager } = await startManager();
    await expect(manager.withPartition('nope', 0, async () => 1)).rejects.toSatisfy((e) => isBrokerError(e, 'PARTITION_NOT_FOUND'));
  });

  it('keeps at most openPartitionsMax logs open, closing the least recently used idle ones', async () => {
    const { manager } = await startManager({ openPartitionsMax: 3 });
    for (let p = 0; p < 8; p++) await manager.createPartition('t', p);
    for (let p = 0; p < 8; p++) {
      await manager.withPartition('t', p, (log) => log.append(makeBatch({ tag: `p${p}` })));
      expect(manager.openPartitionCount).toBeLessThanOrEqual(4);
    }
    // Closed logs reopen cleanly on use and keep their data.
    for (let p = 0; p < 8; p++) {
      const read = await manager.withPartition('t', p, (log) => log.read({ offset: 0, bytesMax: 1024 }));
      expect(decodeBatches(read.bytes)[0]?.value?.toString().startsWith(`p${p}-0:`)).toBe(true);
    }
  });

  it('never closes a log while work on it is in progress', async () => {
    const { manager } = await startManager({ openPartitionsMax: 1 });
    await manager.createPartition('t', 0);
    await manager.createPartition('t', 1);
    let release: () => void = () => undefined;
    let started: () => void = () => undefined;
    const isStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const held = manager.withPartition('t', 0, async (log) => {
      await new Promise<void>((resolve) => {
        release = resolve;
        started();
      });
      return log.append(makeBatch());
    });
    await isStarted;
    // Touching partition 1 pushes the count over the bound; partition 0 is pinned and stays.
    await manager.withPartition('t', 1, (log) => log.append(makeBatch()));
    release();
    // Had the bound closed partition 0 under its user, this append would fail SHUTTING_DOWN.
    expect((await held).baseOffset).toBe(0);
  });

  it('closes a burst of idle logs a few at a time, within a bounded number of descriptors', async () => {
    // Goal: every close holds descriptors of its own (the active segment to sync, the index,
    // snapshot and state files it writes), so thousands of logs going idle together must not
    // be closed all at once. Method: 300 partitions held open together (each has appended,
    // so its close does real work), then released at once; a file system that counts the
    // descriptors it holds open at any moment.
    const descriptors = countingFileSystem();
    const openFilesMax = 16;
    const { manager } = await startManager({ openPartitionsMax: 16, openFilesMax, fileSystem: descriptors.fileSystem });
    const partitionCount = 300;
    for (let p = 0; p < partitionCount; p++) await manager.createPartition('burst', p);
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let appends = Promise.resolve();
    let appendedCount = 0;
    const held = Array.from({ length: partitionCount }, (_, p) =>
      manager.withPartition('burst', p, async (log) => {
        // One append at a time, so only the closes can run together.
        const mine = appends.then(() => log.append(makeBatch({ tag: `p${p}` })));
        appends = mine.then(() => undefined);
        await mine;
        appendedCount++;
        await released;
      }),
    );
    await waitFor(() => appendedCount === partitionCount, { timeoutMs: 20_000, describe: () => `${appendedCount} of ${partitionCount} appended` });
    descriptors.resetMax();
    release();
    await Promise.all(held);
    await waitFor(() => manager.openPartitionCount <= 16 && descriptors.openNow === manager.handles.openCount, {
      timeoutMs: 30_000,
      describe: () => `${manager.openPartitionCount} logs open, ${descriptors.openNow} descriptors`,
    });
    expect(descriptors.max).toBeLessThanOrEqual(openFilesMax + 3 * limits.logOpensClosesInFlightMax);
    // Closed cleanly: each reopens without a scan and keeps its record.
    const read = await manager.withPartition('burst', 299, (log) => log.read({ offset: 0, bytesMax: 1024 }));
    expect(decodeBatches(read.bytes)[0]?.value?.toString().startsWith('p299-0:')).toBe(true);
  });

  it('refuses a use that waited for an idle close once the manager has closed, opening nothing', async () => {
    const { manager, clock } = await startManager({ partitionIdleMs: 10_000 });
    await manager.createPartition('t', 0);
    await manager.withPartition('t', 0, (log) => log.append(makeBatch()));
    clock.advance(10_000);
    manager.closeIdle();
    expect(manager.openPartitionCount).toBe(0); // its close is under way
    const late = manager.withPartition('t', 0, (log) => log.append(makeBatch()));
    await manager.close();
    await expect(late).rejects.toSatisfy((error) => isBrokerError(error, 'SHUTTING_DOWN'));
    expect(manager.openPartitionCount).toBe(0);
  });

  it('closes logs idle for partitionIdleMs', async () => {
    const { manager, clock } = await startManager({ partitionIdleMs: 10_000, openPartitionsMax: 100 });
    await manager.createPartition('t', 0);
    await manager.withPartition('t', 0, (log) => log.append(makeBatch()));
    expect(manager.openPartitionCount).toBe(1);
    clock.advance(5_000);
    manager.closeIdle();
    expect(manager.openPartitionCount).toBe(1);
    clock.advance(5_000);
    manager.closeIdle();
    expect(manager.openPartitionCount).toBe(0);
  });

  it('closes idle logs although retention checks them more often than partitionIdleMs', async () => {
    // The defaults check retention every 5 minutes and close logs idle for 10: a retention
    // run must neither count as use nor leave open the logs it opened.
    const { manager, clock } = await startManager({ partitionIdleMs: 10_000, openPartitionsMax: 100 });
    for (let p = 0; p < 3; p++) {
      await manager.createPartition('t', p);
      await manager.withPartition('t', p, (log) => log.append(makeBatch()));
    }
    expect(manager.openPartitionCount).toBe(3);
    for (let elapsedMs = 0; elapsedMs < 10_000; elapsedMs += 1_000) {
      clock.advance(1_000);
      await manager.runRetention();
    }
    manager.closeIdle();
    await waitFor(() => manager.openPartitionCount === 0, { timeoutMs: 5_000, describe: () => `${manager.openPartitionCount} logs still open` });
    // A run over closed logs opens each to check it, and closes it again.
    await manager.runRetention();
    expect(manager.openPartitionCount).toBe(0);
    expect(await manager.withPartition('t', 2, async (log) => log.logEndOffset)).toBe(1);
  });

  it('runs retention over every partition, open or not', async () => {
    const { manager } = await startManager({ config: { segmentBytes: 2048, retentionBytes: 4096 }, openPartitionsMax: 1 });
    for (let p = 0; p < 3; p++) {
      await manager.createPartition('r', p);
      for (let i = 0; i < 30; i++) await manager.withPartition('r', p, (log) => log.append(makeBatch({ valueBytes: 200 })));
    }
    await manager.runRetention();
    for (let p = 0; p < 3; p++) {
      expect(await manager.withPartition('r', p, async (log) => log.logStartOffset)).toBeGreaterThan(0);
    }
  });

  it('deletes a partition and its files, and the name can be created again empty', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartition('gone', 0);
    await manager.withPartition('gone', 0, (log) => log.append(makeBatch({ count: 5 })));
    await manager.deletePartition('gone', 0);
    expect(manager.hasPartition('gone', 0)).toBe(false);
    await expect(manager.withPartition('gone', 0, async () => 1)).rejects.toSatisfy((e) => isBrokerError(e, 'PARTITION_NOT_FOUND'));
    expect(readdirSync(dataDir).filter((name) => name === 'gone-0')).toEqual([]);
    await manager.createPartition('gone', 0);
    expect(await manager.withPartition('gone', 0, async (log) => log.logEndOffset)).toBe(0);
  });

  it('keeps knowing a partition whose delete failed, so a retried delete removes it and no create takes it over', async () => {
    let failRenames = 1;
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      async rename(fromPath, toPath) {
        if (toPath.endsWith('.deleted') && failRenames-- > 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
        return nodeFileSystem.rename(fromPath, toPath);
      },
    };
    const { manager, dataDir } = await startManager({ fileSystem });
    await manager.createPartition('gone', 0);
    await manager.withPartition('gone', 0, (log) => log.append(makeBatch({ count: 1, tag: 'OLD-SECRET' })));
    await expect(manager.deletePartition('gone', 0)).rejects.toSatisfy((error) => isBrokerError(error, 'DISK_FULL'));
    expect(manager.hasPartition('gone', 0)).toBe(true);
    await expect(manager.createPartition('gone', 0)).rejects.toSatisfy((error) => isBrokerError(error, 'TOPIC_ALREADY_EXISTS'));
    await manager.deletePartition('gone', 0); // the retry
    expect(manager.hasPartition('gone', 0)).toBe(false);
    expect(existsSync(join(dataDir, 'gone-0'))).toBe(false);
    await manager.createPartition('gone', 0);
    expect(await manager.withPartition('gone', 0, async (log) => log.logEndOffset)).toBe(0);
  });

  it('refuses to create a partition over a directory it does not know', async () => {
    const { manager, dataDir } = await startManager();
    mkdirSync(join(dataDir, 'stray-0'));
    await expect(manager.createPartition('stray', 0)).rejects.toSatisfy((error) => isBrokerError(error, 'TOPIC_ALREADY_EXISTS'));
  });

  it('finishes an interrupted deletion at the next start', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartition('x', 0);
    await manager.close();
    const { renameSync } = await import('node:fs');
    renameSync(join(dataDir, 'x-0'), join(dataDir, 'x-0.123.deleted'));
    const { manager: again } = await startManager({ dataDir });
    expect(again.listPartitions()).toEqual([]);
    await again.close();
    // Removal runs in the background; it is gone once the tree removal settles.
    const { waitFor } = await import('../../test/support/wait-for.js');
    await waitFor(() => !existsSync(join(dataDir, 'x-0.123.deleted')), { timeoutMs: 5_000, describe: () => 'x-0.123.deleted still exists' });
  });
});
