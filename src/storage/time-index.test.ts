import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { writeInt64 } from '../protocol/index.js';
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from './time-index.js';

function indexOf(entries: readonly [number, number][]): TimeIndex {
  const index = TimeIndex.empty();
  for (const [timestamp, relativeOffset] of entries) expect(index.maybeAppend(timestamp, relativeOffset)).toBe(true);
  return index;
}

function bytesOf(entries: readonly [number, number][]): Buffer {
  const bytes = Buffer.alloc(entries.length * TIME_INDEX_ENTRY_BYTES);
  entries.forEach(([timestamp, relativeOffset], i) => {
    writeInt64(bytes, timestamp, i * TIME_INDEX_ENTRY_BYTES);
    bytes.writeUInt32BE(relativeOffset, i * TIME_INDEX_ENTRY_BYTES + 8);
  });
  return bytes;
}

const T = 1_700_000_000_000;
const roomy = { relativeOffsetEnd: 0xffff_ffff };

describe('TimeIndex', () => {
  it('has no entries when empty and starts every scan at the segment start', () => {
    const index = TimeIndex.empty();
    expect(index.entryCount).toBe(0);
    expect(index.sizeBytes).toBe(0);
    expect(index.firstEntry()).toBeUndefined();
    expect(index.lastEntry()).toBeUndefined();
    expect(index.scanStartFor(0)).toBe(0);
    expect(index.scanStartFor(T)).toBe(0);
    expect(index.toBytes().length).toBe(0);
  });

  it('reports its first and last entries', () => {
    const index = indexOf([
      [T, 0],
      [T + 500, 4],
      [T + 900, 9],
    ]);
    expect(index.firstEntry()).toEqual({ timestamp: T, relativeOffset: 0 });
    expect(index.lastEntry()).toEqual({ timestamp: T + 900, relativeOffset: 9 });
    expect(index.entryCount).toBe(3);
    expect(index.sizeBytes).toBe(3 * TIME_INDEX_ENTRY_BYTES);
  });

  it('has the same first and last entry when it holds one', () => {
    const index = indexOf([[T, 0]]);
    expect(index.firstEntry()).toEqual({ timestamp: T, relativeOffset: 0 });
    expect(index.lastEntry()).toEqual(index.firstEntry());
  });

  it('starts a scan at the last entry strictly below the timestamp', () => {
    const index = indexOf([
      [100, 0],
      [200, 5],
      [300, 9],
    ]);
    expect(index.scanStartFor(0)).toBe(0);
    expect(index.scanStartFor(100)).toBe(0); // no entry below 100: the segment start
    expect(index.scanStartFor(101)).toBe(0); // (100, 0)
    expect(index.scanStartFor(200)).toBe(0); // (200, 5) is not below 200
    expect(index.scanStartFor(201)).toBe(5);
    expect(index.scanStartFor(300)).toBe(5);
    expect(index.scanStartFor(301)).toBe(9);
    expect(index.scanStartFor(Number.MAX_SAFE_INTEGER)).toBe(9);
  });

  it('starts at the segment start, not its first entry, when no entry is below the timestamp', () => {
    const index = indexOf([
      [100, 3],
      [200, 7],
    ]);
    expect(index.scanStartFor(100)).toBe(0);
    expect(index.scanStartFor(101)).toBe(3);
  });

  it('adds an entry only when the timestamp grows', () => {
    const index = indexOf([[T, 0]]);
    expect(index.maybeAppend(T, 1)).toBe(false); // equal
    expect(index.maybeAppend(T - 1, 2)).toBe(false); // older
    expect(index.entryCount).toBe(1);
    expect(index.maybeAppend(T + 1, 3)).toBe(true); // one above
    expect(index.lastEntry()).toEqual({ timestamp: T + 1, relativeOffset: 3 });
  });

  it('allows a newer timestamp at the same offset and refuses one at a lower offset', () => {
    const index = indexOf([[T, 5]]);
    expect(index.maybeAppend(T + 1, 5)).toBe(true);
    expect(() => index.maybeAppend(T + 2, 4)).toThrow(RangeError);
    expect(index.entryCount).toBe(2);
  });

  it('grows past its initial capacity and keeps every entry findable', () => {
    const count = 1000; // the initial buffer holds 64 entries
    const index = TimeIndex.empty();
    for (let i = 0; i < count; i++) expect(index.maybeAppend(T + i * 10, i * 2)).toBe(true);
    expect(index.entryCount).toBe(count);
    expect(index.sizeBytes).toBe(count * TIME_INDEX_ENTRY_BYTES);
    expect(index.firstEntry()).toEqual({ timestamp: T, relativeOffset: 0 });
    expect(index.lastEntry()).toEqual({ timestamp: T + (count - 1) * 10, relativeOffset: (count - 1) * 2 });
    for (let i = 1; i < count; i++) {
      expect(index.scanStartFor(T + i * 10)).toBe((i - 1) * 2);
      expect(index.scanStartFor(T + i * 10 + 1)).toBe(i * 2);
    }
  });

  it('hands out a copy of its bytes that later appends do not change', () => {
    const index = indexOf([[T, 0]]);
    const before = index.toBytes();
    index.maybeAppend(T + 1, 1);
    expect(before).toEqual(bytesOf([[T, 0]]));
  });

  describe('tryFromBytes', () => {
    it('round-trips the bytes it writes', () => {
      const index = indexOf([
        [T, 0],
        [T + 10, 0],
        [T + 20, 6],
      ]);
      const loaded = TimeIndex.tryFromBytes(index.toBytes(), { relativeOffsetEnd: 7 });
      expect(loaded?.entryCount).toBe(3);
      expect(loaded?.firstEntry()).toEqual({ timestamp: T, relativeOffset: 0 });
      expect(loaded?.lastEntry()).toEqual({ timestamp: T + 20, relativeOffset: 6 });
      expect(loaded?.scanStartFor(T + 15)).toBe(0);
      expect(loaded?.scanStartFor(T + 21)).toBe(6);
    });

    it('accepts empty bytes as an empty index', () => {
      expect(TimeIndex.tryFromBytes(Buffer.alloc(0), { relativeOffsetEnd: 0 })?.entryCount).toBe(0);
    });

    it.each([1, 11, 13, 23, 25])('rejects a torn file of %i bytes (not whole 12-byte entries)', (length) => {
      const whole = bytesOf([
        [T, 0],
        [T + 1, 1],
        [T + 2, 2],
      ]);
      expect(TimeIndex.tryFromBytes(whole.subarray(0, length), roomy)).toBeUndefined();
    });

    it('rejects timestamps that repeat or go back', () => {
      expect(
        TimeIndex.tryFromBytes(
          bytesOf([
            [T, 0],
            [T, 1],
          ]),
          roomy,
        ),
      ).toBeUndefined();
      expect(
        TimeIndex.tryFromBytes(
          bytesOf([
            [T, 0],
            [T - 1, 1],
          ]),
          roomy,
        ),
      ).toBeUndefined();
    });

    it('accepts relative offsets that repeat and rejects ones that go back', () => {
      expect(
        TimeIndex.tryFromBytes(
          bytesOf([
            [T, 3],
            [T + 1, 3],
          ]),
          roomy,
        ),
      ).toBeDefined();
      expect(
        TimeIndex.tryFromBytes(
          bytesOf([
            [T, 3],
            [T + 1, 2],
          ]),
          roomy,
        ),
      ).toBeUndefined();
    });

    it('accepts a relative offset one below the segment end and rejects one at it', () => {
      const entries: [number, number][] = [
        [T, 0],
        [T + 1, 9],
      ];
      expect(TimeIndex.tryFromBytes(bytesOf(entries), { relativeOffsetEnd: 10 })).toBeDefined();
      expect(TimeIndex.tryFromBytes(bytesOf(entries), { relativeOffsetEnd: 9 })).toBeUndefined();
    });

    it('rejects any entry at all for an empty segment', () => {
      expect(TimeIndex.tryFromBytes(bytesOf([[T, 0]]), { relativeOffsetEnd: 0 })).toBeUndefined();
    });

    it('rejects a timestamp beyond the safe integer range', () => {
      const bytes = bytesOf([[T, 0]]);
      bytes.writeInt32BE(0x0020_0000, 0); // high word of 2^53: one past the safe range
      expect(TimeIndex.tryFromBytes(bytes, roomy)).toBeUndefined();
      bytes.writeInt32BE(0x001f_ffff, 0); // high word of 2^53 − 2^32 … still safe
      expect(TimeIndex.tryFromBytes(bytes, roomy)).toBeDefined();
    });

    it('takes entries after adopting an empty file (a cleanly closed empty segment)', () => {
      const loaded = TimeIndex.tryFromBytes(Buffer.alloc(0), { relativeOffsetEnd: 0 });
      expect(loaded).toBeDefined();
      expect(loaded?.maybeAppend(T, 0)).toBe(true);
      expect(loaded?.maybeAppend(T + 1, 4)).toBe(true);
      expect(loaded?.lastEntry()).toEqual({ timestamp: T + 1, relativeOffset: 4 });
    });

    it('grows an adopted one-entry index past its initial size', () => {
      const loaded = TimeIndex.tryFromBytes(bytesOf([[T, 0]]), roomy);
      for (let i = 1; i < 100; i++) expect(loaded?.maybeAppend(T + i, i)).toBe(true);
      expect(loaded?.entryCount).toBe(100);
      expect(loaded?.scanStartFor(T + 50)).toBe(49);
    });

    it('keeps its own copy of the bytes it adopted', () => {
      const bytes = bytesOf([
        [T, 0],
        [T + 5, 2],
      ]);
      const loaded = TimeIndex.tryFromBytes(bytes, roomy);
      bytes.fill(0);
      expect(loaded?.lastEntry()).toEqual({ timestamp: T + 5, relativeOffset: 2 });
    });
  });

  /**
   * The seek rule from the header: entries record the running maximum of batch maxTimestamps
   * at the batch where it was first reached, taken at arbitrary points plus once at the end.
   * A scan from `scanStartFor(t)` must never start after the first batch with maxTimestamp ≥ t.
   */
  it('never starts a scan after the first batch whose maxTimestamp reaches the timestamp', () => {
    const batchArbitrary = fc.record({ maxTimestamp: fc.integer({ min: 0, max: 1000 }), takeEntry: fc.boolean() });
    fc.assert(
      fc.property(fc.array(batchArbitrary, { minLength: 1, maxLength: 60 }), fc.array(fc.integer({ min: -1, max: 1002 }), { maxLength: 30 }), (batches, probes) => {
        const index = TimeIndex.empty();
        let runningMax = -1;
        let offsetOfMax = 0;
        batches.forEach((batch, offset) => {
          if (batch.maxTimestamp > runningMax) {
            runningMax = batch.maxTimestamp;
            offsetOfMax = offset;
          }
          if (batch.takeEntry || index.entryCount === 0) index.maybeAppend(runningMax, offsetOfMax);
        });
        index.maybeAppend(runningMax, offsetOfMax);
        expect(index.lastEntry()?.timestamp).toBe(Math.max(...batches.map((b) => b.maxTimestamp)));
        const reloaded = TimeIndex.tryFromBytes(index.toBytes(), { relativeOffsetEnd: batches.length });
        expect(reloaded).toBeDefined();
        for (const t of probes) {
          const firstAtOrAfter = batches.findIndex((b) => b.maxTimestamp >= t);
          const start = index.scanStartFor(t);
          expect(reloaded?.scanStartFor(t)).toBe(start);
          if (firstAtOrAfter >= 0) expect(start).toBeLessThanOrEqual(firstAtOrAfter);
          // Every batch before the start is older than t, so skipping them is safe.
          for (let i = 0; i < start; i++) expect((batches[i] as { maxTimestamp: number }).maxTimestamp).toBeLessThan(t);
        }
      }),
    );
  });
});
