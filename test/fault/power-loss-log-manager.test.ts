/**
 * A power cut (or a process crash) at every disk call of a scripted log manager's life:
 * partitions made as empty directories, deleted by renaming them away, and made again.
 *
 * Goal: at any call that changes the disk, what a cut there leaves is something a broker can
 * start on. A fresh LogManager lists, and opens online, every partition whose create had
 * returned and whose delete had not begun, holding every batch acknowledged to it (flush=always);
 * a partition whose create had begun but not returned is absent or an empty new log; one whose
 * delete had begun is there whole, with all its acknowledged batches, or absent, never half;
 * one whose delete had returned is absent; a partition made again under a deleted name never
 * shows a batch of the partition that had that name before; nothing opens offline; and the
 * `.deleted` leftovers of interrupted deletes are removed once the manager has started.
 *
 * Method: the manager runs on test/support/durable-tree-image-file-system.ts, the model of
 * power-loss-every-call.test.ts over a directory tree (the partition directories' names are
 * durable only once the data directory is fsynced, their files once their own directory is),
 * which takes the image a cut would leave before every call. The script: start; create five
 * partitions; append to three of them (at most two logs open, so the least recently used one
 * closes cleanly in between); delete one open partition with acknowledged batches and one never
 * used; create one of the deleted names again and append to it; clean close; restart; append;
 * clean close. The second run takes, instead of the power cut's image, the live files as a
 * process crash leaves them. Deterministic: no seed, every cut is tried.
 */
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/observability/index.js';
import { decodeBatches } from '../../src/protocol/index.js';
import { LogManager, nodeFileSystem, type FileSystem, type PartitionLog, type PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, testConfig } from '../../src/storage/test-helpers.js';
import { expectAckedKept, type AckedBatch } from '../support/acked-oracle.js';
import { createDurableTreeImageFileSystem, writeTreeImage, type DurableTreeImage } from '../support/durable-tree-image-file-system.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const TOPIC = 'orders';
const PARTITIONS = [0, 1, 2, 3, 4];
const CONFIG: PartitionLogConfig = { ...testConfig, segmentBytes: 4 * 1024, indexIntervalBytes: 512, flush: { kind: 'always' } };
const NOW = 1_700_000_000_000;

/**
 * Where one partition name stands in the script. `incarnation` counts its creates: the records
 * of incarnation k are tagged `<topic>-<partition>@k/`, so a batch of an earlier one is seen.
 */
type Phase = 'creating' | 'created' | 'deleting' | 'deleted';
interface PartitionFacts {
  incarnation: number;
  phase: Phase;
  /** Acknowledged batches of `incarnation` (under flush=always, fdatasynced). */
  acked: AckedBatch[];
}
type Facts = ReadonlyMap<number, Readonly<PartitionFacts>>;

interface Cut {
  index: number;
  step: string;
  facts: Facts;
  /** The power cut's image, or (process crash) a copy of the live files. */
  image: DurableTreeImage | undefined;
  live: string | undefined;
}

/** What a cut left, as seen by the checks; for the tests' own proof that they are not vacuous. */
interface Seen {
  /** A partition being deleted, with acknowledged batches, found in place. */
  deletingPresent: number;
  deletingAbsent: number;
  creatingAbsent: number;
  leftovers: number;
}

function startManager(dataDir: string, fileSystem: FileSystem): Promise<LogManager> {
  return LogManager.start({
    dataDir,
    fileSystem,
    clock: new ManualClock(NOW),
    logger: silentLogger,
    configForTopic: () => CONFIG,
    openFilesMax: 16,
    indexCacheBytesMax: 64 * 1024,
    openPartitionsMax: 2,
    partitionIdleMs: 60_000,
    retentionCheckIntervalMs: 300_000,
  });
}

/**
 * The live files as a process crash leaves them (the page cache survives). A copy taken while a
 * `.deleted` directory is being removed in the background may find a name gone by the time it
 * copies it: that file is skipped, as the removal would have taken it a moment later.
 */
