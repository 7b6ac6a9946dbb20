/**
 * The whole-broker chaos run in its short bounded mode (the long one is `npm run chaos`).
 *
 * Goal: Runnel's central promise, end to end through real process deaths: no record the
 * broker acknowledged is lost, and the idempotent producer writes none twice, while the
 * broker process is SIGKILLed mid-produce and restarted on the same data directory.
 *
 * Method: test/support/broker-chaos.ts (shared with scripts/chaos.ts), once under
 * flush=always and once under the default flush, each for 10 s of production with 4 kills at
 * seeded-random points; then a clean restart and a read of every partition from offset 0,
 * checked against the producers' ledger (see that file's header for every check). A failing
 * run prints its seed; rerun with RUNNEL_FAULT_SEED=<seed>, or longer with
 * `npm run chaos -- --seed <seed>`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FLUSH_DEFAULT, formatChaosReport, runBrokerChaos, type ChaosReport } from '../support/broker-chaos.js';
import { stopAllBrokerProcesses } from '../support/broker-process.js';

const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? Date.now() % 2 ** 31);
const SECONDS = 10;
const KILLS = 4;

afterEach(async () => {
  await stopAllBrokerProcesses(); // only after a harness failure; the run stops its own brokers
});

async function runAndCheck(flush: string): Promise<void> {
  const report: ChaosReport = await runBrokerChaos({ seconds: SECONDS, kills: KILLS, seed: SEED, flush });
  const summary = formatChaosReport(report);
  if (process.env.RUNNEL_TEST_VERBOSE === '1') console.log(summary);
  const replay = `replay with RUNNEL_FAULT_SEED=${SEED}, or npm run chaos -- --seed ${SEED} --seconds ${SECONDS} --kills ${KILLS} --flush ${flush}`;
  expect(report.violations, `${summary}\n${replay}`).toEqual([]);
  expect(report.kills, replay).toBe(KILLS);
  // Not vacuous: records were acknowledged and read back across the kills, and the kills
  // left batches whose outcome the restarted broker had to recognise.
  expect(report.acked, replay).toBeGreaterThan(SECONDS * 1_000);
  expect(report.read, replay).toBeGreaterThanOrEqual(report.acked);
  expect(report.batchRetries, replay).toBeGreaterThan(0);
  expect(report.tailed, replay).toBeGreaterThanOrEqual(report.acked);
  // Every kind of kill happened: mid-produce, within 300 ms of a restart, during start-up,
  // and a producer was replaced after a restart.
  expect([report.quickKills, report.startupKills, report.producerRuns > 2], replay).toEqual([1, 1, true]);
}

describe('whole broker under SIGKILL chaos', () => {
  it('loses and duplicates no acknowledged record under flush=always across 4 kills', async () => {
    await runAndCheck('always');
  });

  it(`loses and duplicates no acknowledged record under the default flush (${FLUSH_DEFAULT}) across 4 kills`, async () => {
    await runAndCheck(FLUSH_DEFAULT);
  });
});
