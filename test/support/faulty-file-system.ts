/**
 * A `FileSystem` that wraps a real one (node's, by default) and fails on command, the way a
 * sick disk does: EIO on write, a short write followed by ENOSPC when the disk fills, EIO on
 * fdatasync, a truncate that fails. Everything not told to fail goes straight to the real
 * files, so a test can close the log and reopen it with `nodeFileSystem` to see what truly
 * reached the disk.
 *
 * Errors are shaped like node's own (`NodeJS.ErrnoException` with `code`, negative `errno`,
 * `syscall` and `path`), so storage wraps them exactly as it would wrap a real failure.
 *
 * Two ways to make writes fail:
 * - `failWritesWith(code, { afterBytes })`: the next `afterBytes` bytes are written (the write
 *   that crosses the budget is cut short there, like a real full disk), then every write fails
 *   with `code` until `clear()`.
 * - `limitFreeBytes(bytes)`: a small disk. Writes that grow a file use up the free bytes,
 *   truncates and unlinks give them back, and a write that does not fit is cut short, then
 *   fails with ENOSPC. Deleting a file really frees space, as on a real volume.
 *
 * `holdDatasyncs()` makes matching fdatasyncs wait until the test releases them one by one
 * (`releaseDatasync`, optionally failing it), so a test can see what the log does while an
 * fdatasync runs (flush=always pipelining).
 *
 * Every fault can be scoped to some files with `path` (a RegExp tested on the full path), for
 * example `/\.log$/` to spare partition.state and the index files.
 *
 * Owner of mutable state: the `FaultController` (armed faults, counters, free bytes). Not safe
 * to share between tests; make one per test.
 */
import { constants as osConstants } from 'node:os';
import { ForwardingFileHandle, nodeFileSystem, takeBytes, type FileHandle, type FileSystem, type OpenMode } from '../../src/storage/index.js';

export type FaultCode = 'EIO' | 'ENOSPC' | 'EDQUOT' | 'EROFS';

export interface FaultScope {
  /** Only files whose path matches fail; every file when absent. */
  path?: RegExp;
}

export interface FaultCounts {
  /** Writes that threw. */
  failedWrites: number;
  /** Writes that returned fewer bytes than asked. */
  shortWrites: number;
  failedDatasyncs: number;
  failedTruncates: number;
}

interface WriteFault {
  code: FaultCode;
  scope: FaultScope;
  /** Bytes still allowed through before writes start failing. */
  bytesLeft: number;
}

interface SimpleFault {
  code: FaultCode;
  scope: FaultScope;
  /** Fail this many more times; `Infinity` until cleared. */
  timesLeft: number;
}

const MESSAGES: Record<FaultCode, string> = {
  EIO: 'i/o error',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
};

/** An error shaped like the ones node's fs raises, e.g. `ENOSPC: no space left on device, write`. */
export function errnoError(code: FaultCode, syscall: string, path: string): NodeJS.ErrnoException {
  const error = new Error(`${code}: ${MESSAGES[code]}, ${syscall} '${path}'`) as NodeJS.ErrnoException;
  error.code = code;
  error.errno = -(osConstants.errno[code] ?? 5);
  error.syscall = syscall;
  error.path = path;
  return error;
}

export class FaultController {
  readonly counts: FaultCounts = { failedWrites: 0, shortWrites: 0, failedDatasyncs: 0, failedTruncates: 0 };
  private writeFault: WriteFault | undefined;
  private datasyncFault: SimpleFault | undefined;
  private truncateFault: SimpleFault | undefined;
  /** Free bytes of the simulated disk; `undefined` when no limit is set. */
  private freeBytes: number | undefined;
  private holdScope: FaultScope | undefined;
  /** fdatasyncs waiting for `releaseDatasync`, oldest first. */
  private readonly held: ((failWith: FaultCode | undefined) => void)[] = [];

  /**
   * From now on, let `afterBytes` more bytes (0 by default) be written to matching files, then
   * fail every write with `code`. The write that crosses the budget is short.
   */
  failWritesWith(code: FaultCode, options: FaultScope & { afterBytes?: number } = {}): void {
    this.writeFault = { code, scope: { path: options.path }, bytesLeft: options.afterBytes ?? 0 };
  }

