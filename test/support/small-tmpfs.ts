/**
 * A small real disk for disk-full tests: a tmpfs of a given size mounted on a fresh temporary
 * directory, so the kernel produces the short writes and ENOSPC (also for lmdb and for broker
 * child processes, which the faulty file system cannot reach). Mounting needs root; where it
 * is refused, `mountSmallTmpfs` returns undefined and says so, and the caller skips what only
 * a real disk can show. `fillDisk` takes every free byte with a filler file; deleting it gives
 * the space back.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallTmpfs {
  /** The mount point. */
  readonly root: string;
  /** Unmounts (lazily if a descriptor is still open) and removes the mount point. Idempotent. */
  unmount(): void;
}

/** Mounts a `sizeBytes` tmpfs, or returns undefined (logged) when this process may not mount. */
export function mountSmallTmpfs(prefix: string, sizeBytes: number): SmallTmpfs | undefined {
  const root = mkdtempSync(join(tmpdir(), prefix));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', root], { stdio: 'pipe' });
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    const detail = error instanceof Error ? error.message.split('\n')[0] : String(error);
    console.info(`${prefix}: cannot mount a tmpfs (${detail}); the tests that need a real full disk are skipped`);
    return undefined;
  }
  let isMounted = true;
  return {
    root,
    unmount() {
      if (!isMounted) return;
      try {
        execFileSync('umount', [root], { stdio: 'pipe' });
      } catch {
        execFileSync('umount', ['-l', root], { stdio: 'pipe' });
      }
      isMounted = false;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Writes a filler file until the disk refuses with ENOSPC; returns a function that deletes it. */
export function fillDisk(root: string): () => void {
  const path = join(root, 'filler');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(4096, 0x5a);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return () => unlinkSync(path);
}
