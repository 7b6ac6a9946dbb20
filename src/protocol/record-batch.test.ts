import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isBrokerError, type Reason } from '../errors/index.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BatchField,
  COMPRESSION_MASK,
  CONTROL_BIT,
  setBatchBaseOffset,
  tryReadBatchHeader,
  validateBatchOrThrow,
} from './batch-header.js';
import { compressRecordsAsync, decompressRecords, decompressRecordsAsync, type CompressionName } from './compression.js';
import { crc32c } from './crc32c.js';
import {
  decodeBatch,
  decodeBatches,
  encodeBatch,
  iterateBatches,
  iterateBatchesAs,
  readBatchAttributes,
  RecordCursor,
  validateBatchRecordsOrThrow,
  visitRecords,
  type LogRecord,
  type RecordChecks,
} from './record-batch.js';

const T0 = 1_700_000_000_000;

const RECORDS: LogRecord[] = [
  {
    key: Buffer.from('order-1'),
    value: Buffer.from('{"total":12}'),
    headers: [{ key: 'trace', value: Buffer.from('abc') }],
    timestamp: T0,
  },
  { key: null, value: Buffer.from('keyless'), headers: [], timestamp: T0 + 10 },
  { key: Buffer.from('order-1'), value: null, headers: [{ key: 'ключ-🔑', value: null }], timestamp: T0 - 3 },
  { key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [{ key: '', value: Buffer.alloc(0) }], timestamp: T0 + 4 },
];

/** Records as plain data, for comparing what went in with what came out. */
function plain(records: readonly LogRecord[]): unknown[] {
  return records.map((record) => ({
    key: record.key === null ? null : Buffer.from(record.key).toString('hex'),
    value: record.value === null ? null : Buffer.from(record.value).toString('hex'),
    headers: record.headers.map((header) => ({
      key: header.key,
      value: header.value === null ? null : Buffer.from(header.value).toString('hex'),
    })),
    timestamp: record.timestamp,
  }));
}

function expectReason(run: () => unknown, reason: Reason, message?: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(isBrokerError(caught, reason), `expected ${reason}, got ${String(caught)}`).toBe(true);
  if (message !== undefined) expect((caught as Error).message).toMatch(message);
}

/**
 * A batch around a hand-written records section: takes the header of a real batch and fixes
 * batchLength, recordCount, lastOffsetDelta and the CRC, so only the section is under test.
 */
function craftBatch(section: Buffer, recordCount: number, attributes = 0): Buffer {
  const template = encodeBatch({ records: [{ key: null, value: null, headers: [], timestamp: T0 }] });
  const bytes = Buffer.concat([template.subarray(0, BATCH_HEADER_BYTES), section]);
  bytes.writeInt32BE(bytes.length - BATCH_LOG_OVERHEAD_BYTES, BatchField.batchLength);
  bytes.writeInt16BE(attributes, BatchField.attributes);
  bytes.writeInt32BE(recordCount - 1, BatchField.lastOffsetDelta);
  bytes.writeInt32BE(recordCount, BatchField.recordCount);
  return restampCrc(bytes);
}

function restampCrc(bytes: Buffer): Buffer {
  bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
  return bytes;
}

