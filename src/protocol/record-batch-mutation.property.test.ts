/**
 * Hostile bytes against every reader of a batch. Valid batches from `encodeBatch` (null keys
 * and values, headers, gzip) are mutated: bit flips, bytes set anywhere, header fields set to
 * edge values, truncation and extension, records sections with bytes changed, varints
 * inserted (overlong, 10+ bytes, int32 edges, negative lengths), cut short or extended, record
 * counts that disagree with the section, gzip garbage, truncated gzip, a gzip bomb, and codec
 * ids no build reads. The CRC is recomputed after the mutation (and batchLength fixed), so the
 * CRC check does not hide the decoder's own checks. Then:
 *
 * - every reader (produce validation, `decodeBatch`, `RecordCursor` from any offset,
 *   `iterateBatches` after a good batch) throws only `BrokerError` and never changes the input;
 * - a batch that passes produce validation decodes, after the broker stamps its base offset, to
 *   exactly `recordCount` records at offsets base + 0, 1, 2, …, with header keys as stored
 *   (no U+FFFD from bytes that were not UTF-8), and a create-time batch's newest record at
 *   its maxTimestamp;
 * - a `RecordCursor` from an offset yields exactly the records `decodeBatch` yields from there.
 *
 * Seeded and bounded so it runs in a few seconds; the scratch version ran 60,000 cases.
 */
import fc from 'fast-check';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import { BATCH_CRC_START, BATCH_HEADER_BYTES, BatchField, setBatchBaseOffset, tryReadBatchHeader, validateBatchOrThrow, type BatchHeader } from './batch-header.js';
import { crc32c } from './crc32c.js';
import { decodeBatch, encodeBatch, iterateBatches, RecordCursor, validateBatchRecordsOrThrow, type DecodedBatch, type LogRecord } from './record-batch.js';

const DECOMPRESSED_BYTES_MAX = 512 * 1024;
const BOMB = gzipSync(Buffer.alloc(4 * 1024 * 1024), { level: 9 }); // 4 KiB inflating to 4 MiB

const bytesOrNull = fc.option(fc.uint8Array({ maxLength: 40 }).map((array) => Buffer.from(array)), { nil: null, freq: 3 });
const recordArbitrary: fc.Arbitrary<LogRecord> = fc.record({
  key: bytesOrNull,
  value: bytesOrNull,
  headers: fc.array(fc.record({ key: fc.string({ maxLength: 6 }), value: bytesOrNull }), { maxLength: 3 }),
  timestamp: fc.oneof(fc.integer({ min: 1_700_000_000_000, max: 1_700_000_100_000 }), fc.constant(-1)),
});
const batchArbitrary = fc
  .record({ records: fc.array(recordArbitrary, { minLength: 1, maxLength: 8 }), compression: fc.constantFrom('none' as const, 'gzip' as const) })
  .map((options) => encodeBatch(options));

const VARINTS = [
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11 bytes
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], // 10-byte zero
  [0xfe, 0xff, 0xff, 0xff, 0x0f], // int32 max
  [0xff, 0xff, 0xff, 0xff, 0x0f], // int32 min
  [0x01], // −1
  [0x03], // −2
  [0x80], // cut off
  [0xff, 0xff, 0xff, 0xff, 0x7f], // bits beyond 32
].map((bytes) => Buffer.from(bytes));

const mutationArbitrary = fc.oneof(
  fc.record({ kind: fc.constant('bit-flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({
    kind: fc.constant('int32' as const),
    field: fc.constantFrom(BatchField.batchLength, BatchField.partitionLeaderEpoch, BatchField.lastOffsetDelta, BatchField.baseSequence, BatchField.recordCount),
    value: fc.constantFrom(0, 1, -1, 2, 61, 0x7fff_ffff, -0x8000_0000, 0x4000_0000, 1_000_000),
  }),
  fc.record({ kind: fc.constant('attributes' as const), value: fc.integer({ min: 0, max: 0x3f }) }),
  fc.record({
    kind: fc.constant('int64' as const),
    field: fc.constantFrom(BatchField.baseTimestamp, BatchField.maxTimestamp, BatchField.producerId),
    value: fc.constantFrom(0n, -1n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n - 1n),
  }),
  fc.record({ kind: fc.constant('truncate' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 30 }) }),
  fc.record({ kind: fc.constant('section-byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('section-varint' as const), at: fc.nat(), varint: fc.constantFrom(...VARINTS), replacedBytes: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('section-truncate' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('section-extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 20 }) }),
  fc.record({ kind: fc.constant('record-count' as const), value: fc.constantFrom(0, 1, 2, 3, 100, 0x7fff_ffff, -1, 1_000_000) }),
  fc.record({ kind: fc.constant('gzip-garbage' as const), garbage: fc.uint8Array({ maxLength: 60 }) }),
  fc.record({ kind: fc.constant('gzip-truncate' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('gzip-bomb' as const) }),
);
type Mutation = typeof mutationArbitrary extends fc.Arbitrary<infer M> ? M : never;

