import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import type { BatchHeader } from '../protocol/index.js';
import { incrementSequence, ProducerState, validateProducerFieldsOrThrow, type ProducerVerdict } from './producer-state.js';

const INT32_MAX = 0x7fff_ffff;
const NOW_MS = 1_700_000_000_000;

function header(fields: { producerId: number; epoch?: number; sequence: number; count?: number; timestamp?: number; baseOffset?: number }): BatchHeader {
  const count = fields.count ?? 1;
  return {
    baseOffset: fields.baseOffset ?? 0,
    sizeBytes: 100,
    partitionLeaderEpoch: -1,
    magic: 2,
    crc: 0,
    attributes: 0,
    lastOffsetDelta: count - 1,
    baseTimestamp: fields.timestamp ?? NOW_MS,
    maxTimestamp: fields.timestamp ?? NOW_MS,
    producerId: fields.producerId,
    producerEpoch: fields.epoch ?? 0,
    baseSequence: fields.sequence,
    recordCount: count,
  };
}

function newState(options: { producersMax?: number; expirationMs?: number } = {}): ProducerState {
  return new ProducerState({ topic: 't', partition: 3, producersMax: options.producersMax ?? 100, expirationMs: options.expirationMs ?? 60_000 });
}

/** A tiny writer: checks one batch in its own run at the next offset and commits it when accepted. */
class Appender {
  logEndOffset = 0;
  constructor(readonly state: ProducerState) {}

  /** `appendedAtMs`: the broker's clock at the append; the batch's own timestamp unless given. */
  append(fields: Parameters<typeof header>[0], appendedAtMs = fields.timestamp ?? NOW_MS): ProducerVerdict {
    const changes = this.state.beginChanges(appendedAtMs);
    const batch = header(fields);
    const verdict = changes.check(batch, this.logEndOffset);
    if (verdict.kind === 'append') {
      changes.commit();
      this.logEndOffset += batch.lastOffsetDelta + 1;
    }
    return verdict;
  }
}

function expectAppended(verdict: ProducerVerdict): void {
  expect(verdict).toEqual({ kind: 'append' });
}

function expectDuplicateOf(verdict: ProducerVerdict, baseOffset: number, lastOffset: number): void {
  expect(verdict.kind).toBe('duplicate');
  if (verdict.kind === 'duplicate') expect({ baseOffset: verdict.batch.baseOffset, lastOffset: verdict.batch.lastOffset }).toEqual({ baseOffset, lastOffset });
}

function expectRejected(verdict: ProducerVerdict, reason: 'PRODUCER_FENCED' | 'OUT_OF_ORDER_SEQUENCE', message?: RegExp): void {
  expect(verdict.kind).toBe('rejected');
  if (verdict.kind !== 'rejected') return;
  expect(isBrokerError(verdict.error, reason)).toBe(true);
  expect(verdict.error.topic).toBe('t');
  expect(verdict.error.partition).toBe(3);
  if (message !== undefined) expect(verdict.error.message).toMatch(message);
}

describe('incrementSequence', () => {
  it('adds within int32 and wraps from 2^31 − 1 to 0 as Kafka does', () => {
    expect(incrementSequence(0, 4)).toBe(4);
    expect(incrementSequence(INT32_MAX - 4, 4)).toBe(INT32_MAX);
    expect(incrementSequence(INT32_MAX, 1)).toBe(0);
    expect(incrementSequence(INT32_MAX - 1, 3)).toBe(1);
    expect(incrementSequence(INT32_MAX, 0)).toBe(INT32_MAX);
  });
});

describe('validateProducerFieldsOrThrow', () => {
  it('lets non-idempotent batches through whatever their other fields say', () => {
    expect(() => validateProducerFieldsOrThrow(header({ producerId: -1, epoch: -1, sequence: -1 }))).not.toThrow();
  });

  it('rejects an idempotent batch with a negative epoch or base sequence as INVALID_REQUEST', () => {
    expect(() => validateProducerFieldsOrThrow(header({ producerId: 7, epoch: 0, sequence: 0 }))).not.toThrow();
    expect(() => validateProducerFieldsOrThrow(header({ producerId: 7, epoch: -1, sequence: 0 }))).toThrow(/producerEpoch/);
    expect(() => validateProducerFieldsOrThrow(header({ producerId: 7, epoch: 0, sequence: -1 }))).toThrow(/baseSequence/);
  });
});