describe('encodeBatch and decodeBatch', () => {
  it('round-trip keys, values, nulls, empty fields, headers and non-monotonic timestamps', () => {
    const decoded = decodeBatch(encodeBatch({ records: RECORDS }));
    expect(plain(decoded.records)).toEqual(plain(RECORDS));
    expect(decoded.records.map((record) => record.offset)).toEqual([0, 1, 2, 3]);
  });

  it('give records offsets counted from the batch baseOffset', () => {
    const decoded = decodeBatch(encodeBatch({ records: RECORDS, baseOffset: 1000 }));
    expect(decoded.records.map((record) => record.offset)).toEqual([1000, 1001, 1002, 1003]);
  });

  it('write exactly the v2 header fields', () => {
    const bytes = encodeBatch({
      records: RECORDS,
      baseOffset: 77,
      partitionLeaderEpoch: 5,
      producerId: 9_007_199_254_740_991,
      producerEpoch: 3,
      baseSequence: 40,
      timestampType: 'log-append',
      isTransactional: true,
    });
    const header = tryReadBatchHeader(bytes);
    expect(header).toEqual({
      baseOffset: 77,
      sizeBytes: bytes.length,
      partitionLeaderEpoch: 5,
      magic: 2,
      crc: crc32c(bytes.subarray(21)),
      attributes: 0x08 | 0x10,
      lastOffsetDelta: 3,
      baseTimestamp: T0,
      maxTimestamp: T0 + 10,
      producerId: 9_007_199_254_740_991,
      producerEpoch: 3,
      baseSequence: 40,
      recordCount: 4,
    });
    expect(bytes.readInt32BE(BatchField.batchLength)).toBe(bytes.length - 12);
    expect(validateBatchOrThrow(bytes, { batchBytesMax: bytes.length })).toEqual(header);
  });

  it('default to a non-idempotent, non-transactional create-time batch at offset 0', () => {
    const header = tryReadBatchHeader(encodeBatch({ records: RECORDS }));
    expect(header).toMatchObject({
      baseOffset: 0,
      partitionLeaderEpoch: -1,
      attributes: 0,
      producerId: -1,
      producerEpoch: -1,
      baseSequence: -1,
    });
  });

  it('lay out records byte for byte as Kafka does', () => {
    const bytes = encodeBatch({
      records: [
        { key: null, value: Buffer.from('v'), headers: [], timestamp: T0 },
        { key: null, value: null, headers: [{ key: 'h', value: Buffer.from('x') }], timestamp: T0 - 1 },
      ],
    });
    // length 7 (0e), attributes 00, timestampDelta 0 (00), offsetDelta 0 (00), key null (01),
    // value length 1 (02) "v" (76), headerCount 0 (00).
    const first = '0e' + '00' + '00' + '00' + '01' + '02' + '76' + '00';
    // length 10 (14), attributes, timestampDelta −1 (01), offsetDelta 1 (02), key null, value
    // null, headerCount 1 (02), header key length 1 (02) "h" (68), value length 1 (02) "x" (78).
    const second = '14' + '00' + '01' + '02' + '01' + '01' + '02' + '02' + '68' + '02' + '78';
    expect(bytes.subarray(BATCH_HEADER_BYTES).toString('hex')).toBe(first + second);
  });

  it('reject an empty record list with INVALID_REQUEST', () => {
    expectReason(() => encodeBatch({ records: [] }), 'INVALID_REQUEST', /at least one record/);
  });

  it('reject timestamps that are not safe integers and header fields out of range', () => {
    const record = RECORDS[0]!;
    expectReason(() => encodeBatch({ records: [{ ...record, timestamp: 1.5 }] }), 'INVALID_REQUEST', /timestamp/);
    expectReason(
      () => encodeBatch({ records: [record, { ...record, timestamp: Number.NaN }] }),
      'INVALID_REQUEST',
      /record 1 timestamp/,
    );
    expectReason(() => encodeBatch({ records: [record], producerEpoch: 0x8000 }), 'INVALID_REQUEST', /producerEpoch/);
    expectReason(() => encodeBatch({ records: [record], baseOffset: -1 }), 'INVALID_REQUEST', /baseOffset/);
  });

  it('refuse a header key with a lone UTF-16 surrogate, which UTF-8 would store as U+FFFD; a pair is kept', () => {
    const record = RECORDS[0]!;
    for (const key of ['\uD800', 'a\uDC00', 'x\uD83D']) {
      expectReason(() => encodeBatch({ records: [record, { ...record, headers: [{ key, value: null }] }] }), 'INVALID_REQUEST', /record 1 has a header key with a lone UTF-16 surrogate/);
    }
    const decoded = decodeBatch(encodeBatch({ records: [{ ...record, headers: [{ key: 'smile \uD83D\uDE00', value: null }] }] }));
    expect(decoded.records[0]!.headers[0]!.key).toBe('smile \uD83D\uDE00');
  });

  it('report every record of a log-append-time batch at the batch maxTimestamp, as Kafka does', () => {
    const decoded = decodeBatch(encodeBatch({ records: RECORDS, timestampType: 'log-append' }));
    expect(decoded.records.map((record) => record.timestamp)).toEqual([T0 + 10, T0 + 10, T0 + 10, T0 + 10]);
  });

  it('decode the batch at a given position inside a larger buffer', () => {
    const prefix = Buffer.from('not a batch');
    const bytes = Buffer.concat([prefix, encodeBatch({ records: RECORDS }), Buffer.from('trailing')]);
    expect(plain(decodeBatch(bytes, prefix.length).records)).toEqual(plain(RECORDS));
  });

  it('spell out the attribute bits', () => {
    expect(readBatchAttributes(0x01 | 0x08 | 0x10 | 0x20)).toEqual({
      compression: 'gzip',
      timestampType: 'log-append',
      isTransactional: true,
      isControl: true,
    });
    expectReason(() => readBatchAttributes(5), 'CORRUPT_MESSAGE', /unknown compression codec id 5/);
  });
});

