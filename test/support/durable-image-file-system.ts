/**
 * A `FileSystem` that knows, at every call, exactly what a power cut at that instant would
 * leave of one directory: names and data both. It is stricter than power-loss-file-system.ts,
 * which models data only.
 *
 * The model (the least the storage code may rely on, as POSIX promises it):
 * - A file's data and size survive as they were when its last successful fdatasync was called
 *   (every write finished before the call is covered); never-synced data is lost.
 * - A directory's entries (creates, renames, unlinks) survive as they were when its last
 *   successful directory fsync was called; a name created, renamed or unlinked since is not
 *   (a created file is gone, a renamed one is under its old name, an unlinked one is back).
 * Names point at files (inodes), so a rename moves the file's durable data with it.
 *
 * Everything goes straight to the real files. Before each call that changes the disk (create,
 * write, fdatasync, truncate, rename, unlink, directory fsync), `onCrashPoint` is called
 * synchronously, and `image()` then gives what a power cut there would leave; `writeImage`
 * materialises it in an empty directory, to be opened as the restart after the cut would.
 * Only the files of `dir` itself are modelled; the directory itself is assumed durable.
 *
 * Owner of mutable state: the object `createDurableImageFileSystem` returns.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { nodeFileSystem, type FileHandle, type FileSystem, type OpenMode } from '../../src/storage/index.js';

interface Inode {
  id: number;
  /** The file's bytes as the last successful fdatasync made them durable. */
  durable: Buffer;
}

/** What a power cut at one instant leaves: name → bytes. */
export type DurableImage = ReadonlyMap<string, Buffer>;

export interface DurableImageFileSystem {
  fileSystem: FileSystem;
  /** What a power cut now would leave of the directory (see the file header). */
  image(): DurableImage;
  /** How many crash points (disk-changing calls) have been passed. */
  crashPoints(): number;
}

export function createDurableImageFileSystem(options: {
  dir: string;
  onCrashPoint?: (index: number) => void;
  base?: FileSystem;
  /**
   * What is durable of `dir` when the model starts, when that is not all of it (a restart after
   * a process crash: the page cache held more than the disk). Files of `dir` not named in it
   * have nothing durable; names in it that `dir` lacks come back at a power cut.
   */
  initial?: DurableImage;
}): DurableImageFileSystem {
  const base = options.base ?? nodeFileSystem;
  const dir = options.dir;
  let nextInodeId = 0;
  /** Names in the directory now, and the files they point at. */
  const live = new Map<string, Inode>();
  /** Names as the last directory fsync made them durable. */
  let durableNames = new Map<string, Inode>();
  let crashPointCount = 0;
  if (options.initial !== undefined) {
    for (const name of readdirSync(dir)) live.set(name, { id: nextInodeId++, durable: Buffer.alloc(0) });
    for (const [name, bytes] of options.initial) {
      const inode = live.get(name) ?? { id: nextInodeId++, durable: Buffer.alloc(0) };
      inode.durable = bytes;
      durableNames.set(name, inode);
    }
  }

  const isModelled = (path: string): boolean => dirname(path) === dir;
  const crashPoint = (): void => {
    options.onCrashPoint?.(crashPointCount);
    crashPointCount++;
  };


  const fileSystem: FileSystem = {
    ...base,
    async open(path: string, mode: OpenMode) {
      if (!isModelled(path)) return base.open(path, mode);
      const name = basename(path);
      if (mode === 'create') crashPoint();
      const handle = await base.open(path, mode);
      let inode = live.get(name);
      if (inode === undefined) {
        // A file that existed before the model started is taken as durable as it is.
        inode = { id: nextInodeId++, durable: mode === 'create' ? Buffer.alloc(0) : readFileSync(path) };
        live.set(name, inode);
        if (mode !== 'create') durableNames.set(name, inode);
      } else if (mode === 'create') {
        inode.durable = Buffer.alloc(0); // truncated to empty; as truncate above
      }
      return durableFileHandle(handle, inode, crashPoint);
    },
    async rename(fromPath, toPath) {
      if (!isModelled(fromPath) || !isModelled(toPath)) return base.rename(fromPath, toPath);
      crashPoint();
      await base.rename(fromPath, toPath);
      const inode = live.get(basename(fromPath));
      live.delete(basename(fromPath));
      if (inode !== undefined) live.set(basename(toPath), inode);
    },
    async unlink(path) {
      if (!isModelled(path)) return base.unlink(path);
      crashPoint();
      await base.unlink(path);
      live.delete(basename(path));
    },
    async syncDirectory(path) {
      if (path !== dir) return base.syncDirectory(path);
      crashPoint();
      const atCall = new Map(live);
      await base.syncDirectory(path);
      durableNames = atCall;
    },
  };

  return {
    fileSystem,
    crashPoints: () => crashPointCount,
    image() {
      const files = new Map<string, Buffer>();
      for (const [name, inode] of durableNames) files.set(name, inode.durable);
      return files;
    },
  };
}

/** Writes `image` into `toDir` (an empty directory). */
export function writeImage(image: DurableImage, toDir: string): void {
  for (const [name, bytes] of image) writeFileSync(join(toDir, name), bytes);
}

/**
 * A file handle of a durable-image model: a cut point before every call that changes the
 * file, and `inode.durable` following what an fdatasync made durable (every write finished
 * before the call) or a truncate may have cut (until the next fdatasync either size may
 * survive; the smaller is what loses data). Shared with durable-tree-image-file-system.ts.
 */
export function durableFileHandle(inner: FileHandle, inode: { durable: Buffer }, crashPoint: () => void): FileHandle {
  return {
    path: inner.path,
    read: (buffer, offset, length, position) => inner.read(buffer, offset, length, position),
    async writev(buffers, position) {
      crashPoint();
      return inner.writev(buffers, position);
    },
    async datasync() {
      crashPoint();
      const atCall = readFileSync(inner.path); // read now, synchronously: what the call covers
      await inner.datasync();
      inode.durable = atCall;
    },
    async truncate(sizeBytes) {
      crashPoint();
      if (inode.durable.length > sizeBytes) inode.durable = inode.durable.subarray(0, sizeBytes);
      await inner.truncate(sizeBytes);
    },
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
  };
}
