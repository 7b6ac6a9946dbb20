/**
 * Walks the record batches of a byte range of a .log file, checking each one's structure and
 * CRC: what recovery, index rebuilds and `runnel` verification tools need. Reads in large
 * chunks (4 MiB) and checks whole batches in memory, so a scan runs near disk speed.
 *
 * A scan stops at the first batch that is not whole and valid and reports why; what that means
 * (torn tail or damage) is the caller's decision — see recovery.ts.
 */
import { BATCH_HEADER_BYTES, BATCH_MAGIC, isBatchCrcValid, tryReadBatchHeader, type BatchHeader } from '../protocol/index.js';
import { MiB } from '../common/units.js';
import { limits } from '../config/limits.js';
import { readFully, type FileHandle } from './file-system.js';

export type ScanProblem =
  /** Fewer bytes remain than the header or the batch length needs. */
  | 'truncated'
  /** The header is unreadable, has another magic, or a length below the header size or above `limits.batchBytesMax`. */
  | 'bad-header'
  /** The CRC does not match the batch bytes. */
  | 'bad-crc'
  /** The batch's base offset is not the one that must come next. */
  | 'offset-gap';

export interface ScanResult {
  /** Position after the last valid batch (where a truncation would cut). */
  validEndPosition: number;
  /** Offset after the last valid batch. */
  nextOffset: number;
  batchCount: number;
  problem?: { kind: ScanProblem; position: number; detail: string };
}

export interface ScanOptions {
  fromPosition: number;
  /** Exclusive end of the range (usually the file size). */
  toPosition: number;
  /** Base offset the first batch must have; each next batch must follow its predecessor. */
  expectedBaseOffset: number;
  /**
   * Called for each valid batch, in order; `bytes` is the batch (valid only during the call).
   * Returning `false` ends the scan after this batch.
   */
  onBatch?: (header: BatchHeader, position: number, bytes: Buffer) => boolean | void;
  chunkBytes?: number;
}

export async function scanBatches(handle: FileHandle, options: ScanOptions): Promise<ScanResult> {
  const chunkBytes = options.chunkBytes ?? 4 * MiB;
  let position = options.fromPosition;
  let nextOffset = options.expectedBaseOffset;
  let batchCount = 0;
  let chunk: Buffer = Buffer.alloc(0);
  let chunkStart = position;
  const result = (problem?: ScanResult['problem']): ScanResult =>
    problem === undefined
      ? { validEndPosition: position, nextOffset, batchCount }
      : { validEndPosition: position, nextOffset, batchCount, problem };

  while (position < options.toPosition) {
    const remaining = options.toPosition - position;
    if (remaining < BATCH_HEADER_BYTES) {
      return result({ kind: 'truncated', position, detail: `${remaining} bytes left, less than a batch header` });
    }
    // Make sure the chunk holds at least the header at `position`.
    if (position + BATCH_HEADER_BYTES > chunkStart + chunk.length) {
      chunk = await readRange(handle, position, Math.min(chunkBytes, remaining));
      chunkStart = position;
    }
    const header = tryReadBatchHeader(chunk, position - chunkStart);
    if (header === undefined || header.magic !== BATCH_MAGIC) {
      return result({ kind: 'bad-header', position, detail: header === undefined ? 'unreadable header' : `magic ${header.magic}` });
    }
    // No append stores a larger batch (partition-log.ts validates against this limit), so the
    // length field is damaged; trusted, it had the scan read up to the rest of the file (2 GiB
    // at most) into one buffer before the CRC could say so. Recovery treats it as it treats a
    // bad CRC: a torn tail when no valid batch follows (a crash mid-write leaves garbage, never
    // a longer header than was written), damage otherwise.
    if (header.sizeBytes > limits.batchBytesMax) {
      return result({ kind: 'bad-header', position, detail: `batch of ${header.sizeBytes} bytes, larger than the largest batch an append accepts (${limits.batchBytesMax})` });
    }
    if (header.sizeBytes > remaining) {
      return result({ kind: 'truncated', position, detail: `batch of ${header.sizeBytes} bytes but ${remaining} left` });
    }
    if (position + header.sizeBytes > chunkStart + chunk.length) {
      chunk = await readRange(handle, position, Math.min(Math.max(chunkBytes, header.sizeBytes), remaining));
      chunkStart = position;
    }
    if (!isBatchCrcValid(chunk, header, position - chunkStart)) {
      return result({ kind: 'bad-crc', position, detail: 'CRC-32C mismatch' });
    }
    if (header.baseOffset !== nextOffset || header.lastOffsetDelta < 0) {
      return result({ kind: 'offset-gap', position, detail: `base offset ${header.baseOffset}, expected ${nextOffset}` });
    }
    const shouldContinue = options.onBatch?.(header, position, chunk.subarray(position - chunkStart, position - chunkStart + header.sizeBytes));
    position += header.sizeBytes;
    nextOffset = header.baseOffset + header.lastOffsetDelta + 1;
    batchCount++;
    if (shouldContinue === false) break;
  }
  return result();
}

/**
 * Looks for any valid batch (magic 2, a length an append accepts, matching CRC, base offset at or after
 * `offsetAtLeast`) starting anywhere in [fromPosition, toPosition). Recovery uses it to tell a
 * torn tail (nothing valid after the bad bytes) from damage in the middle of a log.
 */
export async function findValidBatchAfter(
  handle: FileHandle,
  range: { fromPosition: number; toPosition: number; offsetAtLeast: number },
  chunkBytes = 4 * MiB,
): Promise<number | undefined> {
  // Chunks overlap by one header so a header straddling two chunks is still seen whole.
  for (let chunkStart = range.fromPosition; chunkStart + BATCH_HEADER_BYTES <= range.toPosition; ) {
    const chunk = await readRange(handle, chunkStart, Math.min(chunkBytes, range.toPosition - chunkStart));
    for (let at = 0; at + BATCH_HEADER_BYTES <= chunk.length; at++) {
      if (chunk[at + 16] !== BATCH_MAGIC) continue;
      const header = tryReadBatchHeader(chunk, at);
      if (header === undefined || header.baseOffset < range.offsetAtLeast || header.recordCount < 1 || header.sizeBytes > limits.batchBytesMax) continue;
      const position = chunkStart + at;
      if (position + header.sizeBytes > range.toPosition) continue;
      const batch = at + header.sizeBytes <= chunk.length ? chunk.subarray(at) : await readRange(handle, position, header.sizeBytes);
      if (isBatchCrcValid(batch, header, 0)) return position;
    }
    if (chunk.length < BATCH_HEADER_BYTES) break;
    chunkStart += chunk.length - BATCH_HEADER_BYTES + 1;
  }
  return undefined;
}

/** Reads `length` bytes at `position`; a short result means the file ended first. */
export async function readRange(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  const read = await readFully(handle, buffer, length, position);
  return read === length ? buffer : buffer.subarray(0, read);
}
