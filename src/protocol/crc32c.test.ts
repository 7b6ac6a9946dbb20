import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

describe('crc32c', () => {
  it('gives 0xE3069283 for the ASCII bytes "123456789" (the CRC-32C check value)', () => {
    expect(crc32c(Buffer.from('123456789', 'ascii'))).toBe(0xe3069283);
  });

  it('returns an unsigned 32-bit number', () => {
    const value = crc32c(Buffer.from('123456789', 'ascii'));
    expect(value).toBeGreaterThan(0x7fffffff);
    expect(Number.isInteger(value)).toBe(true);
  });

  it('gives 0 for no bytes', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });
});
