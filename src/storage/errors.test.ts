import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import { storageError } from './errors.js';

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: something`), { code });

describe('storageError', () => {
  it.each([
    ['EACCES', /permission denied .* fix the owner or mode/],
    ['EPERM', /permission denied .*chattr -i/],
    ['EROFS', /read-only .* remount it read-write/],
    ['ENOTDIR', /a file where a directory belongs .* move that file out of the data directory/],
  ])('names the path and says what to do for %s', (code, pattern) => {
    const error = storageError('update', '/data/orders-0/partition.state', errno(code));
    expect(isBrokerError(error, 'STORAGE_ERROR')).toBe(true);
    expect(error.message).toContain('/data/orders-0/partition.state');
    expect(error.message).toMatch(pattern);
  });

  it('says a file holds the name when creating a directory meets EEXIST, and nothing of the kind for other operations', () => {
    expect(storageError('create', '/data/orders-0', errno('EEXIST')).message).toMatch(/a file where a directory belongs/);
    expect(storageError('delete', '/data/orders-0', errno('EEXIST')).message).toMatch(/^I\/O error while trying to delete/);
  });
});
