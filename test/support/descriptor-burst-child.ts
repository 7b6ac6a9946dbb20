/**
 * A child process that works on every partition of a data directory at once, to be run under a
 * low descriptor limit (`ulimit -n`) by test/fault/descriptor-limit.test.ts.
 *
 *   node --import tsx test/support/descriptor-burst-child.ts <dataDir> <openFilesMax>
 *
 * The data directory holds clean partitions of topic `burst` (test/support/partition-fixture.ts).
 * The child opens them in a LogManager and, with every log open, runs three bursts, each over
 * every partition at once: two appends of ~5 KiB under flush=always with 4 KiB segments (each partition writes its
 * state as it turns dirty, then rolls: new segment, index files, producer snapshot), a read from
 * offset 0 after a clean restart (segment files and index loads), and a seek by time. It prints
 * one JSON line per burst on stdout:
 *
 *   {"burst":"append","failed":0,"firstError":null,"descriptorsMax":97}
 *
 * where `descriptorsMax` is the most entries seen in /proc/self/fd while the burst ran (sampled
 * each millisecond; -1 if sampling itself hit EMFILE). Exits 0 when every operation succeeded, 1
 * otherwise.
 */
import { readdirSync } from 'node:fs';
import { systemClock } from '../../src/common/clock.js';
import { KiB } from '../../src/common/units.js';
import { silentLogger } from '../../src/observability/index.js';
import { LogManager, type PartitionLog } from '../../src/storage/index.js';
import { makeBatch, testConfig } from '../../src/storage/test-helpers.js';

const [dataDir, openFilesMaxText] = process.argv.slice(2);
if (dataDir === undefined || openFilesMaxText === undefined) {
  process.stderr.write('usage: descriptor-burst-child.ts <dataDir> <openFilesMax>\n');
  process.exit(2);
}
const config = { ...testConfig, segmentBytes: 4 * KiB, flush: { kind: 'always' as const } };

function start(): Promise<LogManager> {
  return LogManager.start({
    dataDir: dataDir as string,
    clock: systemClock,
    logger: silentLogger,
    configForTopic: () => config,
    openFilesMax: Number(openFilesMaxText),
    indexCacheBytesMax: 1024 * KiB,
    openPartitionsMax: 100_000,
    partitionIdleMs: 3_600_000,
    retentionCheckIntervalMs: 3_600_000,
  });
}

let failedTotal = 0;

async function burst(name: string, manager: LogManager, work: (log: PartitionLog) => Promise<unknown>): Promise<void> {
  let descriptorsMax = 0;
  const sampler = setInterval(() => {
    try {
      descriptorsMax = Math.max(descriptorsMax, readdirSync('/proc/self/fd').length);
    } catch {
      descriptorsMax = -1;
    }
  }, 1);
  const partitions = manager.listPartitions();
  const results = await Promise.allSettled(partitions.map(({ topic, partition }) => manager.withPartition(topic, partition, work)));
  clearInterval(sampler);
  const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
  failedTotal += failures.length;
  const firstError = failures[0] === undefined ? null : String(failures[0].reason).slice(0, 300);
  process.stdout.write(`${JSON.stringify({ burst: name, partitions: partitions.length, failed: failures.length, firstError, descriptorsMax })}\n`);
}

/** Opens every log first, so the burst after it runs on all of them at once, not at the pace of log opens. */
async function openAll(manager: LogManager): Promise<void> {
  for (const { topic, partition } of manager.listPartitions()) await manager.withPartition(topic, partition, async () => undefined);
}

let manager = await start();
await openAll(manager);
await burst('append', manager, (log) => Promise.all([log.append(makeBatch({ count: 5, valueBytes: 1000 })), log.append(makeBatch({ count: 5, valueBytes: 1000 }))]));
await manager.close();
manager = await start();
await openAll(manager);
await burst('read', manager, (log) => log.read({ offset: 0, bytesMax: 64 * KiB }));
await burst('seek by time', manager, (log) => log.offsetForTimestamp(0));
await manager.close();
process.exit(failedTotal === 0 ? 0 : 1);
