import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { limits } from '../config/limits.js';
import { isBrokerError } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { decodeBatches } from '../protocol/index.js';
import { LogManager, type LogManagerOptions } from './log-manager.js';
import type { PartitionLog, PartitionLogConfig } from './partition-log.js';
import { nodeFileSystem, readFully, type FileSystem } from './file-system.js';
import { segmentFilePath } from './file-names.js';
import { makeBatch, makeTempDir, testConfig } from './test-helpers.js';
import { recordingLogger } from '../../test/support/recording-logger.js';
import { waitFor } from '../../test/support/wait-for.js';
import { createFaultyFileSystem } from '../../test/support/faulty-file-system.js';

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
    logger: options.logger ?? silentLogger,
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

/**
 * Wraps the node file system, counting segment (.log) descriptors from their open until their
 * close has finished, and holding reads of segment files while the test says so.
 */
function segmentFileLedger(): { fileSystem: FileSystem; readonly openNow: number; readonly readsHeld: number; holdReads(): void; letReadsGo(): void } {
  let openNow = 0;
  let readsHeld = 0;
  let gate: Promise<void> | undefined;
  let openGate: () => void = () => undefined;
  const fileSystem: FileSystem = {
    ...nodeFileSystem,
    async open(path, mode) {
      const handle = await nodeFileSystem.open(path, mode);
      if (!path.endsWith('.log')) return handle;
      openNow++;
      const close = handle.close.bind(handle);
      const read = handle.read.bind(handle);
      handle.close = async () => {
        try {
          await close();
        } finally {
          openNow--;
        }
      };
      handle.read = async (buffer, offset, length, position) => {
        while (gate !== undefined) {
          readsHeld++;
          await gate;
          readsHeld--;
        }
        return read(buffer, offset, length, position);
      };
      return handle;
    },
  };
  return {
    fileSystem,
    get openNow() {
      return openNow;
    },
    get readsHeld() {
      return readsHeld;
    },
    holdReads() {
      gate = new Promise<void>((resolve) => {
        openGate = resolve;
      });
    },
    letReadsGo() {
      gate = undefined;
      openGate();
    },
  };
}

/**
 * Wraps the node file system, counting the descriptors of files other than segments (.log),
 * which storage opens only for a moment through its descriptor slots: a handle from its open
 * until its close has finished, and the descriptor a whole-file read (`tryReadFile`) opens
 * for itself, from that open to its close. Every such open is recorded by path. The read of
 * the file named by `holdReadOf` waits with its file open until `release()`.
 */
function shortLivedFileLedger(): {
  fileSystem: FileSystem;
  readonly openNow: number;
  readonly openedPaths: readonly string[];
  readonly isHolding: boolean;
  holdReadOf(path: string): void;
  release(): void;
} {
  let openNow = 0;
  const openedPaths: string[] = [];
  let pathToHold: string | undefined;
  let isHolding = false;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const during = async <T>(path: string, work: () => Promise<T>): Promise<T> => {
    openNow++;
    openedPaths.push(path);
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
      if (path.endsWith('.log')) return handle;
      openNow++;
      openedPaths.push(path);
      const close = handle.close.bind(handle);
      handle.close = async () => {
        try {
          await close();
        } finally {
          openNow--;
        }
      };
      return handle;
    },
    async tryReadFile(path) {
      let handle;
      try {
        handle = await nodeFileSystem.open(path, 'read');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      }
      openNow++;
      openedPaths.push(path);
      try {
        if (path === pathToHold) {
          pathToHold = undefined;
          isHolding = true;
          await released;
          isHolding = false;
        }
        const sizeBytes = await handle.sizeBytes();
        const bytes = Buffer.alloc(sizeBytes);
        await readFully(handle, bytes, sizeBytes, 0);
        return bytes;
      } finally {
        try {
          await handle.close();
        } finally {
          openNow--;
        }
      }
    },
    readdir: (path) => during(path, () => nodeFileSystem.readdir(path)),
    syncDirectory: (path) => during(path, () => nodeFileSystem.syncDirectory(path)),
    removeTree: (path) => during(path, () => nodeFileSystem.removeTree(path)),
  };
  return {
    fileSystem,
    get openNow() {
      return openNow;
    },
    get openedPaths() {
      return openedPaths;
    },
    get isHolding() {
      return isHolding;
    },
    holdReadOf(path) {
      pathToHold = path;
    },
    release: () => release(),
  };
}

/**
 * A data directory holding partition t-0 with a sealed segment at offset 0 and an active one
 * after it, closed cleanly: a manager started on it opens the log without loading the sealed
 * segment's indexes, which a later read then loads from its index files.
 */
async function dataDirWithSealedSegment(): Promise<string> {
  const { manager, dataDir } = await startManager();
  await manager.createPartition('t', 0);
  await manager.withPartition('t', 0, async (log) => {
    await log.append(makeBatch({ tag: 'sealed', timestamp: 1_000 }));
    await log.roll();
    await log.append(makeBatch({ tag: 'active', timestamp: 2_000 }));
  });
  await manager.close();
  return dataDir;
}

/**
 * Starts, on `dataDirWithSealedSegment`, a seek by time whose load of the sealed segment's
 * offset index the ledger holds with the index file open, and starts closing the manager once
 * the seek is held there. Resolves when the log's own close has finished, so only the seek
 * keeps storage busy. The seek holds no segment file meanwhile: `maxTimestamp` loads the
 * indexes before any lease is taken, so the segment file cache has nothing to wait for.
 */
async function closeWhileIndexLoadIsHeld(options: { logger?: LogManagerOptions['logger'] } = {}) {
  const dataDir = await dataDirWithSealedSegment();
  const ledger = shortLivedFileLedger();
  const { manager, clock } = await startManager({ dataDir, fileSystem: ledger.fileSystem, ...options });
  const dir = join(dataDir, 't-0');
  let readLog: PartitionLog | undefined;
  await manager.withPartition('t', 0, async (log) => {
    readLog = log;
  });
  ledger.holdReadOf(segmentFilePath(dir, 0, 'index'));
  const seeking = manager.withPartition('t', 0, (log) => log.offsetForTimestamp(0));
  const seek = track(seeking);
  await waitFor(() => ledger.isHolding, { timeoutMs: 5_000, describe: () => 'the seek never loaded the sealed segment\'s index file' });
  const closing = track(manager.close());
  await waitFor(() => readLog?.isClosed, { timeoutMs: 5_000, describe: () => 'the manager never started closing the log' });
  await readLog?.close(); // the close the manager started: resolves when it is done
  await letCallbacksRun();
  return { ledger, clock, dir, seeking, seek, closing };
}