describe('gzip batches', () => {
  it('round-trip and carry codec 1 with a gzip records section', () => {
    const bytes = encodeBatch({ records: RECORDS, compression: 'gzip' });
    expect(bytes.readInt16BE(BatchField.attributes) & COMPRESSION_MASK).toBe(1);
    expect(bytes.subarray(BATCH_HEADER_BYTES, BATCH_HEADER_BYTES + 2).toString('hex')).toBe('1f8b');
    expect(validateBatchOrThrow(bytes, { batchBytesMax: bytes.length }).recordCount).toBe(4);
    expect(plain(decodeBatch(bytes).records)).toEqual(plain(RECORDS));
  });

  it('compress a repetitive batch well below its uncompressed size', () => {
    const records = Array.from({ length: 100 }, (_, index) => ({
      key: Buffer.from(`key-${index}`),
      value: Buffer.alloc(1000, 'a'),
      headers: [],
      timestamp: T0 + index,
    }));
    const plainSize = encodeBatch({ records }).length;
    expect(encodeBatch({ records, compression: 'gzip' }).length).toBeLessThan(plainSize / 10);
  });

  it('refuse to inflate a section past decompressedBytesMax with RECORD_TOO_LARGE (a gzip bomb)', () => {
    const bomb = encodeBatch({
      records: [{ key: null, value: Buffer.alloc(4 * 1024 * 1024), headers: [], timestamp: T0 }],
      compression: 'gzip',
    });
    expect(bomb.length).toBeLessThan(10_000);
    expectReason(() => decodeBatch(bomb, 0, { decompressedBytesMax: 1024 * 1024 }), 'RECORD_TOO_LARGE', /1048576/);
    expect(decodeBatch(bomb, 0, { decompressedBytesMax: 8 * 1024 * 1024 }).records[0]?.value?.length).toBe(
      4 * 1024 * 1024,
    );
  });

  it('reject a section that is not valid gzip with CORRUPT_MESSAGE', () => {
    expectReason(() => decodeBatch(craftBatch(Buffer.from('definitely not gzip'), 1, 1)), 'CORRUPT_MESSAGE', /gzip/);
    const truncatedGzip = gzipSync(Buffer.alloc(1000, 7)).subarray(0, 12);
    expectReason(() => decodeBatch(craftBatch(truncatedGzip, 1, 1)), 'CORRUPT_MESSAGE', /gzip/);
  });

  it('bound the async and uncompressed paths by the same limit', async () => {
    const compressed = await compressRecordsAsync('gzip', Buffer.alloc(64 * 1024));
    await expect(decompressRecordsAsync('gzip', compressed, { decompressedBytesMax: 1024 })).rejects.toMatchObject({
      reason: 'RECORD_TOO_LARGE',
    });
    expect((await decompressRecordsAsync('gzip', compressed, { decompressedBytesMax: 64 * 1024 })).length).toBe(
      64 * 1024,
    );
    expectReason(() => decompressRecords('none', Buffer.alloc(10), { decompressedBytesMax: 9 }), 'RECORD_TOO_LARGE');
  });
});

describe('unsupported codecs', () => {
  const UNSUPPORTED: [CompressionName, number][] = [
    ['snappy', 2],
    ['lz4', 3],
    ['zstd', 4],
  ];

  it.each(UNSUPPORTED)('refuse to encode %s with UNSUPPORTED_COMPRESSION naming the codec', (codec) => {
    expectReason(
      () => encodeBatch({ records: RECORDS, compression: codec }),
      'UNSUPPORTED_COMPRESSION',
      new RegExp(codec),
    );
  });

  it.each(UNSUPPORTED)('refuse to decode a %s batch (id %d) with UNSUPPORTED_COMPRESSION', (codec, codecId) => {
    const bytes = encodeBatch({ records: RECORDS });
    bytes.writeInt16BE(codecId, BatchField.attributes);
    expectReason(() => decodeBatch(restampCrc(bytes)), 'UNSUPPORTED_COMPRESSION', new RegExp(codec));
  });

  it('treat unassigned codec ids 5 to 7 as damage', () => {
    for (const codecId of [5, 6, 7]) {
      const bytes = encodeBatch({ records: RECORDS });
      bytes.writeInt16BE(codecId, BatchField.attributes);
      expectReason(() => decodeBatch(restampCrc(bytes)), 'CORRUPT_MESSAGE', /unknown compression/);
    }
  });
});

