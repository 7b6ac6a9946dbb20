import { describe, expect, it } from 'vitest';
import { isBrokerError, type Reason } from '../errors/index.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_BYTES,
  BatchField,
  CONTROL_BIT,
  setBatchBaseOffset,
  setBatchLeaderEpoch,
  tryReadBatchHeader,
  validateBatchOrThrow,
} from './batch-header.js';
import { crc32c } from './crc32c.js';
import { decodeBatch, encodeBatch, type LogRecord } from './record-batch.js';

const RECORDS: LogRecord[] = [
  { key: Buffer.from('k1'), value: Buffer.from('first value'), headers: [], timestamp: 1_700_000_000_000 },
  { key: null, value: Buffer.from('second'), headers: [{ key: 'h', value: null }], timestamp: 1_700_000_000_005 },
  { key: Buffer.from('k3'), value: null, headers: [], timestamp: 1_700_000_000_002 },
];

function encodedBatch(): Buffer {
  return encodeBatch({ records: RECORDS });
}

/** Recomputes the CRC after a test edits a covered field, so the check under test is reached. */
function restampCrc(bytes: Buffer): Buffer {
  bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
  return bytes;
}

/**
 * One message in Kafka's legacy format (magic 0 or 1, before record batch v2): offset, size,
 * CRC-32 (left 0 here; nothing reaches it), magic, attributes, a timestamp for magic 1, a null
 * key and `value`.
 */
function legacyMessage(magic: 0 | 1, value: string): Buffer {
  const valueBytes = Buffer.from(value);
  const body = Buffer.alloc(4 + 1 + 1 + (magic === 1 ? 8 : 0) + 4 + 4 + valueBytes.length);
  let position = 4; // crc
  body.writeInt8(magic, position++);
  position++; // attributes: no compression
  if (magic === 1) {
    body.writeBigInt64BE(1_700_000_000_000n, position);
    position += 8;
  }
  body.writeInt32BE(-1, position); // null key
  body.writeInt32BE(valueBytes.length, position + 4);
  valueBytes.copy(body, position + 8);
  const prefix = Buffer.alloc(12);
  prefix.writeInt32BE(body.length, 8);
  return Buffer.concat([prefix, body]);
}

/** Runs validateBatchOrThrow and checks the reason, the message, and that `bytes` is untouched. */
function expectRejected(bytes: Buffer, batchBytesMax: number, reason: Reason, message: RegExp): void {
  const before = Buffer.from(bytes);
  let caught: unknown;
  try {
    validateBatchOrThrow(bytes, { batchBytesMax });
  } catch (error) {
    caught = error;
  }
  expect(isBrokerError(caught, reason), `expected ${reason}, got ${String(caught)}`).toBe(true);
  expect((caught as Error).message).toMatch(message);
  expect(bytes.equals(before)).toBe(true);
}

