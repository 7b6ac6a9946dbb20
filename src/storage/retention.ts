/**
 * Which old segments retention deletes: a pure decision, so it is tested without files.
 * Whole segments only, oldest first, never the active (last) one — Kafka's rules:
 * - by time: a segment whose largest timestamp is older than `retentionMs`. A segment with no
 *   timestamp (−1) is never expired by time.
 * - by size: while the partition would still be at least `retentionBytes` without its oldest
 *   segment, that segment goes.
 * Deleting stops at the first segment that qualifies under neither rule, so the log stays a
 * contiguous range of offsets.
 */

export interface RetentionCandidate {
  sizeBytes: number;
  maxTimestamp: number;
}

export interface RetentionPolicy {
  /** −1 = keep forever by time. */
  retentionMs: number;
  /** −1 = no size limit. */
  retentionBytes: number;
  nowMs: number;
}

/** How many leading segments to delete; `segments` ends with the active segment. */
export function countSegmentsToDelete(segments: readonly RetentionCandidate[], policy: RetentionPolicy): number {
  const sealedCount = segments.length - 1;
  let totalBytes = 0;
  for (const segment of segments) totalBytes += segment.sizeBytes;
  let count = 0;
  while (count < sealedCount) {
    const segment = segments[count];
    if (segment === undefined) break;
    const isExpired = policy.retentionMs >= 0 && segment.maxTimestamp >= 0 && policy.nowMs - segment.maxTimestamp > policy.retentionMs;
    const isOverSize = policy.retentionBytes >= 0 && totalBytes - segment.sizeBytes >= policy.retentionBytes;
    if (!isExpired && !isOverSize) break;
    totalBytes -= segment.sizeBytes;
    count++;
  }
  return count;
}