describe('decodeBatch on damaged input', () => {
  const GOOD_RECORD = '0e00000001027600'; // 7-byte body: value "v", no key, no headers
  const BIG_RECORD = '20' + '0000000114' + '61'.repeat(10) + '00'; // 16-byte body: value "aaaaaaaaaa"
  const BIG_SECOND_RECORD = '20' + '0000020114' + '61'.repeat(10) + '00'; // the same with offset delta 1

  it('accepts the hand-crafted reference section (the helper itself is sound)', () => {
    const decoded = decodeBatch(craftBatch(Buffer.from(GOOD_RECORD + BIG_SECOND_RECORD, 'hex'), 2));
    expect(decoded.records.map((record) => record.value?.toString())).toEqual(['v', 'aaaaaaaaaa']);
  });

  it('rejects a CRC mismatch, a wrong magic and a truncated batch', () => {
    const flipped = encodeBatch({ records: RECORDS });
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0xff;
    expectReason(() => decodeBatch(flipped), 'CORRUPT_MESSAGE', /CRC/);

    const wrongMagic = encodeBatch({ records: RECORDS });
    wrongMagic.writeInt8(1, BatchField.magic);
    expectReason(() => decodeBatch(wrongMagic), 'CORRUPT_MESSAGE', /magic 1/);

    const whole = encodeBatch({ records: RECORDS });
    expectReason(() => decodeBatch(whole.subarray(0, whole.length - 1)), 'CORRUPT_MESSAGE', /remain/);
    expectReason(() => decodeBatch(whole.subarray(0, 60)), 'CORRUPT_MESSAGE', /61-byte/);
  });

  // Each case names the check it reaches; the message pattern proves it was that check and not
  // an earlier one (such as the record-count bound, which needs 7 bytes per declared record).
  it.each([
    ['a record length varint cut off by the end of the section', BIG_RECORD + '80', 2, /varint at byte 17 runs past the end \(byte 18\)/],
    ['a record length varint longer than five bytes', 'ffffffffff01' + '00000000', 1, /varint .* too long/],
    ['a record length running past the section', '2000000001027600', 1, /record length 16 .* does not fit/],
    ['a record length shorter than its fields', '0c00000001027600', 1, /varint at byte 7 runs past the end \(byte 7\)/],
    ['a record length longer than its fields', '10' + '00000001027600' + '00', 1, /says 8 bytes but its fields take 7/],
    ['a record length below the 6-byte minimum', '0a' + '00000001027600', 1, /record length 5 /],
    ['a negative record length', '01' + '00000001027600', 1, /record length -1 /],
    ['a key length below -1', '0e00000003027600', 1, /key length -2/],
    ['a value length running past the record', '0e00000001067600', 1, /value length 3 does not fit/],
    ['a negative header count', '0e00000001027601', 1, /negative header count -1/],
    ['a header count larger than the headers present', '0e00000001027602', 1, /varint at byte 8 runs past/],
    ['a timestampDelta varlong running past the record', '0c00ffffffffff', 1, /varlong at byte 2 runs past the end \(byte 7\)/],
    ['fewer records than recordCount', BIG_RECORD, 2, /declares 2 records but the records section ends after 1/],
    ['more records than recordCount', GOOD_RECORD + GOOD_RECORD, 1, /8 bytes follow the last one/],
    ['trailing bytes after the last record', GOOD_RECORD + '00', 1, /1 bytes follow the last one/],
    ['a recordCount the section cannot possibly hold', GOOD_RECORD, 1_000_000, /cannot hold that many/],
    ['a negative recordCount', GOOD_RECORD, -1, /negative record count/],
    ['an offset delta that is not the record\'s index (a reader resumed after it, past later batches)', '0e00007e01027600', 1, /record 0 has offset delta 63/],
    ['a second record repeating the first one\'s offset delta', GOOD_RECORD + GOOD_RECORD, 2, /record 1 has offset delta 0/],
  ] as const)('rejects %s with CORRUPT_MESSAGE', (_what, sectionHex, recordCount, message) => {
    expectReason(() => decodeBatch(craftBatch(Buffer.from(sectionHex, 'hex'), recordCount)), 'CORRUPT_MESSAGE', message);
    // The cursor makes the same checks, each when it reaches them.
    const cursor = new RecordCursor(craftBatch(Buffer.from(sectionHex, 'hex'), recordCount), {}, (offset) => offset);
    expectReason(() => {
      while (!cursor.isDone) cursor.take(1);
    }, 'CORRUPT_MESSAGE', message);
  });

  it('rejects a lastOffsetDelta that disagrees with recordCount, where a RecordCursor stepped over the records decodeBatch returned', () => {
    for (const lastOffsetDelta of [-0x8000_0000, -1, 0, 4, 0x7fff_ffff]) {
      const bytes = encodeBatch({ records: RECORDS, baseOffset: 10 });
      bytes.writeInt32BE(lastOffsetDelta, BatchField.lastOffsetDelta);
      restampCrc(bytes);
      expectReason(() => decodeBatch(bytes), 'CORRUPT_MESSAGE', /lastOffsetDelta .* does not match its record count 4/);
      const cursor = new RecordCursor(bytes, { fromOffset: 10 }, (offset) => offset);
      expectReason(() => cursor.next(), 'CORRUPT_MESSAGE', /lastOffsetDelta/);
      expect(cursor.nextOffset).toBe(10);
    }
  });

  it('rejects damage inside a gzip section the same way', () => {
    const section = gzipSync(Buffer.from('0e00000001027601', 'hex'));
    expectReason(() => decodeBatch(craftBatch(section, 1, 1)), 'CORRUPT_MESSAGE', /header count/);
  });
});

