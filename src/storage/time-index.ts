/**
 * The sparse time index of one segment: entries (timestamp, relativeOffset) with strictly
 * increasing timestamps. An entry (T, O) says: the largest batch maxTimestamp seen so far in
 * this segment first reached T at the batch whose base offset is O; every earlier batch has
 * maxTimestamp < T. Entries are added about every `index.interval.bytes` when the running
 * maximum grew, and once more when the segment is sealed, so a sealed segment's last entry is
 * its largest timestamp (what time-based retention and seek use).
 *
 * Seek by time t: take the last entry (T, O) with T < t. Every batch before O has maxTimestamp
 * below T, and batch O has exactly T, so the first batch with maxTimestamp ≥ t lies after O:
 * the scan starts at O (or at the segment start when no entry is below t).
 *
 * File layout (`.timeindex`), entries back to back, big-endian, no header:
 *
 * | pos | size | field                     |
 * |----:|-----:|---------------------------|
 * |   0 |    8 | timestamp (int64, ms)     |
 * |   8 |    4 | relativeOffset (u32)      |
 *
 * Crash behaviour: as the offset index — in memory for the active segment, written atomically
 * at seal or clean close, rebuilt from the log when missing or inconsistent.
 */
import { tryReadInt64, writeInt64 } from '../protocol/index.js';

export const TIME_INDEX_ENTRY_BYTES = 12;

export interface TimeIndexEntry {
  timestamp: number;
  relativeOffset: number;
}

export class TimeIndex {
  private entries: Buffer;
  private count: number;

  private constructor(entries: Buffer, count: number) {
    this.entries = entries;
    this.count = count;
  }

  static empty(): TimeIndex {
    return new TimeIndex(Buffer.alloc(64 * TIME_INDEX_ENTRY_BYTES), 0);
  }

  /**
   * Adopts index file bytes if they are consistent: whole entries, strictly increasing
   * timestamps, non-decreasing relative offsets below `relativeOffsetEnd`. `undefined` otherwise.
   */
  static tryFromBytes(bytes: Buffer, bounds: { relativeOffsetEnd: number }): TimeIndex | undefined {
    if (bytes.length % TIME_INDEX_ENTRY_BYTES !== 0) return undefined;
    const count = bytes.length / TIME_INDEX_ENTRY_BYTES;
    let previousTimestamp = Number.NEGATIVE_INFINITY;
    let previousOffset = -1;
    for (let i = 0; i < count; i++) {
      const timestamp = tryReadInt64(bytes, i * TIME_INDEX_ENTRY_BYTES);
      const relativeOffset = bytes.readUInt32BE(i * TIME_INDEX_ENTRY_BYTES + 8);
      if (timestamp === undefined || timestamp <= previousTimestamp) return undefined;
      if (relativeOffset < previousOffset || relativeOffset >= bounds.relativeOffsetEnd) return undefined;
      previousTimestamp = timestamp;
      previousOffset = relativeOffset;
    }
    return new TimeIndex(ownCopy(bytes, bytes.length), count);
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.count * TIME_INDEX_ENTRY_BYTES;
  }

  /**
   * Drops the room kept for appends, so the index holds exactly `sizeBytes` of memory: what
   * the index cache charges for it (index-cache.ts). For an index that takes no more appends.
   */
  trimToSize(): void {
    if (this.entries.buffer.byteLength !== this.sizeBytes) this.entries = ownCopy(this.entries, this.sizeBytes);
  }

  /** Adds an entry when `timestamp` exceeds the last one; returns whether it did. */
  maybeAppend(timestamp: number, relativeOffset: number): boolean {
    const last = this.lastEntry();
    if (last !== undefined && timestamp <= last.timestamp) return false;
    if (last !== undefined && relativeOffset < last.relativeOffset) {
      throw new RangeError(`time index offsets must not decrease: ${relativeOffset} after ${last.relativeOffset}`);
    }
    if ((this.count + 1) * TIME_INDEX_ENTRY_BYTES > this.entries.length) {
      // At least 64 entries: an index adopted from an empty file has a zero-length buffer.
      const grown = Buffer.alloc(Math.max(64 * TIME_INDEX_ENTRY_BYTES, this.entries.length * 2));
      this.entries.copy(grown, 0, 0, this.sizeBytes);
      this.entries = grown;
    }
    writeInt64(this.entries, timestamp, this.count * TIME_INDEX_ENTRY_BYTES);
    this.entries.writeUInt32BE(relativeOffset, this.count * TIME_INDEX_ENTRY_BYTES + 8);
    this.count++;
    return true;
  }

  /**
   * Where a scan for the first batch with maxTimestamp ≥ `timestamp` may start: the relative
   * offset of the last entry whose timestamp is below it, or 0.
   */
  scanStartFor(timestamp: number): number {
    return this.entryBefore(timestamp)?.relativeOffset ?? 0;
  }

  /** The last entry whose timestamp is below `timestamp`, or undefined (scan from the start). */
  entryBefore(timestamp: number): TimeIndexEntry | undefined {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.timestampAt(middle) < timestamp) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? undefined : { timestamp: this.timestampAt(found), relativeOffset: this.entries.readUInt32BE(found * TIME_INDEX_ENTRY_BYTES + 8) };
  }

  firstEntry(): TimeIndexEntry | undefined {
    if (this.count === 0) return undefined;
    return { timestamp: this.timestampAt(0), relativeOffset: this.entries.readUInt32BE(8) };
  }

  lastEntry(): TimeIndexEntry | undefined {
    if (this.count === 0) return undefined;
    const index = this.count - 1;
    return { timestamp: this.timestampAt(index), relativeOffset: this.entries.readUInt32BE(index * TIME_INDEX_ENTRY_BYTES + 8) };
  }

  toBytes(): Buffer {
    return Buffer.from(this.entries.subarray(0, this.sizeBytes));
  }

  private timestampAt(index: number): number {
    // Entries were validated or written by us, so the value is always a safe integer.
    return tryReadInt64(this.entries, index * TIME_INDEX_ENTRY_BYTES) ?? Number.NaN;
  }
}

/**
 * The first `length` bytes of `bytes` in a buffer of their own. `Buffer.alloc`, not
 * `Buffer.from`: a small `Buffer.from` copy is a slice of Buffer's shared 8 KiB pool and keeps
 * all of it alive for as long as the index lives.
 */
function ownCopy(bytes: Buffer, length: number): Buffer {
  const copy = Buffer.alloc(length);
  bytes.copy(copy, 0, 0, length);
  return copy;
}