  /** The next fdatasync on a matching file fails with `code` (EIO by default). */
  failNextDatasync(options: FaultScope & { code?: FaultCode } = {}): void {
    this.datasyncFault = { code: options.code ?? 'EIO', scope: { path: options.path }, timesLeft: 1 };
  }

  /** Every fdatasync on a matching file fails with `code` until `clear()`. */
  failDatasyncsWith(code: FaultCode, options: FaultScope = {}): void {
    this.datasyncFault = { code, scope: { path: options.path }, timesLeft: Infinity };
  }

  /** Every truncate on a matching file fails with `code` until `clear()`. */
  failTruncatesWith(code: FaultCode, options: FaultScope = {}): void {
    this.truncateFault = { code, scope: { path: options.path }, timesLeft: Infinity };
  }

  /** From now on every fdatasync on a matching file waits for `releaseDatasync` (until `clear()`). */
  holdDatasyncs(options: FaultScope = {}): void {
    this.holdScope = { path: options.path };
  }

  /** How many fdatasyncs are waiting to be released. */
  get heldDatasyncs(): number {
    return this.held.length;
  }

  /** Lets the oldest held fdatasync go on to the disk, or fail with `failWith` (EIO, ...). */
  releaseDatasync(options: { failWith?: FaultCode } = {}): void {
    const release = this.held.shift();
    if (release === undefined) throw new Error('no fdatasync is held');
    release(options.failWith);
  }

  /** Simulates a disk with `bytes` free from now on (see the file header). */
  limitFreeBytes(bytes: number): void {
    this.freeBytes = bytes;
  }

  /** Free bytes left on the simulated disk, or `undefined` without a limit. */
  get freeBytesLeft(): number | undefined {
    return this.freeBytes;
  }

  /** Disarms every fault, lets every held fdatasync go and lifts the disk limit; counters stay. */
  clear(): void {
    this.holdScope = undefined;
    for (const release of this.held.splice(0)) release(undefined);
    this.writeFault = undefined;
    this.datasyncFault = undefined;
    this.truncateFault = undefined;
    this.freeBytes = undefined;
  }

  // ---- Used by the wrapped handles ----------------------------------------------------------

  /**
   * How many of `requestedBytes` at `position` may be written to `path` (a file now
   * `sizeBytes` long); throws when not even one byte may.
   */
  admitWrite(path: string, requestedBytes: number, position: number, sizeBytes: number): number {
    let allowed = requestedBytes;
    let code: FaultCode = 'EIO';
    const fault = this.writeFault;
    if (fault !== undefined && matches(fault.scope, path) && fault.bytesLeft < allowed) {
      allowed = fault.bytesLeft;
      code = fault.code;
    }
    if (this.freeBytes !== undefined) {
      const growthBytes = Math.max(0, position + allowed - sizeBytes);
      if (growthBytes > this.freeBytes) {
        allowed = Math.max(0, sizeBytes + this.freeBytes - position);
        code = 'ENOSPC';
      }
    }
    if (allowed === 0 && requestedBytes > 0) {
      this.counts.failedWrites++;
      throw errnoError(code, 'write', path);
    }
    return allowed;
  }

  /** Books a write that went through (budget and free space). */
  recordWrite(path: string, writtenBytes: number, position: number, sizeBytesBefore: number, requestedBytes: number): void {
    const fault = this.writeFault;
    if (fault !== undefined && matches(fault.scope, path)) fault.bytesLeft = Math.max(0, fault.bytesLeft - writtenBytes);
    if (this.freeBytes !== undefined) this.freeBytes -= Math.max(0, position + writtenBytes - sizeBytesBefore);
    if (writtenBytes < requestedBytes) this.counts.shortWrites++;
  }

  /** Waits while fdatasyncs on `path` are held; throws if the test released this one to fail. */
  async waitWhileHeld(path: string): Promise<void> {
    if (this.holdScope === undefined || !matches(this.holdScope, path)) return;
    const failWith = await new Promise<FaultCode | undefined>((resolve) => this.held.push(resolve));
    if (failWith === undefined) return;
    this.counts.failedDatasyncs++;
    throw errnoError(failWith, 'fdatasync', path);
  }

