/**
 * A power cut (or a process crash) at every disk call of a scripted partition's life.
 *
 * Goal: at any call that changes the disk (a create, write, fdatasync, truncate, rename,
 * unlink or directory fsync), what a cut there leaves opens online, keeps every batch the
 * flush policy promised (under flush=always every acknowledged one, otherwise those below the
 * flushed offset), and answers each idempotent producer's retry of its last acknowledged batch
 * as a duplicate at its original offset, so the producer snapshot is never ahead of or behind
 * the log.
 *
 * Method: the log runs on test/support/durable-image-file-system.ts, which models names as
 * well as data (a create, rename or unlink survives only once its directory is fsynced), and
 * takes the image a cut would leave before every call. The script goes through appends with
 * segment rolls, retention, clean closes and clean opens, a control roll, and (third describe)
 * a failed fdatasync, ENOSPC on a .log and on partition.state, failed directory fsyncs and a
 * failed close. The second describe restarts after each process crash on a model that knows
 * what the disk really held, then cuts the power during and after that recovery: everything
 * the restarted log showed must survive. Deterministic: no seed, every cut is tried.
 */
import { cpSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileSystem, PartitionLog, PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog, type TestProducer } from '../../src/storage/test-helpers.js';
import { expectAckedKept, type AckedBatch } from '../support/acked-oracle.js';
import { createDurableImageFileSystem, writeImage, type DurableImage } from '../support/durable-image-file-system.js';
import { createFaultyFileSystem, errnoError } from '../support/faulty-file-system.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface LastAcked { producer: TestProducer; tag: string; count: number; baseOffset: number }
interface Cut { index: number; image: DurableImage; live: string | undefined; flushed: number; acked: AckedBatch[]; last: LastAcked[]; step: string }

const NOW = Date.now();
const BASE_CONFIG: Partial<PartitionLogConfig> = { segmentBytes: 4 * 1024, retentionBytes: 12 * 1024, indexIntervalBytes: 512 };

/**
 * Opens what each cut leaves (a power cut's image, or a process crash's live copy) and returns
 * what is wrong with it: offline; an acknowledged batch the flush policy promised missing or
 * changed; the log end not past the last acknowledged batch; a producer's retry of its last
 * acknowledged batch not answered as the duplicate at its original offset.
 */
async function failuresAtCuts(cuts: readonly Cut[], config: Partial<PartitionLogConfig>, tempPrefix: string): Promise<string[]> {
  const failures: string[] = [];
  for (const cut of cuts) {
    const copy = makeTempDir(tempPrefix);
    cleanups.push(copy.remove);
    if (cut.live !== undefined) cpSync(cut.live, copy.dir, { recursive: true });
    else writeImage(cut.image, copy.dir);
    const where = `cut ${cut.index} during ${cut.step} (files ${[...cut.image.keys()].sort().join(',')})`;
    try {
      const reopened = await openTestLog({ dir: copy.dir, config });
      cleanups.push(() => reopened.close());
      if (!reopened.isOnline) {
        failures.push(`${where}: offline ${(await reopened.stats()).offlineReason}`);
        continue;
      }
      const kept = cut.acked.filter((b) => b.baseOffset >= reopened.logStartOffset && b.baseOffset < cut.flushed);
      await expectAckedKept(reopened, kept, where);
      const maxAcked = Math.max(-1, ...kept.map((b) => b.baseOffset));
      if (reopened.logEndOffset <= maxAcked) failures.push(`${where}: log end ${reopened.logEndOffset} ≤ acked ${maxAcked}`);
      for (const l of cut.last.filter((x) => x.baseOffset < cut.flushed)) {
        const retry = makeBatch({ count: l.count, valueBytes: 300, tag: l.tag, producer: l.producer, timestamp: NOW });
        const result = await reopened.append(retry);
        if (!result.isDuplicate || result.baseOffset !== l.baseOffset) failures.push(`${where}: retry of producer ${l.producer.producerId} seq ${l.producer.baseSequence} → ${JSON.stringify(result)} (acked at ${l.baseOffset})`);
      }
    } catch (error) {
      failures.push(`${where}: ${String(error)}`);
    }
  }
  return failures;
}

/**
 * Not vacuous: the model reported every disk call as a crash point, and each step that changes
 * the disk (`steps`) had cuts tried inside it. If the model stopped seeing the log's calls (a
 * path it does not take for the partition directory, a call it does not wrap), the cuts would
 * shrink to the final image alone and every check above would pass without testing anything.
 */
