import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { countSegmentsToDelete, countSegmentsToDeleteLazily, isRetentionDue, summarizeForRetention, type RetentionCandidate, type RetentionPolicy } from './retention.js';

const NOW = 1_700_000_000_000;
const HOUR = 3_600_000;

/** A segment whose newest record is `ageMs` old (or has no timestamp at all when `ageMs` is null). */
function segment(sizeBytes: number, ageMs: number | null): RetentionCandidate {
  return { sizeBytes, maxTimestamp: ageMs === null ? -1 : NOW - ageMs };
}

/**
 * Random segments (empty ones, ones with no timestamp, future ones) and policies (off, 0, any;
 * checked at any time from just before NOW to well after): what the lazy walk and the closed-log
 * summary must agree with `countSegmentsToDelete` on.
 */
function randomLogsAndPolicies() {
  return {
    candidate: fc.record({
      sizeBytes: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })),
      maxTimestamp: fc.oneof(fc.constant(-1), fc.integer({ min: -1000, max: 1_000_000 }).map((ageMs) => NOW - ageMs)),
    }),
    policyArbitrary: fc.record({
      retentionMs: fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 0, max: 1_000_000 })),
      retentionBytes: fc.oneof(fc.constant(-1), fc.constant(0), fc.integer({ min: 0, max: 50_000 })),
      nowMs: fc.integer({ min: NOW - 1000, max: NOW + 2_000_000 }),
    }),
  };
}

function policy(retention: { ms?: number; bytes?: number }): RetentionPolicy {
  return { retentionMs: retention.ms ?? -1, retentionBytes: retention.bytes ?? -1, nowMs: NOW };
}

