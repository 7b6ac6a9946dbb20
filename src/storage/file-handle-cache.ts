/**
 * A bounded pool of open segment files shared by every partition of a broker, so 100,000
 * segments never mean 100,000 descriptors. Handles are reference counted: an evicted or
 * discarded handle closes only when its last user releases it, so a read never sees its
 * descriptor closed under it.
 *
 * Owner of mutable state: this object alone (the map and each entry's count). The bound is
 * soft: when every handle is in use, opening one more goes over it until releases bring the
 * pool back under (the overshoot is bounded by concurrent operations).
 */
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

export interface HandleLease {
  readonly handle: FileHandle;
  release(): void;
}

interface Entry {
  readonly path: string;
  readonly mode: OpenMode;
  handle: Promise<FileHandle>;
  users: number;
  isDiscarded: boolean;
}

export class FileHandleCache {
  // Map iteration order is insertion order; re-inserting on use makes it an LRU list.
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly fileSystem: FileSystem,
    readonly openFilesMax: number,
  ) {}

  get openCount(): number {
    return this.entries.size;
  }

  /**
   * Leases a handle on `path`. A cached read-write handle also serves 'read'; a cached
   * read-only one is replaced when 'read-write' is asked for. 'create' is never cached as such:
   * the file is created, then cached as read-write.
   */
  async acquire(path: string, mode: OpenMode): Promise<HandleLease> {
    let entry = this.entries.get(path);
    if (entry !== undefined && mode !== 'read' && entry.mode === 'read') {
      this.drop(entry);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = {
        path,
        mode: mode === 'read' ? 'read' : 'read-write',
        handle: this.fileSystem.open(path, mode),
        users: 0,
        isDiscarded: false,
      };
      this.entries.set(path, entry);
      const opened = entry;
      opened.handle.catch(() => {
        if (this.entries.get(path) === opened) this.entries.delete(path);
      });
    } else {
      this.entries.delete(path);
      this.entries.set(path, entry);
    }
    entry.users++;
    this.evictIdle();
    let handle: FileHandle;
    try {
      handle = await entry.handle;
    } catch (error) {
      entry.users--;
      throw error;
    }
    let isReleased = false;
    const leased = entry;
    return {
      handle,
      release: () => {
        if (isReleased) return;
        isReleased = true;
        leased.users--;
        if (leased.users === 0 && leased.isDiscarded) this.closeQuietly(leased);
        else this.evictIdle();
      },
    };
  }

  /** Forgets `path` (deleted or truncated away); closes it once its users are done. */
  discard(path: string): void {
    const entry = this.entries.get(path);
    if (entry !== undefined) this.drop(entry);
  }

  /** Closes every handle not in use; in-use ones close on release. */
  async closeAll(): Promise<void> {
    // drop() closes each idle handle once; closing them here again would close a descriptor
    // number the OS may already have reused, and closing leased ones would pull them from
    // under their users.
    const closing: Promise<void>[] = [];
    for (const entry of [...this.entries.values()]) {
      const closed = this.drop(entry);
      if (closed !== undefined) closing.push(closed);
    }
    await Promise.all(closing);
  }

  private drop(entry: Entry): Promise<void> | undefined {
    this.entries.delete(entry.path);
    entry.isDiscarded = true;
    return entry.users === 0 ? this.closeQuietly(entry) : undefined;
  }

  private evictIdle(): void {
    if (this.entries.size <= this.openFilesMax) return;
    for (const entry of this.entries.values()) {
      if (this.entries.size <= this.openFilesMax) break;
      if (entry.users === 0) this.drop(entry);
    }
  }

  private closeQuietly(entry: Entry): Promise<void> {
    // A close error on a descriptor we no longer use cannot lose data: every durable write
    // was fdatasync'ed through it before its acknowledgement.
    return entry.handle.then((handle) => handle.close()).catch(() => undefined);
  }
}