/** A promise's state as of now, updated as it settles (read it after letting callbacks run). */
function track<T>(promise: Promise<T>): { readonly state: 'pending' | 'fulfilled' | 'rejected' } {
  const tracked = { state: 'pending' as 'pending' | 'fulfilled' | 'rejected' };
  void promise.then(
    () => (tracked.state = 'fulfilled'),
    () => (tracked.state = 'rejected'),
  );
  return tracked;
}

/** Lets every callback already due run (promise reactions and I/O already completed). */
async function letCallbacksRun(): Promise<void> {
  for (let round = 0; round < 3; round++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Wraps the node file system, recording every call (`open <path>`, `read <path>`, …), file
 * handle calls included, so a test can tell whether some work touched the disk at all.
 */
function recordingFileSystem(): { fileSystem: FileSystem; calls: string[] } {
  const calls: string[] = [];
  const handleMethods = ['read', 'writev', 'datasync', 'truncate', 'sizeBytes', 'close'] as const;
  const recorded =
    <Rest extends unknown[], T>(name: string, work: (path: string, ...rest: Rest) => Promise<T>) =>
    (path: string, ...rest: Rest): Promise<T> => {
      calls.push(`${name} ${path}`);
      return work(path, ...rest);
    };
  const fileSystem: FileSystem = {
    async open(path, mode) {
      calls.push(`open ${path}`);
      const handle = await nodeFileSystem.open(path, mode);
      for (const method of handleMethods) {
        const original = (handle[method] as (...args: unknown[]) => Promise<unknown>).bind(handle);
        (handle as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
          calls.push(`${method} ${path}`);
          return original(...args);
        };
      }
      return handle;
    },
    tryReadFile: recorded('tryReadFile', nodeFileSystem.tryReadFile),
    trySizeBytes: recorded('trySizeBytes', nodeFileSystem.trySizeBytes),
    readdir: recorded('readdir', nodeFileSystem.readdir),
    mkdir: recorded('mkdir', nodeFileSystem.mkdir),
    rename: recorded('rename', nodeFileSystem.rename),
    unlink: recorded('unlink', nodeFileSystem.unlink),
    removeTree: recorded('removeTree', nodeFileSystem.removeTree),
    syncDirectory: recorded('syncDirectory', nodeFileSystem.syncDirectory),
  };
  return { fileSystem, calls };
}

/**
 * Wraps `inner` (the node file system by default), keeping the entries made (mkdir), renamed
 * and removed (removeTree) directly in `dataDir` since its last successful fsync: what a power
 * cut may undo. Which of them a cut keeps is up to the file system; a journaling one keeps some
 * prefix of them, so `namesACutMayLeave` is every name present after some prefix, starting
 * from what the last successful fsync (or, before any, the listing at wrap time) made durable.
 */
function directoryEntryJournal(dataDir: string, inner: FileSystem = nodeFileSystem): { fileSystem: FileSystem; namesACutMayLeave(): Set<string> } {
  let durable = new Set(readdirSync(dataDir));
  /** Finished changes since the last successful fsync, oldest first; `seq` orders them against fsync calls. */
  let changes: { seq: number; apply(names: Set<string>): void }[] = [];
  let seq = 0;
  const isEntry = (path: string): boolean => dirname(path) === dataDir;
  const noted = (apply: (names: Set<string>) => void): void => {
    changes.push({ seq: seq++, apply });
  };
  const fileSystem: FileSystem = {
    ...inner,
    async mkdir(path) {
      await inner.mkdir(path);
      if (isEntry(path)) noted((names) => names.add(basename(path)));
    },
    async rename(fromPath, toPath) {
      await inner.rename(fromPath, toPath);
      if (isEntry(fromPath) && isEntry(toPath)) {
        noted((names) => {
          names.delete(basename(fromPath));
          names.add(basename(toPath));
        });
      }
    },
    async removeTree(path) {
      await inner.removeTree(path);
      if (isEntry(path)) noted((names) => names.delete(basename(path)));
    },
    async syncDirectory(path) {
      const calledAt = seq;
      await inner.syncDirectory(path);
      if (path !== dataDir) return;
      // Covers every change finished before the call.
      for (const change of changes.filter((change) => change.seq < calledAt)) change.apply(durable);
      changes = changes.filter((change) => change.seq >= calledAt);
    },
  };
  return {
    fileSystem,
    namesACutMayLeave() {
      const state = new Set(durable);
      const seen = new Set(state);
      for (const change of changes) {
        change.apply(state);
        for (const name of state) seen.add(name);
      }
      return seen;
    },
  };
}

const HOUR_MS = 3_600_000;

/** Closes every idle log and waits until no log is open (their closes may still run). */
async function closeAllIdle(manager: LogManager, clock: ManualClock, partitionIdleMs: number): Promise<void> {
  clock.advance(partitionIdleMs);
  manager.closeIdle();
  await waitFor(() => manager.openPartitionCount === 0, { timeoutMs: 10_000, describe: () => `${manager.openPartitionCount} logs still open` });
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

  it('creates a topic of many partitions with one fsync and no file opened, describes them without opening, and deletes open ones without making them durable', async () => {
    const recording = recordingFileSystem();
    const calls = recording.calls;
    const kindsOfCalls = (): string[] => calls.map((call) => call.split(' ')[0] as string);
    const { manager, dataDir } = await startManager({ fileSystem: recording.fileSystem, openPartitionsMax: 8 });
    calls.length = 0; // start-up's
    const partitions = Array.from({ length: 40 }, (_, i) => i);
    await manager.createPartitions('many', partitions);
    // One mkdir per partition and one fsync of the data directory; no log was opened (before:
    // each log opened, with its first segment and partition.state, and 32 of the 40 closed again).
    expect(kindsOfCalls().filter((call) => call !== 'readdir').sort()).toEqual([...partitions.map(() => 'mkdir'), 'syncDirectory']);
    expect(manager.openPartitionCount).toBe(0);
    expect(readdirSync(join(dataDir, 'many-7'))).toEqual([]);
    calls.length = 0;
    expect(await manager.partitionStats('many', 7)).toMatchObject({ logStartOffset: 0, logEndOffset: 0, sizeBytes: 0, status: 'online' });
    expect(await manager.offsetRangeIfClosed('many', 7)).toEqual({ logStartOffset: 0, logEndOffset: 0 });
    expect(calls).toEqual([]);

    // Used, the partition is the new log that stats described.
    await manager.withPartition('many', 7, (log) => log.append(makeBatch({ count: 2 })));
    expect(await manager.partitionStats('many', 7)).toMatchObject({ logStartOffset: 0, logEndOffset: 2, status: 'online' });
    for (const partition of [0, 1, 2]) await manager.withPartition('many', partition, (log) => log.append(makeBatch({ count: 1 })));
    calls.length = 0;
    await manager.deletePartitions('many', partitions);
    // Each directory renamed away, one fsync; nothing of the four open logs made durable first.
    // (Descriptors closed, and the renamed directories removed in the background, aside.)
    const isBookkeeping = (call: string): boolean => ['close', 'removeTree', 'readdir', 'unlink'].includes(call);
    expect(kindsOfCalls().filter((call) => !isBookkeeping(call)).sort()).toEqual([...partitions.map(() => 'rename'), 'syncDirectory']);
    expect(manager.listPartitions()).toEqual([]);
    await waitFor(() => readdirSync(dataDir).length === 0, { timeoutMs: 10_000, describe: () => readdirSync(dataDir).join(', ') });
  });

  it('leaves partitions created and never used out of retention checks: nothing to delete, nothing opened', async () => {
    const recording = recordingFileSystem();
    const { manager, dataDir } = await startManager({ fileSystem: recording.fileSystem, config: { retentionMs: 1, retentionBytes: 0 } });
    await manager.createPartitions('idle', Array.from({ length: 20 }, (_, i) => i));
    recording.calls.length = 0;
    await manager.runRetention();
    // Before, each was opened (its first segment and partition.state made) and closed again.
    expect(recording.calls).toEqual([]);
    expect(manager.openPartitionCount).toBe(0);
    expect(readdirSync(join(dataDir, 'idle-19'))).toEqual([]);
  });

  it('finds a partition created empty, never used, after a restart, and opens it as a new log', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartitions('fresh', [0, 1]);
    await manager.close();
    const { manager: again } = await startManager({ dataDir });
    expect(again.listPartitions()).toEqual([
      { topic: 'fresh', partition: 0 },
      { topic: 'fresh', partition: 1 },
    ]);
    const appended = await again.withPartition('fresh', 1, (log) => log.append(makeBatch({ count: 3 })));
    expect(appended.baseOffset).toBe(0);
    expect(await again.partitionStats('fresh', 1)).toMatchObject({ logEndOffset: 3, status: 'online' });
  });

  it('after a restart too, describes and retention-checks a partition never used without opening it (one listing of its empty directory)', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartitions('quiet', Array.from({ length: 10 }, (_, i) => i));
    await manager.close();
    const recording = recordingFileSystem();
    const { manager: again } = await startManager({ dataDir, fileSystem: recording.fileSystem, config: { retentionMs: 1, retentionBytes: 0 } });
    recording.calls.length = 0; // start-up's
    expect(await again.partitionStats('quiet', 3)).toMatchObject({ logStartOffset: 0, logEndOffset: 0, sizeBytes: 0, status: 'online' });
    await again.runRetention();
    await again.runRetention();
    expect(await again.partitionStats('quiet', 3)).toMatchObject({ logEndOffset: 0, status: 'online' });
    // Before, each was opened after the restart (its first segment and partition.state made,
    // with their fsyncs) and closed again: a restart undid what the empty create saved.
    for (let partition = 0; partition < 10; partition++) expect(readdirSync(join(dataDir, `quiet-${partition}`))).toEqual([]);
    expect(again.openPartitionCount).toBe(0);
    expect(recording.calls.filter((call) => !call.startsWith('readdir ')).length).toBe(0);
    // Once known, looked at no more.
    expect(recording.calls.length).toBe(10);
    // Used, it is a new log as before.
    await again.withPartition('quiet', 3, (log) => log.append(makeBatch({ count: 2 })));
    expect(await again.partitionStats('quiet', 3)).toMatchObject({ logEndOffset: 2 });
  });

  it('describes a partition closed cleanly since its last use from what its close left, without opening it', async () => {
    const recording = recordingFileSystem();
    const { manager, clock } = await startManager({ fileSystem: recording.fileSystem });
    await manager.createPartitions('used', [0, 1]);
    for (const partition of [0, 1]) await manager.withPartition('used', partition, (log) => log.append(makeBatch({ count: 3 + partition })));
    const whileOpen = await manager.partitionStats('used', 1);
    expect(whileOpen).toMatchObject({ logStartOffset: 0, logEndOffset: 4, status: 'online' });
    await closeAllIdle(manager, clock, 60_000);
    await waitFor(() => manager.partitionsNotClosed().length === 0, { timeoutMs: 10_000, describe: () => 'closes still running' });
    recording.calls.length = 0;
    // Before, each describe opened the log (partition.state, segment and index files read,
    // sizes stat'ed): a topic of 10,000 used partitions took 9–16 s to describe.
    expect(await manager.partitionStats('used', 1)).toEqual({ ...whileOpen, pendingAppends: 0, flushedOffset: 4 }); // the close made all 4 durable
    expect(await manager.partitionStats('used', 0)).toMatchObject({ logEndOffset: 3, segmentCount: 1, status: 'online' });
    expect(await manager.offsetRangeIfClosed('used', 1)).toEqual({ logStartOffset: 0, logEndOffset: 4 });
    expect(recording.calls).toEqual([]);
    expect(manager.openPartitionCount).toBe(0);
    // Used again, it is described from the open log, with what was appended since.
    await manager.withPartition('used', 1, (log) => log.append(makeBatch({ count: 2 })));
    expect(await manager.offsetRangeIfClosed('used', 1)).toBeUndefined(); // open: ask the log
    const after = await manager.partitionStats('used', 1);
    expect(after).toMatchObject({ logEndOffset: 6 });
    expect(after.sizeBytes).toBeGreaterThan(whileOpen.sizeBytes);
  });

  it('refuses a create naming a partition twice, or one that exists, before making anything', async () => {
    const { manager, dataDir } = await startManager();
    await manager.createPartition('t', 2);
    await expect(manager.createPartitions('t', [0, 1, 1])).rejects.toSatisfy((e) => isBrokerError(e, 'TOPIC_ALREADY_EXISTS'));
    await expect(manager.createPartitions('t', [0, 1, 2])).rejects.toSatisfy((e) => isBrokerError(e, 'TOPIC_ALREADY_EXISTS'));
    expect(readdirSync(dataDir)).toEqual(['t-2']);
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

  it('keeps a reader listening (onAppend) through an idle close of the log, without holding it open, and wakes it on the append that reopens it', async () => {
    const { manager, clock } = await startManager({ openPartitionsMax: 4, partitionIdleMs: 60_000 });
    await manager.createPartition('t', 0);
    const heard: number[][] = [];
    await manager.withPartition('t', 0, async (log) => {
      await log.append(makeBatch({ tag: 'a' }));
      manager.onAppend('t', 0, (logEndOffset, appended) => heard.push([logEndOffset, appended.length]));
    });
    await closeAllIdle(manager, clock, 60_000); // the listener kept nothing open
    expect(heard).toEqual([]); // the idle close woke nobody: nothing was appended
    await manager.withPartition('t', 0, (log) => log.append(makeBatch({ tag: 'b' })));
    expect(heard.at(-1)?.[1]).toBe(1); // told of the batch by the reopened log
  });

  /**
   * Goal: a reader parked on a closed log (onAppend) learns at once when the log's next open
   * finds it damaged, as it does when an open log goes offline. Method: close the log as
   * idle, remove its active segment file, and open it again. Before, the log went offline
   * inside its open, before the manager listened to it, so nobody told the parked reader: it
   * waited out its whole wait (a Subscribe 30 s) and was answered with nothing, not the error.
   */
  it('wakes readers listening on a closed log when its next open finds it offline', async () => {
    const { manager, clock, dataDir } = await startManager({ openPartitionsMax: 4, partitionIdleMs: 60_000 });
    await manager.createPartition('t', 0);
    const heard: number[] = [];
    await manager.withPartition('t', 0, async (log) => {
      await log.append(makeBatch({ tag: 'a' }));
      manager.onAppend('t', 0, (_logEndOffset, appended) => heard.push(appended.length));
    });
    await closeAllIdle(manager, clock, 60_000);
    await waitFor(() => manager.partitionsNotClosed().length === 0, { timeoutMs: 10_000, describe: () => 'the idle close did not finish' });
    rmSync(join(dataDir, 't-0', '00000000000000000000.log'));
    expect(await manager.withPartition('t', 0, async (log) => log.isOnline)).toBe(false);
    expect(heard).toEqual([0]);
  });

  it('wakes readers listening on a closed log when its partition is deleted or the manager closes', async () => {
    const { manager, clock } = await startManager({ openPartitionsMax: 4, partitionIdleMs: 60_000 });
    await manager.createPartitions('t', [0, 1]);
    const woken: number[] = [];
    for (const partition of [0, 1]) {
      await manager.withPartition('t', partition, async (log) => {
        await log.append(makeBatch({ tag: `p${partition}` }));
        manager.onAppend('t', partition, () => woken.push(partition));
      });
    }
    await closeAllIdle(manager, clock, 60_000);
    await manager.deletePartition('t', 0);
    expect(woken).toEqual([0]);
    await manager.close();
    expect(woken).toEqual([0, 1]);
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
    // Handled from now on: it rejects while close still waits for the segment files to close.
    const isRefused = expect(late).rejects.toSatisfy((error) => isBrokerError(error, 'SHUTTING_DOWN'));
    await manager.close();
    await isRefused;
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

  it('keeps a log that went offline on a failed fdatasync open and offline, instead of closing it as idle and reopening it from the page cache', async () => {
    const faulty = createFaultyFileSystem();
    const { manager, clock } = await startManager({ partitionIdleMs: 10_000, openPartitionsMax: 100, fileSystem: faulty.fileSystem, config: { flush: { kind: 'interval', intervalMs: 1_000 } } });
    await manager.createPartition('t', 0);
    faulty.faults.failNextDatasync({ path: /\.log$/ });
    await manager.withPartition('t', 0, (log) => log.append(makeBatch()));
    clock.advance(1_000); // the interval flush runs, and its fdatasync fails
    await waitFor(async () => !(await manager.withPartition('t', 0, async (log) => log.isOnline)), { timeoutMs: 5_000, describe: () => 'the failed flush did not take the log offline' });
    clock.advance(10_000);
    manager.closeIdle();
    expect(manager.openPartitionCount).toBe(1);
    // Still the same offline log on the next use: no reopen recovered it from the page cache.
    expect(await manager.withPartition('t', 0, async (log) => ({ isOnline: log.isOnline, flushedOffset: log.flushedOffset }))).toEqual({ isOnline: false, flushedOffset: 0 });
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
    // A run over closed logs leaves them closed (with nothing due it does not open them).
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

  it('skips partitions being deleted in a retention run, reporting no failure for them', async () => {
    let releaseRename: () => void = () => undefined;
    const renameReleased = new Promise<void>((resolve) => {
      releaseRename = resolve;
    });
    let isRenameWaiting = false;
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      async rename(fromPath, toPath) {
        if (toPath.endsWith('.deleted')) {
          isRenameWaiting = true;
          await renameReleased;
        }
        return nodeFileSystem.rename(fromPath, toPath);
      },
    };
    const logger = recordingLogger();
    const { manager, dataDir } = await startManager({ fileSystem, logger });
    await manager.createPartitions('going', [0, 1]);
    for (const partition of [0, 1]) await manager.withPartition('going', partition, (log) => log.append(makeBatch({ count: 1 })));
    // going-0 is closed and marked deleted, its rename held; going-1 is next in line.
    const deleting = manager.deletePartitions('going', [0, 1]);
    await waitFor(() => isRenameWaiting, { timeoutMs: 5_000, describe: () => 'the rename of going-0 never started' });
    await manager.runRetention();
    releaseRename();
    await deleting;
    // Before, the run opened each partition being deleted, was refused (PARTITION_NOT_FOUND)
    // and logged 'retention failed' at error level for it: alarming, and nothing had failed.
    expect(logger.calls.filter((call) => call.level === 'error')).toEqual([]);
    await manager.runRetention(); // and after the delete: nothing of them is left to check
    expect(logger.calls.filter((call) => call.level === 'error')).toEqual([]);
    await waitFor(() => readdirSync(dataDir).length === 0, { timeoutMs: 10_000, describe: () => readdirSync(dataDir).join(', ') });
  });

  describe('data-directory fsync after a failure part-way', () => {
    const eio = (what: string): Error => Object.assign(new Error(`EIO: i/o error, ${what}`), { code: 'EIO' });
    const partitionNames = (names: Iterable<string>, topic: string): string[] => [...names].filter((name) => name.startsWith(`${topic}-`) && !name.endsWith('.deleted')).sort();

    it('makes the removal of what a failed create made durable, so a power cut cannot bring back directories that block the name', async () => {
      // The mkdir of the third partition fails. The two made before it are removed; before,
      // without an fsync, a power cut could keep the mkdirs (written back meanwhile) and lose
      // the removals: empty directories with no topic record, which refuse a create of the name.
      const dataDir = makeTempDir().dir;
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      let mkdirFailures = 1;
      const journal = directoryEntryJournal(dataDir, {
        ...nodeFileSystem,
        mkdir: (path) => (path === join(dataDir, 'cut-2') && mkdirFailures-- > 0 ? Promise.reject(eio(`mkdir '${path}'`)) : nodeFileSystem.mkdir(path)),
      });
      const { manager } = await startManager({ dataDir, fileSystem: journal.fileSystem });
      await expect(manager.createPartitions('cut', [0, 1, 2, 3])).rejects.toMatchObject({ reason: 'STORAGE_ERROR', details: { operation: 'create' } });
      expect(partitionNames(readdirSync(dataDir), 'cut')).toEqual([]);
      expect(partitionNames(journal.namesACutMayLeave(), 'cut')).toEqual([]);
      await manager.createPartitions('cut', [0, 1, 2, 3]);
    });

    it('reports the create\'s own error when the fsync after the removal fails too, and logs which directories a power cut may bring back', async () => {
      const dataDir = makeTempDir().dir;
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      const logger = recordingLogger();
      const fileSystem: FileSystem = {
        ...nodeFileSystem,
        mkdir: (path) => (path === join(dataDir, 'cut-2') ? Promise.reject(eio(`mkdir '${path}'`)) : nodeFileSystem.mkdir(path)),
        syncDirectory: (path) => (path === dataDir ? Promise.reject(eio(`fsync '${path}'`)) : nodeFileSystem.syncDirectory(path)),
      };
      const { manager } = await startManager({ dataDir, fileSystem, logger });
      await expect(manager.createPartitions('cut', [0, 1, 2, 3])).rejects.toMatchObject({ reason: 'STORAGE_ERROR', details: { operation: 'create' } });
      expect(partitionNames(readdirSync(dataDir), 'cut')).toEqual([]);
      const errors = logger.calls.filter((call) => call.level === 'error');
      expect(errors).toEqual([
        {
          level: 'error',
          fields: expect.objectContaining({ topic: 'cut', partitions: [0, 1, 2], err: expect.stringContaining('fsync') }),
          message: expect.stringMatching(/power cut.*empty directories.*remove them/),
        },
      ]);
    });

    it('fails a delete whose fsync fails with STORAGE_ERROR, removes the renamed directories, and makes them durable at the retry with nothing left to rename', async () => {
      const dataDir = makeTempDir().dir;
      cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
      let syncFailures = 0;
      const journal = directoryEntryJournal(dataDir, {
        ...nodeFileSystem,
        syncDirectory: (path) => (path === dataDir && syncFailures-- > 0 ? Promise.reject(eio(`fsync '${path}'`)) : nodeFileSystem.syncDirectory(path)),
      });
      const { manager } = await startManager({ dataDir, fileSystem: journal.fileSystem });
      await manager.createPartitions('gone', [0, 1, 2]);
      for (const partition of [0, 1, 2]) await manager.withPartition('gone', partition, (log) => log.append(makeBatch({ count: 1, tag: 'OLD-SECRET' })));
      syncFailures = 1;
      const failure = await manager.deletePartitions('gone', [0, 1, 2]).catch((error: unknown) => error);
      expect(failure).toMatchObject({ reason: 'STORAGE_ERROR', details: { operation: 'sync', path: dataDir, code: 'EIO' } });
      expect((failure as Error).message).toMatch(/I\/O error while trying to sync .*EIO/);
      // Gone for this process: nothing of them is listed or served, and the renamed directories go.
      expect(manager.listPartitions()).toEqual([]);
      await expect(manager.withPartition('gone', 0, async () => 1)).rejects.toSatisfy((error) => isBrokerError(error, 'PARTITION_NOT_FOUND'));
      await waitFor(() => readdirSync(dataDir).length === 0, { timeoutMs: 10_000, describe: () => readdirSync(dataDir).join(', ') });
      // Not durable: a power cut now may bring them back, whole, under their own names.
      expect(partitionNames(journal.namesACutMayLeave(), 'gone')).toEqual(['gone-0', 'gone-1', 'gone-2']);
      // The retry (the broker's, whose record keeps the isDeleting mark) finds none left; its
      // fsync makes the renames durable before the caller drops the record.
      await manager.deletePartitions('gone', []);
      expect(partitionNames(journal.namesACutMayLeave(), 'gone')).toEqual([]);
      await manager.createPartitions('gone', [0, 1, 2]);
      expect(await manager.withPartition('gone', 0, async (log) => log.logEndOffset)).toBe(0);
    });
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

  it('removes at start only the directories its deletes renamed away, never other names ending in .deleted', async () => {
    // Goal: start-up finishes interrupted deletes without taking what an operator put in the
    // data directory. Before, every name ending in ".deleted" was removed, file or directory.
    const { dir: dataDir } = makeTempDir();
    const { writeFileSync } = await import('node:fs');
    mkdirSync(join(dataDir, 'x-0.1700000000000-3.deleted'));
    writeFileSync(join(dataDir, 'x-0.1700000000000-3.deleted', '00000000000000000000.log'), 'gone');
    mkdirSync(join(dataDir, 'y-1.1700000000000.deleted')); // the name brokers before the count used
    mkdirSync(join(dataDir, 'keep.deleted'));
    writeFileSync(join(dataDir, 'keep.deleted', 'precious'), 'mine');
    writeFileSync(join(dataDir, 'notes.deleted'), 'mine');
    writeFileSync(join(dataDir, 'z-0.1700000000000-0.deleted'), 'a file, not a directory the broker renamed');
    const logger = recordingLogger();
    const { manager } = await startManager({ dataDir, logger });
    const left = (): string[] => readdirSync(dataDir).sort();
    await waitFor(() => !left().includes('x-0.1700000000000-3.deleted') && !left().includes('y-1.1700000000000.deleted'), { timeoutMs: 5_000, describe: () => `left: ${left().join(', ')}` });
    await waitFor(() => logger.calls.some((call) => call.level === 'warn' && call.fields.path === join(dataDir, 'z-0.1700000000000-0.deleted')), {
      timeoutMs: 5_000,
      describe: () => 'no warning naming the file z-0.1700000000000-0.deleted',
    });
    await manager.close();
    expect(left()).toEqual(['keep.deleted', 'notes.deleted', 'z-0.1700000000000-0.deleted']);
    expect(readdirSync(join(dataDir, 'keep.deleted'))).toEqual(['precious']);
    expect(logger.calls.filter((call) => call.message.startsWith('removing a partition directory')).map((call) => call.fields.path)).toHaveLength(2);
  });

  it('leaves an operator\'s directory named <name>.<number>.deleted alone unless <name> is a partition directory name (or one cut short)', async () => {
    // Goal: `backup.2024.deleted` is not a name a delete of the broker gives: it is kept with
    // what it holds. Only `<topic>-<partition>.<ms>[-<n>].deleted` is the broker's, the
    // partition name cut short when the whole would pass 255 bytes.
    const { dir: dataDir } = makeTempDir();
    const { writeFileSync } = await import('node:fs');
    for (const name of ['backup.2024.deleted', 'old-data.1700000000000-2.deleted', 'photos.1.deleted']) {
      mkdirSync(join(dataDir, name));
      writeFileSync(join(dataDir, name, 'precious'), 'mine');
    }
    const suffix = '.1700000000000-9.deleted';
    const cut = `${'t'.repeat(249)}-7`.slice(0, 255 - suffix.length) + suffix; // as deletePartitions names it
    mkdirSync(join(dataDir, cut));
    mkdirSync(join(dataDir, 'x-0.1700000000000-3.deleted'));
    const logger = recordingLogger();
    const { manager } = await startManager({ dataDir, logger });
    const left = (): string[] => readdirSync(dataDir).sort();
    await waitFor(() => !left().includes(cut) && !left().includes('x-0.1700000000000-3.deleted'), { timeoutMs: 5_000, describe: () => `left: ${left().join(', ')}` });
    await manager.close();
    expect(left()).toEqual(['backup.2024.deleted', 'old-data.1700000000000-2.deleted', 'photos.1.deleted']);
    for (const name of left()) expect(readdirSync(join(dataDir, name))).toEqual(['precious']);
  });

  it('starts beside lost+found, hidden files, stray files and misnamed directories, names them once and leaves them alone', async () => {
    const { dir: dataDir } = makeTempDir();
    const { writeFileSync } = await import('node:fs');
    mkdirSync(join(dataDir, 'lost+found'));
    writeFileSync(join(dataDir, '.DS_Store'), '');
    writeFileSync(join(dataDir, 'README.txt'), 'notes');
    mkdirSync(join(dataDir, 'bad#name-0'));
    const logger = recordingLogger();
    const { manager } = await startManager({ dataDir, logger });
    expect(manager.listPartitions()).toEqual([]);
    const ignored = logger.calls.filter((call) => call.message.startsWith('ignoring entries of the data directory'));
    expect(ignored).toHaveLength(1);
    expect([...(ignored[0]?.fields.names as string[])].sort()).toEqual(['.DS_Store', 'README.txt', 'bad#name-0']);
    await manager.close();
    expect(readdirSync(dataDir).sort()).toEqual(['.DS_Store', 'README.txt', 'bad#name-0', 'lost+found']);
  });

  describe('close', () => {
    it('returns only once every segment file it had open is closed', async () => {
      // Goal: no descriptor outlives the manager (a broker or test reopening the data directory
      // would find files of the last one still open). Method: logs written and read, so the
      // shared cache holds their segment files; each log's close forgets its segments, whose
      // closes start then, before the manager's closeAll, which used to wait only for closes
      // it started itself.
      const ledger = segmentFileLedger();
      const { manager } = await startManager({ fileSystem: ledger.fileSystem });
      for (let p = 0; p < 3; p++) {
        await manager.createPartition('t', p);
        await manager.withPartition('t', p, async (log) => {
          await log.append(makeBatch());
          await log.read({ offset: 0, bytesMax: 1024 });
        });
      }
      expect(ledger.openNow).toBeGreaterThan(0);
      await manager.close();
      expect(ledger.openNow).toBe(0);
    });

    it('waits up to closeReadWaitMsMax for a read still holding a segment file, which closes when the read ends', async () => {
      // A read does not go through its log's writer queue, so the log's close does not wait
      // for it, and the cache never closes a file under its user: the manager waits for it, but
      // not for ever (a hung disk).
      const ledger = segmentFileLedger();
      const { manager, clock } = await startManager({ fileSystem: ledger.fileSystem });
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, (log) => log.append(makeBatch({ tag: 'held' })));
      ledger.holdReads();
      let readLog: PartitionLog | undefined;
      const reading = manager.withPartition('t', 0, (log) => {
        readLog = log;
        return log.read({ offset: 0, bytesMax: 1024 });
      });
      await waitFor(() => ledger.readsHeld === 1, { timeoutMs: 5_000, describe: () => 'the read never reached its segment file' });
      const closing = track(manager.close());
      await waitFor(() => readLog?.isClosed, { timeoutMs: 5_000, describe: () => 'the manager never started closing the log' });
      await readLog?.close(); // the close the manager started: resolves when it is done
      await letCallbacksRun();
      expect(closing.state, 'close returned while a read held a segment file').toBe('pending');
      clock.advance(limits.closeReadWaitMsMax - 1);
      await letCallbacksRun();
      expect(closing.state).toBe('pending');
      clock.advance(1);
      await letCallbacksRun();
      expect(closing.state, 'close gave up waiting at closeReadWaitMsMax').toBe('fulfilled');
      expect(ledger.openNow).toBe(1);
      ledger.letReadsGo();
      const read = await reading;
      expect(decodeBatches(read.bytes)[0]?.value?.toString().startsWith('held')).toBe(true);
      await waitFor(() => ledger.openNow === 0, { timeoutMs: 5_000, describe: () => `${ledger.openNow} segment files still open after the read ended` });
    });
    it('waits for a read still holding an index file open, refuses the read its next file, and leaves no file open', async () => {
      // Goal: storage is quiet once close resolves (the broker may exit, a test or `runnel log`
      // may remove or reuse the data directory). Files opened only for a moment (index loads,
      // state, snapshots, directory fsyncs) go through the descriptor slots, not the segment
      // file cache, and close used to wait only for the cache: a read loading a sealed
      // segment's indexes kept its index file open past close, and opened the next one after.
      // Method: a seek by time whose offset-index load is held with the file open while the
      // manager closes; then the load is let go.
      const { ledger, dir, seeking, seek, closing } = await closeWhileIndexLoadIsHeld();
      expect(closing.state, 'close returned while a read held an index file open').toBe('pending');
      expect(ledger.openNow).toBe(1);
      ledger.release();
      await waitFor(() => closing.state !== 'pending', { timeoutMs: 5_000, describe: () => `close still waits with ${ledger.openNow} short-lived files open` });
      expect(closing.state).toBe('fulfilled');
      expect(ledger.openNow, 'short-lived files still open after close resolved').toBe(0);
      // The read's next file (the time index) is a new operation after close: refused.
      await waitFor(() => seek.state !== 'pending', { timeoutMs: 5_000, describe: () => 'the seek never ended' });
      await expect(seeking).rejects.toSatisfy((e) => isBrokerError(e, 'SHUTTING_DOWN'));
      expect(ledger.openedPaths).not.toContain(segmentFilePath(dir, 0, 'timeindex'));
      expect(ledger.openNow).toBe(0);
    });

    it('waits up to closeReadWaitMsMax for a read holding an index file open, and names the file when it gives up', async () => {
      // A hung disk must not hang the broker's stop: past the deadline close returns and says
      // which file is still in use; it closes when its read ends.
      const logger = recordingLogger();
      const { ledger, clock, dir, seeking, closing } = await closeWhileIndexLoadIsHeld({ logger });
      clock.advance(limits.closeReadWaitMsMax - 1);
      await letCallbacksRun();
      expect(closing.state).toBe('pending');
      clock.advance(1);
      await letCallbacksRun();
      expect(closing.state, 'close gave up waiting at closeReadWaitMsMax').toBe('fulfilled');
      const warning = logger.calls.find((call) => call.level === 'warn');
      expect(JSON.stringify(warning?.fields)).toContain(segmentFilePath(dir, 0, 'index'));
      expect(ledger.openNow).toBe(1);
      ledger.release();
      await expect(seeking).rejects.toSatisfy((e) => isBrokerError(e, 'SHUTTING_DOWN'));
      await waitFor(() => ledger.openNow === 0, { timeoutMs: 5_000, describe: () => `${ledger.openNow} short-lived files still open after the read ended` });
    });
  });

  describe('retention over closed logs', () => {
    // A long check interval keeps the manager's own timer out of the way: the tests run checks.
    const idleMs = 1_000;
    const quietOptions = { partitionIdleMs: idleMs, openPartitionsMax: 100, retentionCheckIntervalMs: 1_000 * HOUR_MS };

    it('checks quiet closed partitions without opening them, once each was opened after start-up', async () => {
      // Goal: with nothing due, a retention check costs no I/O per closed partition; before,
      // it opened and closed every one of them each time (10,000 partitions: 10,000 opens
      // every 5 minutes). Method: 40 partitions of two segments, fresh records, closed; the
      // manager restarted (summaries live in memory only); a file system that records every
      // call. The first check opens each partition once (mkdir of its directory is the first
      // step of an open); later ones, as time passes but nothing comes due, touch nothing.
      const recording = recordingFileSystem();
      const config = { retentionMs: HOUR_MS, retentionBytes: 1024 * 1024 };
      const { manager, dataDir, clock } = await startManager({ ...quietOptions, config, fileSystem: recording.fileSystem });
      const partitionCount = 40;
      for (let p = 0; p < partitionCount; p++) {
        await manager.createPartition('quiet', p);
        await manager.withPartition('quiet', p, async (log) => {
          await log.append(makeBatch({ timestamp: clock.nowMs() }));
          await log.roll();
          await log.append(makeBatch({ timestamp: clock.nowMs() }));
        });
      }
      await manager.close();
      const { manager: again } = await startManager({ ...quietOptions, dataDir, clock, config, fileSystem: recording.fileSystem });
      const isPartitionOpen = (call: string): boolean => call.startsWith(`mkdir ${join(dataDir, 'quiet-')}`);

      recording.calls.length = 0;
      await again.runRetention();
      expect(recording.calls.filter(isPartitionOpen)).toHaveLength(partitionCount);
      expect(again.openPartitionCount).toBe(0);

      for (const elapsedMs of [0, 5 * 60_000, HOUR_MS - 5 * 60_000]) {
        clock.advance(elapsedMs);
        recording.calls.length = 0;
        await again.runRetention();
        expect(recording.calls, `a check ${elapsedMs} ms later`).toEqual([]);
      }
      expect(again.openPartitionCount).toBe(0);
      expect(await again.withPartition('quiet', 7, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([0, 2]);
    });

    it('deletes by time once time passes, without opening the log before then', async () => {
      const recording = recordingFileSystem();
      const { manager, clock } = await startManager({ ...quietOptions, config: { retentionMs: HOUR_MS }, fileSystem: recording.fileSystem });
      const startMs = clock.nowMs();
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, async (log) => {
        await log.append(makeBatch({ timestamp: startMs - HOUR_MS / 2 }));
        await log.roll();
        await log.append(makeBatch({ timestamp: startMs }));
      });
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention(); // lets the close finish; nothing is due yet
      // The first segment's newest record is exactly retention.ms old: kept.
      clock.advance(startMs + HOUR_MS / 2 - clock.nowMs());
      recording.calls.length = 0;
      await manager.runRetention();
      expect(recording.calls).toEqual([]);
      // A millisecond later it has expired.
      clock.advance(1);
      await manager.runRetention();
      expect(recording.calls.length).toBeGreaterThan(0);
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([1, 2]);
    });

    it('deletes a quiet active segment once it expires while the log is closed', async () => {
      const { manager, clock } = await startManager({ ...quietOptions, config: { retentionMs: HOUR_MS } });
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, (log) => log.append(makeBatch({ count: 3, timestamp: clock.nowMs() })));
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      clock.advance(HOUR_MS);
      await manager.runRetention();
      // The one segment rolled and went: the log start moved up to the log end.
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset, log.segmentCount])).toEqual([3, 3, 1]);
    });

    it('deletes by size when retention.bytes is lowered while the log is closed', async () => {
      const recording = recordingFileSystem();
      const config: Partial<PartitionLogConfig> = { retentionBytes: -1 };
      const { manager, clock } = await startManager({ ...quietOptions, config, fileSystem: recording.fileSystem });
      await manager.createPartition('t', 0);
      const batchBytes = makeBatch({ timestamp: clock.nowMs() }).length;
      await manager.withPartition('t', 0, async (log) => {
        for (let i = 0; i < 3; i++) {
          await log.append(makeBatch({ timestamp: clock.nowMs() }));
          await log.roll();
        }
      });
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      recording.calls.length = 0;
      await manager.runRetention();
      expect(recording.calls).toEqual([]);
      // Three one-batch segments and an empty active one: the two later batches still make
      // retention.bytes, so the oldest segment goes (the topic config is read at each check).
      config.retentionBytes = 2 * batchBytes;
      await manager.runRetention();
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([1, 3]);
    });

    it('deletes by time when retention.ms is altered while the log is closed', async () => {
      const recording = recordingFileSystem();
      const config: Partial<PartitionLogConfig> = { retentionMs: -1 };
      const { manager, clock } = await startManager({ ...quietOptions, config, fileSystem: recording.fileSystem });
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, async (log) => {
        await log.append(makeBatch({ timestamp: clock.nowMs() - 2 * HOUR_MS }));
        await log.roll();
        await log.append(makeBatch({ timestamp: clock.nowMs() }));
      });
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      recording.calls.length = 0;
      await manager.runRetention();
      expect(recording.calls).toEqual([]);
      config.retentionMs = HOUR_MS;
      await manager.runRetention();
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([1, 2]);
    });

    it('judges a closed log by what it holds after it was reopened and appended to', async () => {
      // The summary of the empty log (never due) must not outlive the open that changed it.
      const { manager, clock } = await startManager({ ...quietOptions, config: { retentionMs: HOUR_MS } });
      await manager.createPartition('t', 0);
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      await manager.withPartition('t', 0, (log) => log.append(makeBatch({ timestamp: clock.nowMs() - 2 * HOUR_MS })));
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([1, 1]);
    });

    /**
     * A log of 20 sealed segments, reopened after a manager restart so none of their sizes or
     * indexes are known; `calls` then records only what `finish` does. A retention summary
     * would look up every sealed size and load the oldest segment's indexes.
     */
    async function whatClosingAColdLogLooksUp(finish: (manager: LogManager) => Promise<void>): Promise<string[]> {
      const recording = recordingFileSystem();
      const { manager, dataDir, clock } = await startManager({ ...quietOptions, config: { retentionMs: HOUR_MS }, fileSystem: recording.fileSystem });
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, async (log) => {
        for (let i = 0; i < 20; i++) {
          await log.append(makeBatch({ timestamp: clock.nowMs() }));
          await log.roll();
        }
      });
      await manager.close();
      const { manager: again } = await startManager({ ...quietOptions, dataDir, clock, config: { retentionMs: HOUR_MS }, fileSystem: recording.fileSystem });
      await again.withPartition('t', 0, (log) => log.append(makeBatch({ timestamp: clock.nowMs() })));
      recording.calls.length = 0;
      await finish(again);
      return recording.calls.filter((call) => call.startsWith('trySizeBytes ') || call.startsWith('tryReadFile '));
    }

    it('takes no retention summary of the logs it closes at shutdown, where none is ever used', async () => {
      expect(await whatClosingAColdLogLooksUp((manager) => manager.close())).toEqual([]);
    });

    it('takes no retention summary of a partition being deleted', async () => {
      expect(await whatClosingAColdLogLooksUp((manager) => manager.deletePartition('t', 0))).toEqual([]);
    });
    // An idle close still takes one: 'checks quiet closed partitions without opening them' above.

    it('judges a re-created partition by its own records, not by the deleted one', async () => {
      const { manager, clock } = await startManager({ ...quietOptions, config: { retentionMs: HOUR_MS } });
      await manager.createPartition('t', 0);
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention(); // the empty log's summary: never due
      await manager.deletePartition('t', 0);
      await manager.createPartition('t', 0);
      await manager.withPartition('t', 0, (log) => log.append(makeBatch({ timestamp: clock.nowMs() - 2 * HOUR_MS })));
      await closeAllIdle(manager, clock, idleMs);
      await manager.runRetention();
      expect(await manager.withPartition('t', 0, async (log) => [log.logStartOffset, log.logEndOffset])).toEqual([1, 1]);
    });
  });
});

