/**
 * A bounded pool of open segment files shared by every partition of a broker, so neither
 * 100,000 segments nor thousands of partitions written at once mean as many descriptors.
 * Handles are reference counted: an evicted or discarded handle closes only when its last user
 * releases it, so a read never sees its descriptor closed under it.
 *
 * The bound is hard: at most `openFilesMax` descriptors are open (or opening, or closing) at
 * any moment. An `acquire` that needs a new descriptor while every one is in use waits, first
 * come first served, until a release frees one. While anybody waits, handles are given up to
 * make room, least recently used first: an idle one is closed at once, and one in use is
 * forgotten (a new acquire of its file then waits its turn too) and closed once its users are
 * done. Without this, leases on a busy file that overlap without a break (readers of one
 * segment, each starting before the last is done) would keep its descriptor for good while
 * others wait (file-handle-cache.test.ts). A lease on a file the cache holds open is shared at
 * once; only one on a file given up (or not open) waits its turn.
 *
 * No deadlock: nobody asks `acquire` while holding a lease. A holder that needs its file again
 * takes `share()` of the lease it holds, which never waits: the partition writer, whose
 * flush=always run keeps its lease during its fdatasync while the next run is written (under
 * pressure it finishes the earlier run first, `hasWaiters`, so it gives its descriptor up too),
 * and a read that must rebuild a segment's indexes, which reads through the lease it holds
 * (segment.ts `rebuildIndexes`). Holders may wait for a `withDescriptorSlots` slot (index and
 * state files), whose holders never ask for a lease, so that order cannot close a cycle either.
 *
 * First come first served holds across wake-ups too: an acquire woken because another opened
 * the file it waits for, which then finds that file gone (given up meanwhile, or its open failed)
 * waits again in the place it had, ahead of every acquire that came after it.
 *
 * `closeAll` ends the cache: it waits until every descriptor is closed, and every acquire after
 * it, or waiting when it is called, fails with SHUTTING_DOWN, so nothing opens a descriptor that
 * nobody would close.
 *
 * Every step costs O(1) (amortized; a waiter that comes back is the exception, see
 * `WaiterQueue.add`) however many files are open or acquires wait: a broker writing 10,000
 * partitions round robin with 1,024 descriptors has thousands of waiters, and a scan of them
 * (or of the open handles) per open or release made the cache itself the bottleneck (22,000
 * acquires/s against 150,000 with room for every file). Waiters are kept in ticket order with
 * those of each file at hand (`WaiterQueue`), and idle handles in a list of their own, oldest
 * release first (`idle`), so giving room never walks the handles in use.
 *
 * Owner of mutable state: this object alone (the maps, the waiters, each entry's count).
 */
import type { BrokerError } from '../errors/index.js';
import { storageClosedError } from './errors.js';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';

export interface HandleLease {
  readonly handle: FileHandle;
  release(): void;
  /**
   * Another lease on the same handle, which stays open until both are released. Never waits:
   * for a holder that needs the file again before it lets go (see the header).
   */
  share(): HandleLease;
}

interface Entry {
  readonly path: string;
  readonly mode: OpenMode;
  handle: Promise<FileHandle>;
  users: number;
  isDiscarded: boolean;
  /** Its close has started (it runs once: a second close could hit a reused descriptor number). */
  isClosing: boolean;
  /** Its descriptor slot was given back (closed, or the open failed). */
  isSlotFreed: boolean;
  /** Dropped while in use and not closing yet: counted in `draining`. */
  isDraining: boolean;
}

/** `FileHandleCache.internalsForTests`: a copy of the cache's bookkeeping. */
export interface FileHandleCacheInternals {
  /** In LRU order. */
  readonly entries: readonly EntryInternals[];
  /** In the order they became idle. */
  readonly idle: readonly EntryInternals[];
  readonly slotsHeld: number;
  readonly closesRunning: number;
  readonly draining: number;
  readonly waiters: WaiterQueueInternals;
}

export interface EntryInternals {
  readonly path: string;
  readonly users: number;
  readonly isDiscarded: boolean;
  /** It is the one `entries` holds for its path. */
  readonly isCurrent: boolean;
}

