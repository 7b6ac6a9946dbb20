/**
 * Loaded indexes of sealed segments, shared by every partition of a broker and bounded by
 * bytes: the least recently used are dropped (they reload from their files on next use). With
 * 100,000 segments this is what keeps index memory flat. Active segments keep their indexes
 * themselves (segment.ts) and are not counted here.
 *
 * Owner of mutable state: this object alone.
 */
import type { OffsetIndex } from './offset-index.js';
import type { TimeIndex } from './time-index.js';

export interface SegmentIndexes {
  offsetIndex: OffsetIndex;
  timeIndex: TimeIndex;
}

export class IndexCache {
  private readonly entries = new Map<string, SegmentIndexes>();
  private bytes = 0;

  constructor(readonly bytesMax: number) {}

  get sizeBytes(): number {
    return this.bytes;
  }

  get(key: string): SegmentIndexes | undefined {
    const indexes = this.entries.get(key);
    if (indexes !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, indexes);
    }
    return indexes;
  }

  /**
   * Caches the indexes of a sealed segment, which take no more appends: they are trimmed to
   * their entries here, so the memory they hold is what `costOf` charges (a builder's buffers
   * keep room for twice their entries, and at least 64 of them).
   */
  set(key: string, indexes: SegmentIndexes): void {
    indexes.offsetIndex.trimToSize();
    indexes.timeIndex.trimToSize();
    this.delete(key);
    this.entries.set(key, indexes);
    this.bytes += costOf(indexes);
    for (const [oldKey, old] of this.entries) {
      // Always keep the entry just added, even alone over the bound: a reader needs it now.
      if (this.bytes <= this.bytesMax || oldKey === key) break;
      this.entries.delete(oldKey);
      this.bytes -= costOf(old);
    }
  }

  delete(key: string): void {
    const old = this.entries.get(key);
    if (old === undefined) return;
    this.entries.delete(key);
    this.bytes -= costOf(old);
  }
}

function costOf(indexes: SegmentIndexes): number {
  return indexes.offsetIndex.sizeBytes + indexes.timeIndex.sizeBytes + 64;
}
