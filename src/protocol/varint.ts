/**
 * Zigzag varints, as Kafka's ByteUtils writes them (protobuf `sint32` / `sint64`): the value is
 * zigzag-mapped so small negatives stay short (0→0, −1→1, 1→2, −2→3 …), then written 7 bits a
 * byte, least significant group first, with the top bit of each byte meaning "more follows".
 *
 * | encoded bytes | varint (int32)        | varlong (here: safe integers only) |
 * |--------------:|-----------------------|------------------------------------|
 * | 1             | −64 … 63              | −64 … 63                           |
 * | 5 at most     | −2^31 … 2^31−1        | —                                  |
 * | 8 at most     | —                     | −(2^53−1) … 2^53−1                 |
 *
 * Varlongs cover JS numbers only: a decoded value outside the safe-integer range is rejected,
 * never rounded. Kafka writes varlongs for timestamp deltas, which stay far inside that range.
 *
 * Reading takes a `ReadCursor` that it advances in place, so the record decoder walks a batch
 * without allocating a result object per field. Every read stops at `cursor.end`: malformed or
 * truncated bytes throw `BrokerError('CORRUPT_MESSAGE')` and never read past the end. Writing is
 * the caller's job to size first (`varintSizeBytes`, `varlongSizeBytes`), so the record encoder can
 * fill one preallocated buffer.
 */
import { AssertionError } from '../common/index.js';
import { BrokerError } from '../errors/index.js';

/** A read position inside `[position, end)` of some buffer, advanced by each read. */
export interface ReadCursor {
  position: number;
  /** First byte position the reader may not touch. */
  end: number;
}

const VARINT_BYTES_MAX = 5;
const VARLONG_BYTES_MAX = 10;
/** 2^28: the weight of the fifth 7-bit group. */
const TWO_POW_28 = 0x1000_0000;
/** 2^27: half of the weight above, used after the zigzag halving. */
const TWO_POW_27 = 0x0800_0000;
/** 2^26: a larger high part would make the halved magnitude exceed 2^53 − 1. */
const TWO_POW_26 = 0x0400_0000;

function isInt32(value: number): boolean {
  return (value | 0) === value;
}

/** Bytes that `writeVarint(value)` takes; `value` must be an int32. */
export function varintSizeBytes(value: number): number {
  if (!isInt32(value)) throw new AssertionError(`varint value is not an int32: ${value}`);
  const zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  if (zigzag < 0x80) return 1;
  if (zigzag < 0x4000) return 2;
  if (zigzag < 0x20_0000) return 3;
  if (zigzag < 0x1000_0000) return 4;
  return 5;
}

/** Writes an int32 as a zigzag varint at `position`; returns the position after it. */
export function writeVarint(bytes: Uint8Array, value: number, position: number): number {
  if (!isInt32(value)) throw new AssertionError(`varint value is not an int32: ${value}`);
  let zigzag = ((value << 1) ^ (value >> 31)) >>> 0;
  while (zigzag >= 0x80) {
    bytes[position++] = (zigzag & 0x7f) | 0x80;
    zigzag >>>= 7;
  }
  bytes[position++] = zigzag;
  return position;
}

/**
 * Reads a zigzag varint (int32). Throws CORRUPT_MESSAGE when it runs past `cursor.end`, uses more
 * than 5 bytes, or its fifth byte carries bits beyond 32 (Kafka's reader drops those silently;
 * no correct writer produces them, so they are treated as damage).
 */
export function readVarint(bytes: Uint8Array, cursor: ReadCursor): number {
  let position = cursor.position;
  let raw = 0;
  for (let index = 0; index < VARINT_BYTES_MAX; index++) {
    if (position >= cursor.end) throw readVarintTruncated(cursor, 'varint');
    const byte = bytes[position++]!;
    if (index === VARINT_BYTES_MAX - 1) {
      if (byte > 0x0f) throw readVarintTooLong(cursor, 'varint');
      raw |= byte << 28;
    } else {
      raw |= (byte & 0x7f) << (7 * index);
      if (byte < 0x80) break;
    }
  }
  cursor.position = position;
  return (raw >>> 1) ^ -(raw & 1);
}

/**
 * Bytes that `writeVarlong(value)` takes. A varlong is `2·m + s` in 7-bit groups, where m is the
 * magnitude (`value` or `−value − 1`) and s the sign, so k bytes suffice exactly when m < 2^(7k−1).
 */
