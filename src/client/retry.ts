/**
 * The client's retry policy: capped exponential backoff with jitter, bounded by a deadline.
 * Every retrying path in the client (unary calls, produce batches, consumer reconnects)
 * computes its delays here, so they behave the same and tests can drive them with a clock.
 *
 * The policy does not decide *what* is retriable: callers pass a predicate, usually
 * `error.retriable` of the mapped `BrokerError`.
 */
import type { Clock } from '../common/index.js';
import type { BrokerError } from '../errors/index.js';
import { errorFromGrpc } from './errors.js';

export interface RetryOptions {
  /** First delay; doubles each attempt. */
  backoffMsMin: number;
  /** Ceiling of one delay. */
  backoffMsMax: number;
  /** Give up when the next attempt would start later than this after the first one. */
  timeoutMs: number;
}

/**
 * 100 ms doubling to 2 s: a restarted broker is usually back within a few seconds, and
 * grpc-js's own reconnect backoff (capped lower in connections.ts) sits underneath.
 */
export const RETRY_DEFAULTS: Readonly<RetryOptions> = Object.freeze({
  backoffMsMin: 100,
  backoffMsMax: 2_000,
  timeoutMs: 60_000,
});

/** A source of uniform numbers in [0, 1), injectable for tests. */
export type RandomSource = () => number;

/**
 * The delay before retry number `attempt` (0 for the first retry): the capped exponential
 * value times a jitter factor in [0.5, 1), so clients that failed together do not return
 * together, yet no delay collapses to zero.
 */
export function backoffDelayMs(attempt: number, options: RetryOptions, random: RandomSource): number {
  const exponent = Math.min(attempt, 30);
  const cappedMs = Math.min(options.backoffMsMax, options.backoffMsMin * 2 ** exponent);
  return Math.max(1, Math.floor(cappedMs * (0.5 + random() / 2)));
}

export interface RetryContext {
  clock: Clock;
  random: RandomSource;
  retry: RetryOptions;
  /** Aborts the waiting between attempts (close()); the last error is thrown. */
  signal?: AbortSignal;
  /** Told of each failure that will be retried, before the backoff (a caller that gives up sooner can name it). */
  onRetry?: (error: BrokerError) => void;
}

/**
 * Runs `operation` until it succeeds, fails with a non-retriable error, or the deadline
 * passes; then throws the last mapped `BrokerError`. The operation must be safe to repeat:
 * each attempt may have reached the broker even when it reported failure.
 */
export async function withRetry<T>(
  context: RetryContext,
  operation: (attempt: number) => Promise<T>,
  isRetriable: (error: BrokerError) => boolean = (error) => error.retriable,
): Promise<T> {
  const startMs = context.clock.nowMs();
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (thrown) {
      const error = errorFromGrpc(thrown);
      if (!isRetriable(error) || context.signal?.aborted === true) throw error;
      const delayMs = backoffDelayMs(attempt, context.retry, context.random);
      if (context.clock.nowMs() + delayMs - startMs > context.retry.timeoutMs) throw error;
      context.onRetry?.(error);
      const isWoken = await sleep(context.clock, delayMs, context.signal);
      if (!isWoken) throw error;
    }
  }
}

/** Resolves true after `delayMs`, or false at once when `signal` aborts first. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve(false);
    const onAbort = (): void => {
      cancel();
      resolve(false);
    };
    const cancel = clock.setTimer(delayMs, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
