/**
 * The client's retry policy: capped exponential backoff with jitter, bounded by a deadline.
 * Every retrying path in the client (unary calls, produce batches, consumer reconnects)
 * computes its delays here, so they behave the same and tests can drive them with a clock.
 *
 * The policy does not decide *what* is retriable: callers pass a predicate, usually
 * `error.retriable` of the mapped `BrokerError`; admin changes pass
 * `isRetriableForAdminChange`, which leaves out a full or failing disk.
 */
import { setMaxListeners } from 'node:events';
import type { Clock } from '../common/index.js';
import { BrokerError, type Reason } from '../errors/index.js';
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

/**
 * `RETRY_DEFAULTS` with the fields of `given` that are set (one set to `undefined`, as
 * `{ timeoutMs: config.retryTimeoutMs }` gives when that setting is missing, keeps its
 * default), checked. Throws INVALID_REQUEST naming `owner`'s option: `backoffMsMin` an
 * integer ≥ 1, `backoffMsMax` one ≥ `backoffMsMin`, `timeoutMs` an integer ≥ 0 or Infinity.
 * Before, a spread took `undefined` and NaN as they were, and every comparison with them is
 * false: a retry that never gave up, or one every millisecond.
 */
export function retryOptionsOrThrow(given: Partial<RetryOptions> | undefined, owner: string): RetryOptions {
  const resolved: RetryOptions = { ...RETRY_DEFAULTS };
  for (const key of ['backoffMsMin', 'backoffMsMax', 'timeoutMs'] as const) {
    const value = given?.[key];
    if (value !== undefined) resolved[key] = value;
  }
  const invalid = (text: string): BrokerError => new BrokerError('INVALID_REQUEST', `${owner} retry.${text}`);
  if (!Number.isSafeInteger(resolved.backoffMsMin) || resolved.backoffMsMin < 1) throw invalid(`backoffMsMin must be an integer ≥ 1 (ms), got ${resolved.backoffMsMin}`);
  if (!Number.isSafeInteger(resolved.backoffMsMax) || resolved.backoffMsMax < resolved.backoffMsMin) {
    throw invalid(`backoffMsMax must be an integer ≥ backoffMsMin (${resolved.backoffMsMin} ms), got ${resolved.backoffMsMax}`);
  }
  if (!(Number.isSafeInteger(resolved.timeoutMs) || resolved.timeoutMs === Number.POSITIVE_INFINITY) || resolved.timeoutMs < 0) {
    throw invalid(`timeoutMs must be an integer ≥ 0 (ms) or Infinity, got ${resolved.timeoutMs}`);
  }
  return resolved;
}

/**
 * Reasons an admin change (create or delete a topic, alter its configs, add partitions) does
 * not retry, though they are retriable for a producer: the broker's disk is full (DISK_FULL) or
 * fails (STORAGE_ERROR). These are environment failures (STYLE.md H7) that an operator must fix
 * on the broker host; the change goes to the same broker's metadata store again, so a retry
 * only delays the answer, by the client's whole retry budget (60 s by default), for a person
 * at a prompt. A producer keeps retrying them within its delivery timeout: retention may free
 * space, and another broker may take over a failed partition.
 */
const ADMIN_CHANGE_NOT_RETRIED_REASONS: ReadonlySet<Reason> = new Set<Reason>(['DISK_FULL', 'STORAGE_ERROR']);

/** Whether an admin change retries `error` (see ADMIN_CHANGE_NOT_RETRIED_REASONS). */
export function isRetriableForAdminChange(error: BrokerError): boolean {
  return error.retriable && !ADMIN_CHANGE_NOT_RETRIED_REASONS.has(error.reason);
}

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
  /**
   * Aborts the waiting between attempts (close()): its reason is thrown when it is a
   * `BrokerError`, else the last error. The caller cancels an attempt in flight (`Connections.call`).
   */
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
      if (context.signal?.aborted === true) throw abortReasonOr(context.signal, error);
      if (!isRetriable(error)) throw error;
      const delayMs = backoffDelayMs(attempt, context.retry, context.random);
      if (context.clock.nowMs() + delayMs - startMs > context.retry.timeoutMs) throw error;
      context.onRetry?.(error);
      const isWoken = await sleep(context.clock, delayMs, context.signal);
      if (!isWoken) throw abortReasonOr(context.signal!, error);
    }
  }
}

/** Why `signal` aborted, when that is a `BrokerError` (a closed consumer or producer says so); else `fallback`. */
export function abortReasonOr(signal: AbortSignal, fallback: BrokerError): BrokerError {
  return signal.reason instanceof BrokerError ? signal.reason : fallback;
}

/**
 * The controller of a long-lived closing signal (a client's, a consumer's, a producer's close)
 * that every call of its owner links to while it runs (`anySignal`, whose links share one
 * listener; a metadata load, which adds its own). Each removes itself when it ends, so what the
 * signal holds is the calls in flight, bounded by what the application has running. Node warns
 * ("MaxListenersExceededWarning: Possible EventTarget memory leak") past 10 listeners on one
 * signal, which such a job used to print on stderr as if the client leaked; so the warning is
 * turned off for these signals only.
 */
export function closingController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/**
 * A signal that aborts when any of `signals` does, with that one's reason, and `dispose`, which
 * unlinks it (call it once the work it guards is over). Hand-rolled rather than
 * `AbortSignal.any`: every call of a client links to the client's closing signal, which lives as
 * long as the client, and unlinking at the end of each call keeps what that signal holds at the
 * calls in flight.
 *
 * Each signal gets one 'abort' listener of ours for its life, which calls the links it holds
 * then (`abortFanOut`): linking and unlinking a call is a Set add and delete. Node's EventTarget
 * checks a new listener against every listener already there, and a consumer assigning 10,000
 * partitions runs 10,000 ListOffsets linked to its client at once (about 0.4 s of its start-up).
 */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const linked: Set<() => void>[] = [];
  const dispose = (): void => {
    for (const links of linked) links.delete(onAbort);
    linked.length = 0;
  };
  // With the reason of the one that aborted (the first of them, when several already have).
  const onAbort = (): void => {
    dispose();
    controller.abort(signals.find((signal) => signal?.aborted === true)?.reason);
  };
  if (signals.some((signal) => signal?.aborted === true)) {
    controller.abort(signals.find((signal) => signal?.aborted === true)?.reason);
  } else {
    for (const signal of signals) {
      if (signal === undefined) continue;
      const links = abortFanOut(signal);
      links.add(onAbort);
      linked.push(links);
    }
  }
  return { signal: controller.signal, dispose };
}

/** Per signal, the `anySignal` links its one listener calls when it aborts. */
const fanOuts = new WeakMap<AbortSignal, Set<() => void>>();

function abortFanOut(signal: AbortSignal): Set<() => void> {
  let links = fanOuts.get(signal);
  if (links === undefined) {
    const created = new Set<() => void>();
    links = created;
    fanOuts.set(signal, created);
    // A copy: each link unlinks itself (dispose) as it runs.
    signal.addEventListener('abort', () => {
      for (const link of [...created]) link();
    }, { once: true });
  }
  return links;
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