describe('log lines a failing disk repeats', () => {
  /** The node file system, with EIO on every open, read and unlink under `dirPattern` while `failing.now`. */
  function failingFileSystem(dirPattern: RegExp): { fileSystem: FileSystem; failing: { now: boolean } } {
    const failing = { now: false };
    const check = (path: string, syscall: string): void => {
      if (failing.now && dirPattern.test(path)) throw Object.assign(new Error(`EIO: i/o error, ${syscall} '${path}'`), { code: 'EIO', syscall, path });
    };
    const fileSystem: FileSystem = {
      ...nodeFileSystem,
      async open(path, mode) {
        check(path, 'open');
        return nodeFileSystem.open(path, mode);
      },
      async tryReadFile(path) {
        check(path, 'open');
        return nodeFileSystem.tryReadFile(path);
      },
      async unlink(path) {
        check(path, 'unlink');
        return nodeFileSystem.unlink(path);
      },
    };
    return { fileSystem, failing };
  }

  it('logs a partition whose log cannot be opened once per minute however many requests try it, then with the count of the others', async () => {
    const { fileSystem, failing } = failingFileSystem(/bad-0/);
    const logger = recordingLogger();
    const first = await startManager();
    await first.manager.createPartition('bad', 0);
    await first.manager.withPartition('bad', 0, (log) => log.append(makeBatch()));
    await first.manager.close();
    failing.now = true;
    const { manager, clock } = await startManager({ dataDir: first.dataDir, fileSystem, logger });
    const requestCount = 200;
    for (let i = 0; i < requestCount; i++) {
      await expect(manager.withPartition('bad', 0, async () => undefined)).rejects.toMatchObject({ reason: 'STORAGE_ERROR' });
    }
    const openFailures = () => logger.calls.filter((call) => call.message.startsWith('partition log cannot be opened'));
    expect(openFailures()).toHaveLength(1);
    expect(openFailures()[0]).toMatchObject({ level: 'error', fields: { topic: 'bad', partition: 0, reason: 'STORAGE_ERROR' } });
    expect(logger.calls.filter((call) => call.level !== 'debug').length, logger.calls.map((call) => call.message).join('\n')).toBeLessThan(10);
    clock.advance(60_000);
    await expect(manager.withPartition('bad', 0, async () => undefined)).rejects.toMatchObject({ reason: 'STORAGE_ERROR' });
    expect(openFailures()).toHaveLength(2);
    expect(openFailures()[1]?.fields).toMatchObject({ suppressed: requestCount - 1 });
  });

  /**
   * Goal: a reader parked on a closed log (onAppend) learns at once when the log cannot be
   * opened again, as requests to the partition do. Method: close the log as idle, make its
   * files fail, and use the partition. Before, the failed open told nobody: the reader waited
   * out its whole wait (a Subscribe 30 s) and was answered with nothing, not the error.
   */
  it('wakes readers listening on a closed log when its next open fails', async () => {
    const { fileSystem, failing } = failingFileSystem(/bad-0/);
    const { manager, clock } = await startManager({ fileSystem, partitionIdleMs: 60_000 });
    await manager.createPartition('bad', 0);
    const heard: number[] = [];
    await manager.withPartition('bad', 0, async (log) => {
      await log.append(makeBatch());
      manager.onAppend('bad', 0, (_logEndOffset, appended) => heard.push(appended.length));
    });
    await closeAllIdle(manager, clock, 60_000);
    await waitFor(() => manager.partitionsNotClosed().length === 0, { timeoutMs: 10_000, describe: () => 'the idle close did not finish' });
    failing.now = true;
    await expect(manager.withPartition('bad', 0, async () => undefined)).rejects.toMatchObject({ reason: 'STORAGE_ERROR' });
    expect(heard).toEqual([0]);
  });

  it('logs an expired segment that cannot be deleted once per minute however often retention runs', async () => {
    const { fileSystem, failing } = failingFileSystem(/stuck-0\/\d+\.log$/);
    const logger = recordingLogger();
    const { manager, clock } = await startManager({ fileSystem, logger, config: { segmentBytes: 2048, retentionBytes: 4096 } });
    await manager.createPartition('stuck', 0);
    for (let i = 0; i < 30; i++) await manager.withPartition('stuck', 0, (log) => log.append(makeBatch({ valueBytes: 200 })));
    failing.now = true;
    const runCount = 100;
    for (let i = 0; i < runCount; i++) await manager.runRetention();
    const deleteFailures = () => logger.calls.filter((call) => call.message.startsWith('could not delete an expired segment'));
    expect(deleteFailures()).toHaveLength(1);
    clock.advance(60_000);
    await manager.runRetention();
    expect(deleteFailures()).toHaveLength(2);
    expect(deleteFailures()[1]?.fields).toMatchObject({ suppressed: runCount - 1 });
    failing.now = false;
    await manager.runRetention();
    expect(await manager.withPartition('stuck', 0, async (log) => log.logStartOffset)).toBeGreaterThan(0);
  });
});