describe('validateBatchRecordsOrThrow (what a client produces)', () => {
  const CHECKS = { headersPerRecordMax: 2, decompressedBytesMax: 1 << 20 };
  const check = (bytes: Buffer, checks: RecordChecks = CHECKS): void => validateBatchRecordsOrThrow(bytes, validateBatchOrThrow(bytes, { batchBytesMax: 1 << 20 }), checks);
  const GOOD_RECORD = '0e00000001027600'; // offset delta 0, value "v"
  const SECOND_RECORD = '0e00000201027600'; // the same with offset delta 1
  const TWO_HEADERS = '14' + '00000001010400010001'; // no key or value, two headers ('' → null)

  it('accepts what encodeBatch builds, plain and gzip, and hand-crafted records with deltas in order', () => {
    for (const compression of ['none', 'gzip'] as const) check(encodeBatch({ records: RECORDS, compression }));
    check(craftBatch(Buffer.from(GOOD_RECORD + SECOND_RECORD, 'hex'), 2));
    check(craftBatch(Buffer.from(TWO_HEADERS, 'hex'), 1));
  });

  it.each([
    ['a record length running past the section', '2000000001027600', 1],
    ['a value length running past the record', '0e00000001067600', 1],
    ['trailing bytes after the last record', GOOD_RECORD + '00', 1],
    ['fewer records than recordCount', GOOD_RECORD, 2],
    ['offset deltas out of order (the decoder would give two records one offset)', GOOD_RECORD + GOOD_RECORD, 2],
    ['a null header key', '10' + '000000010102' + '0101', 1],
  ] as const)('rejects %s with CORRUPT_MESSAGE', (_what, sectionHex, recordCount) => {
    expectReason(() => check(craftBatch(Buffer.from(sectionHex, 'hex'), recordCount)), 'CORRUPT_MESSAGE');
  });

  it('names the check that failed', () => {
    expectReason(() => check(craftBatch(Buffer.from('10' + '000000010102' + '0101', 'hex'), 1)), 'CORRUPT_MESSAGE', /header key length -1/);
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD + GOOD_RECORD, 'hex'), 2)), 'CORRUPT_MESSAGE', /record 1 has offset delta 0/);
  });

  it('refuses a header key that is not valid UTF-8 with INVALID_REQUEST, which a consumer would read back as other bytes', () => {
    const oneHeader = (keyHex: string): Buffer => {
      const body = '0000000101' + '02' + (keyHex.length / 2 * 2).toString(16).padStart(2, '0') + keyHex + '01'; // no key or value, one header with a null value
      return craftBatch(Buffer.from((body.length / 2 * 2).toString(16).padStart(2, '0') + body, 'hex'), 1);
    };
    expect(decodeBatch(oneHeader('ff')).records[0]!.headers[0]!.key).toBe('\ufffd');
    expectReason(() => check(oneHeader('ff')), 'INVALID_REQUEST', /record 0 has a header key that is not valid UTF-8/);
    expectReason(() => check(oneHeader('6bc3')), 'INVALID_REQUEST', /not valid UTF-8/); // a sequence cut short
    check(oneHeader('6b'));
    check(oneHeader('c3a9')); // é
    check(oneHeader(''));
  });

  it('rejects damage inside a gzip section, and a codec id no Kafka client uses', () => {
    expectReason(() => check(craftBatch(gzipSync(Buffer.from(GOOD_RECORD + GOOD_RECORD, 'hex')), 2, 1)), 'CORRUPT_MESSAGE', /offset delta 0/);
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1, 5)), 'CORRUPT_MESSAGE');
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1, 2)), 'UNSUPPORTED_COMPRESSION', /snappy/);
  });

  it('refuses a create-time record outside the timestamp window with INVALID_TIMESTAMP naming the config, and lets -1 and log-append batches through', () => {
    const window = { minMs: T0 - 1_000, maxMs: T0 + 1_000 };
    const batchAt = (...timestamps: number[]): Buffer =>
      encodeBatch({ records: timestamps.map((timestamp) => ({ key: null, value: Buffer.from('v'), headers: [], timestamp })) });
    const checkIn = (bytes: Buffer): void => check(bytes, { ...CHECKS, createTimestampWindow: window });
    checkIn(batchAt(T0 - 1_000, T0, T0 + 1_000)); // both ends inclusive
    checkIn(batchAt(-1)); // no timestamp: passes, as in Kafka
    expectReason(() => checkIn(batchAt(T0, T0 + 1_001)), 'INVALID_TIMESTAMP', /record 1 has timestamp .* later than the topic's message\.timestamp\.after\.max\.ms allows .*raise message\.timestamp\.after\.max\.ms/);
    expectReason(() => checkIn(batchAt(T0 - 1_001, T0)), 'INVALID_TIMESTAMP', /record 0 .* earlier than the topic's message\.timestamp\.before\.max\.ms allows/);
    expectReason(() => checkIn(encodeBatch({ records: [{ key: null, value: null, headers: [], timestamp: T0 + 1_001 }], compression: 'gzip' })), 'INVALID_TIMESTAMP');
    // The broker sets a log-append batch's time: its records' own timestamps are not judged.
    const logAppend = batchAt(T0 + 10_000_000);
    logAppend.writeInt16BE(logAppend.readInt16BE(BatchField.attributes) | 0x08, BatchField.attributes);
    check(restampCrc(logAppend), { ...CHECKS, timestampType: 'log-append', createTimestampWindow: window });
    // Refused as malformed first: INVALID_TIMESTAMP vouches for the rest of the batch (storage
    // may answer such an idempotent batch as the duplicate of one appended earlier).
    const malformed = batchAt(T0 + 1_001, T0);
    malformed.writeBigInt64BE(BigInt(T0), BatchField.maxTimestamp);
    expectReason(() => checkIn(restampCrc(malformed)), 'CORRUPT_MESSAGE', /maxTimestamp/);
  });

  it('rejects a create-time maxTimestamp other than its newest record\'s (the time index and retention trust it)', () => {
    const records = [T0 + 10, T0 + 30, T0 + 20].map((timestamp) => ({ key: null, value: Buffer.from('v'), headers: [], timestamp }));
    const withMaxTimestamp = (maxTimestamp: number, attributes?: number): Buffer => {
      const bytes = encodeBatch({ records });
      if (attributes !== undefined) bytes.writeInt16BE(attributes, BatchField.attributes);
      bytes.writeBigInt64BE(BigInt(maxTimestamp), BatchField.maxTimestamp);
      return restampCrc(bytes);
    };
    check(withMaxTimestamp(T0 + 30));
    expectReason(() => check(withMaxTimestamp(T0 + 10)), 'CORRUPT_MESSAGE', /maxTimestamp .* newest timestamp/);
    expectReason(() => check(withMaxTimestamp(T0 + 31)), 'CORRUPT_MESSAGE', /maxTimestamp/);
    check(withMaxTimestamp(T0 + 99, 0x08)); // log-append time: the broker sets maxTimestamp
  });

  it('rejects a batch whose timestamp type is not the topic\'s with INVALID_REQUEST', () => {
    const logAppend = craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1, 0x08);
    expectReason(() => check(logAppend, { ...CHECKS, timestampType: 'create' }), 'INVALID_REQUEST', /log-append-time batch/);
    check(logAppend, { ...CHECKS, timestampType: 'log-append' });
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1), { ...CHECKS, timestampType: 'log-append' }), 'INVALID_REQUEST');
  });

  it('rejects more headers than the limit, and control or transactional batches, with INVALID_REQUEST', () => {
    expectReason(() => check(craftBatch(Buffer.from(TWO_HEADERS, 'hex'), 1), { ...CHECKS, headersPerRecordMax: 1 }), 'INVALID_REQUEST', /2 headers; at most 1/);
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1, 0x20)), 'INVALID_REQUEST', /control/);
    expectReason(() => check(craftBatch(Buffer.from(GOOD_RECORD, 'hex'), 1, 0x10)), 'INVALID_REQUEST', /transactional/);
  });
});