function expectCutsInEveryStep(cuts: readonly Cut[], crashPointCount: number, steps: readonly string[]): void {
  expect(cuts.length, 'a cut was tried at every crash point, plus the end').toBe(crashPointCount + 1);
  const stepsCut = new Set(cuts.map((cut) => cut.step));
  expect(steps.filter((step) => !stepsCut.has(step)), 'steps of the script with no cut inside them').toEqual([]);
}

/**
 * Two idempotent producers (ids 7 and 8) taking turns, batches of 1–3 records tagged `b<n>`:
 * `next` builds the next batch; `acknowledge` records it as acked (in `acked` and `last`) and
 * moves its producer's sequence on; `retryLast` makes `next` build the same batch again.
 */
function twoProducers(acked: AckedBatch[], last: Map<number, LastAcked>) {
  const sequences = [0, 0];
  let n = 0;
  return {
    next() {
      const p = n % 2;
      const producer = { producerId: 7 + p, producerEpoch: 0, baseSequence: sequences[p] as number };
      const tag = `b${n}`;
      const count = 1 + (n % 3);
      n++;
      return { p, producer, tag, count, batch: makeBatch({ count, valueBytes: 300, tag, producer, timestamp: NOW }) };
    },
    acknowledge(sent: { p: number; producer: TestProducer; tag: string; count: number; batch: Buffer }, baseOffset: number): void {
      sequences[sent.p] = (sequences[sent.p] as number) + sent.count;
      acked.push({ baseOffset, bytes: Buffer.from(sent.batch) });
      last.set(sent.producer.producerId, { producer: sent.producer, tag: sent.tag, count: sent.count, baseOffset });
    },
    retryLast(): void {
      n--;
    },
  };
}

describe.each(['always', 'never'] as const)('power cut at every disk call, flush=%s', (flushKind) => {
  it.each([false, true])('keeps every acknowledged batch and answers a retry as a duplicate (process crash: %s)', async (isProcessCrash) => {
    const CONFIG = { ...BASE_CONFIG, flush: { kind: flushKind } };
    const temp = makeTempDir('runnel-names-');
    cleanups.push(temp.remove);
    const cuts: Cut[] = [];
    const acked: AckedBatch[] = [];
    const last = new Map<number, LastAcked>();
    let step = 'open';
    const model = createDurableImageFileSystem({
      dir: temp.dir,
      onCrashPoint: (index) => {
        let live: string | undefined;
        if (isProcessCrash) { const c = makeTempDir('runnel-names-live-'); cleanups.push(c.remove); cpSync(temp.dir, c.dir, { recursive: true }); live = c.dir; }
        cuts.push({ index, image: model.image(), live, flushed: isProcessCrash || flushKind === 'always' ? Infinity : (current?.flushedOffset ?? 0), acked: [...acked], last: [...last.values()], step });
      },
    });
    let current: PartitionLog | undefined;
    const producers = twoProducers(acked, last);
    const appendSome = async (log: PartitionLog, count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const next = producers.next();
        producers.acknowledge(next, (await log.append(next.batch)).baseOffset);
      }
    };
    let log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem }); current = log;
    step = 'append 1'; await appendSome(log, 40);
    step = 'retention 1'; await log.applyRetention();
    step = 'close 1'; await log.close();
    step = 'open 2'; log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem }); current = log;
    step = 'append 2'; await appendSome(log, 10);
    step = 'roll 2'; await log.roll();
    step = 'append 2b'; await appendSome(log, 3);
    step = 'retention 2'; await log.applyRetention();
    step = 'close 2'; await log.close();
    step = 'open 3'; log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem }); current = log;
    step = 'append 3'; await appendSome(log, 5);
    step = 'close 3'; await log.close();
    step = 'open 4'; log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem }); current = log;
    step = 'retention 4'; await log.applyRetention();
    step = 'close 4'; await log.close();
    cuts.push({ index: -1, image: model.image(), live: undefined, flushed: Infinity, acked: [...acked], last: [...last.values()], step: 'end' });
    expectCutsInEveryStep(cuts, model.crashPoints(), ['append 1', 'retention 1', 'close 1', 'append 2', 'roll 2', 'append 2b', 'retention 2', 'close 2', 'append 3', 'close 3', 'retention 4']);

    const failures = await failuresAtCuts(cuts, CONFIG, 'runnel-names-cut-');
    expect(failures).toEqual([]);
  }, 120_000);
});

const BASE: Partial<PartitionLogConfig> = { segmentBytes: 4 * 1024, retentionBytes: 12 * 1024, indexIntervalBytes: 512 };