describe('countSegmentsToDelete', () => {
  describe('by time', () => {
    it('deletes leading segments whose newest record is older than retention.ms', () => {
      const segments = [segment(100, 5 * HOUR), segment(100, 3 * HOUR), segment(100, HOUR / 2), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(2);
    });

    it('keeps a segment exactly retention.ms old and deletes one a millisecond older', () => {
      expect(countSegmentsToDelete([segment(100, HOUR), segment(100, 0)], policy({ ms: HOUR }))).toBe(0);
      expect(countSegmentsToDelete([segment(100, HOUR + 1), segment(100, 0)], policy({ ms: HOUR }))).toBe(1);
    });

    it('never expires a segment without timestamps (−1), and stops there', () => {
      const segments = [segment(100, null), segment(100, 5 * HOUR), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(0);
      expect(countSegmentsToDelete([segment(100, null), segment(100, 0)], policy({ ms: 0 }))).toBe(0);
    });

    it('expires every segment older than now when retention.ms is 0', () => {
      const segments = [segment(100, 2), segment(100, 1), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: 0 }))).toBe(2);
      // A record stamped exactly now is not older than 0 ms.
      expect(countSegmentsToDelete([segment(100, 0), segment(100, 0)], policy({ ms: 0 }))).toBe(0);
    });

    it('keeps everything by time when retention.ms is −1', () => {
      const segments = [segment(100, 1000 * HOUR), segment(100, 1000 * HOUR), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: -1 }))).toBe(0);
    });

    it('treats a segment with timestamps from the future as fresh', () => {
      expect(countSegmentsToDelete([segment(100, -HOUR), segment(100, 0)], policy({ ms: 0 }))).toBe(0);
    });
  });

  describe('by size', () => {
    it('deletes oldest segments while the rest would still hold at least retention.bytes', () => {
      const segments = [segment(100, 0), segment(100, 0), segment(100, 0), segment(100, 0)];
      // 400 → 300 (≥ 200) → 200 (≥ 200) → 100 would be below: stop.
      expect(countSegmentsToDelete(segments, policy({ bytes: 200 }))).toBe(2);
    });

    it('deletes one segment fewer when retention.bytes is one byte higher', () => {
      const segments = [segment(100, 0), segment(100, 0), segment(100, 0), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ bytes: 201 }))).toBe(1);
      expect(countSegmentsToDelete(segments, policy({ bytes: 301 }))).toBe(0);
      expect(countSegmentsToDelete(segments, policy({ bytes: 300 }))).toBe(1);
    });

    it('keeps a large old segment whose removal would take the partition below retention.bytes', () => {
      const segments = [segment(1000, 0), segment(10, 0), segment(10, 0)];
      expect(countSegmentsToDelete(segments, policy({ bytes: 500 }))).toBe(0);
    });

    it('deletes every segment when retention.bytes is 0 (the active one after a roll)', () => {
      const segments = [segment(100, 0), segment(5, 0), segment(0, 0), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ bytes: 0 }))).toBe(4);
    });

    it('deletes segments without timestamps when size alone requires it', () => {
      const segments = [segment(100, null), segment(100, null), segment(100, null)];
      expect(countSegmentsToDelete(segments, policy({ bytes: 100, ms: HOUR }))).toBe(2);
    });

    it('keeps everything by size when retention.bytes is −1', () => {
      const segments = [segment(1e9, 0), segment(1e9, 0), segment(1e9, 0)];
      expect(countSegmentsToDelete(segments, policy({ bytes: -1 }))).toBe(0);
    });
  });

  describe('by time and size together', () => {
    it('deletes a segment that qualifies under either rule', () => {
      // The first is fresh but over the size limit; the second is needed for size but expired.
      const segments = [segment(100, 0), segment(300, 2 * HOUR), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR, bytes: 300 }))).toBe(2);
      expect(countSegmentsToDelete(segments, policy({ ms: 2 * HOUR, bytes: 300 }))).toBe(1);
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR, bytes: 401 }))).toBe(0);
    });

    it('stops at the first segment that qualifies under neither rule, even when later ones do', () => {
      const segments = [segment(100, 2 * HOUR), segment(100, 0), segment(100, 3 * HOUR), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR, bytes: 1000 }))).toBe(1);
    });

    it('stops at a fresh segment without timestamps that size does not require deleting', () => {
      const segments = [segment(100, 2 * HOUR), segment(100, null), segment(100, 2 * HOUR), segment(100, 0)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR, bytes: 1000 }))).toBe(1);
    });
  });

  describe('the active segment', () => {
    it('goes too (after a roll) when every sealed one goes and it is itself expired', () => {
      const segments = [segment(100, 5 * HOUR), segment(100, 5 * HOUR), segment(10_000, 5 * HOUR)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(3);
      // The same log a millisecond before its newest record expires: only the sealed ones.
      expect(countSegmentsToDelete([segment(100, 5 * HOUR), segment(100, HOUR)], policy({ ms: HOUR }))).toBe(1);
    });

    it('goes by size only when retention.bytes is 0, as in Kafka', () => {
      const segments = [segment(100, 0), segment(100, 0), segment(10_000, 0)];
      expect(countSegmentsToDelete(segments, policy({ bytes: 0 }))).toBe(3);
      expect(countSegmentsToDelete(segments, policy({ bytes: 1 }))).toBe(2);
    });

    it('goes when it is the only segment and has expired', () => {
      expect(countSegmentsToDelete([segment(10_000, 5 * HOUR)], policy({ ms: HOUR }))).toBe(1);
      expect(countSegmentsToDelete([segment(10_000, 0)], policy({ ms: HOUR }))).toBe(0);
    });

    it('stays while a sealed segment before it stays', () => {
      const segments = [segment(100, 0), segment(100, 5 * HOUR), segment(100, 5 * HOUR)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(0);
    });

    it('is kept when empty (no timestamp, no bytes) and every sealed segment goes', () => {
      const segments = [segment(100, 5 * HOUR), segment(100, 5 * HOUR), segment(0, null)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(2);
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR, bytes: 0 }))).toBe(2);
    });

    it('is kept when it holds only records without timestamps and time alone would expire it', () => {
      const segments = [segment(100, 5 * HOUR), segment(100, null)];
      expect(countSegmentsToDelete(segments, policy({ ms: HOUR }))).toBe(1);
    });

    it('leaves nothing to delete in an empty list', () => {
      expect(countSegmentsToDelete([], policy({ ms: 0, bytes: 0 }))).toBe(0);
    });
  });

  /**
   * Invariants derived from the documented rule, checked over random segment lists:
   * - the last (active) segment is in the count only when it holds data (the log then rolls
   *   first) and every segment before it is too;
   * - every deleted segment qualified when its turn came: expired by time, or the rest (after
   *   the earlier deletions) still held ≥ retention.bytes without it;
   * - deletion stops at the first segment that qualifies under neither;
   * - with time retention off, the partition never drops below min(its size, retention.bytes):
   *   only time retention may take it further down.
   */
  it('keeps the documented rule over random segment lists', () => {
    const candidate = fc.record({
      sizeBytes: fc.integer({ min: 0, max: 5000 }),
      maxTimestamp: fc.oneof(
        fc.constant(-1),
        fc.integer({ min: -1000, max: 1_000_000 }).map((ageMs) => NOW - ageMs),
      ),
    });
    const policyArbitrary = fc.record({
      retentionMs: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 1_000_000 })),
      retentionBytes: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 50_000 })),
      nowMs: fc.constant(NOW),
    });
    fc.assert(
      fc.property(fc.array(candidate, { maxLength: 20 }), policyArbitrary, (segments, rule) => {
        const count = countSegmentsToDelete(segments, rule);
        expect(count).toBeGreaterThanOrEqual(0);
        const active = segments.at(-1);
        expect(count).toBeLessThanOrEqual(active !== undefined && active.sizeBytes > 0 ? segments.length : Math.max(0, segments.length - 1));

        const isExpired = (s: RetentionCandidate): boolean => rule.retentionMs >= 0 && s.maxTimestamp >= 0 && rule.nowMs - s.maxTimestamp > rule.retentionMs;
        const totalOf = (list: readonly RetentionCandidate[]): number => list.reduce((sum, s) => sum + s.sizeBytes, 0);
        const isOverSize = (at: number): boolean => rule.retentionBytes >= 0 && totalOf(segments.slice(at + 1)) >= rule.retentionBytes;

        for (let i = 0; i < count; i++) expect(isExpired(segments[i] as RetentionCandidate) || isOverSize(i)).toBe(true);
        const stopsAt = active !== undefined && active.sizeBytes > 0 ? segments.length : segments.length - 1;
        if (count < stopsAt) {
          const stopper = segments[count] as RetentionCandidate;
          expect(isExpired(stopper) || isOverSize(count)).toBe(false);
        }
        const total = totalOf(segments);
        const remaining = totalOf(segments.slice(count));
        if (rule.retentionMs < 0 && rule.retentionBytes >= 0) expect(remaining).toBeGreaterThanOrEqual(Math.min(total, rule.retentionBytes));
        if (rule.retentionMs < 0 && rule.retentionBytes < 0) expect(count).toBe(0);
      }),
      { numRuns: 500 },
    );
  });
});