describe('decodeBatches', () => {
  function threeBatches(): { bytes: Buffer; expected: LogRecord[] } {
    const batches = [RECORDS.slice(0, 2), RECORDS.slice(2, 3), RECORDS.slice(3)];
    let baseOffset = 0;
    const encoded = batches.map((records, index) => {
      const bytes = encodeBatch({ records, compression: index === 1 ? 'gzip' : 'none' });
      setBatchBaseOffset(bytes, baseOffset);
      baseOffset += records.length;
      return bytes;
    });
    return { bytes: Buffer.concat(encoded), expected: batches.flat() };
  }

  it('returns the records of back-to-back batches in offset order', () => {
    const { bytes, expected } = threeBatches();
    const records = decodeBatches(bytes);
    expect(plain(records)).toEqual(plain(expected));
    expect(records.map((record) => record.offset)).toEqual([0, 1, 2, 3]);
  });

  it('ignores a trailing partial batch cut anywhere, as Kafka clients do', () => {
    const { bytes, expected } = threeBatches();
    const partial = encodeBatch({ records: RECORDS });
    for (const cut of [1, 11, 12, 30, BATCH_HEADER_BYTES, BATCH_HEADER_BYTES + 5, partial.length - 1]) {
      const withPartial = Buffer.concat([bytes, partial.subarray(0, cut)]);
      expect(plain(decodeBatches(withPartial))).toEqual(plain(expected));
    }
  });

  it('returns nothing for an empty buffer or one holding only a partial batch', () => {
    expect(decodeBatches(Buffer.alloc(0))).toEqual([]);
    expect(decodeBatches(encodeBatch({ records: RECORDS }).subarray(0, 40))).toEqual([]);
  });

  it('throws on a damaged whole batch instead of skipping it', () => {
    const { bytes } = threeBatches();
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    expectReason(() => decodeBatches(bytes), 'CORRUPT_MESSAGE', /CRC/);
  });

  it('throws on a length field too small for a batch header rather than treating it as partial', () => {
    const { bytes } = threeBatches();
    const damaged = Buffer.concat([bytes, Buffer.from('000000000000000000000010', 'hex')]);
    expectReason(() => decodeBatches(damaged), 'CORRUPT_MESSAGE', /impossible length 16/);
  });

  it('builds each record with the caller\'s factory through iterateBatchesAs, with the same fields and checks', () => {
    const { bytes } = threeBatches();
    const made = [...iterateBatchesAs(bytes, {}, (offset, timestamp, key, value, headers) => ({ source: 'mine', offset, timestamp, key, value, headers }))].flatMap(
      (batch) => batch.records,
    );
    expect(made.every((record) => record.source === 'mine')).toBe(true);
    expect(made.map(({ source: _source, ...fields }) => fields)).toEqual(decodeBatches(bytes));
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    expectReason(() => [...iterateBatchesAs(bytes, {}, (offset) => offset)], 'CORRUPT_MESSAGE', /CRC/);
  });

  it('visits records from an offset, across batches, until told to stop', () => {
    const { bytes } = threeBatches();
    const visited: [number, number][] = [];
    visitRecords(bytes, { fromOffset: 1 }, (record, header) => {
      visited.push([record.offset, header.baseOffset]);
      return record.offset < 2;
    });
    expect(visited).toEqual([
      [1, 0],
      [2, 2],
    ]);
    const all: number[] = [];
    visitRecords(bytes, {}, (record) => all.push(record.offset) > 0);
    expect(all).toEqual([0, 1, 2, 3]);
  });

  it('yields whole batches with their headers through iterateBatches', () => {
    const { bytes } = threeBatches();
    const batches = [...iterateBatches(bytes)];
    expect(batches.map((batch) => [batch.header.baseOffset, batch.header.recordCount])).toEqual([
      [0, 2],
      [2, 1],
      [3, 1],
    ]);
  });
});

