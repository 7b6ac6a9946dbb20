import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import { anySignal, backoffDelayMs, isRetriableForAdminChange, retryOptionsOrThrow, withRetry, type RetryOptions } from './retry.js';

const options: RetryOptions = { backoffMsMin: 100, backoffMsMax: 1_000, timeoutMs: 5_000 };

describe('backoffDelayMs', () => {
  it('doubles from the minimum up to the cap, with jitter between half and all of it', () => {
    expect([0, 1, 2, 3, 4, 10].map((attempt) => backoffDelayMs(attempt, options, () => 0.999999))).toEqual([99, 199, 399, 799, 999, 999]);
    expect([0, 1, 2, 3, 4, 10].map((attempt) => backoffDelayMs(attempt, options, () => 0))).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('stays finite for huge attempt numbers', () => {
    expect(backoffDelayMs(10_000, options, () => 0.5)).toBe(750);
  });
});

describe('retryOptionsOrThrow', () => {
  it('keeps the default of a field given as undefined, and takes Infinity as a timeout', () => {
    expect(retryOptionsOrThrow({ timeoutMs: undefined, backoffMsMax: 500 }, 'consumer')).toEqual({ backoffMsMin: 100, backoffMsMax: 500, timeoutMs: 60_000 });
    expect(retryOptionsOrThrow(undefined, 'consumer')).toEqual({ backoffMsMin: 100, backoffMsMax: 2_000, timeoutMs: 60_000 });
    expect(retryOptionsOrThrow({ timeoutMs: Number.POSITIVE_INFINITY, backoffMsMin: 1 }, 'consumer')).toEqual({ backoffMsMin: 1, backoffMsMax: 2_000, timeoutMs: Number.POSITIVE_INFINITY });
    expect(retryOptionsOrThrow({ timeoutMs: 0 }, 'consumer').timeoutMs).toBe(0);
  });

  it('refuses NaN, a backoff of 0, a cap below the minimum, a negative or fractional timeout, naming the option', () => {
    const cases: [Partial<RetryOptions>, string][] = [
      [{ timeoutMs: Number.NaN }, 'consumer retry.timeoutMs must be an integer ≥ 0 (ms) or Infinity, got NaN'],
      [{ timeoutMs: -1 }, 'retry.timeoutMs must be'],
      [{ timeoutMs: 1.5 }, 'retry.timeoutMs must be'],
      [{ backoffMsMin: 0 }, 'consumer retry.backoffMsMin must be an integer ≥ 1 (ms), got 0'],
      [{ backoffMsMin: Number.NaN }, 'retry.backoffMsMin must be'],
      [{ backoffMsMin: 500, backoffMsMax: 100 }, 'retry.backoffMsMax must be an integer ≥ backoffMsMin (500 ms), got 100'],
      [{ backoffMsMax: Number.POSITIVE_INFINITY }, 'retry.backoffMsMax must be'],
    ];
    for (const [retry, text] of cases) {
      let thrown: unknown;
      try {
        retryOptionsOrThrow(retry, 'consumer');
      } catch (error) {
        thrown = error;
      }
      expect(thrown, JSON.stringify(retry)).toMatchObject({ reason: 'INVALID_REQUEST', message: expect.stringContaining(text) });
    }
  });
});

describe('withRetry', () => {
  it('retries retriable failures with backoff until one succeeds', async () => {
    const clock = new ManualClock();
    let attempts = 0;
    const result = withRetry({ clock, random: () => 0, retry: options }, async () => {
      attempts++;
      if (attempts < 3) throw new BrokerError('BROKER_UNAVAILABLE', 'down');
      return 'ok';
    });
    await Promise.resolve();
    clock.advance(50);
    await new Promise((resolve) => setImmediate(resolve));
    clock.advance(100);
    await expect(result).resolves.toBe('ok');
    expect(attempts).toBe(3);
  });

  it('throws a non-retriable failure at once', async () => {
    let attempts = 0;
    const result = withRetry({ clock: new ManualClock(), random: () => 0, retry: options }, async () => {
      attempts++;
      throw new BrokerError('TOPIC_NOT_FOUND', 'gone');
    });
    await expect(result).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    expect(attempts).toBe(1);
  });

  /** Attempts that all fail BROKER_UNAVAILABLE ("down 1", "down 2", …) within a 250 ms budget, run to their end. */
  async function failUntilGivenUp(onRetry?: (error: BrokerError) => void): Promise<unknown> {
    const clock = new ManualClock();
    let attempts = 0;
    const result = withRetry({ clock, random: () => 0.999, retry: { ...options, timeoutMs: 250 }, ...(onRetry === undefined ? {} : { onRetry }) }, async () => {
      attempts++;
      throw new BrokerError('BROKER_UNAVAILABLE', `down ${attempts}`);
    });
    const outcome = result.catch((error: unknown) => error);
    for (let step = 0; step < 5; step++) {
      await new Promise((resolve) => setImmediate(resolve));
      clock.advance(1_000);
    }
    return outcome;
  }

  it('gives up with the last error when the next attempt would pass the deadline', async () => {
    // Delays ~100 then ~200 ms: the third attempt would start past 250 ms.
    expect(await failUntilGivenUp()).toMatchObject({ reason: 'BROKER_UNAVAILABLE', message: 'down 2' });
  });

  it('tells onRetry of each failure it will retry, and not of the last one it throws', async () => {
    const heard: string[] = [];
    expect(await failUntilGivenUp((error) => heard.push(error.message))).toMatchObject({ message: 'down 2' });
    expect(heard).toEqual(['down 1']);
  });

  it('stops waiting when its signal aborts', async () => {
    const controller = new AbortController();
    const result = withRetry({ clock: new ManualClock(), random: () => 0, retry: options, signal: controller.signal }, async () => {
      throw new BrokerError('BROKER_UNAVAILABLE', 'down');
    });
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await expect(result).rejects.toMatchObject({ reason: 'BROKER_UNAVAILABLE' });
  });
});

describe('anySignal', () => {
  it('links any number of calls to a signal through one listener of its own, each unlinked by dispose', () => {
    const closing = new AbortController();
    let listenersAdded = 0;
    const add = closing.signal.addEventListener.bind(closing.signal);
    closing.signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => (listenersAdded++, add(...args))) as AbortSignal['addEventListener'];
    const calls = Array.from({ length: 1_000 }, () => anySignal([closing.signal]));
    // Node's EventTarget checks a new listener against all there: 10,000 links took ~0.4 s.
    expect(listenersAdded).toBe(1);
    for (const call of calls.slice(0, 500)) call.dispose();
    closing.abort(new BrokerError('SHUTTING_DOWN', 'closed'));
    expect(calls.slice(0, 500).some((call) => call.signal.aborted)).toBe(false);
    expect(calls.slice(500).every((call) => call.signal.aborted && (call.signal.reason as BrokerError).reason === 'SHUTTING_DOWN')).toBe(true);
  });

  it('aborts with the reason of whichever signal aborts, or at once when one already has', () => {
    const client = new AbortController();
    const caller = new AbortController();
    const linked = anySignal([client.signal, undefined, caller.signal]);
    caller.abort('caller gave up');
    expect(linked.signal.reason).toBe('caller gave up');
    // The client's closing later finds nothing of this call linked.
    client.abort('client closed');
    expect(linked.signal.reason).toBe('caller gave up');
    expect(anySignal([new AbortController().signal, caller.signal]).signal.reason).toBe('caller gave up');
    const neither = anySignal([new AbortController().signal, undefined]);
    expect(neither.signal.aborted).toBe(false);
  });
});

describe('isRetriableForAdminChange', () => {
  it('leaves out a full or failing disk, which needs an operator, and keeps the other retriable reasons', () => {
    expect(isRetriableForAdminChange(new BrokerError('DISK_FULL', 'full'))).toBe(false);
    expect(isRetriableForAdminChange(new BrokerError('STORAGE_ERROR', 'EIO'))).toBe(false);
    for (const reason of ['BROKER_UNAVAILABLE', 'REQUEST_TIMED_OUT', 'SHUTTING_DOWN', 'LIMIT_REACHED'] as const) {
      expect(isRetriableForAdminChange(new BrokerError(reason, 'x')), reason).toBe(true);
    }
    expect(isRetriableForAdminChange(new BrokerError('TOPIC_NOT_FOUND', 'x'))).toBe(false);
  });
});