describe('ProducerState', () => {
  it('accepts an unknown producer at any sequence', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, sequence: 42 }));
    expectAppended(appender.append({ producerId: 2, sequence: 0, epoch: 9 }));
    expect(appender.state.entryOf(1)).toMatchObject({ epoch: 0, batches: [{ firstSequence: 42, lastSequence: 42, baseOffset: 0, lastOffset: 0 }] });
  });

  it('accepts the next sequence and rejects one past it or behind it, saying what it expected', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, sequence: 0, count: 5 }));
    expectAppended(appender.append({ producerId: 1, sequence: 5, count: 2 }));
    expectRejected(appender.append({ producerId: 1, sequence: 8 }), 'OUT_OF_ORDER_SEQUENCE', /expected sequence 7, got 8/);
    expectRejected(appender.append({ producerId: 1, sequence: 6 }), 'OUT_OF_ORDER_SEQUENCE', /expected sequence 7, got 6/);
    expectAppended(appender.append({ producerId: 1, sequence: 7 }));
  });

  it('answers a repeat of any of the last five batches with its original offsets', () => {
    const appender = new Appender(newState());
    for (let i = 0; i < 7; i++) expectAppended(appender.append({ producerId: 1, sequence: i * 2, count: 2 }));
    // Batches 2..6 (sequences 4..13, offsets 4..13) are cached; 0 and 1 fell out of the window.
    for (let i = 2; i < 7; i++) expectDuplicateOf(appender.append({ producerId: 1, sequence: i * 2, count: 2 }), i * 2, i * 2 + 1);
    expectRejected(appender.append({ producerId: 1, sequence: 2, count: 2 }), 'OUT_OF_ORDER_SEQUENCE', /expected sequence 14, got 2/);
    expect(appender.state.entryOf(1)?.batches).toHaveLength(5);
  });

  it("answers a duplicate with the original batch's maxTimestamp (its append time under LogAppendTime), not the retry's", () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, sequence: 0, count: 2, timestamp: NOW_MS }));
    expectAppended(appender.append({ producerId: 1, sequence: 2, timestamp: NOW_MS + 10 }));
    const retry = appender.append({ producerId: 1, sequence: 0, count: 2, timestamp: NOW_MS + 5_000 });
    expect(retry.kind === 'duplicate' ? retry.batch.maxTimestamp : retry.kind).toBe(NOW_MS);
    const newest = appender.append({ producerId: 1, sequence: 2, timestamp: NOW_MS + 6_000 });
    expect(newest.kind === 'duplicate' ? newest.batch.maxTimestamp : newest.kind).toBe(NOW_MS + 10);
  });

  it('needs both sequences to match for a duplicate', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, sequence: 0, count: 3 }));
    expectRejected(appender.append({ producerId: 1, sequence: 0, count: 2 }), 'OUT_OF_ORDER_SEQUENCE');
    expectDuplicateOf(appender.append({ producerId: 1, sequence: 0, count: 3 }), 0, 2);
  });

  it('fences an epoch one behind the stored one, saying a newer producer took over', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, epoch: 4, sequence: 0 }));
    expectRejected(appender.append({ producerId: 1, epoch: 3, sequence: 1 }), 'PRODUCER_FENCED', /newer producer with the same id/);
    // Even a repeat of a batch it sent before: the old producer is gone.
    expectRejected(appender.append({ producerId: 1, epoch: 3, sequence: 0 }), 'PRODUCER_FENCED');
    expectAppended(appender.append({ producerId: 1, epoch: 4, sequence: 1 }));
  });

  it('restarts the entry at a higher epoch that starts at sequence 0, and rejects one that does not', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, epoch: 0, sequence: 0, count: 10 }));
    expectRejected(appender.append({ producerId: 1, epoch: 1, sequence: 10 }), 'OUT_OF_ORDER_SEQUENCE', /must start at sequence 0/);
    expectAppended(appender.append({ producerId: 1, epoch: 1, sequence: 0 }));
    expect(appender.state.entryOf(1)).toMatchObject({ epoch: 1, batches: [{ firstSequence: 0, lastSequence: 0, baseOffset: 10 }] });
    // The old epoch's batches are no longer duplicates; the old epoch is fenced.
    expectRejected(appender.append({ producerId: 1, epoch: 0, sequence: 0, count: 10 }), 'PRODUCER_FENCED');
  });

  it('follows sequences across the int32 wrap', () => {
    const appender = new Appender(newState());
    expectAppended(appender.append({ producerId: 1, sequence: INT32_MAX - 1, count: 3 })); // sequences MAX−1, MAX, 0
    expect(appender.state.entryOf(1)?.batches[0]?.lastSequence).toBe(0);
    expectDuplicateOf(appender.append({ producerId: 1, sequence: INT32_MAX - 1, count: 3 }), 0, 2);
    expectRejected(appender.append({ producerId: 1, sequence: 0 }), 'OUT_OF_ORDER_SEQUENCE', /expected sequence 1, got 0/);
    expectAppended(appender.append({ producerId: 1, sequence: 1 }));

    const atMax = new Appender(newState());
    expectAppended(atMax.append({ producerId: 2, sequence: INT32_MAX }));
    expectAppended(atMax.append({ producerId: 2, sequence: 0 }));
  });

  it('sees earlier batches of the same run, and publishes nothing before commit', () => {
    const state = newState();
    const changes = state.beginChanges(NOW_MS);
    expectAppended(changes.check(header({ producerId: 1, sequence: 0, count: 2 }), 0));
    expectAppended(changes.check(header({ producerId: 1, sequence: 2 }), 2));
    expectDuplicateOf(changes.check(header({ producerId: 1, sequence: 0, count: 2 }), 3), 0, 1);
    const rejected = changes.check(header({ producerId: 1, sequence: 9 }), 3);
    expectRejected(rejected, 'OUT_OF_ORDER_SEQUENCE', /expected sequence 3, got 9/);
    expect(state.entryOf(1)).toBeUndefined();
    changes.commit();
    expect(state.entryOf(1)?.batches.map((batch) => batch.firstSequence)).toEqual([0, 2]);
  });

  it('leaves the committed state untouched when a run is dropped (a failed write)', () => {
    const state = newState();
    const appender = new Appender(state);
    expectAppended(appender.append({ producerId: 1, sequence: 0 }));
    const before = structuredClone(state.entryOf(1));
    const failed = state.beginChanges(NOW_MS);
    expectAppended(failed.check(header({ producerId: 1, sequence: 1 }), 1));
    expectAppended(failed.check(header({ producerId: 1, epoch: 1, sequence: 0 }), 2));
    expectAppended(failed.check(header({ producerId: 2, sequence: 0 }), 3));
    // Dropped without commit: the retry is checked against the old state again.
    expect(state.entryOf(1)).toEqual(before);
    expect(state.entryOf(2)).toBeUndefined();
    expectAppended(appender.append({ producerId: 1, sequence: 1 }));
  });

  it('keeps at most producersMax producers, evicting the least recently appended', () => {
    const appender = new Appender(newState({ producersMax: 3 }));
    for (const producerId of [1, 2, 3]) expectAppended(appender.append({ producerId, sequence: 0 }));
    expectAppended(appender.append({ producerId: 1, sequence: 1 })); // 1 is now the most recent
    expectAppended(appender.append({ producerId: 4, sequence: 0 }));
    expect(appender.state.producerCount).toBe(3);
    expect(appender.state.entryOf(2)).toBeUndefined();
    expect(appender.state.allEntries().map((entry) => entry.producerId)).toEqual([3, 1, 4]);
    // The evicted producer counts as unknown: any sequence goes.
    expectAppended(appender.append({ producerId: 2, sequence: 17 }));
    expect(appender.state.entryOf(3)).toBeUndefined();
  });

  it('drops producers whose newest batch is older than the expiry, and keeps one exactly at it', () => {
    const state = newState({ expirationMs: 1000 });
    const appender = new Appender(state);
    expectAppended(appender.append({ producerId: 1, sequence: 0, timestamp: NOW_MS - 1001 }));
    expectAppended(appender.append({ producerId: 2, sequence: 0, timestamp: NOW_MS - 1000 }));
    expectAppended(appender.append({ producerId: 3, sequence: 0, timestamp: NOW_MS - 2000 }));
    expectAppended(appender.append({ producerId: 3, sequence: 1, timestamp: NOW_MS }));
    expect(state.removeExpired(NOW_MS)).toBe(1);
    expect(state.allEntries().map((entry) => entry.producerId)).toEqual([2, 3]);
  });

  it('counts a producer as seen when the broker appended (or replayed) its batch, whatever old timestamp the batch carries', () => {
    const state = newState({ expirationMs: 1000 });
    const appender = new Appender(state);
    const dayAgoMs = NOW_MS - 86_400_000;
    expectAppended(appender.append({ producerId: 1, sequence: 0, timestamp: dayAgoMs }, NOW_MS - 1000));
    expectAppended(appender.append({ producerId: 2, sequence: 0, timestamp: dayAgoMs }, NOW_MS - 1001));
    const replayed = newState({ expirationMs: 1000 });
    replayed.replay(header({ producerId: 3, sequence: 0, timestamp: dayAgoMs }), NOW_MS);
    expect(state.removeExpired(NOW_MS)).toBe(1);
    expect(state.allEntries().map((entry) => entry.producerId)).toEqual([1]);
    expect(replayed.removeExpired(NOW_MS + 1000)).toBe(0);
    // The batch keeps its own time for duplicates; only expiry uses the append time.
    expect(state.entryOf(1)).toMatchObject({ lastTimestamp: NOW_MS - 1000, batches: [{ maxTimestamp: dayAgoMs }] });
  });

  it('drops expired producers when it loads a snapshot', () => {
    const source = new Appender(newState());
    expectAppended(source.append({ producerId: 1, sequence: 0, timestamp: NOW_MS - 5000 }));
    expectAppended(source.append({ producerId: 2, sequence: 0, timestamp: NOW_MS }));
    const loaded = newState({ expirationMs: 1000 });
    loaded.load(source.state.allEntries(), NOW_MS);
    expect(loaded.allEntries().map((entry) => entry.producerId)).toEqual([2]);
  });

  it('replays stored batches without checks, restarting an entry when the epoch changes', () => {
    const state = newState();
    state.replay(header({ producerId: -1, sequence: -1, baseOffset: 0 }), NOW_MS);
    state.replay(header({ producerId: 1, sequence: 5, count: 2, baseOffset: 1, timestamp: NOW_MS + 1 }), NOW_MS);
    state.replay(header({ producerId: 1, sequence: 9, baseOffset: 3, timestamp: NOW_MS + 2 }), NOW_MS);
    expect(state.producerCount).toBe(1);
    expect(state.entryOf(1)?.batches).toEqual([
      { firstSequence: 5, lastSequence: 6, baseOffset: 1, lastOffset: 2, maxTimestamp: NOW_MS + 1 },
      { firstSequence: 9, lastSequence: 9, baseOffset: 3, lastOffset: 3, maxTimestamp: NOW_MS + 2 },
    ]);
    state.replay(header({ producerId: 1, epoch: 2, sequence: 0, baseOffset: 4 }), NOW_MS);
    expect(state.entryOf(1)).toMatchObject({ epoch: 2, batches: [{ firstSequence: 0, baseOffset: 4 }] });
    for (let i = 1; i <= 6; i++) state.replay(header({ producerId: 1, epoch: 2, sequence: i, baseOffset: 4 + i }), NOW_MS);
    expect(state.entryOf(1)?.batches.map((batch) => batch.firstSequence)).toEqual([2, 3, 4, 5, 6]);
  });
});
