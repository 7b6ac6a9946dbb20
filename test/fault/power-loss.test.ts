/**
 * Power loss under flush=always.
 *
 * Goal: every batch a flush=always log acknowledged survives a power cut at any moment, with
 * the write of the next group and the fdatasync of the previous one overlapping (pipelined
 * group commit) and segments rolling underneath.
 *
 * Method: the log runs on a file system that records, per file, the size covered by its last
 * successful fdatasync (test/support/power-loss-file-system.ts). Sixteen appenders keep appends
 * in flight. When a seeded number of them have been acknowledged, the test cuts the power in
 * that same synchronous step: it copies the partition directory and trims each copied .log
 * file to its durable size, which drops whatever the page cache held beyond the last sync.
 * Then it opens the copy as a restart would and checks that every batch acknowledged before
 * the cut reads back byte for byte at its offset (batches synced but not yet acknowledged may
 * be there too). A process crash keeps the page cache, so the SIGKILL tests cannot catch an
 * acknowledgement that ran ahead of its fdatasync; this one can.
 *
 * A second case cuts the power after a process crash and a restart, with nothing appended
 * since: every batch the restarted log shows must survive, so recovery has to make the bytes
 * it accepts from the page cache durable before it serves them.
 *
 * A failing run prints its seed; rerun with RUNNEL_FAULT_SEED=<seed>.
 */
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeBatch, makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { createPowerLossFileSystem, trimToDurable } from '../support/power-loss-file-system.js';
import { seededRandom } from '../support/seeded-random.js';
import { expectAckedKept, type AckedBatch } from '../support/acked-oracle.js';

const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? Date.now() % 2 ** 31);
const ROUNDS = 12;
const APPENDERS = 16;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe(`a power cut under flush=always (seed ${SEED})`, () => {
  it('keeps every acknowledged batch, at any moment of pipelined group commits and rolls', async () => {
    const random = seededRandom(SEED);
    for (let round = 0; round < ROUNDS; round++) {
      const temp = makeTempDir('runnel-power-');
      cleanups.push(temp.remove);
      const { fileSystem, durableSizes } = createPowerLossFileSystem();
      const log = await openTestLog({ dir: temp.dir, config: { flush: { kind: 'always' }, segmentBytes: 64 * 1024 }, fileSystem });
      cleanups.push(() => log.close());
      const acked: AckedBatch[] = [];
      const cutAfter = random.int(20, 420);
      let cut: { dir: string; acked: AckedBatch[] } | undefined;
      let isStopping = false;

      const powerCut = (): void => {
        // One synchronous step: what was acknowledged, what was durable, and the files.
        const durable = durableSizes();
        const copy = makeTempDir('runnel-power-copy-');
        cleanups.push(copy.remove);
        cpSync(temp.dir, copy.dir, { recursive: true });
        for (const name of readdirSync(copy.dir).filter((file) => file.endsWith('.log'))) {
          trimToDurable(join(copy.dir, name), join(temp.dir, name), durable);
        }
        cut = { dir: copy.dir, acked: [...acked] };
      };

      await Promise.all(
        Array.from({ length: APPENDERS }, async (_, appender) => {
          for (let sequence = 0; !isStopping; sequence++) {
            const batch = makeBatch({ count: 1 + ((appender + sequence) % 4), valueBytes: random.int(40, 3_040), tag: `r${round}-a${appender}-s${sequence}` });
            const result = await log.append(batch);
            acked.push({ baseOffset: result.baseOffset, bytes: Buffer.from(batch) });
            if (cut === undefined && acked.length >= cutAfter) {
              powerCut();
              isStopping = true;
            }
          }
        }),
      );
      await log.close();

      const afterCut = cut as { dir: string; acked: AckedBatch[] };
      const reopened = await openTestLog({ dir: afterCut.dir, config: { flush: { kind: 'always' }, segmentBytes: 64 * 1024 } });
      cleanups.push(() => reopened.close());
      expect(reopened.isOnline, `round ${round}: online after the power cut`).toBe(true);
      await expectAckedKept(reopened, afterCut.acked, `round ${round} (cut after ${afterCut.acked.length} acknowledgements), after the power cut`);
    }
  });
});

describe('a power cut after a process crash and a restart', () => {
  it('loses nothing the restarted log shows: recovery makes what it accepts durable first', async () => {
    // Before the crash, flush=never: every batch is only in the page cache, as a batch whose
    // fdatasync was still running is under flush=always. The process crash keeps them.
    const temp = makeTempDir('runnel-power-');
    cleanups.push(temp.remove);
    const before = await openTestLog({ dir: temp.dir, config: { flush: { kind: 'never' } } });
    const written: AckedBatch[] = [];
    for (let i = 0; i < 20; i++) {
      const batch = makeBatch({ count: 2, valueBytes: 300, tag: `crash-${i}` });
      written.push({ baseOffset: (await before.append(batch)).baseOffset, bytes: Buffer.from(batch) });
    }
    const crashed = makeTempDir('runnel-power-crashed-');
    cleanups.push(crashed.remove);
    cpSync(temp.dir, crashed.dir, { recursive: true }); // the SIGKILL: files as they are, no clean mark
    await before.close();

    // The restart, on a file system that knows only what it has itself synced.
    const { fileSystem, durableSizes } = createPowerLossFileSystem();
    const restarted = await openTestLog({ dir: crashed.dir, config: { flush: { kind: 'always' } }, fileSystem });
    cleanups.push(() => restarted.close());
    expect(restarted.logEndOffset).toBe(40);
    await expectAckedKept(restarted, written, 'after the restart');

    // The power cut, with nothing appended since the restart.
    const durable = durableSizes();
    const cut = makeTempDir('runnel-power-copy-');
    cleanups.push(cut.remove);
    cpSync(crashed.dir, cut.dir, { recursive: true });
    for (const name of readdirSync(cut.dir).filter((file) => file.endsWith('.log'))) trimToDurable(join(cut.dir, name), join(crashed.dir, name), durable);
    const reopened = await openTestLog({ dir: cut.dir, config: { flush: { kind: 'always' } } });
    cleanups.push(() => reopened.close());
    await expectAckedKept(reopened, written, 'after the power cut that followed the restart');
  });
});
