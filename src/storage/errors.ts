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
  return new BrokerError(
    isFull ? 'DISK_FULL' : 'STORAGE_ERROR',
    isFull
      ? `disk full while trying to ${operation} ${path}; free space in the data directory and retry`
      : code === 'ENOENT'
        ? `${path} does not exist (while trying to ${operation} it); check the path`
        : `I/O error while trying to ${operation} ${path}: ${what}`,
    { cause: error, details: { operation, path, code } },
  );
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
