import { describe, expect, it } from 'vitest';
import { BrokerError } from '../errors/index.js';
import { errorFields } from './logger.js';

describe('errorFields', () => {
  it('gives a BrokerError its reason next to its message, so lines can be filtered by reason', () => {
    expect(errorFields(new BrokerError('STORAGE_ERROR', 'I/O error while trying to read /d/partition.state: EIO'))).toEqual({
      reason: 'STORAGE_ERROR',
      err: 'I/O error while trying to read /d/partition.state: EIO',
    });
  });

  it('gives any other error its text, without a reason', () => {
    expect(errorFields(Object.assign(new Error('EIO: i/o error, open'), { code: 'EIO' }))).toEqual({ err: 'Error: EIO: i/o error, open' });
    expect(errorFields('plain')).toEqual({ err: 'plain' });
  });
});
