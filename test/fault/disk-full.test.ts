/**
 * A disk that fills up under a partition log.
 *
 * Goal: when the disk is full, appends fail with DISK_FULL and leave no partial bytes behind,
 * the log stays online and serves every acknowledged batch, and once space is freed appends
 * succeed again without an operator; after a restart everything acknowledged is still there.
 *
 * Method: the log lives on a small disk that also holds a filler file written beforehand.
 * When the process may mount file systems (root), the disk is a real 2 MiB tmpfs: the kernel
 * produces the short writes and ENOSPC. Otherwise it is the faulty file system's simulated
 * disk (`limitFreeBytes`), which cuts the write that does not fit short and then fails with
 * ENOSPC, and gives bytes back on truncate and unlink. Four appenders write batches of 0.5–12
 * KiB until one append fails with DISK_FULL (segment rolls happen on the way, so the failure
 * may hit a batch write, an index file or partition.state). The test checks the log, deletes
 * the filler, appends again, closes, reopens and checks the acknowledged set. The simulated
 * disk also runs when tmpfs is available, so both paths stay tested.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isBrokerError, type Reason } from '../../src/errors/index.js';
import { nodeFileSystem, writeFileAtomically, type FileSystem, type PartitionLog, type PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { createFaultyFileSystem, type FaultController } from '../support/faulty-file-system.js';
import { seededRandom } from '../support/seeded-random.js';
import { expectExactlyAcked, type Acked } from '../support/acked-oracle.js';

const DISK_BYTES = 2 * 1024 * 1024;
const FILLER_BYTES = 384 * 1024;
const LOG_CONFIG: Partial<PartitionLogConfig> = { segmentBytes: 256 * 1024, indexIntervalBytes: 4096, flush: { kind: 'always' } };

const mountPoints: string[] = [];
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface SmallDisk {
  kind: 'tmpfs' | 'simulated';
  /** The directory that is the disk. */
  root: string;
  fileSystem: FileSystem;
  faults: FaultController | undefined;
}

/** A real 2 MiB tmpfs when mounting works, else the simulated disk. Logs which one. */
function smallDisk(options: { allowTmpfs: boolean }): SmallDisk {
  const temp = makeTempDir('runnel-disk-full-');
  cleanups.push(temp.remove);
  if (options.allowTmpfs) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', temp.dir], { stdio: 'pipe' });
      mountPoints.push(temp.dir);
      cleanups.push(() => unmount(temp.dir));
      console.info(`disk-full: running on a real ${DISK_BYTES}-byte tmpfs at ${temp.dir}`);
      return { kind: 'tmpfs', root: temp.dir, fileSystem: nodeFileSystem, faults: undefined };
    } catch (error) {
      const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
      console.info(`disk-full: cannot mount tmpfs (${detail}); running on the simulated disk instead`);
    }
  } else {
    console.info('disk-full: running on the simulated disk');
  }
  const { fileSystem, faults } = createFaultyFileSystem();
  faults.limitFreeBytes(DISK_BYTES);
  return { kind: 'simulated', root: temp.dir, fileSystem, faults };
}

/** Unmounts exactly the mount point this test created (lazily if a descriptor is still open). */
function unmount(mountPoint: string): void {
  const index = mountPoints.indexOf(mountPoint);
  if (index < 0) return;
  try {
    execFileSync('umount', [mountPoint], { stdio: 'pipe' });
  } catch {
    execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
  }
  mountPoints.splice(index, 1);
}



function reasonOf(error: unknown): Reason | string {
  return isBrokerError(error) ? error.reason : String(error);
}

/**
 * Four appenders write until an append fails; returns what was acknowledged and every failure.
 * A failure other than DISK_FULL fails the test.
 */
