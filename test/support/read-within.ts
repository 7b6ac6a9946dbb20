/**
 * Reading a consumer (or any async iterable) under the test's own deadline, well inside
 * vitest's timeout: a read that stalls fails saying what was read so far and what was still
 * expected, instead of a bare "Test timed out" (or a `for await` that runs on after the test).
 *
 * However the read ends (enough read, the deadline, a failed check, the iteration ending or
 * throwing), the iteration is ended with `return()`, and a `next()` still pending then is
 * observed, so it cannot reject unhandled after the test.
 */
import type { ConsumerRecord } from '../../src/client/index.js';

export interface ReadEachWithinOptions {
  /** How long the whole read may take. */
  timeoutMs: number;
  /** What was read so far and what is still expected; evaluated when the read fails, so it can show live state. */
  describe: () => string;
}

const DEADLINE = Symbol('deadline');

/**
 * Gives `onItem` each item until it returns true. Rejects when `timeoutMs` passes first, when
 * the iteration ends first, and at once with what `onItem` (an `expect`) or the iteration throws.
 */
export async function readEachWithin<T>(iterable: AsyncIterable<T>, options: ReadEachWithinOptions, onItem: (item: T) => boolean): Promise<void> {
  const iterator = iterable[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), options.timeoutMs);
  });
  let isDone = false;
  try {
    for (;;) {
      const next = iterator.next();
      next.catch(() => undefined); // may still be pending at the deadline: observed here, never unhandled
      const result = await Promise.race([next, deadline]);
      if (result === DEADLINE) throw new Error(`read gave up after ${options.timeoutMs} ms: ${options.describe()}`);
      if (result.done === true) throw new Error(`the iteration ended before the read was complete: ${options.describe()}`);
      if (onItem(result.value)) {
        isDone = true;
        return;
      }
    }
  } finally {
    clearTimeout(timer);
    // Not awaited when the read failed: an async generator's return() waits for a pending next().
    const ending = iterator.return?.();
    if (isDone) await ending;
    else ending?.catch(() => undefined);
  }
}

export interface ReadRecordsWithinOptions {
  timeoutMs: number;
  /** What the records should be, for the failure message, e.g. "'first', 'reply lost', 'after' at offsets 0-2". */
  expected: string;
}

/** Reads `count` records (none for 0) within `timeoutMs`; see readEachWithin. */
export async function readRecordsWithin(iterable: AsyncIterable<ConsumerRecord>, count: number, options: ReadRecordsWithinOptions): Promise<ConsumerRecord[]> {
  const records: ConsumerRecord[] = [];
  if (count === 0) return records;
  await readEachWithin(
    iterable,
    { timeoutMs: options.timeoutMs, describe: () => `read ${records.length} of ${count} records (${describeRecords(records)}); expected ${options.expected}` },
    (record) => {
      records.push(record);
      return records.length === count;
    },
  );
  return records;
}

/** A few records one by one, more as offset ranges per partition: enough to see what is missing. */
export function describeRecords(records: readonly ConsumerRecord[]): string {
  if (records.length === 0) return 'none';
  if (records.length <= 5) {
    return records.map((record) => `${record.topic}/${record.partition}@${record.offset} ${JSON.stringify(record.value?.toString('utf8', 0, 40) ?? null)}`).join(', ');
  }
  const ranges = new Map<string, { first: number; last: number; count: number }>();
  for (const record of records) {
    const key = `${record.topic}/${record.partition}`;
    const range = ranges.get(key);
    if (range === undefined) ranges.set(key, { first: record.offset, last: record.offset, count: 1 });
    else {
      range.last = record.offset;
      range.count++;
    }
  }
  return [...ranges]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([key, range]) => `${key}: ${range.count} from offset ${range.first} to ${range.last}`)
    .join(', ');
}