export function varlongSizeBytes(value: number): number {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`varlong value is not a safe integer: ${value}`);
  const magnitude = value >= 0 ? value : -value - 1;
  if (magnitude < 0x40) return 1;
  if (magnitude < 0x2000) return 2;
  if (magnitude < 0x10_0000) return 3;
  if (magnitude < 0x800_0000) return 4;
  if (magnitude < 2 ** 34) return 5;
  if (magnitude < 2 ** 41) return 6;
  if (magnitude < 2 ** 48) return 7;
  return 8;
}

/**
 * Writes a safe integer as a zigzag varlong at `position`; returns the position after it.
 * The zigzag value `2·m + s` can reach 2^54, beyond exact doubles, so it is never formed: the
 * first byte takes the sign and the low 6 bits of m, the rest is m / 64 in plain 7-bit groups.
 */
export function writeVarlong(bytes: Uint8Array, value: number, position: number): number {
  if (!Number.isSafeInteger(value)) throw new AssertionError(`varlong value is not a safe integer: ${value}`);
  const isNegative = value < 0;
  const magnitude = isNegative ? -value - 1 : value;
  const firstBits = (magnitude % 0x40) * 2 + (isNegative ? 1 : 0);
  let rest = Math.floor(magnitude / 0x40);
  if (rest === 0) {
    bytes[position++] = firstBits;
    return position;
  }
  bytes[position++] = firstBits | 0x80;
  while (rest >= 0x80) {
    bytes[position++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  bytes[position++] = rest;
  return position;
}

/**
 * Reads a zigzag varlong as a JS number. Throws CORRUPT_MESSAGE when it runs past `cursor.end`,
 * uses more than 10 bytes, or its value lies outside the safe-integer range.
 *
 * The low 28 bits and the rest are gathered apart and combined after halving, so no step needs
 * more than 53 bits of precision.
 */
export function readVarlong(bytes: Uint8Array, cursor: ReadCursor): number {
  let position = cursor.position;
  let low = 0;
  let high = 0;
  let highWeight = 1;
  for (let index = 0; ; index++) {
    if (index === VARLONG_BYTES_MAX) throw readVarintTooLong(cursor, 'varlong');
    if (position >= cursor.end) throw readVarintTruncated(cursor, 'varlong');
    const byte = bytes[position++]!;
    if (index < 4) {
      low |= (byte & 0x7f) << (7 * index);
    } else {
      high += (byte & 0x7f) * highWeight;
      highWeight *= 0x80;
    }
    if (byte < 0x80) break;
  }
  if (high >= TWO_POW_26) throw readVarlongOutOfRange(cursor, high * TWO_POW_28 + low);
  const magnitude = high * TWO_POW_27 + (low >>> 1);
  const value = (low & 1) === 0 ? magnitude : -magnitude - 1;
  if (!Number.isSafeInteger(value)) throw readVarlongOutOfRange(cursor, value);
  cursor.position = position;
  return value;
}

function readVarintTruncated(cursor: ReadCursor, kind: string): BrokerError {
  return new BrokerError('CORRUPT_MESSAGE', `${kind} at byte ${cursor.position} runs past the end (byte ${cursor.end})`, {
    details: { position: cursor.position, end: cursor.end },
  });
}

function readVarintTooLong(cursor: ReadCursor, kind: string): BrokerError {
  return new BrokerError('CORRUPT_MESSAGE', `${kind} at byte ${cursor.position} is too long`, {
    details: { position: cursor.position },
  });
}

function readVarlongOutOfRange(cursor: ReadCursor, approximateValue: number): BrokerError {
  return new BrokerError(
    'CORRUPT_MESSAGE',
    `varlong at byte ${cursor.position} (about ${approximateValue}) is outside the safe-integer range`,
    { details: { position: cursor.position } },
  );
}

/** A varint as its own buffer; convenient for tests and one-off fields, not for hot paths. */
export function encodeVarint(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(varintSizeBytes(value));
  writeVarint(bytes, value, 0);
  return bytes;
}

/** A varlong as its own buffer; convenient for tests and one-off fields, not for hot paths. */
export function encodeVarlong(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(varlongSizeBytes(value));
  writeVarlong(bytes, value, 0);
  return bytes;
}
