import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import {
  encodeVarint,
  encodeVarlong,
  readVarint,
  readVarlong,
  varintSizeBytes,
  varlongSizeBytes,
  type ReadCursor,
} from './varint.js';

function cursorOver(bytes: Uint8Array): ReadCursor {
  return { position: 0, end: bytes.length };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Reference zigzag varint over bigint, straight from the protobuf definition. */
function referenceZigzagVarint(value: bigint, bits: 32n | 64n): string {
  let zigzag = BigInt.asUintN(Number(bits), (value << 1n) ^ (value >> (bits - 1n)));
  const out: number[] = [];
  while (zigzag >= 0x80n) {
    out.push(Number(zigzag & 0x7fn) | 0x80);
    zigzag >>= 7n;
  }
  out.push(Number(zigzag));
  return Buffer.from(out).toString('hex');
}

function expectCorrupt(read: () => unknown): void {
  try {
    read();
  } catch (error) {
    expect(isBrokerError(error, 'CORRUPT_MESSAGE')).toBe(true);
    return;
  }
  throw new Error('expected CORRUPT_MESSAGE, but nothing was thrown');
}

const KNOWN_ENCODINGS: [number, string][] = [
  [0, '00'],
  [-1, '01'],
  [1, '02'],
  [-2, '03'],
  [63, '7e'],
  [-64, '7f'],
  [64, '8001'],
  [-65, '8101'],
  [2147483647, 'feffffff0f'],
  [-2147483648, 'ffffffff0f'],
];

describe('varint (zigzag int32)', () => {
  it.each(KNOWN_ENCODINGS)('encodes %d as %s and reads it back', (value, expectedHex) => {
    const bytes = encodeVarint(value);
    expect(hex(bytes)).toBe(expectedHex);
    expect(varintSizeBytes(value)).toBe(bytes.length);
    const cursor = cursorOver(bytes);
    expect(readVarint(bytes, cursor)).toBe(value);
    expect(cursor.position).toBe(bytes.length);
  });

  it('matches a bigint reference encoder and round-trips for every int32', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }), (value) => {
        const bytes = encodeVarint(value);
        expect(hex(bytes)).toBe(referenceZigzagVarint(BigInt(value), 32n));
        expect(readVarint(bytes, cursorOver(bytes))).toBe(value);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects input that ends before the last byte', () => {
    expectCorrupt(() => readVarint(Buffer.from([0x80]), cursorOver(Buffer.from([0x80]))));
    const full = encodeVarint(-2147483648);
    const truncated = full.subarray(0, full.length - 1);
    expectCorrupt(() => readVarint(truncated, cursorOver(truncated)));
    expectCorrupt(() => readVarint(Buffer.alloc(0), cursorOver(Buffer.alloc(0))));
  });

  it('never reads past cursor.end even when more bytes follow in the buffer', () => {
    const bytes = Buffer.from([0x80, 0x01]);
    expectCorrupt(() => readVarint(bytes, { position: 0, end: 1 }));
  });

  it('leaves the cursor where it was when it rejects', () => {
    const bytes = Buffer.from([0x80, 0x80]);
    const cursor = cursorOver(bytes);
    expectCorrupt(() => readVarint(bytes, cursor));
    expect(cursor.position).toBe(0);
  });

  it('rejects a sixth byte and bits beyond 32 in the fifth byte', () => {
    const sixBytes = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expectCorrupt(() => readVarint(sixBytes, cursorOver(sixBytes)));
    const overflow = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x1f]);
    expectCorrupt(() => readVarint(overflow, cursorOver(overflow)));
  });

  it('refuses to encode a value that is not an int32 (a bug, not input)', () => {
    expect(() => encodeVarint(2 ** 31)).toThrow(/int32/);
    expect(() => encodeVarint(1.5)).toThrow(/int32/);
  });
});

describe('varlong (zigzag int64 over safe integers)', () => {
  it.each(KNOWN_ENCODINGS)('encodes %d as %s like the varint', (value, expectedHex) => {
    expect(hex(encodeVarlong(value))).toBe(expectedHex);
  });

  it.each([
    [2 ** 31, '8080808010'],
    [-(2 ** 31) - 1, '8180808010'],
    [Number.MAX_SAFE_INTEGER, referenceZigzagVarint(BigInt(Number.MAX_SAFE_INTEGER), 64n)],
    [Number.MIN_SAFE_INTEGER, referenceZigzagVarint(BigInt(Number.MIN_SAFE_INTEGER), 64n)],
  ])('encodes %d as %s and reads it back', (value, expectedHex) => {
    const bytes = encodeVarlong(value);
    expect(hex(bytes)).toBe(expectedHex);
    expect(varlongSizeBytes(value)).toBe(bytes.length);
    expect(readVarlong(bytes, cursorOver(bytes))).toBe(value);
  });

  it('matches a bigint reference encoder and round-trips for every safe integer', () => {
    const safeIntegers = fc.oneof(
      fc.integer({ min: -1_000_000, max: 1_000_000 }),
      fc.maxSafeInteger(),
      fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 2 ** 53 - 2, -(2 ** 53) + 2, 2 ** 48, -(2 ** 48) - 1),
    );
    fc.assert(
      fc.property(safeIntegers, (value) => {
        const bytes = encodeVarlong(value);
        expect(hex(bytes)).toBe(referenceZigzagVarint(BigInt(value), 64n));
        expect(varlongSizeBytes(value)).toBe(bytes.length);
        const cursor = cursorOver(bytes);
        expect(readVarlong(bytes, cursor)).toBe(value);
        expect(cursor.position).toBe(bytes.length);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects values just outside the safe-integer range instead of rounding them', () => {
    for (const value of [2n ** 53n, -(2n ** 53n), 2n ** 62n, -(2n ** 63n)]) {
      const bytes = Buffer.from(referenceZigzagVarint(value, 64n), 'hex');
      expectCorrupt(() => readVarlong(bytes, cursorOver(bytes)));
    }
  });

  it('rejects truncated input and an eleventh byte', () => {
    const full = encodeVarlong(Number.MAX_SAFE_INTEGER);
    const truncated = full.subarray(0, full.length - 1);
    expectCorrupt(() => readVarlong(truncated, cursorOver(truncated)));
    const elevenBytes = Buffer.from([...new Array<number>(10).fill(0x80), 0x00]);
    expectCorrupt(() => readVarlong(elevenBytes, cursorOver(elevenBytes)));
  });
});