function copyLiveTree(from: string, to: string): void {
  let entries;
  try {
    entries = readdirSync(from, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const entry of entries) {
    const source = join(from, entry.name);
    const target = join(to, entry.name);
    try {
      if (entry.isDirectory()) {
        mkdirSync(target);
        copyLiveTree(source, target);
      } else {
        copyFileSync(source, target);
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

/** Every record of the log whose value does not start with `prefix`, as a short description. */
async function foreignRecords(log: PartitionLog, prefix: string): Promise<string[]> {
  const foreign: string[] = [];
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 1 << 20 });
    if (read.nextOffset <= offset) break;
    for (const record of decodeBatches(read.bytes)) {
      const value = record.value?.toString('latin1') ?? '';
      if (!value.startsWith(prefix)) foreign.push(`${record.offset}: ${value.slice(0, value.indexOf(':') + 1)}`);
    }
    offset = read.nextOffset;
  }
  return foreign;
}

/** Starts a fresh manager on what the cut left and returns what is wrong with it (see the file header). */
async function failuresAtCut(cut: Cut, seen: Seen): Promise<string[]> {
  const copy = makeTempDir('runnel-lm-cut-');
  cleanups.push(copy.remove);
  if (cut.live !== undefined) copyLiveTree(cut.live, copy.dir);
  else writeTreeImage(cut.image ?? new Map(), copy.dir);
  const namesLeft = readdirSync(copy.dir);
  const where = `cut ${cut.index} during ${cut.step} (left ${namesLeft.sort().join(',')})`;
  if (namesLeft.some((name) => name.endsWith('.deleted'))) seen.leftovers++;
  const failures: string[] = [];
  const manager = await startManager(copy.dir, nodeFileSystem);
  try {
    const listed = manager.listPartitions();
    const unknown = listed.filter((tp) => tp.topic !== TOPIC || !cut.facts.has(tp.partition));
    if (unknown.length > 0) failures.push(`${where}: lists partitions the script never made: ${JSON.stringify(unknown)}`);
    for (const [partition, facts] of cut.facts) {
      const label = `${where}, partition ${partition} (${facts.phase}, incarnation ${facts.incarnation}, ${facts.acked.length} acknowledged)`;
      const isListed = manager.hasPartition(TOPIC, partition);
      if (facts.phase === 'deleting' && isListed && facts.acked.length > 0) seen.deletingPresent++;
      if (facts.phase === 'deleting' && !isListed) seen.deletingAbsent++;
      if (facts.phase === 'creating' && !isListed) seen.creatingAbsent++;
      if (!isListed) {
        if (facts.phase === 'created') failures.push(`${label}: missing, though its create returned`);
        continue;
      }
      if (facts.phase === 'deleted') failures.push(`${label}: back, though its delete returned`);
      try {
        await manager.withPartition(TOPIC, partition, async (log) => {
          if (!log.isOnline) {
            failures.push(`${label}: offline ${(await log.stats()).offlineReason ?? ''}`);
            return;
          }
          await expectAckedKept(log, facts.acked, label).catch((error: unknown) => failures.push(`${label}: ${String(error).slice(0, 300)}`));
          const foreign = await foreignRecords(log, `${TOPIC}-${partition}@${facts.incarnation}/`);
          if (foreign.length > 0) failures.push(`${label}: records of another incarnation: ${foreign.slice(0, 3).join(' ')}`);
        });
      } catch (error) {
        failures.push(`${label}: ${String(error)}`);
      }
    }
    // Removed in the background once the manager has started (`discover`).
    await waitFor(() => readdirSync(copy.dir).every((name) => !name.endsWith('.deleted')), {
      timeoutMs: 5_000,
      describe: () => `${where}: .deleted leftovers still there: ${readdirSync(copy.dir).join(',')}`,
    }).catch((error: unknown) => failures.push(String(error)));
  } finally {
    await manager.close();
  }
  return failures;
}

describe('power cut at every disk call of a log manager creating and deleting partitions, flush=always', () => {
  it.each([false, true])('every listed partition opens online with its acknowledged batches, a delete is all or nothing, a re-created name is new (process crash: %s)', async (isProcessCrash) => {
    const temp = makeTempDir('runnel-lm-');
    cleanups.push(temp.remove);
    const facts = new Map<number, PartitionFacts>();
    const snapshotFacts = (): Facts => new Map([...facts].map(([partition, f]) => [partition, { ...f, acked: [...f.acked] }]));
    const setPhase = (partitions: readonly number[], phase: Phase, incarnation?: number): void => {
      for (const partition of partitions) {
        const f = facts.get(partition);
        if (incarnation !== undefined || f === undefined) facts.set(partition, { incarnation: incarnation ?? 1, phase, acked: [] });
        else f.phase = phase;
      }
    };
    const cuts: Cut[] = [];
    let step = 'start';
    const model = createDurableTreeImageFileSystem({
      dir: temp.dir,
      onCrashPoint: (index) => {
        let live: string | undefined;
        if (isProcessCrash) {
          const c = makeTempDir('runnel-lm-live-');
          cleanups.push(c.remove);
          copyLiveTree(temp.dir, c.dir);
          live = c.dir;
        }
        cuts.push({ index, step, facts: snapshotFacts(), image: isProcessCrash ? undefined : model.image(), live });
      },
    });
    let n = 0;
    const append = async (manager: LogManager, partition: number): Promise<void> => {
      const f = facts.get(partition) as PartitionFacts;
      const batch = makeBatch({ count: 1 + (n % 3), valueBytes: 200, tag: `${TOPIC}-${partition}@${f.incarnation}/b${n}`, timestamp: NOW });
      n++;
      const result = await manager.withPartition(TOPIC, partition, (log) => log.append(batch));
      f.acked.push({ baseOffset: result.baseOffset, bytes: Buffer.from(batch) });
    };

    let manager = await startManager(temp.dir, model.fileSystem);
    step = 'create';
    setPhase(PARTITIONS, 'creating');
    await manager.createPartitions(TOPIC, PARTITIONS);
    setPhase(PARTITIONS, 'created');
    step = 'append 1';
    for (let i = 0; i < 12; i++) await append(manager, i % 3);
    expect(manager.openPartitionCount, 'partition 1 (to be deleted) is open, partition 0 was closed').toBeLessThanOrEqual(2);
    step = 'delete';
    setPhase([1, 4], 'deleting'); // 1: open, with acknowledged batches; 4: never used
    await manager.deletePartitions(TOPIC, [1, 4]);
    setPhase([1, 4], 'deleted');
    step = 're-create';
    setPhase([1], 'creating', 2);
    await manager.createPartitions(TOPIC, [1]);
    setPhase([1], 'created');
    step = 'append 2';
    for (let i = 0; i < 6; i++) await append(manager, [0, 1, 2][i % 3] as number);
    step = 'close';
    await manager.close();
    step = 'restart';
    manager = await startManager(temp.dir, model.fileSystem);
    step = 'append 3';
    for (let i = 0; i < 4; i++) await append(manager, i % 2);
    step = 'close 2';
    await manager.close();
    cuts.push({ index: -1, step: 'end', facts: snapshotFacts(), image: model.image(), live: undefined });

    // Not vacuous: a cut at every crash point, inside every step that changes the disk.
    expect(cuts.length, 'a cut was tried at every crash point, plus the end').toBe(model.crashPoints() + 1);
    const stepsCut = new Set(cuts.map((cut) => cut.step));
    expect(['create', 'append 1', 'delete', 're-create', 'append 2', 'close', 'append 3', 'close 2'].filter((s) => !stepsCut.has(s)), 'steps with no cut inside them').toEqual([]);

    const seen: Seen = { deletingPresent: 0, deletingAbsent: 0, creatingAbsent: 0, leftovers: 0 };
    const failures: string[] = [];
    for (const cut of cuts) failures.push(...(await failuresAtCut(cut, seen)));
    expect(failures.slice(0, 20), `${failures.length} failures, the first 20`).toEqual([]);
    // The cuts met each case the checks are about.
    expect(seen.deletingPresent, 'cuts that left a partition being deleted in place, with its acknowledged batches').toBeGreaterThan(0);
    expect(seen.deletingAbsent, 'cuts that left a partition being deleted gone').toBeGreaterThan(0);
    expect(seen.leftovers, 'cuts that left a .deleted directory').toBeGreaterThan(0);
    expect(seen.creatingAbsent, 'cuts that lost a partition being created').toBeGreaterThan(0);
  }, 120_000);
});