  checkDatasync(path: string): void {
    const fault = this.datasyncFault;
    if (fault === undefined || !matches(fault.scope, path)) return;
    fault.timesLeft--;
    if (fault.timesLeft <= 0) this.datasyncFault = undefined;
    this.counts.failedDatasyncs++;
    throw errnoError(fault.code, 'fdatasync', path);
  }

  checkTruncate(path: string): void {
    const fault = this.truncateFault;
    if (fault === undefined || !matches(fault.scope, path)) return;
    fault.timesLeft--;
    if (fault.timesLeft <= 0) this.truncateFault = undefined;
    this.counts.failedTruncates++;
    throw errnoError(fault.code, 'ftruncate', path);
  }

  /** A file shrank or vanished: its bytes are free again on the simulated disk. */
  releaseBytes(bytes: number): void {
    if (this.freeBytes !== undefined) this.freeBytes += Math.max(0, bytes);
  }

  /** A truncate grew a file (sparse on real disks, but counted here to stay conservative). */
  claimBytes(path: string, bytes: number): void {
    if (this.freeBytes === undefined || bytes <= 0) return;
    if (bytes > this.freeBytes) throw errnoError('ENOSPC', 'ftruncate', path);
    this.freeBytes -= bytes;
  }
}

function matches(scope: FaultScope, path: string): boolean {
  return scope.path === undefined || scope.path.test(path);
}

class FaultyFileHandle extends ForwardingFileHandle {
  constructor(
    inner: FileHandle,
    private readonly faults: FaultController,
  ) {
    super(inner);
  }

  override async writev(buffers: readonly Buffer[], position: number): Promise<number> {
    const requestedBytes = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    const sizeBytesBefore = await this.inner.sizeBytes();
    const allowedBytes = this.faults.admitWrite(this.path, requestedBytes, position, sizeBytesBefore);
    const written = await this.inner.writev(allowedBytes === requestedBytes ? buffers : takeBytes(buffers, allowedBytes), position);
    this.faults.recordWrite(this.path, written, position, sizeBytesBefore, requestedBytes);
    return written;
  }

  override async datasync(): Promise<void> {
    await this.faults.waitWhileHeld(this.path);
    this.faults.checkDatasync(this.path);
    await this.inner.datasync();
  }

  override async truncate(sizeBytes: number): Promise<void> {
    this.faults.checkTruncate(this.path);
    const before = await this.inner.sizeBytes();
    this.faults.claimBytes(this.path, sizeBytes - before);
    await this.inner.truncate(sizeBytes);
    this.faults.releaseBytes(before - sizeBytes);
  }
}

export interface FaultyFileSystem {
  fileSystem: FileSystem;
  faults: FaultController;
}

/** Wraps `base` (node's file system by default) with a fresh, disarmed `FaultController`. */
export function createFaultyFileSystem(base: FileSystem = nodeFileSystem): FaultyFileSystem {
  const faults = new FaultController();
  const fileSystem: FileSystem = {
    async open(path: string, mode: OpenMode) {
      const before = mode === 'create' ? await base.trySizeBytes(path) : undefined;
      const handle = await base.open(path, mode);
      if (before !== undefined) faults.releaseBytes(before); // 'create' truncates an existing file
      return new FaultyFileHandle(handle, faults);
    },
    tryReadFile: (path) => base.tryReadFile(path),
    trySizeBytes: (path) => base.trySizeBytes(path),
    readdir: (path) => base.readdir(path),
    mkdir: (path) => base.mkdir(path),
    async rename(fromPath, toPath) {
      const replacedBytes = await base.trySizeBytes(toPath);
      await base.rename(fromPath, toPath);
      faults.releaseBytes(replacedBytes ?? 0);
    },
    async unlink(path) {
      const sizeBytes = await base.trySizeBytes(path);
      await base.unlink(path);
      faults.releaseBytes(sizeBytes ?? 0);
    },
    removeTree: (path) => base.removeTree(path),
    syncDirectory: (path) => base.syncDirectory(path),
  };
  return { fileSystem, faults };
}
