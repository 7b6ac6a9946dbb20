/**
 * `partition.state`: the small JSON file that tells start-up how much of a partition it must
 * check. Replaced atomically (writeFileAtomically), so it is always whole: the old one or the
 * new one.
 *
 * ```json
 * { "version": 1,
 *   "recoveryCheckpoint": 4096,      // base offset of the first segment recovery must scan;
 *                                    // every earlier segment is sealed: fsynced, indexed
 *   "clean": { "logEndOffset": 5000, "activeBaseOffset": 4096, "activeSizeBytes": 81920 },
 *                                    // present only after a clean close, removed (durably)
 *                                    // before the next byte is appended
 *   "offline": { "reason": "CORRUPT_DATA", "segmentBaseOffset": 0, "position": 8192,
 *                "detail": "CRC-32C mismatch", "detectedAtMs": 1763700000000 } }
 *                                    // damage found; the partition stays offline until an
 *                                    // operator repairs it (inspect.ts)
 * ```
 *
 * A missing or unreadable file is not an error: start-up then scans every segment, which is
 * slow for a large partition but always correct.
 */
import { join } from 'node:path';
import { STATE_FILE_NAME } from './file-names.js';
import { writeFileAtomically, type FileSystem } from './file-system.js';

export interface CleanShutdown {
  logEndOffset: number;
  activeBaseOffset: number;
  activeSizeBytes: number;
}

export interface OfflineMark {
  reason: 'CORRUPT_DATA';
  segmentBaseOffset: number;
  position: number;
  detail: string;
  detectedAtMs: number;
}

export interface PartitionState {
  recoveryCheckpoint: number;
  clean?: CleanShutdown;
  offline?: OfflineMark;
}

const VERSION = 1;

export async function readPartitionState(fileSystem: FileSystem, dir: string): Promise<PartitionState | undefined> {
  const bytes = await fileSystem.tryReadFile(join(dir, STATE_FILE_NAME));
  if (bytes === undefined) return undefined;
  try {
    return parsePartitionState(JSON.parse(bytes.toString('utf8')));
  } catch {
    return undefined;
  }
}

export async function writePartitionState(fileSystem: FileSystem, dir: string, state: PartitionState): Promise<void> {
  const body = { version: VERSION, ...state };
  await writeFileAtomically(fileSystem, join(dir, STATE_FILE_NAME), Buffer.from(`${JSON.stringify(body)}\n`));
}

function parsePartitionState(value: unknown): PartitionState | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (record.version !== VERSION || !isOffset(record.recoveryCheckpoint)) return undefined;
  const state: PartitionState = { recoveryCheckpoint: record.recoveryCheckpoint };
  const clean = record.clean as Record<string, unknown> | undefined;
  if (clean !== undefined && clean !== null) {
    if (!isOffset(clean.logEndOffset) || !isOffset(clean.activeBaseOffset) || !isOffset(clean.activeSizeBytes)) return undefined;
    state.clean = { logEndOffset: clean.logEndOffset, activeBaseOffset: clean.activeBaseOffset, activeSizeBytes: clean.activeSizeBytes };
  }
  const offline = record.offline as Record<string, unknown> | undefined;
  if (offline !== undefined && offline !== null) {
    state.offline = {
      reason: 'CORRUPT_DATA',
      segmentBaseOffset: isOffset(offline.segmentBaseOffset) ? offline.segmentBaseOffset : 0,
      position: isOffset(offline.position) ? offline.position : 0,
      detail: typeof offline.detail === 'string' ? offline.detail : 'unknown damage',
      detectedAtMs: isOffset(offline.detectedAtMs) ? offline.detectedAtMs : 0,
    };
  }
  return state;
}

function isOffset(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
