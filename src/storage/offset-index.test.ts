import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex, type OffsetIndexEntry } from './offset-index.js';

function indexOf(entries: readonly [number, number][]): OffsetIndex {
  const index = OffsetIndex.empty();
  for (const [relativeOffset, position] of entries) index.append(relativeOffset, position);
  return index;
}

function bytesOf(entries: readonly [number, number][]): Buffer {
  const bytes = Buffer.alloc(entries.length * OFFSET_INDEX_ENTRY_BYTES);
  entries.forEach(([relativeOffset, position], i) => {
    bytes.writeUInt32BE(relativeOffset, i * OFFSET_INDEX_ENTRY_BYTES);
    bytes.writeUInt32BE(position, i * OFFSET_INDEX_ENTRY_BYTES + 4);
  });
  return bytes;
}

const roomyBounds = { logSizeBytes: 0xffff_ffff, relativeOffsetEnd: 0xffff_ffff };

describe('OffsetIndex', () => {
  it('has no entries and no floor when empty', () => {
    const index = OffsetIndex.empty();
    expect(index.entryCount).toBe(0);
    expect(index.sizeBytes).toBe(0);
    expect(index.floor(0)).toBeUndefined();
    expect(index.floor(1_000_000)).toBeUndefined();
    expect(index.lastEntry()).toBeUndefined();
    expect(index.toBytes().length).toBe(0);
  });

  it('finds the last entry at or below an offset', () => {
    const index = indexOf([
      [0, 0],
      [10, 100],
      [20, 250],
    ]);
    expect(index.floor(0)).toEqual({ relativeOffset: 0, position: 0 });
    expect(index.floor(9)).toEqual({ relativeOffset: 0, position: 0 });
    expect(index.floor(10)).toEqual({ relativeOffset: 10, position: 100 });
    expect(index.floor(11)).toEqual({ relativeOffset: 10, position: 100 });
    expect(index.floor(19)).toEqual({ relativeOffset: 10, position: 100 });
    expect(index.floor(20)).toEqual({ relativeOffset: 20, position: 250 });
    expect(index.floor(0xffff_ffff)).toEqual({ relativeOffset: 20, position: 250 });
  });

  it('has no floor for an offset one below its first entry', () => {
    const index = indexOf([[5, 40]]);
    expect(index.floor(4)).toBeUndefined();
    expect(index.floor(5)).toEqual({ relativeOffset: 5, position: 40 });
    expect(index.floor(-1)).toBeUndefined();
  });

  it('reports its first and last entries through floor and lastEntry', () => {
    const index = indexOf([
      [0, 0],
      [3, 70],
      [9, 300],
    ]);
    expect(index.floor(0)).toEqual({ relativeOffset: 0, position: 0 });
    expect(index.lastEntry()).toEqual({ relativeOffset: 9, position: 300 });
    expect(index.entryCount).toBe(3);
    expect(index.sizeBytes).toBe(3 * OFFSET_INDEX_ENTRY_BYTES);
  });

  it('grows past its initial capacity and keeps every entry findable', () => {
    const count = 1000; // the initial buffer holds 64 entries
    const index = OffsetIndex.empty();
    for (let i = 0; i < count; i++) index.append(i * 3, i * 100);
    expect(index.entryCount).toBe(count);
    expect(index.sizeBytes).toBe(count * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < count; i++) {
      expect(index.floor(i * 3)).toEqual({ relativeOffset: i * 3, position: i * 100 });
      expect(index.floor(i * 3 + 2)).toEqual({ relativeOffset: i * 3, position: i * 100 });
    }
    expect(index.lastEntry()).toEqual({ relativeOffset: (count - 1) * 3, position: (count - 1) * 100 });
  });

  it('holds u32 extremes without losing precision', () => {
    const index = indexOf([
      [0, 0],
      [0xffff_fffe, 0xffff_fffe],
      [0xffff_ffff, 0xffff_ffff],
    ]);
    expect(index.floor(0xffff_fffe)).toEqual({ relativeOffset: 0xffff_fffe, position: 0xffff_fffe });
    expect(index.lastEntry()).toEqual({ relativeOffset: 0xffff_ffff, position: 0xffff_ffff });
  });

  it('refuses an entry whose offset or position does not increase, and stays unchanged', () => {
    const index = indexOf([[10, 100]]);
    expect(() => index.append(10, 200)).toThrow(RangeError); // same offset
    expect(() => index.append(9, 200)).toThrow(RangeError); // lower offset
    expect(() => index.append(11, 100)).toThrow(RangeError); // same position
    expect(() => index.append(11, 99)).toThrow(RangeError); // lower position
    expect(index.entryCount).toBe(1);
    index.append(11, 101); // one above each
    expect(index.lastEntry()).toEqual({ relativeOffset: 11, position: 101 });
  });

  it('hands out a copy of its bytes that later appends do not change', () => {
    const index = indexOf([[0, 0]]);
    const before = index.toBytes();
    index.append(1, 10);
    expect(before).toEqual(bytesOf([[0, 0]]));
    expect(index.toBytes()).toEqual(
      bytesOf([
        [0, 0],
        [1, 10],
      ]),
    );
  });

  describe('tryFromBytes', () => {
    it('round-trips the bytes it writes', () => {
      const index = indexOf([
        [0, 0],
        [7, 512],
        [15, 1100],
      ]);
      const loaded = OffsetIndex.tryFromBytes(index.toBytes(), { logSizeBytes: 1200, relativeOffsetEnd: 20 });
      expect(loaded).toBeDefined();
      expect(loaded?.entryCount).toBe(3);
      expect(loaded?.floor(14)).toEqual({ relativeOffset: 7, position: 512 });
      expect(loaded?.toBytes()).toEqual(index.toBytes());
    });

    it('accepts empty bytes as an empty index', () => {
      const loaded = OffsetIndex.tryFromBytes(Buffer.alloc(0), { logSizeBytes: 0, relativeOffsetEnd: 0 });
      expect(loaded?.entryCount).toBe(0);
    });

    it.each([1, 7, 9, 15, 17])('rejects a torn file of %i bytes (not whole 8-byte entries)', (length) => {
      const whole = bytesOf([
        [0, 0],
        [1, 10],
        [2, 20],
      ]);
      expect(OffsetIndex.tryFromBytes(whole.subarray(0, length), roomyBounds)).toBeUndefined();
    });

    it('rejects relative offsets that repeat or go back', () => {
      expect(
        OffsetIndex.tryFromBytes(
          bytesOf([
            [0, 0],
            [5, 10],
            [5, 20],
          ]),
          roomyBounds,
        ),
      ).toBeUndefined();
      expect(
        OffsetIndex.tryFromBytes(
          bytesOf([
            [0, 0],
            [5, 10],
            [4, 20],
          ]),
          roomyBounds,
        ),
      ).toBeUndefined();
    });

    it('rejects positions that repeat or go back', () => {
      expect(
        OffsetIndex.tryFromBytes(
          bytesOf([
            [0, 0],
            [5, 10],
            [6, 10],
          ]),
          roomyBounds,
        ),
      ).toBeUndefined();
      expect(
        OffsetIndex.tryFromBytes(
          bytesOf([
            [0, 0],
            [5, 10],
            [6, 9],
          ]),
          roomyBounds,
        ),
      ).toBeUndefined();
    });

    it('accepts a position one below the log size and rejects one at it', () => {
      const entries: [number, number][] = [
        [0, 0],
        [3, 99],
      ];
      expect(OffsetIndex.tryFromBytes(bytesOf(entries), { logSizeBytes: 100, relativeOffsetEnd: 10 })).toBeDefined();
      expect(OffsetIndex.tryFromBytes(bytesOf(entries), { logSizeBytes: 99, relativeOffsetEnd: 10 })).toBeUndefined();
    });

    it('accepts a relative offset one below the segment end and rejects one at it', () => {
      const entries: [number, number][] = [
        [0, 0],
        [9, 50],
      ];
      expect(OffsetIndex.tryFromBytes(bytesOf(entries), { logSizeBytes: 100, relativeOffsetEnd: 10 })).toBeDefined();
      expect(OffsetIndex.tryFromBytes(bytesOf(entries), { logSizeBytes: 100, relativeOffsetEnd: 9 })).toBeUndefined();
    });

    it('rejects any entry at all for an empty log', () => {
      expect(OffsetIndex.tryFromBytes(bytesOf([[0, 0]]), { logSizeBytes: 0, relativeOffsetEnd: 0 })).toBeUndefined();
    });

    it('keeps its own copy of the bytes it adopted', () => {
      const bytes = bytesOf([
        [0, 0],
        [4, 40],
      ]);
      const loaded = OffsetIndex.tryFromBytes(bytes, roomyBounds);
      bytes.fill(0xff);
      expect(loaded?.floor(4)).toEqual({ relativeOffset: 4, position: 40 });
    });

    it('takes appends after adopting an empty file (a cleanly closed empty segment)', () => {
      const loaded = OffsetIndex.tryFromBytes(Buffer.alloc(0), { logSizeBytes: 0, relativeOffsetEnd: 0 });
      expect(loaded).toBeDefined();
      loaded?.append(0, 0);
      loaded?.append(5, 300);
      expect(loaded?.entryCount).toBe(2);
      expect(loaded?.floor(7)).toEqual({ relativeOffset: 5, position: 300 });
    });

    it('can grow an adopted index with further appends', () => {
      const loaded = OffsetIndex.tryFromBytes(bytesOf([[0, 0]]), roomyBounds);
      expect(loaded).toBeDefined();
      for (let i = 1; i < 200; i++) loaded?.append(i, i * 8);
      expect(loaded?.entryCount).toBe(200);
      expect(loaded?.floor(150)).toEqual({ relativeOffset: 150, position: 1200 });
    });
  });

  it('answers floor lookups as a linear search of its entries would', () => {
    const entriesArbitrary = fc
      .uniqueArray(fc.integer({ min: 0, max: 100_000 }), { minLength: 0, maxLength: 200 })
      .map((offsets) => offsets.sort((a, b) => a - b).map((offset, i): [number, number] => [offset, offset * 2 + i]));
    fc.assert(
      fc.property(entriesArbitrary, fc.array(fc.integer({ min: 0, max: 100_010 }), { maxLength: 50 }), (entries, probes) => {
        const index = indexOf(entries);
        const reloaded = OffsetIndex.tryFromBytes(index.toBytes(), roomyBounds);
        for (const probe of [...probes, ...entries.map(([offset]) => offset)]) {
          let expected: OffsetIndexEntry | undefined;
          for (const [relativeOffset, position] of entries) if (relativeOffset <= probe) expected = { relativeOffset, position };
          expect(index.floor(probe)).toEqual(expected);
          expect(reloaded?.floor(probe)).toEqual(expected);
        }
      }),
    );
  });
});
