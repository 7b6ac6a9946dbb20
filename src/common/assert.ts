/**
 * Invariant checks. A failed assertion is a bug in Runnel, never bad client input (that is
 * validation, and returns a BrokerError). It throws `AssertionError`, which callers must not
 * catch: a process that stops is safer than one that goes on in a corrupt state.
 */

export class AssertionError extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'AssertionError';
  }
}

/**
 * Its message is built on every call, holding or not: a template literal with numbers in it
 * costs ~13 ns here (3× a varint write). On per-record and per-batch paths, test and throw
 * instead: `if (!ok) throw new AssertionError(\`…${value}\`)`.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertSafeInteger(value: number, what: string): void {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`${what} is not a safe integer: ${value}`);
}

/** Ends an exhaustive `switch`: fails to compile when a union member has no case. */
export function assertNever(value: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(value)}`);
}
