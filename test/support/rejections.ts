/**
 * Assertions on failures the tests provoke: the error a promise rejects with, and whether it is
 * the BrokerError (reason, and errno code of its cause) the test expects.
 */
import { expect } from 'vitest';
import { isBrokerError, type Reason } from '../../src/errors/index.js';

/** What `promise` rejects with; fails the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but it resolved');
    },
    (error: unknown) => error,
  );
}

/** `error` is a BrokerError with `reason`, and (when given) a cause with errno code `causeCode`. */
export function expectReason(error: unknown, reason: Reason, causeCode?: string): void {
  expect(isBrokerError(error), `expected a BrokerError ${reason}, got ${String(error)}`).toBe(true);
  expect((error as { reason: Reason }).reason).toBe(reason);
  if (causeCode !== undefined) expect(((error as Error).cause as NodeJS.ErrnoException | undefined)?.code).toBe(causeCode);
}
