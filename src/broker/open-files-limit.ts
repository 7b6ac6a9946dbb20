/**
 * The start-up check of the process's open-files limit (`ulimit -n`) against what storage may
 * hold: `openSegmentFilesMax` segment files, `limits.storageFileOpsInFlightMax` short-lived
 * files, the descriptors of log opens and closes in flight, and a few of the process's own
 * (lmdb, stdio, the event loop). Client connections come on top, one each. Below that the
 * broker still runs, but a busy moment would fail requests with EMFILE, so it warns at start
 * instead of letting an operator find out under load.
 */
import { readFileSync } from 'node:fs';
import { defaults } from '../config/defaults.js';
import { limits } from '../config/limits.js';

/** Descriptors a log open or close holds besides its segment file (state, index, snapshot, directory). */
const DESCRIPTORS_PER_LOG_OPEN_OR_CLOSE = 4;
/** The process's own: stdio, lmdb's files, the event loop's, the listening socket. */
const PROCESS_DESCRIPTORS = 32;
/** Room asked for client connections on top of storage before the limit is called too low. */
export const CONNECTION_DESCRIPTORS_MIN = 256;

/** Descriptors storage may hold at once with this segment file bound. */
export function storageDescriptorsMax(openSegmentFilesMax: number): number {
  return openSegmentFilesMax + limits.storageFileOpsInFlightMax + limits.logOpensClosesInFlightMax * DESCRIPTORS_PER_LOG_OPEN_OR_CLOSE + PROCESS_DESCRIPTORS;
}

/** The soft "Max open files" of a /proc/<pid>/limits text; `undefined` when unlimited or absent. */
export function parseOpenFilesLimit(procLimits: string): number | undefined {
  const line = procLimits.split('\n').find((candidate) => candidate.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
}

/** The segment-file cache when `openSegmentFilesMax` is not set: never below what storage's other users get. */
export const AUTO_OPEN_SEGMENT_FILES_MIN = defaults.openSegmentFilesMax;
/** …and never above this: 64 Ki descriptors cost the kernel about 64 MiB at most. */
export const AUTO_OPEN_SEGMENT_FILES_MAX = 65_536;

/**
 * `openSegmentFilesMax` when it is not set: half the process's open-files limit (Node raises
 * the soft limit to the hard one at start: 524,288 under systemd, 1,048,576 in Docker),
 * between 1,024 and 65,536; 1,024 when the limit is unknown (or reported unlimited). The other
 * half stays for client connections and the short-lived files. A cap below the partitions
 * written at once makes every append reopen its segment file: with 10,000 partitions written
 * round robin and 1,024 files, appends ran at 67 % of their speed with room for every file
 * (bench/RESULTS.md).
 */
export function autoOpenSegmentFilesMax(procLimits: string | undefined): number {
  const limit = procLimits === undefined ? undefined : parseOpenFilesLimit(procLimits);
  if (limit === undefined) return AUTO_OPEN_SEGMENT_FILES_MIN;
  return Math.min(AUTO_OPEN_SEGMENT_FILES_MAX, Math.max(AUTO_OPEN_SEGMENT_FILES_MIN, Math.floor(limit / 2)));
}

/** The warning to log at start, or `undefined` when the limit leaves room (or is unknown: not Linux). */
export function openFilesLimitWarning(
  openSegmentFilesMax: number,
  procLimits: string | undefined,
): { message: string; openFilesLimit: number; storageDescriptorsMax: number; openSegmentFilesMax: number; openFilesLimitMin: number } | undefined {
  const limit = procLimits === undefined ? undefined : parseOpenFilesLimit(procLimits);
  const needed = storageDescriptorsMax(openSegmentFilesMax);
  if (limit === undefined || limit >= needed + CONNECTION_DESCRIPTORS_MIN) return undefined;
  // A fixed message, so it can be grepped; the figures are fields of the line.
  return {
    openFilesLimit: limit,
    storageDescriptorsMax: needed,
    openSegmentFilesMax,
    openFilesLimitMin: needed + CONNECTION_DESCRIPTORS_MIN,
    message:
      'the open-files limit (ulimit -n, openFilesLimit) is below what storage may hold (storageDescriptorsMax, set by openSegmentFilesMax) plus one descriptor per client connection: ' +
      'raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit) to at least openFilesLimitMin, or lower openSegmentFilesMax (its config file key, or RUNNEL_OPEN_SEGMENT_FILES_MAX)',
  };
}

/** This process's /proc limits, or `undefined` off Linux. */
export function readOwnProcLimits(): string | undefined {
  try {
    return readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return undefined;
  }
}