export interface WaiterQueueInternals {
  /** `length`: the waiters counted as waiting. */
  readonly waiting: number;
  /** Slots of the array, gone and already shifted ones included. */
  readonly slots: number;
  /** The waiters not gone from `head` on, in queue order. */
  readonly queued: readonly { readonly path: string; readonly ticket: number }[];
  /** Waiters per path in `byPath`, an empty set included. */
  readonly byPath: readonly { readonly path: string; readonly count: number; readonly goneCount: number }[];
  /** Waiters before `head` not marked gone (lost: never woken, never failed). */
  readonly liveBeforeHead: number;
}

interface Waiter {
  readonly path: string;
  readonly mode: OpenMode;
  /** Order of arrival: the queue is kept sorted by it, also when a waiter comes back. */
  readonly ticket: number;
  /** `true` hands it a slot; `false` tells it its file was opened meanwhile, so it needs none. */
  wake(hasSlot: boolean): void;
  /** The cache closed (`closeAll`). */
  fail(error: BrokerError): void;
  /** Taken out of the queue (woken or failed); it may still sit in `WaiterQueue.items`, skipped. */
  isGone: boolean;
}

export class FileHandleCache {
  // Map iteration order is insertion order; re-inserting on use makes it an LRU list.
  private readonly entries = new Map<string, Entry>();
  /** The entries with no user, in the order they became idle (least recently used first). */
  private readonly idle = new Map<string, Entry>();
  /** Descriptors open, opening or closing: what counts against `openFilesMax`. */
  private slotsHeld = 0;
  /** Closes started and not finished: each will hand its slot on. */
  private closesRunning = 0;
  /** Handles dropped while in use whose close has not started: each will hand its slot on too. */
  private draining = 0;
  /** Acquires waiting for a descriptor, oldest (lowest ticket) first. */
  private readonly waiters = new WaiterQueue();
  private nextTicket = 0;
  /** Set by `closeAll`: no more leases. */
  private isClosed = false;
  /** `closeAll` calls waiting for `slotsHeld` to reach 0. */
  private readonly allClosedListeners: (() => void)[] = [];

  constructor(
    private readonly fileSystem: FileSystem,
    readonly openFilesMax: number,
  ) {}

  /** Handles in the cache (idle or leased). */
  get openCount(): number {
    return this.entries.size;
  }

  /** Descriptors open, opening or closing, including discarded handles still leased. Never above `openFilesMax`. */
  get descriptorCount(): number {
    return this.slotsHeld;
  }

  /** Whether an acquire is waiting for a descriptor: a holder of a lease it could give back should. */
  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  /** For tests only: tickets handed out so far (the next acquire that has to wait gets this one). */
  get ticketsIssuedForTests(): number {
    return this.nextTicket;
  }

  /**
   * For tests only (file-handle-cache.property.test.ts checks its invariants after every step):
   * a copy of the bookkeeping. Walks everything, so never call it on a hot path.
   */
  internalsForTests(): FileHandleCacheInternals {
    const describe = (entry: Entry): EntryInternals => ({
      path: entry.path,
      users: entry.users,
      isDiscarded: entry.isDiscarded,
      isCurrent: this.entries.get(entry.path) === entry,
    });
    return {
      entries: [...this.entries.values()].map(describe),
      idle: [...this.idle.values()].map(describe),
      slotsHeld: this.slotsHeld,
      closesRunning: this.closesRunning,
      draining: this.draining,
      waiters: this.waiters.internalsForTests(),
    };
  }

