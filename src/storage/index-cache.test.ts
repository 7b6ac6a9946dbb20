import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IndexCache, type SegmentIndexes } from './index-cache.js';
import { OFFSET_INDEX_ENTRY_BYTES, OffsetIndex } from './offset-index.js';
import { TIME_INDEX_ENTRY_BYTES, TimeIndex } from './time-index.js';

/** Fixed cost the cache charges per entry on top of the index bytes. */
const ENTRY_OVERHEAD_BYTES = 64;

/** Indexes with `offsetEntries` offset entries and `timeEntries` time entries. */
function indexes(offsetEntries: number, timeEntries = 0): SegmentIndexes {
  const offsetIndex = OffsetIndex.empty();
  for (let i = 0; i < offsetEntries; i++) offsetIndex.append(i, i * 100);
  const timeIndex = TimeIndex.empty();
  for (let i = 0; i < timeEntries; i++) timeIndex.maybeAppend(1000 + i, i);
  return { offsetIndex, timeIndex };
}

function costOf(offsetEntries: number, timeEntries = 0): number {
  return offsetEntries * OFFSET_INDEX_ENTRY_BYTES + timeEntries * TIME_INDEX_ENTRY_BYTES + ENTRY_OVERHEAD_BYTES;
}

describe('IndexCache', () => {
  it('counts the bytes of both indexes of every entry it holds', () => {
    const cache = new IndexCache(10_000);
    cache.set('a', indexes(2, 3));
    expect(cache.sizeBytes).toBe(costOf(2, 3));
    cache.set('b', indexes(1));
    expect(cache.sizeBytes).toBe(costOf(2, 3) + costOf(1));
    cache.delete('a');
    expect(cache.sizeBytes).toBe(costOf(1));
    cache.delete('a'); // deleting an absent key changes nothing
    cache.delete('never-set');
    expect(cache.sizeBytes).toBe(costOf(1));
  });

  it('replaces an entry set twice under the same key without counting it twice', () => {
    const cache = new IndexCache(10_000);
    const first = indexes(1);
    const second = indexes(5);
    cache.set('a', first);
    cache.set('a', second);
    expect(cache.get('a')).toBe(second);
    expect(cache.sizeBytes).toBe(costOf(5));
  });

  it('keeps every entry while the total is exactly at the bound', () => {
    const cache = new IndexCache(3 * costOf(1));
    for (const key of ['a', 'b', 'c']) cache.set(key, indexes(1));
    expect(cache.sizeBytes).toBe(3 * costOf(1));
    for (const key of ['a', 'b', 'c']) expect(cache.get(key)).toBeDefined();
  });

  it('drops the oldest entry when the total goes one byte over the bound', () => {
    const cache = new IndexCache(3 * costOf(1) - 1);
    for (const key of ['a', 'b', 'c']) cache.set(key, indexes(1));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
    expect(cache.sizeBytes).toBe(2 * costOf(1));
  });

  it('drops the least recently used entry, where a get counts as a use', () => {
    const cache = new IndexCache(3 * costOf(1));
    for (const key of ['a', 'b', 'c']) cache.set(key, indexes(1));
    expect(cache.get('a')).toBeDefined(); // order now b, c, a
    cache.set('d', indexes(1));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeDefined(); // order now a, d, c
    cache.set('e', indexes(1));
    expect(cache.get('a')).toBeUndefined();
    for (const key of ['c', 'd', 'e']) expect(cache.get(key)).toBeDefined();
  });

  it('counts setting an existing key again as a use', () => {
    const cache = new IndexCache(2 * costOf(1));
    cache.set('a', indexes(1));
    cache.set('b', indexes(1));
    cache.set('a', indexes(1)); // order now b, a
    cache.set('c', indexes(1));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
  });

  it('drops as many old entries as it takes to fit a large new one', () => {
    const cache = new IndexCache(costOf(10));
    for (const key of ['a', 'b', 'c']) cache.set(key, indexes(1));
    cache.set('big', indexes(9));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')).toBeUndefined();
    expect(cache.get('big')).toBeDefined();
    expect(cache.sizeBytes).toBe(costOf(9));
  });

  it('keeps the entry just added even when it alone is over the bound', () => {
    const cache = new IndexCache(costOf(1));
    cache.set('small', indexes(1));
    const huge = indexes(100, 100);
    cache.set('huge', huge);
    expect(cache.get('huge')).toBe(huge);
    expect(cache.get('small')).toBeUndefined();
    expect(cache.sizeBytes).toBe(costOf(100, 100));
    // The next entry pushes the oversized one out again.
    cache.set('next', indexes(1));
    expect(cache.get('huge')).toBeUndefined();
    expect(cache.sizeBytes).toBe(costOf(1));
  });

  it('keeps an oversized entry under a zero-byte bound until the next one arrives', () => {
    const cache = new IndexCache(0);
    cache.set('a', indexes(0));
    expect(cache.get('a')).toBeDefined();
    cache.set('b', indexes(0));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBeDefined();
    expect(cache.sizeBytes).toBe(ENTRY_OVERHEAD_BYTES);
  });

  /** Model: an array in LRU order (oldest first) with the same eviction rule. */
  it('behaves like an LRU list bounded by bytes over random operations', () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), key: fc.integer({ min: 0, max: 7 }), entries: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('get' as const), key: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 7 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.array(operation, { maxLength: 60 }), (bytesMax, operations) => {
        const cache = new IndexCache(bytesMax);
        let model: { key: string; cost: number; value: SegmentIndexes }[] = [];
        for (const op of operations) {
          const key = `k${op.key}`;
          const at = model.findIndex((entry) => entry.key === key);
          if (op.kind === 'set') {
            const value = indexes(op.entries);
            cache.set(key, value);
            if (at >= 0) model.splice(at, 1);
            model.push({ key, cost: costOf(op.entries), value });
            while (model.length > 1 && model.reduce((sum, entry) => sum + entry.cost, 0) > bytesMax) model.shift();
          } else if (op.kind === 'get') {
            const got = cache.get(key);
            expect(got).toBe(at >= 0 ? model[at]?.value : undefined);
            if (at >= 0) model = [...model.slice(0, at), ...model.slice(at + 1), model[at] as (typeof model)[number]];
          } else {
            cache.delete(key);
            if (at >= 0) model.splice(at, 1);
          }
          const total = model.reduce((sum, entry) => sum + entry.cost, 0);
          expect(cache.sizeBytes).toBe(total);
          expect(total <= bytesMax || model.length === 1).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
