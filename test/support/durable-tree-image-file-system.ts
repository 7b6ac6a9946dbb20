/**
 * durable-image-file-system.ts's model over a directory tree: what a power cut at each call
 * would leave of a data directory and the partition directories inside it, names and data.
 * The log manager needs it because it makes, renames and removes directories: a partition's
 * name lives in the data directory, its files in its own directory, and each becomes durable
 * only through an fsync of the directory that holds it.
 *
 * The model is the same (the least the storage code may rely on, as POSIX promises it):
 * - A file's data and size survive as they were when its last successful fdatasync was called;
 *   never-synced data is lost.
 * - A directory's entries (files and directories made, renamed, unlinked or removed in it)
 *   survive as they were when its last successful directory fsync was called.
 * Names point at inodes, so a renamed directory takes its own durable entries with it, and a
 * removed one whose removal was never made durable comes back as it last was made durable. A
 * directory whose name is not durable in its parent is lost with everything in it.
 *
 * Everything goes straight to the real files. Before each call that changes the disk (a file
 * create, write, fdatasync or truncate, a mkdir that makes a directory, a rename, unlink, tree
 * removal or directory fsync), `onCrashPoint` is called synchronously, and `image()` then gives
 * what a power cut there would leave; `writeTreeImage` materialises it in an empty directory.
 * `dir` itself is assumed durable; whatever it holds when the model starts counts as durable.
 *
 * Owner of mutable state: the object `createDurableTreeImageFileSystem` returns.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { nodeFileSystem, type FileSystem, type OpenMode } from '../../src/storage/index.js';
import { durableFileHandle } from './durable-image-file-system.js';

interface FileInode {
  kind: 'file';
  /** The file's bytes as the last successful fdatasync made them durable. */
  durable: Buffer;
}

interface DirectoryInode {
  kind: 'directory';
  /** Entries now. */
  live: Map<string, Inode>;
  /** Entries as the last fsync of this directory made them durable. */
  durable: Map<string, Inode>;
}

type Inode = FileInode | DirectoryInode;

/** What a power cut at one instant leaves: path relative to `dir` → the file's bytes, or `'directory'`. */
export type DurableTreeImage = ReadonlyMap<string, Buffer | 'directory'>;

export interface DurableTreeImageFileSystem {
  fileSystem: FileSystem;
  /** What a power cut now would leave of the tree (see the file header). */
  image(): DurableTreeImage;
  /** How many crash points (disk-changing calls) have been passed. */
  crashPoints(): number;
}

