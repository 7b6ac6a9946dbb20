/**
 * Names of the files in a partition directory:
 *
 *   <data-dir>/<topic>-<partition>/
 *     00000000000000000000.log         record batches, appended, never rewritten
 *     00000000000000000000.index       sparse offset index (offset-index.ts)
 *     00000000000000000000.timeindex   sparse time index (time-index.ts)
 *     partition.state                  recovery checkpoint, clean-shutdown and offline marks
 *     producer.snapshot                idempotent producers' state as of an offset (producer-snapshot.ts)
 *
 * The 20-digit zero-padded base offset makes names sort in offset order.
 */
import { join } from 'node:path';

export type SegmentFileKind = 'log' | 'index' | 'timeindex';

export const STATE_FILE_NAME = 'partition.state';
export const PRODUCER_SNAPSHOT_FILE_NAME = 'producer.snapshot';
export const TMP_SUFFIX = '.tmp';

const SEGMENT_FILE = /^(\d{20})\.(log|index|timeindex)$/;

export function segmentFileName(baseOffset: number, kind: SegmentFileKind): string {
  return `${String(baseOffset).padStart(20, '0')}.${kind}`;
}

export function segmentFilePath(dir: string, baseOffset: number, kind: SegmentFileKind): string {
  return join(dir, segmentFileName(baseOffset, kind));
}

export function tryParseSegmentFileName(name: string): { baseOffset: number; kind: SegmentFileKind } | undefined {
  const match = SEGMENT_FILE.exec(name);
  if (match === null) return undefined;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return undefined;
  return { baseOffset, kind: match[2] as SegmentFileKind };
}

/**
 * Whether `name` is the temporary file of an atomic replace (writeFileAtomically) of one of
 * the files storage replaces that way: partition.state, producer.snapshot, a segment's .index
 * or .timeindex, each with `.tmp` appended. Only these are storage's to remove at open; any
 * other `*.tmp` in a partition directory is someone else's.
 */
export function isAtomicReplaceTempName(name: string): boolean {
  if (!name.endsWith(TMP_SUFFIX)) return false;
  const target = name.slice(0, -TMP_SUFFIX.length);
  if (target === STATE_FILE_NAME || target === PRODUCER_SNAPSHOT_FILE_NAME) return true;
  const kind = tryParseSegmentFileName(target)?.kind;
  return kind === 'index' || kind === 'timeindex';
}

/** Whether a directory holding `names` is a partition directory: a segment log or partition.state in it. */
export function isPartitionDirectoryListing(names: readonly string[]): boolean {
  return names.some((name) => name === STATE_FILE_NAME || tryParseSegmentFileName(name)?.kind === 'log');
}

export function partitionDirName(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}

/** Splits `<topic>-<partition>` at the last dash (topic names may contain dashes). */
export function tryParsePartitionDirName(name: string): { topic: string; partition: number } | undefined {
  const dash = name.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const partitionText = name.slice(dash + 1);
  if (!/^(0|[1-9]\d{0,8})$/.test(partitionText)) return undefined;
  return { topic: name.slice(0, dash), partition: Number(partitionText) };
}
