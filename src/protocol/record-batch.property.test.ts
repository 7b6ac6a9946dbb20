/**
 * Random record lists through encode → decode, compared with the input as the model: every
 * record must come back with the same key, value, headers and timestamp, in order, at offset
 * baseOffset + index, and every encoded batch must pass the broker's produce validation,
 * records included.
 *
 * Some batches hold more than 63 records and some records more than 63 headers, so offset
 * deltas and header counts take two-byte varints as well as one: an encoder that wrapped either
 * at 64 passed every test here while batches had at most 40 records of at most 4 headers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tryReadBatchHeader, validateBatchOrThrow } from './batch-header.js';
import { HEADERS_PER_RECORD_MAX } from './grpc.js';
import { decodeBatch, decodeBatches, encodeBatch, RecordCursor, validateBatchRecordsOrThrow, visitRecords, type DecodedRecord, type LogRecord } from './record-batch.js';

const bytesOrNull = fc.option(
  fc.oneof(
    fc.constant(Buffer.alloc(0)),
    fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array)),
  ),
  { nil: null, freq: 4 },
);

const headerArbitrary = fc.record({
  key: fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 10 })),
  value: bytesOrNull,
});

/** Timestamps near now with small jitter either way, plus far-apart values that need long varlongs. */
const timestampArbitrary = fc.oneof(
  fc.integer({ min: 1_700_000_000_000 - 10_000, max: 1_700_000_000_000 + 10_000 }),
  fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
  fc.constant(-1),
);

/** Small headers in numbers past 63, so the header count needs a two-byte varint. */
const manyHeadersArbitrary = fc.array(
  fc.record({ key: fc.string({ maxLength: 3 }), value: fc.option(fc.uint8Array({ maxLength: 3 }).map((array) => Buffer.from(array)), { nil: null }) }),
  { minLength: 64, maxLength: 150 },
);

const recordArbitrary: fc.Arbitrary<LogRecord> = fc.record({
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.oneof({ arbitrary: fc.array(headerArbitrary, { maxLength: 4 }), weight: 9 }, { arbitrary: manyHeadersArbitrary, weight: 1 }),
  timestamp: timestampArbitrary,
});

/** Small records in numbers past 63, so offset deltas need two-byte varints. */
const manyRecordsArbitrary: fc.Arbitrary<LogRecord[]> = fc.array(
  fc.record({ key: fc.constant(null), value: bytesOrNull.map((value) => value?.subarray(0, 8) ?? null), headers: fc.constant([]).map((): LogRecord['headers'] => []), timestamp: timestampArbitrary }),
  { minLength: 64, maxLength: 300 },
);

const recordsArbitrary: fc.Arbitrary<LogRecord[]> = fc.oneof(
  { arbitrary: fc.array(recordArbitrary, { minLength: 1, maxLength: 40 }), weight: 4 },
  { arbitrary: manyRecordsArbitrary, weight: 1 },
);
const compressionArbitrary = fc.constantFrom('none' as const, 'gzip' as const);

function plain(records: readonly LogRecord[]): unknown[] {
  return records.map((record) => ({
    key: record.key?.toString('hex') ?? null,
    value: record.value?.toString('hex') ?? null,
    headers: record.headers.map((header) => ({ key: header.key, value: header.value?.toString('hex') ?? null })),
    timestamp: record.timestamp,
  }));
}