function isGzip(bytes: Buffer): boolean {
  return (bytes.readInt16BE(BatchField.attributes) & 0x07) === 1;
}

/** The plain records section, or the stored bytes when they do not inflate. */
function plainSection(bytes: Buffer): Buffer {
  const stored = bytes.subarray(BATCH_HEADER_BYTES);
  if (!isGzip(bytes)) return Buffer.from(stored);
  try {
    return gunzipSync(stored);
  } catch {
    return Buffer.from(stored);
  }
}

function withGzipSection(bytes: Buffer, section: Buffer): Buffer {
  const header = Buffer.from(bytes.subarray(0, BATCH_HEADER_BYTES));
  header.writeInt16BE((header.readInt16BE(BatchField.attributes) & ~0x07) | 1, BatchField.attributes);
  return Buffer.concat([header, section]);
}

/** `bytes` mutated; throws (the caller keeps `bytes`) when the mutation does not fit its length. */
function mutate(bytes: Buffer, mutation: Mutation): Buffer {
  const copy = Buffer.from(bytes);
  switch (mutation.kind) {
    case 'bit-flip':
      copy[mutation.at % copy.length]! ^= 1 << mutation.bit;
      return copy;
    case 'byte':
      copy[mutation.at % copy.length] = mutation.value;
      return copy;
    case 'int32':
      copy.writeInt32BE(mutation.value, mutation.field);
      return copy;
    case 'attributes':
      copy.writeInt16BE(mutation.value, BatchField.attributes);
      return copy;
    case 'int64':
      copy.writeBigInt64BE(mutation.value, mutation.field);
      return copy;
    case 'truncate':
      return copy.subarray(0, mutation.to % (copy.length + 1));
    case 'extend':
      return Buffer.concat([copy, mutation.extra]);
    case 'record-count':
      copy.writeInt32BE(mutation.value, BatchField.recordCount);
      copy.writeInt32BE(mutation.value - 1, BatchField.lastOffsetDelta);
      return copy;
    case 'gzip-garbage':
      return withGzipSection(copy, Buffer.concat([Buffer.from([0x1f, 0x8b]), mutation.garbage]));
    case 'gzip-truncate': {
      const section = gzipSync(plainSection(copy));
      return withGzipSection(copy, section.subarray(0, mutation.to % section.length));
    }
    case 'gzip-bomb':
      return withGzipSection(copy, BOMB);
    case 'section-byte':
    case 'section-varint':
    case 'section-truncate':
    case 'section-extend': {
      let section = plainSection(copy);
      if (mutation.kind === 'section-byte' && section.length > 0) section[mutation.at % section.length] = mutation.value;
      if (mutation.kind === 'section-varint') {
        const at = section.length === 0 ? 0 : mutation.at % section.length;
        section = Buffer.concat([section.subarray(0, at), mutation.varint, section.subarray(Math.min(section.length, at + mutation.replacedBytes))]);
      }
      if (mutation.kind === 'section-truncate') section = section.subarray(0, mutation.to % (section.length + 1));
      if (mutation.kind === 'section-extend') section = Buffer.concat([section, mutation.extra]);
      const stored = isGzip(copy) ? gzipSync(section) : section;
      return Buffer.concat([copy.subarray(0, BATCH_HEADER_BYTES), stored]);
    }
  }
}