describe('RecordCursor', () => {
  /** `count` empty records from offset 0 in one gzip batch: the shape that once took gigabytes to decode whole. */
  function manyTinyRecords(count: number): Buffer {
    return encodeBatch({ records: Array.from({ length: count }, (_, index) => ({ key: null, value: Buffer.from([index & 0xff]), headers: [], timestamp: T0 + index })), compression: 'gzip' });
  }

  /** A factory that counts what it built. */
  function countingFactory(): { built: () => number; make: (offset: number, timestamp: number, key: Buffer | null, value: Buffer | null) => { offset: number; value: Buffer | null } } {
    let builtCount = 0;
    return { built: () => builtCount, make: (offset, _timestamp, _key, value) => (builtCount++, { offset, value }) };
  }

  it('builds no more records than each take asks for, and resumes where it stopped', () => {
    const counting = countingFactory();
    const cursor = new RecordCursor(manyTinyRecords(10_000), {}, counting.make);
    const first = cursor.take(300);
    expect(first.map((record) => record.offset)).toEqual(Array.from({ length: 300 }, (_, index) => index));
    expect(counting.built()).toBe(300);
    expect(cursor.nextOffset).toBe(300);
    expect(cursor.isDone).toBe(false);
    const second = cursor.take(300);
    expect(second[0]!.offset).toBe(300);
    expect(counting.built()).toBe(600);
    expect(cursor.nextOffset).toBe(600);
  });

  it('inflates a batch once for all its slices: every slice is a view into the same records section', () => {
    const cursor = new RecordCursor(manyTinyRecords(1_000), {}, (offset, _timestamp, _key, value) => value);
    const first = cursor.take(10)[0]!;
    const later = cursor.take(500).at(-1)!;
    expect(later.buffer).toBe(first.buffer);
  });

  it('steps over the records below fromOffset without building them, also inside a batch', () => {
    const counting = countingFactory();
    const cursor = new RecordCursor(manyTinyRecords(10_000), { fromOffset: 7_777 }, counting.make);
    expect(cursor.nextOffset).toBe(7_777);
    const slice = cursor.take(100);
    expect(slice.map((record) => record.offset)).toEqual(Array.from({ length: 100 }, (_, index) => 7_777 + index));
    expect(slice[0]!.value).toEqual(Buffer.from([7_777 & 0xff]));
    expect(counting.built()).toBe(100);
  });

  it('is done, with nextOffset after the last batch, as soon as it hands out the last record', () => {
    const bytes = Buffer.concat([encodeBatch({ records: RECORDS.slice(0, 2) }), encodeBatch({ records: RECORDS.slice(2), baseOffset: 2 })]);
    const cursor = new RecordCursor(bytes, {}, (offset) => offset);
    expect(cursor.take(2)).toEqual([0, 1]);
    expect(cursor.isDone).toBe(false);
    expect(cursor.take(2)).toEqual([2, 3]);
    expect(cursor.isDone).toBe(true);
    expect(cursor.nextOffset).toBe(4);
    expect(cursor.take(2)).toEqual([]);
    expect(cursor.next()).toBeUndefined();
  });

  it('ignores a partial batch at the end, and is done with nothing to read', () => {
    const whole = encodeBatch({ records: RECORDS.slice(0, 2) });
    const cursor = new RecordCursor(Buffer.concat([whole, whole.subarray(0, 40)]), {}, (offset) => offset);
    expect(cursor.take(10)).toEqual([0, 1]);
    expect(cursor.isDone).toBe(true);
    const empty = new RecordCursor(Buffer.alloc(0), { fromOffset: 5 }, (offset) => offset);
    expect(empty.take(10)).toEqual([]);
    expect(empty.isDone).toBe(true);
    expect(empty.nextOffset).toBe(5);
  });

  it('steps over control batches when asked, moving nextOffset past them, and reads them otherwise', () => {
    const control = encodeBatch({ records: RECORDS.slice(0, 1), baseOffset: 2 });
    control.writeInt16BE(control.readInt16BE(BatchField.attributes) | CONTROL_BIT, BatchField.attributes);
    restampCrc(control);
    const bytes = Buffer.concat([encodeBatch({ records: RECORDS.slice(0, 2) }), control, encodeBatch({ records: RECORDS.slice(0, 1), baseOffset: 3 })]);
    const skipping = new RecordCursor(bytes, { isControlSkipped: true }, (offset) => offset);
    expect(skipping.take(2)).toEqual([0, 1]);
    expect(skipping.take(1)).toEqual([3]);
    expect(skipping.take(10)).toEqual([]);
    const onlyControl = new RecordCursor(control, { isControlSkipped: true }, (offset) => offset);
    expect(onlyControl.take(10)).toEqual([]);
    expect(onlyControl.nextOffset).toBe(3);
    expect(new RecordCursor(bytes, {}, (offset) => offset).take(10)).toEqual([0, 1, 2, 3]);
  });

  it('throws a damaged batch at once, and keeps throwing', () => {
    const bytes = encodeBatch({ records: RECORDS });
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    const cursor = new RecordCursor(bytes, {}, (offset) => offset);
    expectReason(() => cursor.take(10), 'CORRUPT_MESSAGE', /CRC/);
    expectReason(() => cursor.next(), 'CORRUPT_MESSAGE', /CRC/);
  });

  it('returns the records before a malformed one, and throws on the next call', () => {
    // Offset deltas 0 and 1, then a record with key length -2 at delta 2.
    const section = '0e00000001027600' + '0e00000201027600' + '0e00000403027600';
    const cursor = new RecordCursor(craftBatch(Buffer.from(section, 'hex'), 3), {}, (offset) => offset);
    expect(cursor.take(10)).toEqual([0, 1]);
    expect(cursor.nextOffset).toBe(2);
    expectReason(() => cursor.take(10), 'CORRUPT_MESSAGE', /key length -2/);
    expectReason(() => cursor.take(10), 'CORRUPT_MESSAGE', /key length -2/);
  });
});