export function createDurableTreeImageFileSystem(options: { dir: string; onCrashPoint?: (index: number) => void; base?: FileSystem }): DurableTreeImageFileSystem {
  const base = options.base ?? nodeFileSystem;
  const root = readExisting(options.dir);
  let crashPointCount = 0;
  const crashPoint = (): void => {
    options.onCrashPoint?.(crashPointCount);
    crashPointCount++;
  };

  /** The names from `dir` down to `path`; undefined for a path outside `dir`, [] for `dir`. */
  const partsOf = (path: string): string[] | undefined => {
    const rel = relative(options.dir, path);
    if (rel === '') return [];
    if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
    return rel.split(sep);
  };
  const lookup = (parts: readonly string[]): Inode | undefined => {
    let inode: Inode | undefined = root;
    for (const name of parts) {
      if (inode?.kind !== 'directory') return undefined;
      inode = inode.live.get(name);
    }
    return inode;
  };
  /** The modelled directory that holds `path`, and its name there; undefined when not modelled. */
  const placeOf = (path: string): { parent: DirectoryInode; name: string } | undefined => {
    const parts = partsOf(path);
    if (parts === undefined || parts.length === 0) return undefined;
    const parent = lookup(parts.slice(0, -1));
    if (parent?.kind !== 'directory') return undefined;
    return { parent, name: parts[parts.length - 1] as string };
  };

  const fileSystem: FileSystem = {
    ...base,
    async open(path: string, mode: OpenMode) {
      const place = placeOf(path);
      if (place === undefined) return base.open(path, mode);
      if (mode === 'create') crashPoint();
      const handle = await base.open(path, mode);
      let inode = place.parent.live.get(place.name);
      if (inode?.kind !== 'file') {
        inode = { kind: 'file', durable: Buffer.alloc(0) };
        place.parent.live.set(place.name, inode);
      } else if (mode === 'create') {
        inode.durable = Buffer.alloc(0); // truncated to empty; as truncate above
      }
      return durableFileHandle(handle, inode, crashPoint);
    },
    async mkdir(path) {
      const parts = partsOf(path);
      if (parts === undefined || lookup(parts) !== undefined) return base.mkdir(path);
      crashPoint();
      await base.mkdir(path);
      // Recursive, as nodeFileSystem's: every missing directory on the way is made.
      let parent = root;
      for (const name of parts) {
        let child = parent.live.get(name);
        if (child?.kind !== 'directory') {
          child = { kind: 'directory', live: new Map(), durable: new Map() };
          parent.live.set(name, child);
        }
        parent = child;
      }
    },
    async rename(fromPath, toPath) {
      const from = placeOf(fromPath);
      const to = placeOf(toPath);
      if (from === undefined || to === undefined) return base.rename(fromPath, toPath);
      crashPoint();
      await base.rename(fromPath, toPath);
      const inode = from.parent.live.get(from.name);
      from.parent.live.delete(from.name);
      if (inode !== undefined) to.parent.live.set(to.name, inode);
    },
    async unlink(path) {
      const place = placeOf(path);
      if (place === undefined) return base.unlink(path);
      crashPoint();
      await base.unlink(path);
      place.parent.live.delete(place.name);
    },
    async removeTree(path) {
      const place = placeOf(path);
      if (place === undefined) return base.removeTree(path);
      crashPoint();
      await base.removeTree(path);
      const inode = place.parent.live.get(place.name);
      place.parent.live.delete(place.name);
      // Its entries were unlinked too, and no fsync of it made that durable.
      if (inode?.kind === 'directory') inode.live = new Map();
    },
    async syncDirectory(path) {
      const parts = partsOf(path);
      const inode = parts === undefined ? undefined : lookup(parts);
      if (inode?.kind !== 'directory') return base.syncDirectory(path);
      crashPoint();
      const atCall = new Map(inode.live);
      await base.syncDirectory(path);
      inode.durable = atCall;
    },
  };

  return {
    fileSystem,
    crashPoints: () => crashPointCount,
    image() {
      const entries = new Map<string, Buffer | 'directory'>();
      const walk = (directory: DirectoryInode, prefix: string): void => {
        for (const [name, inode] of directory.durable) {
          const path = prefix === '' ? name : `${prefix}/${name}`;
          if (inode.kind === 'file') {
            entries.set(path, inode.durable);
          } else {
            entries.set(path, 'directory');
            walk(inode, path);
          }
        }
      };
      walk(root, '');
      return entries;
    },
  };
}

/** The tree under `dir` as it is, all of it durable (the model's start). */
function readExisting(dir: string): DirectoryInode {
  const directory: DirectoryInode = { kind: 'directory', live: new Map(), durable: new Map() };
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const inode: Inode = statSync(path).isDirectory() ? readExisting(path) : { kind: 'file', durable: readFileSync(path) };
    directory.live.set(name, inode);
    directory.durable.set(name, inode);
  }
  return directory;
}

/** Writes `image` into `toDir` (an empty directory). */
export function writeTreeImage(image: DurableTreeImage, toDir: string): void {
  for (const [path, content] of image) {
    const target = join(toDir, ...path.split('/'));
    if (content === 'directory') {
      mkdirSync(target, { recursive: true });
    } else {
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
    }
  }
}