describe.each(['always', 'never'] as const)('process crash, restart, then a power cut at every disk call, flush=%s', (flushKind) => {
  it('keeps everything the restarted log showed', async () => {
    const CONFIG = { ...BASE, flush: { kind: flushKind } };
    const temp = makeTempDir('runnel-rs-');
    cleanups.push(temp.remove);
    const crashes: { live: string; image: DurableImage; acked: AckedBatch[]; step: string }[] = [];
    const acked: AckedBatch[] = [];
    let step = '';
    let k = 0;
    const model = createDurableImageFileSystem({
      dir: temp.dir,
      onCrashPoint: () => {
        if (k++ % 4 !== 0) return; // every fourth: each is a restart with its own cuts
        const c = makeTempDir('runnel-rs-live-');
        cleanups.push(c.remove);
        cpSync(temp.dir, c.dir, { recursive: true });
        crashes.push({ live: c.dir, image: model.image(), acked: [...acked], step });
      },
    });
    let n = 0;
    const appendSome = async (log: PartitionLog, count: number, into: AckedBatch[]): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const batch = makeBatch({ count: 1 + (n % 3), valueBytes: 300, tag: `b${n++}`, timestamp: NOW });
        const result = await log.append(batch);
        into.push({ baseOffset: result.baseOffset, bytes: Buffer.from(batch) });
      }
    };
    let log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem });
    step = 'append 1'; await appendSome(log, 30, acked);
    step = 'retention 1'; await log.applyRetention();
    step = 'close 1'; await log.close();
    step = 'open 2'; log = await openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem });
    step = 'append 2'; await appendSome(log, 12, acked);
    step = 'close 2'; await log.close();

    // Not vacuous: a restart after every fourth crash point, each with cuts of its own (counted below).
    expect(crashes.length, 'process crashes tried').toBe(Math.ceil(model.crashPoints() / 4));
    expect(crashes.length).toBeGreaterThan(20);
    const failures: string[] = [];
    let recoveryCutCount = 0;
    for (const [ci, crash] of crashes.entries()) {
      // The restart after the process crash, on a model that knows what the disk really held.
      const restartDir = makeTempDir('runnel-rs-restart-');
      cleanups.push(restartDir.remove);
      cpSync(crash.live, restartDir.dir, { recursive: true });
      const cuts: { image: DurableImage; shown: AckedBatch[]; where: string }[] = [];
      let shown: AckedBatch[] = flushKind === 'always' ? crash.acked : [];
      let where = 'recovery';
      const model2 = createDurableImageFileSystem({
        dir: restartDir.dir,
        initial: crash.image,
        onCrashPoint: (index) => cuts.push({ image: model2.image(), shown: [...shown], where: `${where} #${index}` }),
      });
      let restarted: PartitionLog;
      try {
        restarted = await openTestLog({ dir: restartDir.dir, config: CONFIG, fileSystem: model2.fileSystem });
      } catch (error) {
        failures.push(`crash ${ci} (${crash.step}): restart failed ${String(error)}`);
        continue;
      }
      if (!restarted.isOnline) { failures.push(`crash ${ci} (${crash.step}): offline at restart`); await restarted.close(); continue; }
      shown = [...crash.acked.filter((b) => b.baseOffset >= restarted.logStartOffset)];
      where = 'after open';
      const more: AckedBatch[] = [];
      await appendSome(restarted, 2, more);
      shown = [...shown, ...(flushKind === 'always' ? more : [])];
      where = 'close';
      await restarted.close();
      shown = [...shown, ...more];
      cuts.push({ image: model2.image(), shown, where: 'end' });
      expect(cuts.length, `crash ${ci} (${crash.step}): a cut at every crash point of the restarted log, plus the end`).toBe(model2.crashPoints() + 1);
      recoveryCutCount += cuts.filter((cut) => cut.where.startsWith('recovery')).length;
      for (const cut of cuts) {
        const dir = makeTempDir('runnel-rs-cut-');
        cleanups.push(dir.remove);
        writeImage(cut.image, dir.dir);
        const label = `crash ${ci} (${crash.step}), cut ${cut.where}`;
        try {
          const reopened = await openTestLog({ dir: dir.dir, config: CONFIG });
          try {
            if (!reopened.isOnline) { failures.push(`${label}: offline ${(await reopened.stats()).offlineReason}`); continue; }
            const kept = cut.shown.filter((b) => b.baseOffset >= reopened.logStartOffset);
            await expectAckedKept(reopened, kept, label).catch((error: unknown) => failures.push(`${label}: ${String(error).slice(0, 200)}`));
          } finally {
            await reopened.close();
          }
        } catch (error) {
          failures.push(`${label}: ${String(error)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // Recovery itself wrote (made what it accepted durable) in some restarts, and was cut there.
    expect(recoveryCutCount, 'cuts during recovery').toBeGreaterThan(0);
  }, 300_000);
});


describe.each([false, true])('faults then a cut at every disk call (process crash: %s)', (isProcessCrash) => {
  it('keeps every acknowledged batch', async () => {
    const CONFIG: Partial<PartitionLogConfig> = { flush: { kind: 'always' }, segmentBytes: 4 * 1024, retentionBytes: 12 * 1024, indexIntervalBytes: 512 };
    const temp = makeTempDir('runnel-pf-');
    cleanups.push(temp.remove);
    const cuts: Cut[] = [];
    const acked: AckedBatch[] = [];
    const last = new Map<number, LastAcked>();
    let step = 'open';
    const faulty = createFaultyFileSystem();
    let failDirSync = false;
    const base: FileSystem = { ...faulty.fileSystem, syncDirectory: async (path) => { if (failDirSync) throw errnoError('EIO', 'fsync', path); await faulty.fileSystem.syncDirectory(path); } };
    const model = createDurableImageFileSystem({
      dir: temp.dir,
      base,
      onCrashPoint: (index) => {
        let live: string | undefined;
        if (isProcessCrash) { const c = makeTempDir('runnel-pf-live-'); cleanups.push(c.remove); cpSync(temp.dir, c.dir, { recursive: true }); live = c.dir; }
        cuts.push({ index, image: model.image(), live, flushed: Infinity, acked: [...acked], last: [...last.values()], step });
      },
    });
    const producers = twoProducers(acked, last);
    const errors: string[] = [];
    const appendSome = async (log: PartitionLog, count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const next = producers.next();
        try {
          producers.acknowledge(next, (await log.append(next.batch)).baseOffset);
        } catch (error) {
          errors.push(`${step}: ${String(error).slice(0, 80)}`);
          producers.retryLast(); // the producer retries the same batch
          i--;
          if (errors.length > 50) throw error;
          if (!log.isOnline) throw error;
          return;
        }
      }
    };
    const open = (): Promise<PartitionLog> => openTestLog({ dir: temp.dir, config: CONFIG, fileSystem: model.fileSystem });
    let log = await open();
    step = 'append 1'; await appendSome(log, 6);
    step = 'fsync fails'; faulty.faults.failNextDatasync({ path: /\.log$/ }); await appendSome(log, 1);
    step = 'append after fsync'; await appendSome(log, 6);
    step = 'enospc'; faulty.faults.failWritesWith('ENOSPC', { path: /\.log$/, afterBytes: 500 }); await appendSome(log, 3); faulty.faults.clear();
    step = 'append after enospc'; await appendSome(log, 6);
    step = 'roll state fails'; faulty.faults.failWritesWith('ENOSPC', { path: /partition\.state/ });
    for (let i = 0; i < 10; i++) await appendSome(log, 1);
    faulty.faults.clear();
    step = 'append after roll'; await appendSome(log, 10);
    step = 'roll dir sync fails'; failDirSync = true;
    for (let i = 0; i < 10; i++) await appendSome(log, 1).catch(() => undefined);
    failDirSync = false;
    if (!log.isOnline) { await log.close().catch(() => undefined); log = await open(); }
    step = 'append after dir sync'; await appendSome(log, 10);
    step = 'close fails'; faulty.faults.failWritesWith('ENOSPC', { path: /index$/ }); await log.close().catch((e: unknown) => errors.push(`close: ${String(e).slice(0, 80)}`)); faulty.faults.clear();
    step = 'open 2'; log = await open();
    step = 'append 2'; await appendSome(log, 8);
    step = 'retention 2'; await log.applyRetention();
    step = 'close 2'; await log.close();
    cuts.push({ index: -1, image: model.image(), live: undefined, flushed: Infinity, acked: [...acked], last: [...last.values()], step: 'end' });
    expect(faulty.faults.counts.failedDatasyncs, 'the script met its faults').toBeGreaterThan(0);
    expectCutsInEveryStep(cuts, model.crashPoints(), [
      'append 1', 'fsync fails', 'append after fsync', 'enospc', 'append after enospc', 'roll state fails', 'append after roll', 'roll dir sync fails', 'append after dir sync', 'close fails', 'append 2', 'retention 2', 'close 2',
    ]);

    const failures = await failuresAtCuts(cuts, CONFIG, 'runnel-pf-cut-');
    expect(failures).toEqual([]);
  }, 300_000);
});