  /**
   * Leases a handle on `path`. A cached read-write handle also serves 'read'; a cached
   * read-only one is replaced when 'read-write' is asked for. 'create' is never cached as such:
   * the file is created, then cached as read-write. Waits when a new descriptor is needed and
   * `openFilesMax` are in use. Rejects SHUTTING_DOWN after `closeAll` (also when it was waiting
   * then, or its file was still opening), and the open's own error when the file cannot be opened.
   */
  async acquire(path: string, mode: OpenMode): Promise<HandleLease> {
    if (this.isClosed) throw this.closedError(path);
    let hasSlot = false;
    let ticket: number | undefined;
    let entry: Entry | undefined;
    for (;;) {
      entry = this.entries.get(path);
      if (entry !== undefined && !servesMode(entry, mode)) {
        this.drop(entry);
        entry = undefined;
      }
      if (entry !== undefined) {
        // Opened by someone else while this call waited: the slot it got goes on.
        if (hasSlot) this.giveSlotBack();
        this.entries.delete(path);
        this.entries.set(path, entry);
        this.idle.delete(path);
        break;
      }
      if (!hasSlot && this.waiters.length === 0 && this.slotsHeld < this.openFilesMax) {
        this.slotsHeld++;
        hasSlot = true;
      }
      if (hasSlot) {
        entry = this.openEntry(path, mode);
        break;
      }
      // The ticket is taken at the first wait. A waiter woken without a slot whose file is gone
      // again when it runs (given up meanwhile, or its open failed) keeps it, and so waits in the
      // place it had, not behind the acquires that came after it.
      ticket ??= this.nextTicket++;
      const handedOver = this.enqueue(path, mode, ticket);
      this.makeRoom();
      hasSlot = await handedOver;
      // `closeAll` may have run since this waiter was woken.
      if (this.isClosed) {
        if (hasSlot) this.giveSlotBack();
        throw this.closedError(path);
      }
    }
    entry.users++;
    let handle: FileHandle;
    try {
      handle = await entry.handle;
    } catch (error) {
      entry.users--;
      throw error;
    }
    if (this.isClosed) {
      // Opened (or shared) as `closeAll` ran: it is dropped already, and closes now.
      this.releaseUser(entry);
      throw this.closedError(path);
    }
    return this.leaseOf(entry, handle);
  }

  /** Queues an acquire in ticket order; resolves when it is woken, rejects if the cache closes. */
  private enqueue(path: string, mode: OpenMode, ticket: number): Promise<boolean> {
    return new Promise<boolean>((wake, fail) => {
      this.waiters.add({ path, mode, ticket, wake, fail, isGone: false });
    });
  }

  /** One more user of `entry`, whose open has finished. */
  private leaseOf(entry: Entry, handle: FileHandle): HandleLease {
    let isReleased = false;
    return {
      handle,
      release: () => {
        if (isReleased) return;
        isReleased = true;
        this.releaseUser(entry);
      },
      share: () => {
        if (isReleased) throw new Error(`a released lease on ${entry.path} cannot be shared`);
        entry.users++;
        return this.leaseOf(entry, handle);
      },
    };
  }

  private releaseUser(entry: Entry): void {
    entry.users--;
    if (entry.users === 0 && entry.isDiscarded) {
      void this.closeQuietly(entry);
      return;
    }
    if (entry.users === 0) this.idle.set(entry.path, entry);
    this.makeRoom();
  }

  /** Forgets `path` (deleted or truncated away); closes it once its users are done. */
  discard(path: string): void {
    const entry = this.entries.get(path);
    if (entry !== undefined) this.drop(entry);
  }

