/**
 * The offline tools (inspect.ts) against real damaged partition directories: `verify` must
 * report every kind of damage start-up takes a partition offline for, and `repair` must leave
 * a directory the log serves again.
 */
import { readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeFileSystem } from './file-system.js';
import { segmentFileName } from './file-names.js';
import { forEachStoredBatch, repairPartitionDirectory, verifyPartitionDirectory } from './inspect.js';
import { makeBatch, makeTempDir, openTestLog } from './test-helpers.js';

const temps: Array<{ remove(): void }> = [];
afterEach(() => {
  for (const temp of temps.splice(0)) temp.remove();
});

/** A cleanly closed partition of `segmentCount` segments, one batch of one record each. */
async function cleanPartition(segmentCount: number): Promise<string> {
  const temp = makeTempDir('runnel-inspect-');
  temps.push(temp);
  const dir = join(temp.dir, 'inspect-0');
  const log = await openTestLog({ dir, config: { segmentBytes: 100 } });
  for (let i = 0; i < segmentCount; i++) await log.append(makeBatch({ count: 1, valueBytes: 60 }));
  await log.close();
  expect(readdirSync(dir).filter((name) => name.endsWith('.log'))).toHaveLength(segmentCount);
  return dir;
}

async function isServed(dir: string): Promise<{ isOnline: boolean; logEndOffset: number }> {
  const log = await openTestLog({ dir, config: { segmentBytes: 100 } });
  try {
    return { isOnline: log.isOnline, logEndOffset: log.logEndOffset };
  } finally {
    await log.close();
  }
}

describe('verifyPartitionDirectory agrees with start-up', () => {
  it('reports a missing last segment that the clean-shutdown mark names, which start-up takes offline for', async () => {
    const dir = await cleanPartition(3);
    rmSync(join(dir, segmentFileName(2, 'log')));
    const report = await verifyPartitionDirectory(nodeFileSystem, dir);
    expect(report.isHealthy).toBe(false);
    expect(report.missing).toMatchObject({ segmentBaseOffset: 2, fromOffset: 2, toOffset: 3 });
    expect(report.missing?.detail).toMatch(/segment file is missing/);
    expect((await isServed(dir)).isOnline).toBe(false);
  });

  it('reports a log cut at a batch boundary below its clean-shutdown mark, which start-up takes offline for', async () => {
    const dir = await cleanPartition(3);
    truncateSync(join(dir, segmentFileName(2, 'log')), 0);
    const report = await verifyPartitionDirectory(nodeFileSystem, dir);
    expect(report.isHealthy).toBe(false);
    expect(report.missing).toMatchObject({ segmentBaseOffset: 2, fromOffset: 2, toOffset: 3 });
    expect(report.missing?.detail).toMatch(/closed cleanly/);
    expect((await isServed(dir)).isOnline).toBe(false);
  });

  it('lets repair accept such a log: the plan names the offsets lost, and the log is served afterwards', async () => {
    const dir = await cleanPartition(3);
    rmSync(join(dir, segmentFileName(2, 'log')));
    const plan = await repairPartitionDirectory(nodeFileSystem, dir, { apply: true });
    expect(plan).toMatchObject({ newLogEndOffset: 2, missing: { fromOffset: 2, toOffset: 3 } });
    expect(JSON.parse(readFileSync(join(dir, 'partition.state'), 'utf8')).clean).toBeUndefined();
    expect((await verifyPartitionDirectory(nodeFileSystem, dir)).isHealthy).toBe(true);
    expect(await isServed(dir)).toEqual({ isOnline: true, logEndOffset: 2 });
  });
});

describe('verifyPartitionDirectory on a damaged last segment', () => {
  it('reports a flipped byte in the last segment as damage only, not also as records missing from the files', async () => {
    const dir = await cleanPartition(3);
    const path = join(dir, segmentFileName(2, 'log'));
    const bytes = readFileSync(path);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 0xff; // in the record, under the CRC
    writeFileSync(path, bytes);
    const report = await verifyPartitionDirectory(nodeFileSystem, dir);
    expect(report.isHealthy).toBe(false);
    expect(report.segments[2]?.problem).toMatchObject({ kind: 'bad-crc', position: 0 });
    expect(report.missing).toBeUndefined();
  });
});

