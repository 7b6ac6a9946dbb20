/**
 * `waitForBroker`: a streaming command's first calls to its broker (look up the topic, its
 * partitions, its offsets), waited out while the broker cannot be reached, for a budget the
 * command's own flag sets, instead of failing after the CLI's 5 s retry budget for admin calls
 * (client-command.ts). A log shipper or a consumer started by a service manager at boot races
 * the broker's start, and a broker restarting refuses connections for a while; the command
 * should wait for it and say so, as Kafka's clients do.
 *
 * Used by `produce` and `perf produce` (--delivery-timeout-ms) and `consume` and `perf
 * consume` (--api-timeout-ms). Every retry is told to `onRetry` with the give-up time, so the command
 * prints it through its `OutageNotice` (once, then at the notice's cadence); the command says
 * itself when the wait is over. When the budget runs out, the last failure ends the command
 * (its one-line "cannot reach broker …" error).
 *
 * Not waited out, failing at once: a failure that is not retriable (an unknown topic, a
 * partition or offset that does not exist: the command's CliErrors), and a broker host name
 * that does not resolve (a typo most likely; Kafka's clients refuse unresolvable bootstrap
 * servers at once too).
 *
 * Tested through the commands in test/integration/cli-broker-restart.test.ts, and alone in
 * wait-for-broker.test.ts.
 */
import { BrokerError, isBrokerError } from '../client/index.js';
import { systemClock, type Clock } from '../common/index.js';
import { isUnresolvedHostError } from './cli-error.js';

export interface WaitForBrokerOptions {
  /** How long to wait, from the call, before the last failure ends the command. */
  budgetMs: number;
  /** The flag that sets `budgetMs` (`--delivery-timeout-ms`), named when it runs out with no failure seen. */
  budgetFlag: string;
  /** Told of each failure that will be retried, before the retry, with the time the wait gives up. */
  onRetry: (error: BrokerError, giveUpAtMs: number) => void;
  clock?: Clock;
}

/**
 * Runs `attempt` until it succeeds, and returns its result. `attempt` makes its calls with
 * the client's own retries (5 s in the CLI), passing them the listener it is given; when
 * those give up on a retriable failure, it is run again, until `budgetMs` after this call.
 * An attempt still running when the budget ends (or a host name is found not to resolve)
 * is left to the client's close(), which ends its retries; its outcome is ignored.
 */
export async function waitForBroker<T>(attempt: (onRetry: (error: BrokerError) => void) => Promise<T>, options: WaitForBrokerOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  const giveUpAtMs = clock.nowMs() + options.budgetMs;
  let lastError: BrokerError | undefined;
  const noteRetry = (error: BrokerError): void => {
    lastError = error;
    options.onRetry(error, giveUpAtMs);
  };
  for (;;) {
    try {
      return await waitForBrokerOnce(attempt, clock, giveUpAtMs, noteRetry);
    } catch (error) {
      if (error === BUDGET_RAN_OUT) {
        throw lastError ?? new BrokerError('REQUEST_TIMED_OUT', `no answer within ${options.budgetFlag} (${options.budgetMs} ms)`);
      }
      if (!isBrokerError(error) || !error.retriable || isUnresolvedHostError(error) || clock.nowMs() >= giveUpAtMs) throw error;
      noteRetry(error); // the client's retry budget is used up: run the attempt again
    }
  }
}

/** Thrown by waitForBrokerOnce when the budget runs out first. */
const BUDGET_RAN_OUT = Symbol('budget ran out');

/**
 * One run of `attempt`, ended early at `giveUpAtMs` (BUDGET_RAN_OUT) or at a host name that
 * does not resolve. Once it has settled, later retries of the abandoned attempt are not
 * reported (no "retrying" line after the command has given up).
 */
function waitForBrokerOnce<T>(
  attempt: (onRetry: (error: BrokerError) => void) => Promise<T>,
  clock: Clock,
  giveUpAtMs: number,
  onRetry: (error: BrokerError) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let isSettled = false;
    const settle = (settleWith: () => void): void => {
      if (isSettled) return;
      isSettled = true;
      cancelTimer();
      settleWith();
    };
    const cancelTimer = clock.setTimer(Math.max(0, giveUpAtMs - clock.nowMs()), () => settle(() => reject(BUDGET_RAN_OUT)));
    attempt((error) => {
      if (isSettled) return;
      if (isUnresolvedHostError(error)) settle(() => reject(error));
      else onRetry(error);
    }).then(
      (result) => settle(() => resolve(result)),
      (error: unknown) => settle(() => reject(error)),
    );
  });
}
