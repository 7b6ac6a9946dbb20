/**
 * A `FileSystem` that can take, in one synchronous step, the files a process crash at that
 * instant would leave. A process crash keeps the page cache: every write that has finished
 * stays, and a write still running stays in part. The kernel copies a buffered write page by
 * page and stops at a fatal signal, so what stays of it is a prefix that ends on a page
 * boundary (or nothing, or all of it).
 *
 * Writes go straight to the real files. For each tracked file (the .log files by default) the
 * wrapper remembers the place and bytes of every write still running, and the end of the
 * furthest finished one. `crashCopy` copies the directory and rewrites each tracked file of
 * the copy as the crash leaves it: every running write is cut to a random page-aligned
 * prefix, the rest of its range reads as zeros (unwritten bytes inside a file), and the file
 * ends at the furthest byte kept. Untracked files (partition.state, indexes, snapshots, all
 * replaced atomically) are copied as they are.
 *
 * Owner of mutable state: the object `createCrashPointFileSystem` returns; one per log.
 */
import { closeSync, cpSync, existsSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';
import { nodeFileSystem, type FileHandle, type FileSystem, type OpenMode } from '../../src/storage/index.js';
import type { SeededRandom } from './seeded-random.js';

const PAGE_BYTES = 4096;

interface RunningWrite {
  position: number;
  bytes: Buffer;
}

interface TrackedFile {
  running: Set<RunningWrite>;
  /** The end of the furthest finished write (or the size at first open), lowered by truncates. */
  finishedEnd: number;
}

export interface CrashPointFileSystem {
  fileSystem: FileSystem;
  /** Copies `fromDir` to `toDir` as a process crash now would leave it (see the file header). */
  crashCopy(fromDir: string, toDir: string, random: SeededRandom): void;
  /** Writes running now on tracked files. */
  runningWrites(): number;
}

export interface CrashPointOptions {
  /** Files whose writes are modelled; the .log files by default. */
  path?: RegExp;
  /** Called synchronously right after a write to a tracked file is issued (it is running). */
  onWriteIssued?: () => void;
  base?: FileSystem;
}

export function createCrashPointFileSystem(options: CrashPointOptions = {}): CrashPointFileSystem {
  const base = options.base ?? nodeFileSystem;
  const pattern = options.path ?? /\.log$/;
  const tracked = new Map<string, TrackedFile>();

  const wrap = (inner: FileHandle, path: string, file: TrackedFile): FileHandle => ({
    path: inner.path,
    read: (buffer, offset, length, position) => inner.read(buffer, offset, length, position),
    async writev(buffers, position) {
      const write: RunningWrite = { position, bytes: Buffer.concat(buffers) };
      file.running.add(write);
      const written = inner.writev(buffers, position);
      options.onWriteIssued?.();
      try {
        const count = await written;
        file.finishedEnd = Math.max(file.finishedEnd, position + count);
        return count;
      } finally {
        file.running.delete(write);
      }
    },
    datasync: () => inner.datasync(),
    async truncate(sizeBytes) {
      await inner.truncate(sizeBytes);
      file.finishedEnd = Math.min(file.finishedEnd, sizeBytes);
    },
    sizeBytes: () => inner.sizeBytes(),
    close: () => inner.close(),
  });

  const fileSystem: FileSystem = {
    ...base,
    async open(path: string, mode: OpenMode) {
      const handle = await base.open(path, mode);
      if (!pattern.test(path)) return handle;
      let file = tracked.get(path);
      if (file === undefined || mode === 'create') {
        file = { running: file?.running ?? new Set(), finishedEnd: await handle.sizeBytes() };
        tracked.set(path, file);
      }
      return wrap(handle, path, file);
    },
    async unlink(path) {
      await base.unlink(path);
      tracked.delete(path);
    },
  };

  return {
    fileSystem,
    runningWrites: () => [...tracked.values()].reduce((sum, file) => sum + file.running.size, 0),
    crashCopy(fromDir, toDir, random) {
      cpSync(fromDir, toDir, { recursive: true });
      for (const [path, file] of tracked) {
        const copied = join(toDir, relative(fromDir, path));
        if (relative(fromDir, path).startsWith('..') || !existsSync(copied)) continue;
        const fd = openSync(copied, 'r+');
        try {
          let end = file.finishedEnd;
          for (const write of file.running) {
            const kept = keptPrefix(write, random);
            if (kept > 0) writeSync(fd, write.bytes, 0, kept, write.position);
            if (kept < write.bytes.length) writeSync(fd, Buffer.alloc(write.bytes.length - kept), 0, write.bytes.length - kept, write.position + kept);
            end = Math.max(end, write.position + kept);
          }
          ftruncateSync(fd, end);
        } finally {
          closeSync(fd);
        }
      }
    },
  };
}

/** How many leading bytes of a running write a crash keeps: up to a page boundary, or all, or none. */
function keptPrefix(write: RunningWrite, random: SeededRandom): number {
  const start = write.position;
  const end = write.position + write.bytes.length;
  const stops = [start];
  for (let boundary = Math.ceil((start + 1) / PAGE_BYTES) * PAGE_BYTES; boundary < end; boundary += PAGE_BYTES) stops.push(boundary);
  stops.push(end);
  return (stops[random.int(0, stops.length - 1)] as number) - start;
}
