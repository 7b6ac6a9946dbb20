/**
 * The writer under random I/O faults: pipelined group commit (flush=always) and the serial
 * writer of flush=never.
 *
 * Goal: whatever mix of concurrent appends, failed writes (EIO, short writes) and failed
 * fdatasyncs hits the log, and however the writer splits the appends into groups (under
 * always, overlapping one group's write with the previous group's fdatasync), the log holds
 * exactly the acknowledged batches, densely and byte for byte, both while it runs and after
 * a restart; every append settles; and the log stays online (the cut-back never fails here),
 * except that under flush=never a failed fdatasync before a roll takes it offline, because
 * acknowledged batches were not yet durable (rollActive); the restart must then still find
 * every acknowledged batch.
 *
 * Method: fast-check generates rounds. Each round arms at most one fault on the .log files
 * (the next fdatasync fails, or writes fail after some bytes), starts a burst of appends
 * without waiting for them, in waves a turn of the event loop apart (so later waves find a
 * group in flight and form groups of their own), waits for every one of them to settle, and
 * disarms the fault. Small segments make rolls happen between groups. The acknowledged-set
 * oracle checks the log after every round, and once more after a clean close and reopen
 * with node's file system.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../../src/errors/index.js';
import { makeBatch, makeTempDir, openTestLog, propertyRunSettings } from '../../src/storage/test-helpers.js';
import { expectExactlyAcked, type Acked } from '../support/acked-oracle.js';
import { createFaultyFileSystem } from '../support/faulty-file-system.js';

const LOG_FILES = /\.log$/;

type Fault = { kind: 'none' } | { kind: 'datasync' } | { kind: 'write'; afterBytes: number };

interface Round {
  fault: Fault;
  /** Value sizes of the round's appends. */
  valueBytes: number[];
  /** Per append: how many turns of the event loop after the round's start it is started. */
  waves: number[];
}

const roundArbitrary: fc.Arbitrary<Round> = fc.record({
  fault: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Fault>({ kind: 'none' }) },
    { weight: 2, arbitrary: fc.constant<Fault>({ kind: 'datasync' }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 6_000 }).map((afterBytes): Fault => ({ kind: 'write', afterBytes })) },
  ),
  valueBytes: fc.array(fc.integer({ min: 1, max: 1_500 }), { minLength: 1, maxLength: 12 }),
  waves: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 12, maxLength: 12 }),
});

const { runs, testTimeoutMs, interruptAfterMs, replay } = propertyRunSettings(40, 2_000);

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Starts `append(i)` for each i in its wave, waves one turn apart, and settles them all. Each
 * outcome is taken as soon as the append starts, so an early rejection is never unhandled.
 */
async function appendInWaves<T>(count: number, waves: readonly number[], append: (i: number) => Promise<T>): Promise<PromiseSettledResult<T>[]> {
  const outcomes: Promise<PromiseSettledResult<T>>[] = [];
  const lastWave = Math.max(0, ...waves.slice(0, count));
  for (let wave = 0; wave <= lastWave; wave++) {
    if (wave > 0) await nextTurn();
    for (let i = 0; i < count; i++) {
      if ((waves[i] ?? 0) !== wave) continue;
      outcomes[i] = append(i).then(
        (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
        (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
      );
    }
  }
  return Promise.all(outcomes);
}

describe.each(['always', 'never'] as const)('pipelined I/O under random faults, flush=%s (model: the acknowledged set)', (flushKind) => {
  it(
    'holds exactly the acknowledged batches after every round of concurrent appends, failed writes and failed fdatasyncs, and after a restart',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 4_000, max: 40_000 }), fc.array(roundArbitrary, { minLength: 1, maxLength: 12 }), async (segmentBytes, rounds) => {
          const temp = makeTempDir('runnel-group-commit-');
          const { fileSystem, faults } = createFaultyFileSystem();
          const config = { flush: { kind: flushKind }, segmentBytes };
          const log = await openTestLog({ dir: temp.dir, config, fileSystem });
          const acked: Acked[] = [];
          try {
            for (const [index, round] of rounds.entries()) {
              if (round.fault.kind === 'datasync') faults.failNextDatasync({ path: LOG_FILES });
              if (round.fault.kind === 'write') faults.failWritesWith('EIO', { path: LOG_FILES, afterBytes: round.fault.afterBytes });
              const batches = round.valueBytes.map((valueBytes, i) => makeBatch({ count: 1 + (i % 3), valueBytes, tag: `r${index}-${i}` }));
              const outcomes = await appendInWaves(batches.length, round.waves, (i) => log.append(batches[i] as Buffer));
              faults.clear();
              for (const [i, outcome] of outcomes.entries()) {
                if (outcome.status === 'fulfilled') {
                  expect(outcome.value.isDuplicate).toBe(false);
                  acked.push({ baseOffset: outcome.value.baseOffset, lastOffset: outcome.value.lastOffset, bytes: Buffer.from(batches[i] as Buffer) });
                } else {
                  expect(isBrokerError(outcome.reason) && outcome.reason.reason, `round ${index} append ${i}: ${String(outcome.reason)}`).toBe('STORAGE_ERROR');
                }
              }
              if (!log.isOnline) {
                expect(flushKind === 'never' && round.fault.kind === 'datasync', `round ${index}: offline after a ${round.fault.kind} fault under flush=${flushKind}`).toBe(true);
                break;
              }
              if (flushKind === 'always') expect(log.flushedOffset, `round ${index}: every acknowledged offset is durable`).toBe(log.logEndOffset);
              await expectExactlyAcked(log, acked);
            }
            await log.close();
            const reopened = await openTestLog({ dir: temp.dir, config });
            try {
              await expectExactlyAcked(reopened, acked);
            } finally {
              await reopened.close();
            }
          } finally {
            faults.clear();
            await log.close().catch(() => undefined);
            temp.remove();
          }
        }),
        { numRuns: runs, plugins: [fc.interruptAfterTimeLimit(interruptAfterMs, { failOnInterrupt: true })], ...replay },
      );
    },
    testTimeoutMs,
  );
});
