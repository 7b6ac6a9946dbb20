/**
 * One broker's storage holding 10,000 partitions and 100,000 segments: start-up only lists
 * the data directory, logs open on first use, and open descriptors, open logs and index
 * memory stay within their bounds however many partitions are touched.
 *
 * Method: write the partitions straight to disk (test/support/partition-fixture.ts), start a
 * LogManager with small bounds, read the first and last batch of every partition and seek by
 * time in each, and check the bounds after every thousand partitions by counting this
 * process's descriptors in /proc/self/fd.
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/observability/index.js';
import { decodeBatches } from '../../src/protocol/index.js';
import { LogManager } from '../../src/storage/index.js';
import { makeTempDir, testConfig } from '../../src/storage/test-helpers.js';
import { writePartitionFixture } from '../support/partition-fixture.js';

const PARTITIONS = 10_000;
const SEGMENTS = 10;
const OPEN_FILES_MAX = 256;
const OPEN_PARTITIONS_MAX = 500;
const INDEX_CACHE_BYTES_MAX = 256 * 1024;

function openDescriptorCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/**
 * The 310,000 small fixture files go to /dev/shm (tmpfs) when it exists: this test is about
 * descriptors and memory, not disk speed, and creating that many files on a busy disk can take
 * minutes. About 1.3 GiB of RAM while it runs.
 */
function fixtureParentDir(): string | undefined {
  try {
    accessSync('/dev/shm', constants.W_OK);
    return '/dev/shm';
  } catch {
    return undefined;
  }
}

describe('many partitions', () => {
  const temp = makeTempDir('runnel-many-', fixtureParentDir());
  let manager: LogManager | undefined;

  beforeAll(() => {
    writePartitionFixture({ dataDir: temp.dir, topic: 'many', partitionCount: PARTITIONS, segmentsPerPartition: SEGMENTS });
  }, 300_000);

  afterAll(async () => {
    await manager?.close();
    temp.remove();
  }, 180_000);

  it('opens 10,000 partitions with 100,000 segments within bounded descriptors and memory', async () => {
    const descriptorsBefore = openDescriptorCount();
    const startedMs = performance.now();
    manager = await LogManager.start({
      dataDir: temp.dir,
      clock: systemClock,
      logger: silentLogger,
      configForTopic: () => testConfig,
      openFilesMax: OPEN_FILES_MAX,
      indexCacheBytesMax: INDEX_CACHE_BYTES_MAX,
      openPartitionsMax: OPEN_PARTITIONS_MAX,
      partitionIdleMs: 60_000,
      retentionCheckIntervalMs: 3_600_000,
    });
    const startMs = performance.now() - startedMs;
    expect(manager.listPartitions()).toHaveLength(PARTITIONS);
    expect(manager.openPartitionCount).toBe(0);

    let maxDescriptors = 0;
    const touchedMs = performance.now();
    for (let p = 0; p < PARTITIONS; p++) {
      await manager.withPartition('many', p, async (log) => {
        expect(log.logStartOffset).toBe(0);
        expect(log.logEndOffset).toBe(SEGMENTS);
        const first = decodeBatches((await log.read({ offset: 0, bytesMax: 1024 })).bytes);
        const last = decodeBatches((await log.read({ offset: SEGMENTS - 1, bytesMax: 1024 })).bytes);
        expect(first[0]?.value?.toString()).toBe('value-0');
        expect(last[0]?.value?.toString()).toBe(`value-${SEGMENTS - 1}`);
        if (p % 10 === 0) expect(await log.offsetForTimestamp(1_700_000_000_000 + 5)).toBe(5);
      });
      if (p % 1000 === 999) {
        maxDescriptors = Math.max(maxDescriptors, openDescriptorCount() - descriptorsBefore);
        expect(manager.handles.openCount).toBeLessThanOrEqual(OPEN_FILES_MAX);
        expect(manager.openPartitionCount).toBeLessThanOrEqual(OPEN_PARTITIONS_MAX);
        expect(manager.indexCache.sizeBytes).toBeLessThanOrEqual(INDEX_CACHE_BYTES_MAX);
      }
    }
    const touchMs = performance.now() - touchedMs;
    // Slack for descriptors vitest and libuv open meanwhile; far below one per segment.
    expect(maxDescriptors).toBeLessThanOrEqual(OPEN_FILES_MAX + 64);
    console.log(
      `start ${startMs.toFixed(0)} ms for ${PARTITIONS} partitions; opened and read all in ${touchMs.toFixed(0)} ms; ` +
        `max extra descriptors ${maxDescriptors}`,
    );
  }, 240_000);
});
