/**
 * The file-system seam. Storage does all I/O through `FileSystem`; production uses
 * `nodeFileSystem` (node:fs with raw descriptors and callbacks, ~2× cheaper per call than
 * `fs/promises` FileHandle), tests wrap it to inject EIO, ENOSPC, short writes and failing
 * fsync (test/support/faulty-file-system.ts).
 *
 * Errors come out as the raw Node `ErrnoException`; storage wraps them once, at its boundary,
 * with `storageError` (errors.ts in this folder), which passes a `BrokerError` through as it
 * is: the SHUTTING_DOWN of a `ClosableFileSystem` after its `closeAll`.
 */
import * as fs from 'node:fs';
import { dirname } from 'node:path';
import { assert } from '../common/assert.js';
import type { Slots } from '../common/slots.js';
import { storageClosedError } from './errors.js';
import { TMP_SUFFIX } from './file-names.js';

export type OpenMode =
  /** Existing file, read only. */
  | 'read'
  /** Existing file, read and positional write. */
  | 'read-write'
  /** Create or truncate to empty, read and write. */
  | 'create';

export interface FileHandle {
  readonly path: string;
  /** Reads up to `length` bytes at `position` into `buffer[offset…]`; returns bytes read (0 at EOF). */
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number>;
  /** Writes `buffers` back to back at `position`; returns bytes written, which may be short. */
  writev(buffers: readonly Buffer[], position: number): Promise<number>;
  /** fdatasync: the file's data (and size) are on stable storage when this resolves. */
  datasync(): Promise<void>;
  truncate(sizeBytes: number): Promise<void>;
  sizeBytes(): Promise<number>;
  close(): Promise<void>;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  /** Whole file, or `undefined` when it does not exist. */
  tryReadFile(path: string): Promise<Buffer | undefined>;
  /** Size in bytes, or `undefined` when the file does not exist. */
  trySizeBytes(path: string): Promise<number | undefined>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  rename(fromPath: string, toPath: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  unlink(path: string): Promise<void>;
  /** Removes a directory and everything in it. */
  removeTree(path: string): Promise<void>;
  /** fsync on a directory, so a create, rename or unlink inside it survives a crash. */
  syncDirectory(path: string): Promise<void>;
}

const OPEN_FLAGS: Record<OpenMode, string> = { read: 'r', 'read-write': 'r+', create: 'w+' };

function call<T>(start: (done: (error: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value)));
  });
}

class NodeFileHandle implements FileHandle {
  constructor(
    readonly path: string,
    private readonly fd: number,
  ) {}

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return call((done) => fs.read(this.fd, buffer, offset, length, position, done));
  }

  writev(buffers: readonly Buffer[], position: number): Promise<number> {
    // libuv splits more than IOV_MAX buffers into several writev calls itself.
    return call((done) => fs.writev(this.fd, buffers as Buffer[], position, done));
  }

  datasync(): Promise<void> {
    return call<void>((done) => fs.fdatasync(this.fd, (error) => done(error, undefined)));
  }

  truncate(sizeBytes: number): Promise<void> {
    return call<void>((done) => fs.ftruncate(this.fd, sizeBytes, (error) => done(error, undefined)));
  }

  async sizeBytes(): Promise<number> {
    const stats = await call<fs.Stats>((done) => fs.fstat(this.fd, done));
    return stats.size;
  }

  close(): Promise<void> {
    return call<void>((done) => fs.close(this.fd, (error) => done(error, undefined)));
  }
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENOENT';
}