describe('validateBatchOrThrow', () => {
  it('accepts a batch produced by encodeBatch at exactly the size limit', () => {
    const bytes = encodedBatch();
    const header = validateBatchOrThrow(bytes, { batchBytesMax: bytes.length });
    expect(header.recordCount).toBe(3);
    expect(header.sizeBytes).toBe(bytes.length);
  });

  it('rejects a batch one byte over the limit with BATCH_TOO_LARGE', () => {
    const bytes = encodedBatch();
    expectRejected(bytes, bytes.length - 1, 'BATCH_TOO_LARGE', /limit/);
  });

  it('rejects a magic other than 2 with CORRUPT_MESSAGE', () => {
    const bytes = encodedBatch();
    bytes.writeInt8(1, BatchField.magic);
    expectRejected(bytes, 1 << 20, 'CORRUPT_MESSAGE', /magic 1/);
  });

  it('names the magic of a legacy (v0/v1) message set instead of calling it malformed', () => {
    // What an old-format Kafka client sends: its magic sits at byte 16 as in v2, but the rest
    // is laid out differently, so the v2 fields read from it are nonsense or missing.
    expectRejected(legacyMessage(1, 'hello world, in the old format'), 1 << 20, 'CORRUPT_MESSAGE', /magic 1; only magic 2/);
    expectRejected(legacyMessage(0, 'hi'), 1 << 20, 'CORRUPT_MESSAGE', /magic 0; only magic 2/);
    expect(() => decodeBatch(legacyMessage(1, 'hello world, in the old format'))).toThrow(/magic 1; only magic 2/);
    expect(() => decodeBatch(legacyMessage(0, 'hi'))).toThrow(/magic 0; only magic 2/);
  });

  it('rejects a flipped byte in the records with CORRUPT_MESSAGE (CRC)', () => {
    const bytes = encodedBatch();
    const position = BATCH_HEADER_BYTES + 5;
    bytes[position] = bytes[position]! ^ 0x01;
    expectRejected(bytes, 1 << 20, 'CORRUPT_MESSAGE', /CRC/);
  });

  it('rejects a flipped byte in a CRC-covered header field with CORRUPT_MESSAGE (CRC)', () => {
    const bytes = encodedBatch();
    bytes[BatchField.maxTimestamp + 7] = bytes[BatchField.maxTimestamp + 7]! ^ 0x80;
    expectRejected(bytes, 1 << 20, 'CORRUPT_MESSAGE', /CRC/);
  });

  it('rejects a batchLength that does not match the bytes received', () => {
    const longer = encodedBatch();
    longer.writeInt32BE(longer.readInt32BE(BatchField.batchLength) + 1, BatchField.batchLength);
    expectRejected(longer, 1 << 20, 'CORRUPT_MESSAGE', /batchLength/);

    const withExtraByte = Buffer.concat([encodedBatch(), Buffer.from([0])]);
    expectRejected(withExtraByte, 1 << 20, 'CORRUPT_MESSAGE', /batchLength/);
  });

  it('rejects a recordCount of 0 even when the CRC matches', () => {
    const bytes = encodedBatch();
    bytes.writeInt32BE(0, BatchField.recordCount);
    bytes.writeInt32BE(-1, BatchField.lastOffsetDelta);
    expectRejected(restampCrc(bytes), 1 << 20, 'CORRUPT_MESSAGE', /0 records/);
  });

  it('rejects a lastOffsetDelta that does not match recordCount even when the CRC matches', () => {
    const bytes = encodedBatch();
    bytes.writeInt32BE(3, BatchField.lastOffsetDelta);
    expectRejected(restampCrc(bytes), 1 << 20, 'CORRUPT_MESSAGE', /lastOffsetDelta 3/);
  });

  it('rejects fewer than 61 bytes', () => {
    const bytes = encodedBatch().subarray(0, BATCH_HEADER_BYTES - 1);
    expectRejected(bytes, 1 << 20, 'CORRUPT_MESSAGE', /shorter than 61/);
    expectRejected(Buffer.alloc(0), 1 << 20, 'CORRUPT_MESSAGE', /shorter than 61/);
  });

  it('rejects a control batch with INVALID_REQUEST', () => {
    const bytes = encodedBatch();
    bytes.writeInt16BE(bytes.readInt16BE(BatchField.attributes) | CONTROL_BIT, BatchField.attributes);
    expectRejected(restampCrc(bytes), 1 << 20, 'INVALID_REQUEST', /control/);
  });

  it('never changes the bytes it accepts', () => {
    const bytes = encodedBatch();
    const before = Buffer.from(bytes);
    validateBatchOrThrow(bytes, { batchBytesMax: bytes.length });
    expect(bytes.equals(before)).toBe(true);
  });
});

describe('setBatchBaseOffset and setBatchLeaderEpoch', () => {
  it('set the fields in place without invalidating the CRC', () => {
    const bytes = encodedBatch();
    const crcBefore = bytes.readUInt32BE(BatchField.crc);
    setBatchBaseOffset(bytes, 1_234_567_890_123);
    setBatchLeaderEpoch(bytes, 42);

    const header = validateBatchOrThrow(bytes, { batchBytesMax: bytes.length });
    expect(header.baseOffset).toBe(1_234_567_890_123);
    expect(header.partitionLeaderEpoch).toBe(42);
    expect(header.crc).toBe(crcBefore);
    expect(decodeBatch(bytes).records.map((record) => record.offset)).toEqual([
      1_234_567_890_123, 1_234_567_890_124, 1_234_567_890_125,
    ]);
  });

  it('write at the given position inside a larger buffer', () => {
    const first = encodedBatch();
    const both = Buffer.concat([first, encodedBatch()]);
    setBatchBaseOffset(both, 3, first.length);
    expect(tryReadBatchHeader(both, 0)?.baseOffset).toBe(0);
    expect(tryReadBatchHeader(both, first.length)?.baseOffset).toBe(3);
    expect(decodeBatch(both, first.length).records[0]?.offset).toBe(3);
  });
});

describe('tryReadBatchHeader', () => {
  it('returns undefined for fewer than 61 bytes or an impossible batchLength', () => {
    expect(tryReadBatchHeader(encodedBatch().subarray(0, 60))).toBeUndefined();
    const bytes = encodedBatch();
    bytes.writeInt32BE(48, BatchField.batchLength);
    expect(tryReadBatchHeader(bytes)).toBeUndefined();
  });
});