async function appendUntilFull(log: PartitionLog, seed: number): Promise<{ acked: Acked[]; failures: unknown[] }> {
  const random = seededRandom(seed);
  const acked: Acked[] = [];
  const failures: unknown[] = [];
  let sequence = 0;
  const appender = async (): Promise<void> => {
    while (failures.length === 0) {
      const tag = `fill-${sequence++}`;
      const batch = makeBatch({ count: random.int(1, 4), valueBytes: random.int(500, 3000), tag });
      try {
        const { baseOffset, lastOffset } = await log.append(batch);
        acked.push({ baseOffset, lastOffset, bytes: Buffer.from(batch) });
      } catch (error) {
        failures.push(error);
      }
      expect(sequence, 'the disk never filled').toBeLessThan(10_000);
    }
  };
  await Promise.all([appender(), appender(), appender(), appender()]);
  return { acked, failures };
}


async function logBytesOnDisk(fileSystem: FileSystem, dir: string): Promise<number> {
  let total = 0;
  for (const name of await fileSystem.readdir(dir)) {
    if (name.endsWith('.log')) total += (await fileSystem.trySizeBytes(join(dir, name))) ?? 0;
  }
  return total;
}

async function fillDiskScenario(disk: SmallDisk, seed: number): Promise<void> {
  // The filler goes first, through the same file system, so deleting it frees real space.
  const fillerPath = join(disk.root, 'filler');
  await writeFileAtomically(disk.fileSystem, fillerPath, Buffer.alloc(FILLER_BYTES, 0x5a));
  const dir = join(disk.root, 'topic-0');
  const log = await openTestLog({ dir, config: LOG_CONFIG, fileSystem: disk.fileSystem });
  cleanups.push(() => log.close());

  const { acked, failures } = await appendUntilFull(log, seed);
  expect(failures.map(reasonOf).every((reason) => reason === 'DISK_FULL'), `failures: ${failures.map(reasonOf).join(', ')}`).toBe(true);
  expect(acked.length).toBeGreaterThan(50);
  if (disk.faults !== undefined) expect(disk.faults.counts.failedWrites).toBeGreaterThan(0);

  // Full: still online and readable, holding exactly the acknowledged batches, no partial bytes.
  expect(log.isOnline).toBe(true);
  expect(log.logEndOffset).toBe(Math.max(...acked.map((batch) => batch.lastOffset)) + 1);
  await expectExactlyAcked(log, acked);
  const ackedBytes = acked.reduce((sum, batch) => sum + batch.bytes.length, 0);
  expect(await logBytesOnDisk(disk.fileSystem, dir)).toBe(ackedBytes);
  const stillFull = await log.append(makeBatch({ count: 4, valueBytes: 200_000, tag: 'too-big' })).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(reasonOf(stillFull)).toBe('DISK_FULL');
  expect(log.isOnline).toBe(true);

  // Freed: appends succeed again, with no operator action.
  await disk.fileSystem.unlink(fillerPath);
  for (let i = 0; i < 20; i++) {
    const batch = makeBatch({ count: 2, valueBytes: 2000, tag: `after-${i}` });
    const { baseOffset, lastOffset } = await log.append(batch);
    expect(baseOffset).toBe(Math.max(...acked.map((done) => done.lastOffset)) + 1);
    acked.push({ baseOffset, lastOffset, bytes: Buffer.from(batch) });
  }
  await expectExactlyAcked(log, acked);
  await log.close();

  const reopened = await openTestLog({ dir, config: LOG_CONFIG, fileSystem: disk.fileSystem });
  cleanups.push(() => reopened.close());
  expect(reopened.isOnline).toBe(true);
  await expectExactlyAcked(reopened, acked);
  await reopened.close();
}

describe('a full disk', () => {
  it('fails appends with DISK_FULL, keeps every acknowledged batch readable, and accepts appends again once space is freed', async () => {
    const disk = smallDisk({ allowTmpfs: true });
    await fillDiskScenario(disk, 81);
  });

  it('behaves the same on the simulated disk of the faulty file system (short write, then ENOSPC)', async () => {
    const disk = smallDisk({ allowTmpfs: false });
    await fillDiskScenario(disk, 82);
  });
});
