/**
 * `waitFor`: poll a condition until it yields a value, with a deadline. Tests wait for
 * something observable (a count of acknowledgements, a status flip) instead of sleeping a fixed
 * time, so they are as fast as the machine allows and fail with a message that says what was
 * still missing rather than with a bare timeout.
 */

export type WaitCondition<T> = () => T | undefined | false | Promise<T | undefined | false>;

export interface WaitForOptions {
  /** How long to keep polling before failing. */
  timeoutMs: number;
  /** What is still missing, evaluated when the deadline passes (so it can show live state). */
  describe: () => string;
  /** Pause between polls; short, because the conditions are cheap. */
  intervalMs?: number;
}

const INTERVAL_MS_DEFAULT = 5;

/**
 * Resolves with the first value of `condition` that is neither `undefined` nor `false`.
 * Rejects when `timeoutMs` passes first, or at once when `condition` throws.
 */
export async function waitFor<T>(condition: WaitCondition<T>, options: WaitForOptions): Promise<T> {
  const startMs = Date.now();
  const intervalMs = options.intervalMs ?? INTERVAL_MS_DEFAULT;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    const elapsedMs = Date.now() - startMs;
    if (elapsedMs >= options.timeoutMs) {
      throw new Error(`waitFor gave up after ${elapsedMs} ms: ${options.describe()}`);
    }
    await pause(Math.min(intervalMs, options.timeoutMs - elapsedMs));
  }
}

/** A plain delay: for pacing (a poll interval, a schedule), never as a wait for something to happen. */
export function pause(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
