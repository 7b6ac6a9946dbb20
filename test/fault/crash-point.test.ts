/**
 * Process crashes in the middle of writes, modelled exactly.
 *
 * Goal: a process crash at any instant, with writes still running, leaves a log that opens
 * online and keeps every acknowledged batch, under flush=never and flush=always. What a crash
 * keeps of a running write is a prefix that ends on a page boundary; if the writer ever had
 * two writes of one file running at once, a crash could keep the later one and not the
 * earlier, a zero-filled hole followed by valid batches, which recovery must treat as damage
 * (the partition goes offline). This test fails then; the SIGKILL tests rarely land there.
 *
 * Method: the log runs on a file system that tracks the writes running on each .log file
 * (test/support/crash-point-file-system.ts). Sixteen appenders keep appends in flight, with
 * batches of 100 B to 20 KiB so running writes span several pages, and small segments so rolls
 * happen. Right after a seeded number of writes were issued, in that same synchronous step,
 * the test copies the partition as the crash leaves it (each running write cut to a random
 * page-aligned prefix) and notes what was acknowledged. Then it opens the copy as the restart
 * would and checks it is online and holds every acknowledged batch.
 *
 * A failing run prints its seed; rerun with RUNNEL_FAULT_SEED=<seed>.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FlushPolicy } from '../../src/storage/index.js';
import { makeBatch, makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { expectAckedKept, type AckedBatch } from '../support/acked-oracle.js';
import { createCrashPointFileSystem } from '../support/crash-point-file-system.js';
import { seededRandom } from '../support/seeded-random.js';

const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? Date.now() % 2 ** 31);
const ROUNDS = 16;
const APPENDERS = 16;
const SEGMENT_BYTES = 256 * 1024;

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(['never', 'always'] as const)(`a process crash while writes run, flush=%s (seed ${SEED})`, (flushKind) => {
  it('leaves a log that opens online with every acknowledged batch', async () => {
    const random = seededRandom(SEED + (flushKind === 'always' ? 1 : 0));
    const config = { flush: { kind: flushKind } as FlushPolicy, segmentBytes: SEGMENT_BYTES };
    for (let round = 0; round < ROUNDS; round++) {
      const temp = makeTempDir('runnel-crash-point-');
      cleanups.push(temp.remove);
      const crashAfterWrites = random.int(1, 60);
      const acked: AckedBatch[] = [];
      let crash: { dir: string; acked: typeof acked; runningWrites: number } | undefined;
      let writesIssued = 0;
      const crashPoint = createCrashPointFileSystem({
        onWriteIssued: () => {
          writesIssued++;
          if (crash !== undefined || writesIssued < crashAfterWrites) return;
          const copy = makeTempDir('runnel-crash-point-copy-');
          cleanups.push(copy.remove);
          crashPoint.crashCopy(temp.dir, copy.dir, random);
          crash = { dir: copy.dir, acked: [...acked], runningWrites: crashPoint.runningWrites() };
        },
      });
      const log = await openTestLog({ dir: temp.dir, config, fileSystem: crashPoint.fileSystem });
      cleanups.push(() => log.close());

      await Promise.all(
        Array.from({ length: APPENDERS }, async (_, appender) => {
          for (let sequence = 0; crash === undefined; sequence++) {
            const valueBytes = random.int(0, 3) === 0 ? random.int(4_000, 20_000) : random.int(100, 2_000);
            const batch = makeBatch({ count: 1 + ((appender + sequence) % 3), valueBytes, tag: `r${round}-a${appender}-s${sequence}` });
            const result = await log.append(batch);
            acked.push({ baseOffset: result.baseOffset, bytes: Buffer.from(batch) });
          }
        }),
      );
      await log.close();

      const crashed = crash as NonNullable<typeof crash>;
      const where = `round ${round} (crash after ${crashAfterWrites} writes, ${crashed.runningWrites} running, ${crashed.acked.length} acknowledged)`;
      expect(crashed.runningWrites, `${where}: the crash lands while a write runs`).toBeGreaterThan(0);
      const reopened = await openTestLog({ dir: crashed.dir, config });
      cleanups.push(() => reopened.close());
      expect(reopened.isOnline, `${where}: online after the crash`).toBe(true);
      await expectAckedKept(reopened, crashed.acked, where);
    }
  });
});