describe('record batch round trip (property)', () => {
  it('decodes exactly the records it encoded, with or without gzip', () => {
    fc.assert(
      fc.property(
        recordsArbitrary,
        compressionArbitrary,
        fc.integer({ min: 0, max: 2 ** 40 }),
        (records, compression, baseOffset) => {
          const bytes = encodeBatch({ records, compression, baseOffset });
          const header = validateBatchOrThrow(bytes, { batchBytesMax: bytes.length });
          validateBatchRecordsOrThrow(bytes, header, { headersPerRecordMax: HEADERS_PER_RECORD_MAX, decompressedBytesMax: 1 << 24 });
          expect(header.recordCount).toBe(records.length);
          expect(header.baseTimestamp).toBe(records[0]!.timestamp);
          expect(header.maxTimestamp).toBe(Math.max(...records.map((record) => record.timestamp)));

          const decoded = decodeBatch(bytes);
          expect(plain(decoded.records)).toEqual(plain(records));
          expect(decoded.records.map((record) => record.offset)).toEqual(records.map((_, index) => baseOffset + index));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('decodes back-to-back batches in order and ignores a partial last one', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(recordsArbitrary, compressionArbitrary), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (batches, cutSeed) => {
          let baseOffset = 0;
          const encoded = batches.map(([records, compression]) => {
            const bytes = encodeBatch({ records, compression, baseOffset });
            baseOffset += records.length;
            return bytes;
          });
          const last = encoded[encoded.length - 1]!;
          const cut = cutSeed % last.length; // strictly shorter than the last batch
          const bytes = Buffer.concat([...encoded.slice(0, -1), last.subarray(0, cut)]);

          const expected = batches.slice(0, -1).flatMap(([records]) => records);
          const decoded = decodeBatches(bytes);
          expect(plain(decoded)).toEqual(plain(expected));
          expect(decoded.map((record) => record.offset)).toEqual(expected.map((_, index) => index));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('visits exactly the decoded records from any offset, and reads a log-append batch at its maxTimestamp', () => {
    fc.assert(
      fc.property(recordsArbitrary, compressionArbitrary, fc.boolean(), fc.nat(), (records, compression, isLogAppendTime, fromSeed) => {
        const baseOffset = 1000;
        const bytes = encodeBatch({ records, compression, baseOffset, timestampType: isLogAppendTime ? 'log-append' : 'create' });
        const decoded = decodeBatch(bytes);
        const maxTimestamp = Math.max(...records.map((record) => record.timestamp));
        expect(decoded.records.map((record) => record.timestamp)).toEqual(records.map((record) => (isLogAppendTime ? maxTimestamp : record.timestamp)));

        const fromOffset = baseOffset + (fromSeed % (records.length + 2)) - 1;
        const visited: DecodedRecord[] = [];
        visitRecords(bytes, { fromOffset }, (record) => visited.push(record) > 0);
        expect(plain(visited)).toEqual(plain(decoded.records.filter((record) => record.offset >= fromOffset)));
        expect(visited.map((record) => record.offset)).toEqual(decoded.records.filter((record) => record.offset >= fromOffset).map((record) => record.offset));
      }),
      { numRuns: 100 },
    );
  });

  it('reads through a RecordCursor in slices of any size exactly the records decodeBatches reads from any offset, resumable at nextOffset', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(recordsArbitrary, compressionArbitrary), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (batches, sliceSizes, fromSeed) => {
          let baseOffset = 0;
          const bytes = Buffer.concat(
            batches.map(([records, compression]) => {
              const encoded = encodeBatch({ records, compression, baseOffset });
              baseOffset += records.length;
              return encoded;
            }),
          );
          const fromOffset = fromSeed % (baseOffset + 2);
          const expected = decodeBatches(bytes).filter((record) => record.offset >= fromOffset);
          const cursor = new RecordCursor(bytes, { fromOffset }, (offset, timestamp, key, value, headers): DecodedRecord => ({ offset, timestamp, key, value, headers }));
          const read: DecodedRecord[] = [];
          for (let sliceIndex = 0; !cursor.isDone; sliceIndex++) {
            const countMax = sliceSizes[sliceIndex % sliceSizes.length]!;
            const slice = cursor.take(countMax);
            expect(slice.length).toBeLessThanOrEqual(countMax);
            if (slice.length < countMax) expect(cursor.isDone).toBe(true);
            read.push(...slice);
            // A reader stopping here resumes at nextOffset: right after what it was handed.
            const last = read.at(-1);
            expect(cursor.nextOffset).toBe(cursor.isDone ? Math.max(fromOffset, baseOffset) : last!.offset + 1);
          }
          expect(plain(read)).toEqual(plain(expected));
          expect(read.map((record) => record.offset)).toEqual(expected.map((record) => record.offset));
        },
      ),
      { numRuns: 100 },
    );
  });
});

/** Deterministic filler so 1 MiB values cost no generator time (xorshift32). */
function pseudoRandomBytes(seed: number, sizeBytes: number): Buffer {
  const bytes = Buffer.allocUnsafe(sizeBytes);
  let state = seed | 1;
  for (let index = 0; index < sizeBytes; index++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[index] = state & 0xff;
  }
  return bytes;
}

describe('record batch round trip with 1 MiB values (property)', () => {
  it('keeps every byte of large values, with or without gzip', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 1, max: 3 }),
        compressionArbitrary,
        fc.boolean(),
        (seed, recordCount, compression, isCompressible) => {
          const records: LogRecord[] = Array.from({ length: recordCount }, (_, index) => ({
            key: Buffer.from(`large-${index}`),
            value: isCompressible ? Buffer.alloc(1024 * 1024, index) : pseudoRandomBytes(seed + index, 1024 * 1024),
            headers: [{ key: 'index', value: Buffer.from(String(index)) }],
            timestamp: 1_700_000_000_000 + index,
          }));
          const bytes = encodeBatch({ records, compression });
          expect(tryReadBatchHeader(bytes)?.sizeBytes).toBe(bytes.length);
          const decoded = decodeBatch(bytes, 0, { decompressedBytesMax: 4 * 1024 * 1024 });
          expect(decoded.records).toHaveLength(recordCount);
          decoded.records.forEach((record, index) => {
            expect(record.value?.equals(records[index]!.value!)).toBe(true);
            expect(record.key?.toString()).toBe(`large-${index}`);
          });
        },
      ),
      { numRuns: 5 },
    );
  });
});