  /**
   * Ends the cache and resolves once every descriptor it opened is closed: idle handles (closed
   * now), handles given up earlier whose close is still running (a log's close forgets its
   * segments; pressure drains handles for waiters), and leased ones, which close when their
   * last user releases them: a lease is never pulled from under its user. So this waits for the
   * leases handed out before it; `LogManager.close` closes every log first, so only reads still
   * running hold one then, and it bounds how long it waits for them. From the call on, acquire
   * fails with SHUTTING_DOWN, and so do the acquires waiting for a descriptor (the cache test
   * "closeAll"). `share()` of a lease still held keeps working. Idempotent.
   */
  async closeAll(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      for (const waiter of this.waiters.takeAll()) waiter.fail(this.closedError(waiter.path));
      // drop() closes each idle handle once (a second close could hit a descriptor number the
      // OS has reused), and a leased one when it is released.
      for (const entry of [...this.entries.values()]) this.drop(entry);
    }
    if (this.slotsHeld === 0) return;
    await new Promise<void>((resolve) => this.allClosedListeners.push(resolve));
  }

  /** A new entry on a slot this call holds. */
  private openEntry(path: string, mode: OpenMode): Entry {
    const entry: Entry = {
      path,
      mode: mode === 'read' ? 'read' : 'read-write',
      handle: this.fileSystem.open(path, mode),
      users: 0,
      isDiscarded: false,
      isClosing: false,
      isSlotFreed: false,
      isDraining: false,
    };
    this.entries.set(path, entry);
    // Waiters for this same file share the new handle instead of waiting for slots of their own;
    // one it cannot serve (read-write asked of a read-only handle) keeps its place and slot turn.
    for (const waiter of this.waiters.takeWaitingFor(path, (waiter) => servesMode(entry, waiter.mode))) waiter.wake(false);
    entry.handle.catch(() => {
      if (this.entries.get(path) === entry) this.entries.delete(path);
      // No descriptor was made: the slot goes on at once.
      this.freeSlotOf(entry);
    });
    return entry;
  }

  private drop(entry: Entry): Promise<void> | undefined {
    if (this.entries.get(entry.path) === entry) this.entries.delete(entry.path);
    if (this.idle.get(entry.path) === entry) this.idle.delete(entry.path);
    entry.isDiscarded = true;
    if (entry.users === 0) return this.closeQuietly(entry);
    if (!entry.isDraining && !entry.isClosing && !entry.isSlotFreed) {
      entry.isDraining = true;
      this.draining++;
    }
    return undefined;
  }

  /**
   * Gives up handles for the acquires that wait, least recently used first: idle ones, closed
   * at once, while more wait than closes are running; then, for waiters no close is coming for
   * yet, ones in use (forgotten now, closed when their users are done; see the header). An
   * idle handle is closed even while one in use drains: that one may take a while (an
   * fdatasync), and it serves the next waiter when it does.
   */
  private makeRoom(): void {
    // Each pass drops what it visits, so it costs O(handles given up), never O(handles open).
    for (const entry of this.idle.values()) {
      if (this.waiters.length <= this.closesRunning) break;
      this.drop(entry);
    }
    for (const entry of this.entries.values()) {
      if (this.waiters.length <= this.closesRunning + this.draining) return;
      this.drop(entry);
    }
  }

  private stopDraining(entry: Entry): void {
    if (!entry.isDraining) return;
    entry.isDraining = false;
    this.draining--;
  }

  private closeQuietly(entry: Entry): Promise<void> {
    if (entry.isClosing || entry.isSlotFreed) return Promise.resolve();
    this.stopDraining(entry);
    entry.isClosing = true;
    this.closesRunning++;
    // A close error on a descriptor we no longer use cannot lose data: every durable write
    // was fdatasync'ed through it before its acknowledgement.
    return entry.handle
      .then((handle) => handle.close())
      .catch(() => undefined)
      .then(() => {
        this.closesRunning--;
        this.freeSlotOf(entry);
      });
  }

  private freeSlotOf(entry: Entry): void {
    if (entry.isSlotFreed) return;
    this.stopDraining(entry);
    entry.isSlotFreed = true;
    this.giveSlotBack();
  }

  /** A descriptor slot is free: the oldest waiter takes it over, or the count goes down. */
  private giveSlotBack(): void {
    const next = this.waiters.shift();
    if (next !== undefined) {
      next.wake(true);
      return;
    }
    this.slotsHeld--;
    if (this.slotsHeld === 0) for (const listener of this.allClosedListeners.splice(0)) listener();
  }

  private closedError(path: string): BrokerError {
    return storageClosedError('open', path);
  }
}

/** Whether a handle opened as `entry.mode` serves a lease asked for in `mode`. */
function servesMode(entry: Entry, mode: OpenMode): boolean {
  return mode === 'read' || entry.mode !== 'read';
}

