/**
 * Environment failures wrapped once, at the storage boundary: a Node errno error becomes a
 * `BrokerError` (DISK_FULL for ENOSPC/EDQUOT, STORAGE_ERROR otherwise) that keeps the original
 * as `cause` and names the operation and file. Also the SHUTTING_DOWN error of file access
 * refused because storage is closed (`storageClosedError`).
 */
import { BrokerError, isBrokerError } from '../errors/index.js';

export function storageError(operation: string, path: string, error: unknown): BrokerError {
  if (isBrokerError(error)) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? 'UNKNOWN';
  const isFull = code === 'ENOSPC' || code === 'EDQUOT';
  const what = error instanceof Error ? error.message : String(error);
  return new BrokerError(isFull ? 'DISK_FULL' : 'STORAGE_ERROR', isFull ? `disk full while trying to ${operation} ${path}; free space in the data directory and retry` : storageErrorMessage(operation, path, code, what), {
    cause: error,
    details: { operation, path, code },
  });
}

/** What went wrong and what the operator does about it, for the errno codes they can act on. */
function storageErrorMessage(operation: string, path: string, code: string, what: string): string {
  switch (code) {
    case 'ENOENT':
      return `${path} does not exist (while trying to ${operation} it); check the path, and that no symbolic link on it points at something missing`;
    case 'EACCES':
    case 'EPERM':
      return (
        `permission denied while trying to ${operation} ${path} (${code}): the broker needs to read and write everything in its data directory; ` +
        'fix the owner or mode of the path (or an immutable attribute: lsattr, chattr -i), then retry'
      );
    case 'EROFS':
      return `the file system holding ${path} is read-only (while trying to ${operation} it): remount it read-write, then retry`;
    case 'EEXIST':
    case 'ENOTDIR':
      // EEXIST from a recursive mkdir ('create') only when a file holds the name; a rename onto a directory may say it too.
      if (code === 'EEXIST' && operation !== 'create') return `I/O error while trying to ${operation} ${path}: ${what}`;
      return `${path} is, or lies under, a file where a directory belongs (while trying to ${operation} it): move that file out of the data directory, then retry`;
    default:
      return `I/O error while trying to ${operation} ${path}: ${what}`;
  }
}

/**
 * File access refused because storage is closed (`FileHandleCache.closeAll`,
 * `ClosableFileSystem.closeAll`): nothing may open a file that nobody would close.
 */
export function storageClosedError(operation: string, path: string): BrokerError {
  return new BrokerError('SHUTTING_DOWN', `storage is closed, so it does not ${operation} ${path}; retry once the broker is back`, {
    details: { operation, path },
  });
}
