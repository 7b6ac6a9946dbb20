/**
 * `BackgroundTask`: a loop a test runs beside its body (a producer sending until told to stop,
 * a consumer reading through restarts). Its failure is caught the moment it happens, so it
 * never becomes an unhandled rejection after the test, and the body's waits can fail at once
 * with it (`throwIfFailed()` inside a waitFor condition) instead of waiting out their deadline
 * and reporting a shortfall whose cause is lost.
 *
 * The test must make the loop stop and await it on every path (try/finally): `finish()` when
 * the loop's outcome is part of what it checks, `settled()` on a path that is already failing.
 */
import { isBrokerError } from '../../src/errors/index.js';

export class BackgroundTask {
  private readonly what: string;
  private readonly ended: Promise<void>;
  private failure: { error: unknown } | undefined;

  /** Starts `run` at once; `what` names it in the failure message ("the producer loop"). */
  constructor(what: string, run: () => Promise<void>) {
    this.what = what;
    this.ended = run().then(
      () => undefined,
      (error: unknown) => {
        this.failure = { error };
      },
    );
  }

  /** Throws (with the task's error as the cause) when the task has failed. */
  throwIfFailed(): void {
    if (this.failure === undefined) return;
    const error = this.failure.error;
    const text = isBrokerError(error) ? `${error.reason}: ${error.message}` : error instanceof Error ? error.message : String(error);
    throw new Error(`${this.what} failed: ${text}`, { cause: error });
  }

  /** Waits until the task has ended, then throws its failure, if any. */
  async finish(): Promise<void> {
    await this.ended;
    this.throwIfFailed();
  }

  /** Waits until the task has ended, whatever its outcome (for a test already failing for another reason). */
  settled(): Promise<void> {
    return this.ended;
  }
}