/**
 * The acquires waiting for a descriptor: the oldest ticket first, and those waiting for one file
 * at hand, each step O(1) amortized. A waiter taken out of the middle (woken because its file was
 * opened by another) is marked gone and skipped when the head reaches it.
 */
class WaiterQueue {
  /** In ticket order from `head` on; gone waiters are skipped, and dropped at compaction. */
  private items: Waiter[] = [];
  private head = 0;
  private readonly byPath = new Map<string, Set<Waiter>>();
  private waiting = 0;

  get length(): number {
    return this.waiting;
  }

  /**
   * Queues `waiter` in ticket order: at the end, unless it comes back with an older ticket (woken
   * to share a file given up before it ran). That one is put in its place by a binary search and
   * one splice, which moves the slots behind it: the one step here that is not O(1), rare, and
   * a memmove even with thousands waiting.
   */
  add(waiter: Waiter): void {
    const last = this.items[this.items.length - 1];
    if (this.items.length === this.head || (last as Waiter).ticket < waiter.ticket) {
      this.items.push(waiter);
    } else {
      let low = this.head;
      let high = this.items.length;
      while (low < high) {
        const middle = (low + high) >>> 1;
        if ((this.items[middle] as Waiter).ticket < waiter.ticket) low = middle + 1;
        else high = middle;
      }
      this.items.splice(low, 0, waiter);
    }
    let ofPath = this.byPath.get(waiter.path);
    if (ofPath === undefined) {
      ofPath = new Set();
      this.byPath.set(waiter.path, ofPath);
    }
    ofPath.add(waiter);
    this.waiting++;
  }

  /** Takes the oldest waiter out, or `undefined` when none waits. */
  shift(): Waiter | undefined {
    while (this.head < this.items.length) {
      const waiter = this.items[this.head] as Waiter;
      this.head++;
      if (waiter.isGone) continue;
      this.remove(waiter);
      this.compact();
      return waiter;
    }
    return undefined;
  }

  /** Takes out the waiters for `path` that `accepts` (for a handle just opened on it). */
  takeWaitingFor(path: string, accepts: (waiter: Waiter) => boolean): Waiter[] {
    const ofPath = this.byPath.get(path);
    if (ofPath === undefined) return [];
    const taken = [...ofPath].filter(accepts);
    for (const waiter of taken) this.remove(waiter);
    this.compact();
    return taken;
  }

  /** Takes every waiter out, oldest first. */
  takeAll(): Waiter[] {
    const taken = this.items.slice(this.head).filter((waiter) => !waiter.isGone);
    for (const waiter of taken) this.remove(waiter);
    this.items = [];
    this.head = 0;
    return taken;
  }

  /** For tests only: see `FileHandleCache.internalsForTests`. */
  internalsForTests(): WaiterQueueInternals {
    return {
      waiting: this.waiting,
      slots: this.items.length,
      queued: this.items
        .slice(this.head)
        .filter((waiter) => !waiter.isGone)
        .map((waiter) => ({ path: waiter.path, ticket: waiter.ticket })),
      byPath: [...this.byPath].map(([path, waiters]) => ({
        path,
        count: waiters.size,
        goneCount: [...waiters].filter((waiter) => waiter.isGone || waiter.path !== path).length,
      })),
      liveBeforeHead: this.items.slice(0, this.head).filter((waiter) => !waiter.isGone).length,
    };
  }

  private remove(waiter: Waiter): void {
    waiter.isGone = true;
    this.waiting--;
    const ofPath = this.byPath.get(waiter.path) as Set<Waiter>;
    ofPath.delete(waiter);
    if (ofPath.size === 0) this.byPath.delete(waiter.path);
  }

  /** Drops the skipped and gone slots once they are most of the array. */
  private compact(): void {
    if (this.waiting === 0) {
      // Empty: drop the finished waiters at once rather than keep up to 1,023 until the next wave.
      this.items = [];
      this.head = 0;
      return;
    }
    if (this.items.length < 1024 || this.items.length < 2 * this.waiting) return;
    this.items = this.items.slice(this.head).filter((waiter) => !waiter.isGone);
    this.head = 0;
  }
}