describe('forEachStoredBatch', () => {
  /** A partition of `batchCount` batches of about 64 KiB in segments of 1 MiB. */
  async function bigPartition(batchCount: number): Promise<string> {
    const temp = makeTempDir('runnel-inspect-');
    temps.push(temp);
    const dir = join(temp.dir, 'dump-0');
    const log = await openTestLog({ dir, config: { segmentBytes: 1024 * 1024 } });
    for (let i = 0; i < batchCount; i++) await log.append(makeBatch({ count: 16, valueBytes: 4096 }));
    await log.close();
    return dir;
  }

  it('waits for each call of a caller that is not ready before the next, then has delivered every batch once, in order', async () => {
    const dir = await bigPartition(160); // ~10 MiB in ~10 segments
    const seen: number[] = [];
    let waiting = 0;
    let waitingMax = 0;
    const result = await forEachStoredBatch(nodeFileSystem, dir, {
      fromOffset: 0,
      onBatch: async (header) => {
        // A dump whose stdout is full: each call waits before it is done with its batch.
        seen.push(header.baseOffset);
        waitingMax = Math.max(waitingMax, ++waiting);
        await new Promise((resolve) => setImmediate(resolve));
        waiting--;
        return true;
      },
    });
    expect(result).toEqual({});
    // Before, the calls' promises were ignored: every batch of a 4 MiB read went out at once.
    expect(waitingMax).toBe(1);
    expect(seen).toEqual(Array.from({ length: 160 }, (_, i) => i * 16));
  });

  it('starts at the batch holding fromOffset and stops when the caller says so', async () => {
    const dir = await bigPartition(40);
    const seen: number[] = [];
    await forEachStoredBatch(nodeFileSystem, dir, {
      fromOffset: 100, // inside the batch at 96
      onBatch: (header) => {
        seen.push(header.baseOffset);
        return seen.length < 3;
      },
    });
    expect(seen).toEqual([96, 112, 128]);
  });
});

describe('an empty segment file with segments after it', () => {
  /** Segments 0, 3 and 6 of three records each, and an empty 00000000000000000001.log put among them by hand. */
  async function partitionWithStrayEmptySegment(): Promise<string> {
    const temp = makeTempDir('runnel-inspect-');
    temps.push(temp);
    const dir = join(temp.dir, 'inspect-0');
    const log = await openTestLog({ dir, config: { segmentBytes: 100 } });
    for (let i = 0; i < 3; i++) await log.append(makeBatch({ count: 3, valueBytes: 20 }));
    await log.close();
    expect(readdirSync(dir).filter((name) => name.endsWith('.log')).sort()).toEqual([0, 3, 6].map((base) => segmentFileName(base, 'log')));
    writeFileSync(join(dir, segmentFileName(1, 'log')), '');
    return dir;
  }

  it('is reported by name as holding nothing, and repair removes it instead of cutting the records after it', async () => {
    const dir = await partitionWithStrayEmptySegment();
    const report = await verifyPartitionDirectory(nodeFileSystem, dir);
    expect(report.isHealthy).toBe(false);
    expect(report.segments.map((segment) => [segment.baseOffset, segment.problem?.kind])).toEqual([
      [0, undefined],
      [1, 'stray-empty'],
      [3, undefined],
      [6, undefined],
    ]);
    expect(report.segments[1]?.problem?.detail).toContain(segmentFileName(1, 'log'));
    // Before, the plan cut segment 0 at its end and deleted segments 3 and 6: six records lost.
    const plan = await repairPartitionDirectory(nodeFileSystem, dir, { apply: false });
    expect(plan.cutSegmentBaseOffset).toBeUndefined();
    expect(plan).toMatchObject({ deletedSegmentBaseOffsets: [], removedEmptySegmentBaseOffsets: [1], lostBytes: 0, newLogEndOffset: 9 });
    const applied = await repairPartitionDirectory(nodeFileSystem, dir, { apply: true });
    expect(applied).toMatchObject({ deletedSegmentBaseOffsets: [], removedEmptySegmentBaseOffsets: [1], lostBytes: 0, newLogEndOffset: 9 });
    expect(readdirSync(dir)).not.toContain(segmentFileName(1, 'log'));
    expect((await verifyPartitionDirectory(nodeFileSystem, dir)).isHealthy).toBe(true);
    expect(await isServed(dir)).toEqual({ isOnline: true, logEndOffset: 9 });
  });
});

describe('repair and a partition.state from a newer version', () => {
  it('refuses, naming the file, and leaves the partition as it was instead of overwriting the state', async () => {
    const dir = await cleanPartition(3);
    const newer = '{"version":2,"recoveryCheckpoint":0,"somethingNew":true}\n';
    writeFileSync(join(dir, 'partition.state'), newer);
    truncateSync(join(dir, segmentFileName(2, 'log')), 10); // damage a repair would cut
    const failure = await repairPartitionDirectory(nodeFileSystem, dir, { apply: true }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect((failure as Error | undefined)?.message).toContain(join(dir, 'partition.state'));
    expect((failure as Error).message).toContain('newer Runnel');
    expect(readFileSync(join(dir, 'partition.state'), 'utf8')).toBe(newer);
    expect(readFileSync(join(dir, segmentFileName(2, 'log'))).length).toBe(10);
  });
});
