import { describe, expect, it } from 'vitest';
import { BrokerError } from '../client/index.js';
import { ManualClock } from '../common/index.js';
import { waitForBroker } from './wait-for-broker.js';

const refused = (): BrokerError => new BrokerError('BROKER_UNAVAILABLE', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7070');

/** Lets pending promise callbacks run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function makeWait(budgetMs = 10_000) {
  const clock = new ManualClock();
  const retries: { reason: string; giveUpAtMs: number }[] = [];
  const options = { budgetMs, budgetFlag: '--api-timeout-ms', clock, onRetry: (error: BrokerError, giveUpAtMs: number) => retries.push({ reason: error.reason, giveUpAtMs }) };
  return { clock, retries, options, startMs: clock.nowMs() };
}

describe('waitForBroker', () => {
  it('runs the attempt again after the client gives up on a retriable failure, reporting each retry with the give-up time, until it succeeds', async () => {
    const { retries, options, startMs } = makeWait();
    let attemptCount = 0;
    const result = await waitForBroker(async (onRetry) => {
      attemptCount++;
      onRetry(refused()); // the client's own retry within one attempt
      if (attemptCount < 3) throw refused(); // its budget used up
      return 'answered';
    }, options);
    expect(result).toBe('answered');
    expect(attemptCount).toBe(3);
    // Each attempt's retry, plus one after each of the two that gave up.
    expect(retries).toEqual(Array.from({ length: 5 }, () => ({ reason: 'BROKER_UNAVAILABLE', giveUpAtMs: startMs + 10_000 })));
  });

  it('fails at once, reporting nothing, on a failure a wait cannot fix (an unknown topic)', async () => {
    const { retries, options } = makeWait();
    let attemptCount = 0;
    const failing = waitForBroker(async () => {
      attemptCount++;
      throw new BrokerError('TOPIC_NOT_FOUND', 'no topic app-logs');
    }, options);
    await expect(failing).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    expect(attemptCount).toBe(1);
    expect(retries).toEqual([]);
  });

  it('fails at once when the broker host name does not resolve, though the client would retry it', async () => {
    const { retries, options } = makeWait();
    const failing = waitForBroker((onRetry) => {
      onRetry(new BrokerError('BROKER_UNAVAILABLE', 'Name resolution failed for target dns:no-such-broker.invalid:7070'));
      return new Promise<never>(() => undefined); // the client would go on retrying
    }, options);
    await expect(failing).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: expect.stringContaining('no-such-broker.invalid') });
    expect(retries).toEqual([]);
  });

  it('gives up with the last failure when the budget runs out during an attempt, and reports no retry after that', async () => {
    const { clock, retries, options } = makeWait(3_000);
    let reportRetry: ((error: BrokerError) => void) | undefined;
    const waiting = waitForBroker((onRetry) => {
      reportRetry = onRetry;
      onRetry(refused());
      return new Promise<never>(() => undefined); // the client retries for longer than the budget
    }, options);
    const outcome = waiting.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    clock.advance(2_999);
    await settle();
    expect(retries).toHaveLength(1);
    clock.advance(1);
    expect(await outcome).toMatchObject({ reason: 'BROKER_UNAVAILABLE' });
    reportRetry?.(refused()); // the abandoned attempt retries on until the client is closed
    expect(retries).toHaveLength(1);
  });

  it('names the budget flag when the budget runs out before any failure was seen', async () => {
    const { clock, options } = makeWait(3_000);
    const waiting = waitForBroker(() => new Promise<never>(() => undefined), options);
    const outcome = waiting.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    clock.advance(3_000);
    expect(await outcome).toMatchObject({ reason: 'REQUEST_TIMED_OUT', message: 'no answer within --api-timeout-ms (3000 ms)' });
  });
});