/** Fixes batchLength (unless the mutation set it) and the CRC, so the decoder's checks are what is tested. */
function restamp(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  const isLengthSet = mutations.some((mutation) => mutation.kind === 'int32' && mutation.field === BatchField.batchLength);
  if (bytes.length >= BATCH_HEADER_BYTES) {
    if (!isLengthSet) bytes.writeInt32BE(bytes.length - 12, BatchField.batchLength);
    bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
  }
  return bytes;
}

/** Runs `read`; a thrown error that is not a BrokerError fails the property. */
function outcome<T>(read: () => T): { value: T } | { error: unknown } {
  try {
    return { value: read() };
  } catch (error) {
    if (!isBrokerError(error)) throw new Error(`a reader threw ${String(error)}, not a BrokerError`, { cause: error });
    return { error };
  }
}

function validate(bytes: Buffer): BatchHeader {
  const header = validateBatchOrThrow(bytes, { batchBytesMax: 1024 * 1024 });
  validateBatchRecordsOrThrow(bytes, header, { headersPerRecordMax: 1000, decompressedBytesMax: DECOMPRESSED_BYTES_MAX });
  return header;
}

describe('every reader of a batch, against mutated batches', () => {
  it('throws only BrokerError, changes nothing, and decodes what produce validation accepted exactly as validated', () => {
    fc.assert(
      fc.property(batchArbitrary, fc.array(mutationArbitrary, { minLength: 1, maxLength: 3 }), fc.nat({ max: 9 }), (good, mutations, fromOffsetDelta) => {
        let bytes = good;
        for (const mutation of mutations) {
          if (bytes.length === 0) break;
          try {
            bytes = mutate(bytes, mutation);
          } catch {
            // The mutation does not fit a batch this short; the others still apply.
          }
        }
        bytes = restamp(Buffer.from(bytes), mutations);
        const original = Buffer.from(bytes);

        const validated = outcome(() => validate(bytes));
        expect(bytes.equals(original), 'validation changed the batch').toBe(true);
        if ('value' in validated) setBatchBaseOffset(bytes, 1000); // as the broker does before storing
        const decoded = outcome(() => decodeBatch(bytes, 0, { decompressedBytesMax: DECOMPRESSED_BYTES_MAX }));
        if ('value' in validated) {
          expect('value' in decoded, `accepted at produce but not decoded: ${'error' in decoded ? String(decoded.error) : ''}`).toBe(true);
          const { header, records } = (decoded as { value: DecodedBatch }).value;
          expect(records.map((record) => record.offset)).toEqual(Array.from({ length: validated.value.recordCount }, (_, index) => 1000 + index));
          for (const record of records) for (const recordHeader of record.headers) expect(recordHeader.key).not.toContain('\ufffd');
          if ((header.attributes & 0x08) === 0) expect(Math.max(...records.map((record) => record.timestamp))).toBe(header.maxTimestamp);
        }

        const header = tryReadBatchHeader(bytes);
        const fromOffset = (header?.baseOffset ?? 0) + fromOffsetDelta;
        const viaCursor = outcome(() => {
          const offsets: number[] = [];
          const cursor = new RecordCursor(bytes, { fromOffset, decompressedBytesMax: DECOMPRESSED_BYTES_MAX }, (offset) => offset);
          for (let offset = cursor.next(); offset !== undefined; offset = cursor.next()) offsets.push(offset);
          return offsets;
        });
        if ('value' in decoded && 'value' in viaCursor) {
          expect(viaCursor.value).toEqual(decoded.value.records.map((record) => record.offset).filter((offset) => offset >= fromOffset));
        }
        if ('value' in decoded && fromOffsetDelta === 0) expect('value' in viaCursor, 'decodeBatch read it but a RecordCursor did not').toBe(true);

        outcome(() => [...iterateBatches(Buffer.concat([good, bytes]), { decompressedBytesMax: DECOMPRESSED_BYTES_MAX })]);
        if ('value' in validated) bytes.writeBigInt64BE(original.readBigInt64BE(BatchField.baseOffset), BatchField.baseOffset);
        expect(bytes.equals(original), 'a reader changed the batch').toBe(true);
      }),
      { seed: 20261122, numRuns: 1500 },
    );
  });
});
