/**
 * The sparse offset index of one segment: sorted entries mapping a batch's base offset to the
 * byte position where that batch starts in the segment's .log file. One entry about every
 * `index.interval.bytes` (4 KiB) of log, so a lookup is a binary search plus a scan of at most
 * one interval and one batch.
 *
 * File layout (`.index`), entries back to back, big-endian, no header:
 *
 * | pos | size | field                                        |
 * |----:|-----:|----------------------------------------------|
 * |   0 |    4 | relativeOffset (u32) = batch baseOffset − segment baseOffset |
 * |   4 |    4 | position (u32) in the .log file              |
 *
 * Crash behaviour: the active segment's index lives in memory and is written (atomically,
 * tmp + rename) only when the segment is sealed or the log closes cleanly. An index that is
 * missing, torn or inconsistent is rebuilt from the log; entries are also checked on use
 * (segment.ts), so a garbled index can cost a rebuild but never a wrong read.
 */

export const OFFSET_INDEX_ENTRY_BYTES = 8;

export interface OffsetIndexEntry {
  relativeOffset: number;
  position: number;
}

export class OffsetIndex {
  private entries: Buffer;
  private count: number;

  private constructor(entries: Buffer, count: number) {
    this.entries = entries;
    this.count = count;
  }

  static empty(): OffsetIndex {
    return new OffsetIndex(Buffer.alloc(64 * OFFSET_INDEX_ENTRY_BYTES), 0);
  }

  /**
   * Adopts index file bytes if they are consistent: whole entries, strictly increasing
   * relative offsets and positions, every position below `logSizeBytes` and every relative
   * offset below `relativeOffsetEnd`. Returns `undefined` otherwise (the caller rebuilds).
   */
  static tryFromBytes(bytes: Buffer, bounds: { logSizeBytes: number; relativeOffsetEnd: number }): OffsetIndex | undefined {
    if (bytes.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return undefined;
    const count = bytes.length / OFFSET_INDEX_ENTRY_BYTES;
    let previousOffset = -1;
    let previousPosition = -1;
    for (let i = 0; i < count; i++) {
      const relativeOffset = bytes.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES);
      const position = bytes.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES + 4);
      if (relativeOffset <= previousOffset || position <= previousPosition) return undefined;
      if (position >= bounds.logSizeBytes || relativeOffset >= bounds.relativeOffsetEnd) return undefined;
      previousOffset = relativeOffset;
      previousPosition = position;
    }
    return new OffsetIndex(ownCopy(bytes, bytes.length), count);
  }

  get entryCount(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.count * OFFSET_INDEX_ENTRY_BYTES;
  }

  /**
   * Drops the room kept for appends, so the index holds exactly `sizeBytes` of memory: what
   * the index cache charges for it (index-cache.ts). For an index that takes no more appends.
   */
  trimToSize(): void {
    if (this.entries.buffer.byteLength !== this.sizeBytes) this.entries = ownCopy(this.entries, this.sizeBytes);
  }

  /** Adds an entry; callers only add entries past the last one (asserted by the segment). */
  append(relativeOffset: number, position: number): void {
    const last = this.lastEntry();
    if (last !== undefined && (relativeOffset <= last.relativeOffset || position <= last.position)) {
      throw new RangeError(`offset index entries must increase: (${relativeOffset}, ${position}) after (${last.relativeOffset}, ${last.position})`);
    }
    if ((this.count + 1) * OFFSET_INDEX_ENTRY_BYTES > this.entries.length) {
      // At least 64 entries: an index adopted from an empty file has a zero-length buffer.
      const grown = Buffer.alloc(Math.max(64 * OFFSET_INDEX_ENTRY_BYTES, this.entries.length * 2));
      this.entries.copy(grown, 0, 0, this.sizeBytes);
      this.entries = grown;
    }
    this.entries.writeUInt32BE(relativeOffset, this.count * OFFSET_INDEX_ENTRY_BYTES);
    this.entries.writeUInt32BE(position, this.count * OFFSET_INDEX_ENTRY_BYTES + 4);
    this.count++;
  }

  /** The last entry whose relative offset is ≤ `relativeOffset`, or `undefined` if none. */
  floor(relativeOffset: number): OffsetIndexEntry | undefined {
    let low = 0;
    let high = this.count - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      if (this.entries.readUInt32BE(middle * OFFSET_INDEX_ENTRY_BYTES) <= relativeOffset) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? undefined : this.entryAt(found);
  }

  lastEntry(): OffsetIndexEntry | undefined {
    return this.count === 0 ? undefined : this.entryAt(this.count - 1);
  }

  /** The index file bytes (a copy, safe to write while the index keeps growing). */
  toBytes(): Buffer {
    return Buffer.from(this.entries.subarray(0, this.sizeBytes));
  }

  private entryAt(index: number): OffsetIndexEntry {
    return {
      relativeOffset: this.entries.readUInt32BE(index * OFFSET_INDEX_ENTRY_BYTES),
      position: this.entries.readUInt32BE(index * OFFSET_INDEX_ENTRY_BYTES + 4),
    };
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