export const nodeFileSystem: FileSystem = {
  async open(path, mode) {
    const fd = await call<number>((done) => fs.open(path, OPEN_FLAGS[mode], 0o644, done));
    return new NodeFileHandle(path, fd);
  },
  async tryReadFile(path) {
    try {
      return await fs.promises.readFile(path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  async trySizeBytes(path) {
    try {
      return (await fs.promises.stat(path)).size;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  },
  readdir: (path) => fs.promises.readdir(path),
  async mkdir(path) {
    await fs.promises.mkdir(path, { recursive: true });
  },
  rename: (fromPath, toPath) => fs.promises.rename(fromPath, toPath),
  async unlink(path) {
    try {
      await fs.promises.unlink(path);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
  },
  removeTree: (path) => fs.promises.rm(path, { recursive: true, force: true }),
  async syncDirectory(path) {
    const fd = await call<number>((done) => fs.open(path, 'r', done));
    try {
      await call<void>((done) => fs.fsync(fd, (error) => done(error, undefined)));
    } finally {
      await call<void>((done) => fs.close(fd, (error) => done(error, undefined)));
    }
  },
};

/**
 * `fileSystem` with at most `slots.count` descriptors held at once by its calls: an open holds
 * a slot until its handle closes, a whole-file read, a directory listing, a directory fsync or
 * a tree removal holds one while it runs, and the calls that need none (stat, rename, unlink,
 * mkdir) pass straight through. The others wait their turn.
 *
 * Storage uses it for every file it opens only for a moment (partition state, producer
 * snapshots, index files, directory fsyncs, a new segment's create) so a burst over thousands
 * of partitions (rolls, first writes after a clean start) cannot run the broker out of
 * descriptors; segment files have their own bound (`FileHandleCache`). No deadlock: none of
 * these calls is made while the caller holds a handle from another one (each opens, works and
 * closes before the next), so every holder finishes without waiting for a slot. Their end at
 * shutdown is a `ClosableFileSystem` under the slots.
 */
export function withDescriptorSlots(fileSystem: FileSystem, slots: Slots): FileSystem {
  return {
    async open(path, mode) {
      await slots.acquire();
      let handle: FileHandle;
      try {
        handle = await fileSystem.open(path, mode);
      } catch (error) {
        slots.release();
        throw error;
      }
      return new OnCloseFileHandle(handle, () => slots.release());
    },
    tryReadFile: (path) => slots.run(() => fileSystem.tryReadFile(path)),
    trySizeBytes: (path) => fileSystem.trySizeBytes(path),
    readdir: (path) => slots.run(() => fileSystem.readdir(path)),
    mkdir: (path) => fileSystem.mkdir(path),
    rename: (fromPath, toPath) => fileSystem.rename(fromPath, toPath),
    unlink: (path) => fileSystem.unlink(path),
    removeTree: (path) => slots.run(() => fileSystem.removeTree(path)),
    syncDirectory: (path) => slots.run(() => fileSystem.syncDirectory(path)),
  };
}

/** A handle that passes every call to `inner`: the base of wrappers that change a few of them. */
export class ForwardingFileHandle implements FileHandle {
  constructor(protected readonly inner: FileHandle) {}

  get path(): string {
    return this.inner.path;
  }

  read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, offset, length, position);
  }

  writev(buffers: readonly Buffer[], position: number): Promise<number> {
    return this.inner.writev(buffers, position);
  }

  datasync(): Promise<void> {
    return this.inner.datasync();
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.inner.truncate(sizeBytes);
  }

  sizeBytes(): Promise<number> {
    return this.inner.sizeBytes();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/**
 * A handle that tells `onClosed` once it is closed: a slot given back (`withDescriptorSlots`),
 * a use ended (`ClosableFileSystem`).
 */
export class OnCloseFileHandle extends ForwardingFileHandle {
  private isClosed = false;

  constructor(
    inner: FileHandle,
    private readonly onClosed: () => void,
  ) {
    super(inner);
  }

  override async close(): Promise<void> {
    // Once only: a second close(2) could close a descriptor number the OS has reused since.
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      await this.inner.close();
    } finally {
      // Even a failed close(2) has released the descriptor on Linux.
      this.onClosed();
    }
  }
}

/**
 * `fileSystem` with an end, as `FileHandleCache.closeAll` is the segment files' end: from
 * `closeAll()` on, every call fails with SHUTTING_DOWN (`storageClosedError`) and touches no
 * file, and `closeAll` resolves once the calls already running have returned and every handle
 * they opened is closed. A handle open by then keeps working until its holder closes it: like
 * a segment lease, it is never closed under its user, whose next call is refused instead. A
 * refused call leaves on disk what a crash just before it would: a `writeFileAtomically` whose
 * rename is refused leaves its .tmp file, which the next open removes (recovery.ts).
 *
 * `LogManager` puts every file it opens only for a moment behind one, under
 * `withDescriptorSlots` (so a call still waiting for a slot at `closeAll` is refused once it
 * gets one, having opened nothing), and ends it only after every log has closed, because a
 * log's close writes through it (the clean mark in partition.state, the producer snapshot, the
 * active segment's index files). What may still be running then are reads, which do not go
 * through a log's writer: an index load or rebuild (segment.ts `indexes`). Without the end,
 * such a read kept an index file open after storage had closed, or opened the next one then
 * (log-manager.test.ts, describe 'close').
 *
 * Owner of mutable state: this object (the calls running and handles open, and whether it is closed).
 */
export class ClosableFileSystem implements FileSystem {
  /** Calls running and handles open, each as "<operation> <path>", under a number of its own. */
  private readonly uses = new Map<number, string>();
  private nextUseId = 0;
  private isClosed = false;
  /** `closeAll` calls waiting for `uses` to empty. */
  private readonly idleListeners: (() => void)[] = [];

  constructor(private readonly inner: FileSystem) {}

  /** The calls running and handles open, as "<operation> <path>" (for a log line). */
  get inUse(): string[] {
    return [...this.uses.values()];
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const useId = this.begin('open', path);
    let handle: FileHandle;
    try {
      handle = await this.inner.open(path, mode);
    } catch (error) {
      this.end(useId);
      throw error;
    }
    return new OnCloseFileHandle(handle, () => this.end(useId));
  }

  tryReadFile(path: string): Promise<Buffer | undefined> {
    return this.run('read', path, () => this.inner.tryReadFile(path));
  }

  trySizeBytes(path: string): Promise<number | undefined> {
    return this.run('stat', path, () => this.inner.trySizeBytes(path));
  }

  readdir(path: string): Promise<string[]> {
    return this.run('list', path, () => this.inner.readdir(path));
  }

  mkdir(path: string): Promise<void> {
    return this.run('make the directory', path, () => this.inner.mkdir(path));
  }

  rename(fromPath: string, toPath: string): Promise<void> {
    return this.run('rename', fromPath, () => this.inner.rename(fromPath, toPath));
  }

  unlink(path: string): Promise<void> {
    return this.run('remove', path, () => this.inner.unlink(path));
  }

  removeTree(path: string): Promise<void> {
    return this.run('remove the tree', path, () => this.inner.removeTree(path));
  }

  syncDirectory(path: string): Promise<void> {
    return this.run('fsync the directory', path, () => this.inner.syncDirectory(path));
  }

  /**
   * Refuses every call from now on, and resolves once nothing is running or open (at once if
   * nothing is). The caller bounds the wait: a read on a hung disk may never return.
   * Idempotent.
   */
  async closeAll(): Promise<void> {
    this.isClosed = true;
    if (this.uses.size === 0) return;
    await new Promise<void>((resolve) => this.idleListeners.push(resolve));
  }

  private async run<T>(operation: string, path: string, work: () => Promise<T>): Promise<T> {
    const useId = this.begin(operation, path);
    try {
      return await work();
    } finally {
      this.end(useId);
    }
  }

  private begin(operation: string, path: string): number {
    if (this.isClosed) throw storageClosedError(operation, path);
    const useId = this.nextUseId++;
    this.uses.set(useId, `${operation} ${path}`);
    return useId;
  }

  private end(useId: number): void {
    this.uses.delete(useId);
    if (this.uses.size === 0) for (const listener of this.idleListeners.splice(0)) listener();
  }
}

/**
 * Replaces `path` with `data` so that a crash at any moment leaves either the old file whole
 * or the new file whole, never a mix: write a temporary file, fdatasync it, rename it over the
 * old one, fsync the directory.
 */
export async function writeFileAtomically(fileSystem: FileSystem, path: string, data: Buffer): Promise<void> {
  await writeFilesAtomically(fileSystem, [{ path, data }]);
}

/**
 * `writeFileAtomically` for several files of one directory, sharing its directory fsync: each
 * file is replaced atomically on its own (a crash leaves each one old or new, whole), not the
 * set as one. The temporary files are written and fdatasynced side by side, so a segment's two
 * index files cost three fsyncs, two of them at once, instead of four one after another.
 */
export async function writeFilesAtomically(fileSystem: FileSystem, files: readonly { path: string; data: Buffer }[]): Promise<void> {
  const first = files[0];
  if (first === undefined) return;
  const dir = dirname(first.path);
  assert(
    files.every((file) => dirname(file.path) === dir),
    'one directory fsync makes the renames durable only in one directory',
  );
  // Every temporary file settles before anything is renamed or thrown, so no write runs on
  // after the caller has been told of a failure.
  const written = await Promise.allSettled(files.map((file) => writeSyncedTemp(fileSystem, file.path, file.data)));
  for (const result of written) if (result.status === 'rejected') throw result.reason;
  // Crash before a rename: that file's old version is intact. After the renames but before
  // the directory fsync: each name may hold its old or its new file, each complete.
  for (const file of files) await fileSystem.rename(tempPathOf(file.path), file.path);
  await fileSystem.syncDirectory(dir);
}

function tempPathOf(path: string): string {
  return `${path}${TMP_SUFFIX}`; // what recovery removes (file-names.ts `isAtomicReplaceTempName`)
}

async function writeSyncedTemp(fileSystem: FileSystem, path: string, data: Buffer): Promise<void> {
  const handle = await fileSystem.open(tempPathOf(path), 'create');
  try {
    await writeAll(handle, [data], 0);
    // Crash before this fdatasync: the .tmp may be torn; it is never read, only removed.
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * The most one writev call carries. Measured on this VM (bench/RESULTS.md, run 5 "What changed append"):
 * buffered writes of 1 MiB run at page-cache speed run after run, while single writes of 2–16
 * MiB were often 2–4× slower, with or without an fdatasync after them. The extra calls cost
 * ~30 µs per MiB at most.
 */
export const WRITE_CALL_BYTES_MAX = 1024 * 1024;

/**
 * Writes every byte of `buffers` at `position`, in writev calls of at most
 * WRITE_CALL_BYTES_MAX, continuing after short writes. A failure part-way leaves a prefix of
 * the bytes written: callers cut the file back (partition-log.ts `undoWrite`).
 */
export async function writeAll(handle: FileHandle, buffers: readonly Buffer[], position: number): Promise<void> {
  let remaining = buffers.filter((buffer) => buffer.length > 0);
  let at = position;
  while (remaining.length > 0) {
    const written = await handle.writev(takeBytes(remaining, WRITE_CALL_BYTES_MAX), at);
    if (written <= 0) {
      const error = new Error(`write of ${totalBytes(remaining)} bytes at ${at} made no progress`) as NodeJS.ErrnoException;
      error.code = 'EIO';
      throw error;
    }
    at += written;
    remaining = dropBytes(remaining, written);
  }
}

/** Fills `length` bytes at `position` unless EOF comes first; returns the bytes read. */
export async function readFully(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const read = await handle.read(buffer, done, length - done, position + done);
    if (read === 0) break;
    done += read;
  }
  return done;
}

function totalBytes(buffers: readonly Buffer[]): number {
  let sum = 0;
  for (const buffer of buffers) sum += buffer.length;
  return sum;
}

/**
 * The first `count` bytes of `buffers` (all of them if fewer), as views (no copy). Also for
 * `FileSystem` wrappers that cut a write short, such as the tests' faulty file system.
 */
export function takeBytes(buffers: readonly Buffer[], count: number): Buffer[] {
  const taken: Buffer[] = [];
  let toTake = count;
  for (const buffer of buffers) {
    if (toTake === 0) break;
    taken.push(buffer.length <= toTake ? buffer : buffer.subarray(0, toTake));
    toTake -= Math.min(buffer.length, toTake);
  }
  return taken;
}

function dropBytes(buffers: readonly Buffer[], count: number): Buffer[] {
  const rest: Buffer[] = [];
  let toDrop = count;
  for (const buffer of buffers) {
    if (toDrop >= buffer.length) {
      toDrop -= buffer.length;
      continue;
    }
    rest.push(toDrop > 0 ? buffer.subarray(toDrop) : buffer);
    toDrop = 0;
  }
  return rest;
}
