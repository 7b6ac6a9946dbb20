/**
 * One broker per data directory. `<data-dir>/broker.lock` names the process that has the
 * directory (`{"pid":…,"startedAtMs":…}`); a second broker, or an offline tool that writes
 * (`runnel log append`, `runnel log repair`), refuses to run while that process lives. Two
 * writers on one partition would interleave appends and cuts, and lmdb would let a second
 * broker open meta/ as well.
 *
 * Crash behaviour: a SIGKILLed broker leaves its lock behind. The next one finds the named
 * process gone (or a different program under a reused pid) and takes the lock over. A lock
 * file torn by a crash while it was written names no process and is taken over too.
 *
 * Not a kernel lock (Node has no flock): a process that ignores the file is not stopped, and
 * a pid reused by another Runnel process is taken for a live holder; the error then says
 * which file to remove.
 */
import { closeSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BrokerError } from '../errors/index.js';

export const LOCK_FILE_NAME = 'broker.lock';

/** Data directories locked by this process (real paths): its own pid in a lock is live only for these. */
const heldHere = new Set<string>();

export interface DataDirLock {
  /**
   * Set when a lock left behind was taken over: the process that held the directory ended
   * without releasing it (a crash or SIGKILL), with its pid when the file named one.
   */
  readonly takenOverFrom: { pid: number | undefined } | undefined;
  /** Removes the lock file if it is still ours. Idempotent. */
  release(): void;
}

/**
 * Takes `dataDir` (which must exist) for this process. Rejects INVALID_REQUEST, naming the
 * holder and what to do, while another live process holds it.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  const path = join(dataDir, LOCK_FILE_NAME);
  const key = realpathSync(dataDir);
  let takenOverFrom: { pid: number | undefined } | undefined;
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockFileError('create', path, dataDir, error);
      const pid = tryReadHolderPid(path);
      if (pid !== undefined && isLiveHolder(pid, key)) throw inUse(dataDir, pid);
      takenOverFrom = { pid };
      unlinkSync(path); // left by a process that is gone
      continue;
    }
    try {
      writeSync(fd, `${JSON.stringify({ pid: process.pid, startedAtMs: Date.now() })}\n`);
    } catch (error) {
      // Nothing of ours may stay: an empty lock file would only be taken over, but say why.
      closeSync(fd);
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
      throw lockFileError('write', path, dataDir, error);
    }
    closeSync(fd);
    heldHere.add(key);
    let isReleased = false;
    return {
      takenOverFrom,
      release() {
        if (isReleased) return;
        isReleased = true;
        heldHere.delete(key);
        try {
          if (tryReadHolderPid(path) === process.pid) unlinkSync(path);
        } catch {
          // Gone already: nothing of ours to remove.
        }
      },
    };
  }
}

/** Throws INVALID_REQUEST, for an offline tool about to write, while a live process holds `dataDir`. */
export function ensureDataDirNotInUse(dataDir: string, what: string): void {
  const holder = liveHolder(dataDir);
  if (holder !== undefined) throw inUse(dataDir, holder.pid, what);
}

/** The live process that holds `dataDir`, if any. */
export function liveHolder(dataDir: string): { pid: number } | undefined {
  let key: string;
  try {
    key = realpathSync(dataDir);
  } catch {
    return undefined; // no such directory: nobody holds it
  }
  const pid = tryReadHolderPid(join(dataDir, LOCK_FILE_NAME));
  return pid !== undefined && isLiveHolder(pid, key) ? { pid } : undefined;
}

/** Whether `pid`, named in the lock of the directory whose real path is `key`, still holds it. */
function isLiveHolder(pid: number, key: string): boolean {
  if (pid === process.pid) return heldHere.has(key); // else a previous process that had our pid
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: alive, someone else's.
  }
  // A reused pid: on Linux, a process that is not Node is not a broker.
  try {
    return /node|runnel/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
  } catch {
    return true; // no /proc (or the process just ended): trust the liveness check
  }
}

/** The pid a lock file names; undefined when there is no file, or it is torn or names none. */
function tryReadHolderPid(path: string): number | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined; // missing, or torn by a crash while written
  }
  const pid = (parsed as { pid?: unknown } | null)?.pid;
  return typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

function inUse(dataDir: string, pid: number, what = 'start a broker on it'): BrokerError {
  return lockError(
    `data directory ${dataDir} is in use by process ${pid} (${join(dataDir, LOCK_FILE_NAME)}): stop that broker before you ${what}; ` +
      `if no Runnel broker runs there, remove the lock file`,
  );
}

/** Why the lock file could not be made, and what to do: DISK_FULL for a full disk, else write access. */
function lockFileError(verb: 'create' | 'write', path: string, dataDir: string, error: unknown): BrokerError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new BrokerError('DISK_FULL', `the disk holding ${dataDir} is full (cannot ${verb} ${path}): free space in the data directory, or pass another --data-dir`);
  }
  return lockError(`cannot ${verb} ${path}: ${(error as Error).message}; the broker needs write access to its data directory: fix its permissions, or pass another with --data-dir`);
}

function lockError(message: string): BrokerError {
  return new BrokerError('INVALID_REQUEST', message);
}
