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
 * slow for a large partition but always correct (an unreadable one is logged with its path).
 * A file of a newer version is an error: a newer Runnel wrote it, its marks may mean what this
 * one cannot know, and rewriting it would lose them, so the partition is not opened
 * (recovery.ts).
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

/** What `readPartitionStateFile` found. */
export type PartitionStateRead =
  | { kind: 'missing' }
  | { kind: 'read'; state: PartitionState }
  /** Empty, not JSON, or fields out of range: no crash leaves one (the replace is atomic). */
  | { kind: 'unreadable'; detail: string }
  /** Written by a newer Runnel in a format this one does not know. */
  | { kind: 'newer'; version: number };

/** The state file, or `undefined` when it is missing, unreadable or of a newer version. */
export async function readPartitionState(fileSystem: FileSystem, dir: string): Promise<PartitionState | undefined> {
  const read = await readPartitionStateFile(fileSystem, dir);
  return read.kind === 'read' ? read.state : undefined;
}

/** The state file and whether it could be used; I/O errors other than "missing" throw. */
export async function readPartitionStateFile(fileSystem: FileSystem, dir: string): Promise<PartitionStateRead> {
  const bytes = await fileSystem.tryReadFile(join(dir, STATE_FILE_NAME));
  if (bytes === undefined) return { kind: 'missing' };
  if (bytes.length === 0) return { kind: 'unreadable', detail: 'the file is empty' };
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { kind: 'unreadable', detail: `not JSON (${(error as Error).message})` };
  }
  const version = (value as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && Number.isSafeInteger(version) && version > VERSION) return { kind: 'newer', version };
  const state = parsePartitionState(value);
  return state === undefined ? { kind: 'unreadable', detail: `not a version-${VERSION} partition state` } : { kind: 'read', state };
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
