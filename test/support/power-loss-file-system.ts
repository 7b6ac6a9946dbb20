/**
 * A `FileSystem` that remembers what a power cut would keep of each file: the size it had when
 * its last successful fdatasync was called (the sync covers every write that finished before
 * the call), lowered by any truncate since. Everything goes straight to the real files; a test
 * copies the directory at the moment of the cut and trims each copied log with
 * `trimToDurable`, then opens the copy as a restart after the power loss would.
 *
 * The model is about data, not names: files are assumed to exist after the cut (creates and
 * renames in storage are followed by a directory fsync), and only the files a test trims lose
 * bytes. That fits the .log files under flush=always, where the claim is that every
 * acknowledged batch lies below the durable size.
 */
import { truncateSync } from 'node:fs';
import { nodeFileSystem, type FileHandle, type FileSystem, type OpenMode } from '../../src/storage/index.js';

export interface PowerLossFileSystem {
  fileSystem: FileSystem;
  /** Durable size of each file ever synced, by path; a file not in it has nothing durable. */
  durableSizes(): Map<string, number>;
}

export function createPowerLossFileSystem(base: FileSystem = nodeFileSystem): PowerLossFileSystem {
  const durable = new Map<string, number>();
  const lower = (path: string, sizeBytes: number): void => {
    const known = durable.get(path);
    if (known !== undefined && known > sizeBytes) durable.set(path, sizeBytes);
  };
  const wrap = (inner: FileHandle, path: string): FileHandle => ({
    path: inner.path,
    read: (buffer, offset, length, position) => inner.read(buffer, offset, length, position),
    writev: (buffers, position) => inner.writev(buffers, position),
    async datasync() {
      const sizeAtCall = await inner.sizeBytes();
      await inner.datasync();
      durable.set(path, Math.max(durable.get(path) ?? 0, sizeAtCall));
    },
    async truncate(sizeBytes) {
      lower(path, sizeBytes);
      await inner.truncate(sizeBytes);
    },
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
  });
  const fileSystem: FileSystem = {
    ...base,
    async open(path: string, mode: OpenMode) {
      if (mode === 'create') durable.delete(path);
      return wrap(await base.open(path, mode), path);
    },
    async unlink(path) {
      durable.delete(path);
      await base.unlink(path);
    },
  };
  return { fileSystem, durableSizes: () => new Map(durable) };
}

/** Cuts `copiedPath` (a copy of `originalPath` taken at the power cut) to what the cut keeps. */
export function trimToDurable(copiedPath: string, originalPath: string, durableSizes: Map<string, number>): void {
  truncateSync(copiedPath, durableSizes.get(originalPath) ?? 0);
}
