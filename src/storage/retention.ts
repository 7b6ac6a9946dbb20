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
  const sizesBytes = segments.map((segment) => segment.sizeBytes);
  let count = countSegmentsToDeleteBySize(sizesBytes, policy);
  while (count < segments.length && mayExpire(sizesBytes, count, policy) && isExpired((segments[count] as RetentionCandidate).maxTimestamp, policy)) count++;
  return count;
}

/**
 * The same decision as `countSegmentsToDelete`, reading each segment's largest timestamp only
 * when the decision needs it: from the first segment the size rule keeps, oldest first, up to
 * the first one that has not expired. So it reads at most (the answer + 1) timestamps, and
 * none when retention.ms is −1. For a log, a timestamp may cost an index load
 * (partition-log.ts `deleteExpiredSegments`), and reading every segment's pushed the indexes
 * readers need out of the shared cache at each run. retention.test.ts checks the two agree,
 * and which timestamps this one reads, over random logs.
 */
export async function countSegmentsToDeleteLazily(
  segments: { sizesBytes: readonly number[]; maxTimestampAt: (index: number) => Promise<number> },
  policy: RetentionPolicy,
): Promise<number> {
  const { sizesBytes, maxTimestampAt } = segments;
  let count = countSegmentsToDeleteBySize(sizesBytes, policy);
  while (count < sizesBytes.length && mayExpire(sizesBytes, count, policy) && isExpired(await maxTimestampAt(count), policy)) count++;
  return count;
}

/**
 * How many leading segments go by size alone, with no timestamp. Whether segment i is over
 * the size limit depends only on the bytes after it (deleting earlier segments, by either
 * rule, leaves exactly those), and that only shrinks as i grows: the size rule lets a prefix
 * go and no segment after it. The rest of the walk is by time: from here, segments go while
 * they have expired, and the first that has not stops it (`countSegmentsToDelete`).
 */
function countSegmentsToDeleteBySize(sizesBytes: readonly number[], policy: RetentionPolicy): number {
  if (policy.retentionBytes < 0) return 0;
  let laterBytes = 0;
  for (const sizeBytes of sizesBytes) laterBytes += sizeBytes;
  let count = 0;
  while (count < sizesBytes.length && !isEmptyActive(sizesBytes, count)) {
    laterBytes -= sizesBytes[count] as number;
    if (laterBytes < policy.retentionBytes) break;
    count++;
  }
  return count;
}

/** Whether segment `index` can go by time at all, before its timestamp is read. */
function mayExpire(sizesBytes: readonly number[], index: number, policy: RetentionPolicy): boolean {
  return policy.retentionMs >= 0 && !isEmptyActive(sizesBytes, index);
}

/** An empty active segment is the log end itself: never deleted. */
function isEmptyActive(sizesBytes: readonly number[], index: number): boolean {
  return index === sizesBytes.length - 1 && sizesBytes[index] === 0;
}

/** A segment with no timestamp (−1) never expires. */
function isExpired(maxTimestamp: number, policy: RetentionPolicy): boolean {
  return policy.retentionMs >= 0 && maxTimestamp >= 0 && policy.nowMs - maxTimestamp > policy.retentionMs;
}

/**
 * What a retention run needs to know of a log it has not opened, to tell whether it would
 * delete anything. `countSegmentsToDelete` deletes something exactly when the oldest segment
 * qualifies (it stops at the first one that does not), so the oldest segment, the bytes
 * after it and whether it is the only one decide: four numbers, whatever the segment count.
 *
 * Facts, never a verdict: the policy (retention.ms and retention.bytes may be altered while
 * the log is closed) and the time are applied when the summary is used (`isRetentionDue`).
 * Segment settings (segment.bytes, segment.ms) play no part: they decide rolls at append,
 * and an append opens the log.
 */
export interface RetentionSummary {
  /** The oldest segment's largest timestamp, −1 when it holds no timestamped batch. */
  oldestMaxTimestamp: number;
  oldestSizeBytes: number;
  /** Bytes in every segment after the oldest (0 when it is the only one). */
  laterSizeBytes: number;
  segmentCount: number;
}

/**
 * The summary of a log whose segments, oldest first and ending with the active one, are
 * `segments`. Reads only the oldest segment's `maxTimestamp`: the others' may be left −1.
 */
export function summarizeForRetention(segments: readonly RetentionCandidate[]): RetentionSummary {
  const oldest = segments[0];
  let laterSizeBytes = 0;
  for (const segment of segments.slice(1)) laterSizeBytes += segment.sizeBytes;
  return {
    oldestMaxTimestamp: oldest?.maxTimestamp ?? -1,
    oldestSizeBytes: oldest?.sizeBytes ?? 0,
    laterSizeBytes,
    segmentCount: segments.length,
  };
}

/**
 * Whether a retention run over the summarised log would delete anything: exactly
 * `countSegmentsToDelete(segments, policy) > 0` (retention.test.ts checks the two agree over
 * random logs). Two comparisons: the oldest segment expires once `nowMs` passes its largest
 * timestamp plus `retentionMs`, and it is over the size limit while the later segments alone
 * hold `retentionBytes`.
 */
export function isRetentionDue(summary: RetentionSummary, policy: RetentionPolicy): boolean {
  if (summary.segmentCount === 0) return false;
  // An empty active segment as the only one is the log end itself.
  if (summary.segmentCount === 1 && summary.oldestSizeBytes === 0) return false;
  const isExpired = policy.retentionMs >= 0 && summary.oldestMaxTimestamp >= 0 && policy.nowMs - summary.oldestMaxTimestamp > policy.retentionMs;
  const isOverSize = policy.retentionBytes >= 0 && summary.laterSizeBytes >= policy.retentionBytes;
  return isExpired || isOverSize;
}