describe('countSegmentsToDeleteLazily', () => {
  /** Runs the lazy form over `segments`, recording which timestamps it asked for. */
  async function countLazily(segments: readonly RetentionCandidate[], rule: RetentionPolicy): Promise<{ count: number; readIndexes: number[] }> {
    const readIndexes: number[] = [];
    const count = await countSegmentsToDeleteLazily(
      {
        sizesBytes: segments.map((s) => s.sizeBytes),
        maxTimestampAt: async (index) => {
          readIndexes.push(index);
          return (segments[index] as RetentionCandidate).maxTimestamp;
        },
      },
      rule,
    );
    return { count, readIndexes };
  }

  it('reads the timestamps of the expired leading segments and of the one that stops the run, no further', async () => {
    const segments = [segment(100, 5 * HOUR), segment(100, 3 * HOUR), segment(100, 2 * HOUR), segment(100, 0), ...Array.from({ length: 196 }, () => segment(100, 0))];
    expect(await countLazily(segments, policy({ ms: HOUR }))).toEqual({ count: 3, readIndexes: [0, 1, 2, 3] });
  });

  it('reads no timestamp when retention.ms is −1', async () => {
    const segments = [segment(100, 5 * HOUR), segment(100, 5 * HOUR), segment(100, 5 * HOUR), segment(100, 0)];
    expect(await countLazily(segments, policy({ bytes: 200 }))).toEqual({ count: 2, readIndexes: [] });
  });

  it('reads no timestamp of a segment the size rule deletes', async () => {
    const segments = [segment(100, 0), segment(100, 0), segment(100, 2 * HOUR), segment(100, 0), segment(100, 0)];
    // Size takes the first two (300 remain ≥ 300); time takes the third; the fourth stops it.
    expect(await countLazily(segments, policy({ ms: HOUR, bytes: 300 }))).toEqual({ count: 3, readIndexes: [2, 3] });
  });

  it('reads no timestamp of an empty active segment, the log end', async () => {
    expect(await countLazily([segment(100, 5 * HOUR), segment(0, null)], policy({ ms: HOUR, bytes: 0 }))).toEqual({ count: 1, readIndexes: [] });
  });

  /**
   * The lazy form is what a log runs; it must decide exactly as `countSegmentsToDelete` over
   * every segment's facts, and read timestamps only from the first segment the size rule
   * keeps up to the one that stops the run: at most (count + 1), oldest first, none twice.
   */
  it('agrees with countSegmentsToDelete over random segment lists, policies and times, reading at most count + 1 timestamps', async () => {
    const { candidate, policyArbitrary } = randomLogsAndPolicies();
    await fc.assert(
      fc.asyncProperty(fc.array(candidate, { maxLength: 20 }), policyArbitrary, async (segments, rule) => {
        const { count, readIndexes } = await countLazily(segments, rule);
        expect(count).toBe(countSegmentsToDelete(segments, rule));
        expect(readIndexes.length).toBeLessThanOrEqual(count + 1);
        for (const [i, index] of readIndexes.entries()) {
          expect(index).toBeLessThanOrEqual(count);
          if (i > 0) expect(index).toBe((readIndexes[i - 1] as number) + 1);
        }
        if (rule.retentionMs < 0) expect(readIndexes).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isRetentionDue', () => {
  it('tells from the oldest segment alone that a later expired segment is not due', () => {
    // The stop rule: a fresh oldest segment keeps every later one, however old.
    const segments = [segment(100, 0), segment(100, 5 * HOUR), segment(100, 5 * HOUR)];
    expect(isRetentionDue(summarizeForRetention(segments), policy({ ms: HOUR }))).toBe(false);
  });

  it('becomes due a millisecond after the oldest segment is retention.ms old, as time passes', () => {
    const summary = summarizeForRetention([segment(100, 0), segment(100, 0)]);
    expect(isRetentionDue(summary, { retentionMs: HOUR, retentionBytes: -1, nowMs: NOW + HOUR })).toBe(false);
    expect(isRetentionDue(summary, { retentionMs: HOUR, retentionBytes: -1, nowMs: NOW + HOUR + 1 })).toBe(true);
  });

  it('is due by size while the later segments alone hold retention.bytes', () => {
    const summary = summarizeForRetention([segment(300, 0), segment(100, 0), segment(100, 0)]);
    expect(isRetentionDue(summary, policy({ bytes: 200 }))).toBe(true);
    expect(isRetentionDue(summary, policy({ bytes: 201 }))).toBe(false);
  });

  it('is due for a quiet active segment that expired, never for an empty one', () => {
    expect(isRetentionDue(summarizeForRetention([segment(100, HOUR + 1)]), policy({ ms: HOUR }))).toBe(true);
    expect(isRetentionDue(summarizeForRetention([segment(0, null)]), policy({ ms: 0, bytes: 0 }))).toBe(false);
    expect(isRetentionDue(summarizeForRetention([]), policy({ ms: 0, bytes: 0 }))).toBe(false);
  });

  /**
   * The summary of a closed log lets a retention run skip it without opening it; a skip must
   * never hide a segment a run would delete, for any policy the topic may be altered to and any
   * time the check runs at. So the two must agree exactly, over random logs and policies.
   */
  it('agrees with countSegmentsToDelete > 0 over random segment lists, policies and times', () => {
    const { candidate, policyArbitrary } = randomLogsAndPolicies();
    fc.assert(
      fc.property(fc.array(candidate, { maxLength: 20 }), policyArbitrary, (segments, rule) => {
        expect(isRetentionDue(summarizeForRetention(segments), rule)).toBe(countSegmentsToDelete(segments, rule) > 0);
      }),
      { numRuns: 2000 },
    );
  });
});
