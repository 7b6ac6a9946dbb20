/**
 * Which old segments retention deletes: a pure decision, so it is tested without files.
 * Whole segments only, oldest first — Kafka's rules:
 * - by time: a segment whose largest timestamp is older than `retentionMs`. A segment with no
 *   timestamp (−1) is never expired by time.
 * - by size: while the partition would still be at least `retentionBytes` without its oldest
 *   segment, that segment goes.
 * Deleting stops at the first segment that qualifies under neither rule, so the log stays a
 * contiguous range of offsets.
 *
 * The active (last) segment is judged by the same rules once every sealed one goes, when it
 * holds data: then the answer is every segment, and the log rolls first, so an empty active
 * segment at the log end takes its place and only sealed segments are deleted. As in Kafka,
 * a topic that went quiet does not keep its last records past retention.ms.
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

/**
 * How many leading segments to delete; `segments` ends with the active segment. The answer is
 * `segments.length` when the active one goes too: roll first, then delete every sealed one.
 */
export function countSegmentsToDelete(segments: readonly RetentionCandidate[], policy: RetentionPolicy): number {
  let totalBytes = 0;
  for (const segment of segments) totalBytes += segment.sizeBytes;
  let count = 0;
  while (count < segments.length) {
    const segment = segments[count];
    if (segment === undefined) break;
    // An empty active segment is the log end itself: nothing to delete.
    if (count === segments.length - 1 && segment.sizeBytes === 0) break;
    const isExpired = policy.retentionMs >= 0 && segment.maxTimestamp >= 0 && policy.nowMs - segment.maxTimestamp > policy.retentionMs;
    const isOverSize = policy.retentionBytes >= 0 && totalBytes - segment.sizeBytes >= policy.retentionBytes;
    if (!isExpired && !isOverSize) break;
    totalBytes -= segment.sizeBytes;
    count++;
  }
  return count;
}
