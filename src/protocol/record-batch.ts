/**
 * Encoding and decoding whole record batches, magic 2 (Kafka's layout, unchanged; see
 * batch-header.ts for the 61-byte header table and ../shared/RECORD_BATCH.md). Producers encode,
 * consumers decode; the broker only reads headers and never calls this on its hot path.
 *
 * One record, inside the records section (compressed as one stream when attribute bits 0–2
 * are set):
 *
 * | field          | encoding                                                 |
 * |----------------|----------------------------------------------------------|
 * | length         | varint: bytes of the rest of this record                 |
 * | attributes     | int8, unused (0)                                         |
 * | timestampDelta | varlong, relative to baseTimestamp (may be negative)     |
 * | offsetDelta    | varint, relative to baseOffset                           |
 * | keyLength, key | varint (−1 = null), bytes                                |
 * | valueLength, value | varint (−1 = null, a tombstone), bytes               |
 * | headerCount    | varint                                                   |
 * | each header    | keyLength varint, key UTF-8, valueLength varint (−1 = null), value bytes |
 *
 * Invariants kept here:
 * - An encoded batch holds at least one record, offsetDelta i for the i-th record,
 *   lastOffsetDelta = count − 1, baseTimestamp = the first record's timestamp (as Kafka's
 *   MemoryRecordsBuilder does), maxTimestamp = the largest timestamp, and a CRC-32C over bytes
 *   21 … end, so `validateBatchOrThrow` accepts it (record-batch.test.ts).
 * - Decoding trusts nothing: magic, CRC, each record's length field, every varint, the record
 *   count, lastOffsetDelta = count − 1, offset delta i for the i-th record and the decompressed
 *   size are checked, and any mismatch is CORRUPT_MESSAGE (or RECORD_TOO_LARGE for a section
 *   that inflates past its limit). The offset checks are the ones the broker makes at produce,
 *   so a batch the broker stored always decodes, and one it could not have stored never does.
 *
 * Not done here: no I/O, no batching policy (which records go together is the producer's
 * choice), no per-record size limit beyond what the format can express.
 */
import { isUtf8 } from 'node:buffer';
import { assert, AssertionError } from '../common/index.js';
import { limits } from '../config/limits.js';
import { BrokerError } from '../errors/index.js';
import {
  BATCH_CRC_START,
  BATCH_HEADER_BYTES,
  BATCH_LOG_OVERHEAD_BYTES,
  BATCH_MAGIC,
  BatchField,
  COMPRESSION_MASK,
  CONTROL_BIT,
  TIMESTAMP_TYPE_BIT,
  TRANSACTIONAL_BIT,
  isBatchCrcValid,
  tryReadBatchHeader,
  tryReadBatchMagic,
  type BatchHeader,
} from './batch-header.js';
import {
  CompressionCodec,
  compressRecords,
  compressionNameOf,
  decompressRecords,
  ensureCompressionSupportedOrThrow,
  type CompressionName,
} from './compression.js';
import { crc32c } from './crc32c.js';
import { writeInt64 } from './int64.js';
import {
  readVarint,
  readVarlong,
  varintSizeBytes,
  varlongSizeBytes,
  writeVarint,
  writeVarlong,
  type ReadCursor,
} from './varint.js';

export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/** One record as a producer hands it over. Named to stay clear of TypeScript's `Record`. */
export interface LogRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: RecordHeader[];
  /** Milliseconds since the Unix epoch (create time or log-append time, per the batch). */
  timestamp: number;
}

/** A record read back from a batch, with its offset in the partition. */
export interface DecodedRecord extends LogRecord {
  offset: number;
}

export type TimestampType = 'create' | 'log-append';

export interface EncodeBatchOptions {
  records: readonly LogRecord[];
  compression?: CompressionName;
  /** The producer sends 0; the partition leader writes the real value in place. */
  baseOffset?: number;
  partitionLeaderEpoch?: number;
  producerId?: number;
  producerEpoch?: number;
  baseSequence?: number;
  timestampType?: TimestampType;
  isTransactional?: boolean;
}

/** Attribute bits of a batch, spelled out. */
export interface BatchAttributes {
  compression: CompressionName;
  timestampType: TimestampType;
  isTransactional: boolean;
  isControl: boolean;
}

export interface DecodeBatchOptions {
  /**
   * Largest records section accepted after decompression, in bytes; bounds the memory a gzip
   * bomb can take. Defaults to `DECOMPRESSED_BYTES_MAX_DEFAULT`.
   */
  decompressedBytesMax?: number;
}

export interface DecodedBatch<R = DecodedRecord> {
  header: BatchHeader;
  records: R[];
}

/**
 * Builds the object for one decoded record (`decodeBatchAs`), so a caller such as the consumer
 * decodes straight into its own record type instead of copying every record once more: on
 * this VM a second object per record cost more than decoding it.
 */
export type RecordFactory<R> = (offset: number, timestamp: number, key: Buffer | null, value: Buffer | null, headers: RecordHeader[]) => R;

const makeDecodedRecord: RecordFactory<DecodedRecord> = (offset, timestamp, key, value, headers) => ({ offset, timestamp, key, value, headers });

/**
 * Bound on one decompressed records section when the caller passes none:
 * `limits.decompressedRecordsBytesMax` (64 MiB), the bound the broker checks a produced batch
 * against, far above Kafka's default 1 MiB batch and a bounded cost per decoded batch.
 */
export const DECOMPRESSED_BYTES_MAX_DEFAULT: number = limits.decompressedRecordsBytesMax;

/** The largest records section whose batch still fits the int32 `batchLength` field. */
const RECORDS_BYTES_MAX = 0x7fff_ffff - (BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES);
/** attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount: 1 byte each at least. */
const RECORD_BODY_BYTES_MIN = 6;
/** The body plus its own 1-byte length. */
const RECORD_BYTES_MIN = RECORD_BODY_BYTES_MIN + 1;
const INT16_MIN = -0x8000;
const INT16_MAX = 0x7fff;
const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;

/** Attribute bits spelled out. Throws CORRUPT_MESSAGE for compression ids 5–7. */
export function readBatchAttributes(attributes: number): BatchAttributes {
  return {
    compression: compressionNameOf(attributes & COMPRESSION_MASK),
    timestampType: (attributes & TIMESTAMP_TYPE_BIT) === 0 ? 'create' : 'log-append',
    isTransactional: (attributes & TRANSACTIONAL_BIT) !== 0,
    isControl: (attributes & CONTROL_BIT) !== 0,
  };
}

/**
 * Encodes `records` as exactly one batch in the v2 layout, CRC filled in.
 *
 * Sizes are computed first and the records written into one preallocated buffer, so encoding
 * costs one allocation per batch (two when compressed) rather than one per field.
 *
 * Throws `BrokerError`: INVALID_REQUEST for an empty record list, a timestamp that is not a safe
 * integer, or a header field out of its range; UNSUPPORTED_COMPRESSION for snappy, lz4 and zstd;
 * RECORD_TOO_LARGE when the batch would not fit the int32 length field.
 */
export function encodeBatch(options: EncodeBatchOptions): Buffer {
  const { records } = options;
  const firstRecord = records[0];
  if (firstRecord === undefined) {
    throw new BrokerError('INVALID_REQUEST', 'a record batch needs at least one record');
  }
  const compression = options.compression ?? 'none';
  ensureCompressionSupportedOrThrow(compression);
  encodeBatchCheckFields(options);

  const baseTimestamp = firstRecord.timestamp;
  const layout = encodeBatchMeasure(records, baseTimestamp);
  const uncompressed = Buffer.allocUnsafe(BATCH_HEADER_BYTES + layout.recordsSizeBytes);
  let position = BATCH_HEADER_BYTES;
  let headerKeyIndex = 0;
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    position = writeVarint(uncompressed, layout.bodySizes[index]!, position);
    uncompressed[position++] = 0; // record attributes, unused
    position = writeVarlong(uncompressed, record.timestamp - baseTimestamp, position);
    position = writeVarint(uncompressed, index, position);
    position = encodeBatchBytesField(uncompressed, record.key, position);
    position = encodeBatchBytesField(uncompressed, record.value, position);
    position = writeVarint(uncompressed, record.headers.length, position);
    for (const header of record.headers) {
      const keySizeBytes = layout.headerKeySizes[headerKeyIndex++]!;
      position = writeVarint(uncompressed, keySizeBytes, position);
      position += uncompressed.write(header.key, position, keySizeBytes, 'utf8');
      position = encodeBatchBytesField(uncompressed, header.value, position);
    }
  }
  // allocUnsafe is only safe because every byte is written; a mismatch is a bug here.
  if (position !== uncompressed.length) throw new AssertionError(`encoded ${position} record bytes, measured ${uncompressed.length}`);

  const bytes = encodeBatchCompress(uncompressed, compression);
  encodeBatchHeader(bytes, options, {
    compression,
    recordCount: records.length,
    baseTimestamp,
    maxTimestamp: layout.maxTimestamp,
  });
  return bytes;
}

interface EncodeBatchLayout {
  /** Body size (bytes after the length varint) of each record. */
  bodySizes: Int32Array;
  /** UTF-8 size of every header key, all records' headers in order. */
  headerKeySizes: number[];
  recordsSizeBytes: number;
  maxTimestamp: number;
}

function encodeBatchMeasure(records: readonly LogRecord[], baseTimestamp: number): EncodeBatchLayout {
  const bodySizes = new Int32Array(records.length);
  const headerKeySizes: number[] = [];
  let recordsSizeBytes = 0;
  let maxTimestamp = baseTimestamp;
  for (let index = 0; index < records.length; index++) {
    const record = records[index]!;
    const timestampDelta = encodeBatchTimestampDelta(record.timestamp, baseTimestamp, index);
    if (record.timestamp > maxTimestamp) maxTimestamp = record.timestamp;
    let bodySize =
      1 +
      varlongSizeBytes(timestampDelta) +
      varintSizeBytes(index) +
      encodeBatchBytesFieldSize(record.key) +
      encodeBatchBytesFieldSize(record.value) +
      varintSizeBytes(record.headers.length);
    for (const header of record.headers) {
      checkHeaderKeyOrThrow(header.key, `record ${index}`);
      const keySizeBytes = Buffer.byteLength(header.key, 'utf8');
      headerKeySizes.push(keySizeBytes);
      bodySize += encodeBatchBytesFieldSize(keySizeBytes) + encodeBatchBytesFieldSize(header.value);
    }
    if (bodySize > RECORDS_BYTES_MAX) throw encodeBatchTooLarge(bodySize);
    bodySizes[index] = bodySize;
    recordsSizeBytes += varintSizeBytes(bodySize) + bodySize;
    if (recordsSizeBytes > RECORDS_BYTES_MAX) throw encodeBatchTooLarge(recordsSizeBytes);
  }
  return { bodySizes, headerKeySizes, recordsSizeBytes, maxTimestamp };
}

/** A lone UTF-16 surrogate: in `u` mode a well-formed pair is one code point and does not match. */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Throws INVALID_REQUEST for a header key with a lone UTF-16 surrogate. UTF-8 cannot encode
 * one: Buffer's encoder writes U+FFFD in its place, so the key would be stored, and read back by
 * every consumer, as another string. The broker refuses such bytes too (not valid UTF-8).
 */
export function checkHeaderKeyOrThrow(key: string, recordName: string): void {
  if (LONE_SURROGATE.test(key)) {
    throw new BrokerError('INVALID_REQUEST', `${recordName} has a header key with a lone UTF-16 surrogate, which UTF-8 cannot encode: header keys must be well-formed strings`);
  }
}

function encodeBatchTimestampDelta(timestamp: number, baseTimestamp: number, index: number): number {
  const timestampDelta = timestamp - baseTimestamp;
  if (!Number.isSafeInteger(timestamp) || !Number.isSafeInteger(timestampDelta)) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `record ${index} timestamp ${timestamp} is not a safe integer within 2^53 of the first (${baseTimestamp})`,
    );
  }
  return timestampDelta;
}

/** Size of a length-prefixed field: bytes, `null` (length −1), or a known byte count. */
function encodeBatchBytesFieldSize(field: Uint8Array | number | null): number {
  if (field === null) return 1;
  const sizeBytes = typeof field === 'number' ? field : field.length;
  if (sizeBytes > RECORDS_BYTES_MAX) throw encodeBatchTooLarge(sizeBytes);
  return varintSizeBytes(sizeBytes) + sizeBytes;
}

function encodeBatchBytesField(bytes: Buffer, field: Uint8Array | null, position: number): number {
  if (field === null) return writeVarint(bytes, -1, position);
  position = writeVarint(bytes, field.length, position);
  bytes.set(field, position);
  return position + field.length;
}

function encodeBatchTooLarge(sizeBytes: number): BrokerError {
  return new BrokerError(
    'RECORD_TOO_LARGE',
    `records take at least ${sizeBytes} bytes; a batch holds at most ${RECORDS_BYTES_MAX} bytes of records`,
    { details: { sizeBytes, recordsBytesMax: RECORDS_BYTES_MAX } },
  );
}

function encodeBatchCheckFields(options: EncodeBatchOptions): void {
  encodeBatchCheckField('baseOffset', options.baseOffset ?? 0, 0, Number.MAX_SAFE_INTEGER);
  encodeBatchCheckField('partitionLeaderEpoch', options.partitionLeaderEpoch ?? -1, INT32_MIN, INT32_MAX);
  encodeBatchCheckField('producerId', options.producerId ?? -1, -1, Number.MAX_SAFE_INTEGER);
  encodeBatchCheckField('producerEpoch', options.producerEpoch ?? -1, INT16_MIN, INT16_MAX);
  encodeBatchCheckField('baseSequence', options.baseSequence ?? -1, INT32_MIN, INT32_MAX);
}

function encodeBatchCheckField(name: string, value: number, min: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new BrokerError('INVALID_REQUEST', `${name} ${value} is not an integer in [${min}, ${max}]`);
  }
}

/** Returns the whole batch buffer: `uncompressed` itself, or a new one holding the compressed section. */
function encodeBatchCompress(uncompressed: Buffer, compression: CompressionName): Buffer {
  if (compression === 'none') return uncompressed;
  const section = compressRecords(compression, uncompressed.subarray(BATCH_HEADER_BYTES));
  if (section.length > RECORDS_BYTES_MAX) throw encodeBatchTooLarge(section.length);
  const bytes = Buffer.allocUnsafe(BATCH_HEADER_BYTES + section.length);
  bytes.set(section, BATCH_HEADER_BYTES);
  return bytes;
}

interface EncodeBatchSummary {
  compression: CompressionName;
  recordCount: number;
  baseTimestamp: number;
  maxTimestamp: number;
}

/** Fills all 61 header bytes (CRC last, over bytes 21 … end). */
function encodeBatchHeader(bytes: Buffer, options: EncodeBatchOptions, summary: EncodeBatchSummary): void {
  let attributes = CompressionCodec[summary.compression];
  if (options.timestampType === 'log-append') attributes |= TIMESTAMP_TYPE_BIT;
  if (options.isTransactional === true) attributes |= TRANSACTIONAL_BIT;

  writeInt64(bytes, options.baseOffset ?? 0, BatchField.baseOffset);
  bytes.writeInt32BE(bytes.length - BATCH_LOG_OVERHEAD_BYTES, BatchField.batchLength);
  bytes.writeInt32BE(options.partitionLeaderEpoch ?? -1, BatchField.partitionLeaderEpoch);
  bytes.writeInt8(BATCH_MAGIC, BatchField.magic);
  bytes.writeInt16BE(attributes, BatchField.attributes);
  bytes.writeInt32BE(summary.recordCount - 1, BatchField.lastOffsetDelta);
  writeInt64(bytes, summary.baseTimestamp, BatchField.baseTimestamp);
  writeInt64(bytes, summary.maxTimestamp, BatchField.maxTimestamp);
  writeInt64(bytes, options.producerId ?? -1, BatchField.producerId);
  bytes.writeInt16BE(options.producerEpoch ?? -1, BatchField.producerEpoch);
  bytes.writeInt32BE(options.baseSequence ?? -1, BatchField.baseSequence);
  bytes.writeInt32BE(summary.recordCount, BatchField.recordCount);
  bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
}

/**
 * Decodes the one batch that starts at `position`, checking magic, CRC, every record's length
 * field and varints, that the records section holds exactly `recordCount` records, and that
 * their offset deltas are 0, 1, 2, … up to lastOffsetDelta.
 *
 * Record keys and values are views into `bytes` (or into the decompressed section), not copies:
 * a caller that reuses `bytes` must copy what it keeps.
 *
 * With log-append time (attribute bit 3), every record's timestamp is the batch's maxTimestamp,
 * as Kafka's DefaultRecordBatch reports it.
 *
 * Throws `BrokerError`: CORRUPT_MESSAGE for any damage or truncation, UNSUPPORTED_COMPRESSION for
 * snappy, lz4 and zstd, RECORD_TOO_LARGE when the section inflates past `decompressedBytesMax`.
 */
export function decodeBatch(bytes: Buffer, position = 0, options: DecodeBatchOptions = {}): DecodedBatch {
  return decodeBatchAs(bytes, position, options, makeDecodedRecord);
}

/** `decodeBatch` with each record built by `make`; the same checks and errors. */
export function decodeBatchAs<R>(bytes: Buffer, position: number, options: DecodeBatchOptions, make: RecordFactory<R>): DecodedBatch<R> {
  const decompressedBytesMax = options.decompressedBytesMax ?? DECOMPRESSED_BYTES_MAX_DEFAULT;
  assert(Number.isSafeInteger(decompressedBytesMax) && decompressedBytesMax > 0, 'decompressedBytesMax must be positive');
  const header = decodeBatchHeaderOrThrow(bytes, position);
  const attributes = readBatchAttributes(header.attributes);
  const storedSection = bytes.subarray(position + BATCH_HEADER_BYTES, position + header.sizeBytes);
  const section = decompressRecords(attributes.compression, storedSection, { decompressedBytesMax });
  const records = decodeBatchRecords(section, header, attributes.timestampType, make);
  return { header, records };
}

function decodeBatchHeaderOrThrow(bytes: Buffer, position: number): BatchHeader {
  // The magic first, as in validateBatchOrThrow: after it, a legacy message set is not a v2 header.
  const magic = tryReadBatchMagic(bytes, position);
  if (magic !== undefined && magic !== BATCH_MAGIC) {
    throw new BrokerError('CORRUPT_MESSAGE', `unsupported batch magic ${magic}; only magic 2 is read`);
  }
  const remainingBytes = bytes.length - position;
  if (remainingBytes < BATCH_HEADER_BYTES) {
    throw new BrokerError('CORRUPT_MESSAGE', `${remainingBytes} bytes cannot hold a ${BATCH_HEADER_BYTES}-byte batch header`);
  }
  const header = tryReadBatchHeader(bytes, position);
  if (header === undefined) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch header at byte ${position} is malformed`);
  }
  if (header.sizeBytes > remainingBytes) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch says ${header.sizeBytes} bytes but only ${remainingBytes} remain`);
  }
  if (!isBatchCrcValid(bytes, header, position)) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch CRC-32C at byte ${position} does not match its contents`);
  }
  if (header.recordCount < 0) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch declares a negative record count ${header.recordCount}`);
  }
  // As the broker requires at produce (validateBatchOrThrow): readers go by lastOffsetDelta to
  // step over a batch and to resume after it, so one that disagreed with the records made a
  // RecordCursor skip records decodeBatch returned, or resume past the next batch's records.
  if (header.lastOffsetDelta !== header.recordCount - 1) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch lastOffsetDelta ${header.lastOffsetDelta} does not match its record count ${header.recordCount}`, {
      details: { lastOffsetDelta: header.lastOffsetDelta, recordCount: header.recordCount },
    });
  }
  return header;
}

function decodeBatchRecords<R>(section: Buffer, header: BatchHeader, timestampType: TimestampType, make: RecordFactory<R>): R[] {
  // Bounds the loop (and the array) by the bytes present before trusting recordCount.
  if (header.recordCount * RECORD_BYTES_MIN > section.length) {
    throw decodeBatchCountMismatch(header, `its ${section.length}-byte records section cannot hold that many`);
  }
  const isLogAppendTime = timestampType === 'log-append';
  const cursor: ReadCursor = { position: 0, end: section.length };
  const records: R[] = [];
  for (let index = 0; index < header.recordCount; index++) {
    if (cursor.position >= section.length) {
      throw decodeBatchCountMismatch(header, `the records section ends after ${index}`);
    }
    records.push(decodeBatchRecord(section, cursor, header, index, isLogAppendTime, make));
  }
  if (cursor.position !== section.length) {
    throw decodeBatchCountMismatch(header, `${section.length - cursor.position} bytes follow the last one`);
  }
  return records;
}

function decodeBatchCountMismatch(header: BatchHeader, what: string): BrokerError {
  return new BrokerError('CORRUPT_MESSAGE', `batch declares ${header.recordCount} records but ${what}`, {
    details: { recordCount: header.recordCount },
  });
}

/** Reads record `index` of the batch at `cursor`, never past its own length field. */
function decodeBatchRecord<R>(
  section: Buffer,
  cursor: ReadCursor,
  header: BatchHeader,
  index: number,
  isLogAppendTime: boolean,
  make: RecordFactory<R>,
): R {
  const bodySize = readVarint(section, cursor);
  const recordEnd = cursor.position + bodySize;
  if (bodySize < RECORD_BODY_BYTES_MIN || recordEnd > cursor.end) {
    throw new BrokerError(
      'CORRUPT_MESSAGE',
      `record length ${bodySize} at byte ${cursor.position} does not fit the records section`,
    );
  }
  const sectionEnd = cursor.end;
  cursor.end = recordEnd;
  cursor.position += 1; // record attributes, unused
  const timestampDelta = readVarlong(section, cursor);
  const offsetDelta = readVarint(section, cursor);
  if (offsetDelta !== index) throw decodeBatchOffsetDeltaWrong(index, offsetDelta);
  const key = decodeBatchBytesField(section, cursor, 'key');
  const value = decodeBatchBytesField(section, cursor, 'value');
  const headerCount = readVarint(section, cursor);
  if (headerCount < 0) {
    throw new BrokerError('CORRUPT_MESSAGE', `record declares a negative header count ${headerCount}`);
  }
  const headers: RecordHeader[] = [];
  for (let headerIndex = 0; headerIndex < headerCount; headerIndex++) {
    const keySizeBytes = readVarint(section, cursor);
    if (keySizeBytes < 0 || cursor.position + keySizeBytes > cursor.end) {
      throw new BrokerError('CORRUPT_MESSAGE', `record header key length ${keySizeBytes} does not fit the record`);
    }
    const headerKey = section.toString('utf8', cursor.position, cursor.position + keySizeBytes);
    cursor.position += keySizeBytes;
    headers.push({ key: headerKey, value: decodeBatchBytesField(section, cursor, 'header value') });
  }
  if (cursor.position !== recordEnd) {
    throw new BrokerError(
      'CORRUPT_MESSAGE',
      `record length says ${bodySize} bytes but its fields take ${bodySize - (recordEnd - cursor.position)}`,
    );
  }
  cursor.end = sectionEnd;

  const timestamp = isLogAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta;
  const offset = header.baseOffset + offsetDelta;
  if (!Number.isSafeInteger(timestamp) || !Number.isSafeInteger(offset)) {
    throw new BrokerError('CORRUPT_MESSAGE', `record timestamp ${timestamp} or offset ${offset} is out of range`);
  }
  return make(offset, timestamp, key, value, headers);
}

/**
 * A record's offset delta must be its index, as the broker requires at produce
 * (`validateBatchRecordsOrThrow`): one beyond the batch's last offset moved a reader's resume
 * point past the records of the batches after it.
 */
function decodeBatchOffsetDeltaWrong(index: number, offsetDelta: number): BrokerError {
  return new BrokerError('CORRUPT_MESSAGE', `record ${index} has offset delta ${offsetDelta}; a batch's records must have deltas 0, 1, 2, … in order`, {
    details: { recordIndex: index, offsetDelta },
  });
}

function decodeBatchBytesField(section: Buffer, cursor: ReadCursor, what: string): Buffer | null {
  const sizeBytes = readVarint(section, cursor);
  if (sizeBytes === -1) return null;
  if (sizeBytes < -1 || cursor.position + sizeBytes > cursor.end) {
    throw new BrokerError('CORRUPT_MESSAGE', `record ${what} length ${sizeBytes} does not fit the record`);
  }
  const field = section.subarray(cursor.position, cursor.position + sizeBytes);
  cursor.position += sizeBytes;
  return field;
}

export interface RecordChecks {
  /** Most headers one record may carry. Over it: INVALID_REQUEST. */
  headersPerRecordMax: number;
  /** Largest records section after decompression (see `DecodeBatchOptions`). */
  decompressedBytesMax: number;
  /**
   * The timestamp type the topic stores. A batch of the other type is refused with
   * INVALID_REQUEST: a producer's log-append bit on a create-time topic made every record
   * read back with the batch's maxTimestamp, a time the broker never set.
   */
  timestampType?: TimestampType;
  /**
   * The timestamps a create-time record may carry, inclusive (Kafka's
   * message.timestamp.before.max.ms / after.max.ms against the broker's clock). A record
   * outside is refused with INVALID_TIMESTAMP; -1 (no timestamp) passes, as in Kafka.
   * Log-append-time batches are not checked: the broker sets their time.
   */
  createTimestampWindow?: { minMs: number; maxMs: number };
}

/**
 * Checks every record of one batch a producer sent, as Kafka's broker does before appending:
 * a supported codec; no control or transactional batch (no transactions here); each record's
 * length and fields inside the records section, with nothing left over; offset deltas 0, 1,
 * 2, … in order (readers compute offsets from them); timestamps in range, and a create-time
 * batch's maxTimestamp equal to its newest record's (Kafka rewrites it; a producer that
 * sends another is refused here); at most `headersPerRecordMax` headers, each key valid UTF-8. Reads lengths and skips, building nothing. Call it on a
 * batch whose header and CRC already passed `validateBatchOrThrow`.
 *
 * Throws `BrokerError`: CORRUPT_MESSAGE, UNSUPPORTED_COMPRESSION, INVALID_REQUEST, and
 * INVALID_TIMESTAMP (`createTimestampWindow`) only for a batch that passes every other check.
 */
export function validateBatchRecordsOrThrow(bytes: Buffer, header: BatchHeader, checks: RecordChecks): void {
  const attributes = readBatchAttributes(header.attributes);
  if (attributes.isControl || attributes.isTransactional) {
    throw new BrokerError('INVALID_REQUEST', `${attributes.isControl ? 'control' : 'transactional'} batches are not accepted from producers: Runnel has no transactions`);
  }
  if (checks.timestampType !== undefined && attributes.timestampType !== checks.timestampType) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `a ${attributes.timestampType}-time batch on a topic that stores ${checks.timestampType} time: producers send create-time batches, and the topic's message.timestamp.type decides`,
    );
  }
  const section = decompressRecords(attributes.compression, bytes.subarray(BATCH_HEADER_BYTES, header.sizeBytes), { decompressedBytesMax: checks.decompressedBytesMax });
  if (header.recordCount * RECORD_BYTES_MIN > section.length) {
    throw decodeBatchCountMismatch(header, `its ${section.length}-byte records section cannot hold that many`);
  }
  const cursor: ReadCursor = { position: 0, end: section.length };
  let timestampMax = Number.NEGATIVE_INFINITY;
  const window = attributes.timestampType === 'create' ? checks.createTimestampWindow : undefined;
  // Refused only once the whole batch is known to be well formed: INVALID_TIMESTAMP says the
  // batch is otherwise sound, so storage may still answer it as the duplicate of an idempotent
  // batch appended earlier (partition-log.ts), whose time has left the window since.
  let outsideWindow: { index: number; timestamp: number } | undefined;
  for (let index = 0; index < header.recordCount; index++) {
    if (cursor.position >= section.length) throw decodeBatchCountMismatch(header, `the records section ends after ${index}`);
    const bodySize = readVarint(section, cursor);
    const recordEnd = cursor.position + bodySize;
    if (bodySize < RECORD_BODY_BYTES_MIN || recordEnd > section.length) {
      throw new BrokerError('CORRUPT_MESSAGE', `record ${index}: length ${bodySize} does not fit the records section`);
    }
    cursor.end = recordEnd;
    cursor.position += 1; // record attributes, unused
    const timestampDelta = readVarlong(section, cursor);
    if (!Number.isSafeInteger(header.baseTimestamp + timestampDelta)) {
      throw new BrokerError('CORRUPT_MESSAGE', `record ${index}: timestamp delta ${timestampDelta} puts it out of range`);
    }
    const timestamp = header.baseTimestamp + timestampDelta;
    if (timestamp > timestampMax) timestampMax = timestamp;
    if (outsideWindow === undefined && window !== undefined && timestamp !== NO_TIMESTAMP && (timestamp > window.maxMs || timestamp < window.minMs)) {
      outsideWindow = { index, timestamp };
    }
    const offsetDelta = readVarint(section, cursor);
    if (offsetDelta !== index) {
      throw new BrokerError('CORRUPT_MESSAGE', `record ${index} has offset delta ${offsetDelta}; a batch's records must have deltas 0, 1, 2, … in order`);
    }
    skipBytesField(section, cursor, index, 'key', -1);
    skipBytesField(section, cursor, index, 'value', -1);
    const headerCount = readVarint(section, cursor);
    if (headerCount < 0) throw new BrokerError('CORRUPT_MESSAGE', `record ${index} declares a negative header count ${headerCount}`);
    if (headerCount > checks.headersPerRecordMax) {
      throw new BrokerError('INVALID_REQUEST', `record ${index} has ${headerCount} headers; at most ${checks.headersPerRecordMax}`);
    }
    for (let headerIndex = 0; headerIndex < headerCount; headerIndex++) {
      const keyStart = cursor.position;
      skipBytesField(section, cursor, index, 'header key', 0);
      validateBatchRecordsHeaderKey(section, keyStart, cursor.position, index);
      skipBytesField(section, cursor, index, 'header value', -1);
    }
    if (cursor.position !== recordEnd) {
      throw new BrokerError('CORRUPT_MESSAGE', `record ${index}: length says ${bodySize} bytes but its fields take ${bodySize - (recordEnd - cursor.position)}`);
    }
    cursor.end = section.length;
  }
  if (cursor.position !== section.length) throw decodeBatchCountMismatch(header, `${section.length - cursor.position} bytes follow the last one`);
  // The time index, seek by time, segment.ms and retention all go by the header's
  // maxTimestamp: one below the records' hid them from ListOffsets by time and let retention
  // delete them early; one above kept a segment forever. (Log-append time sets it instead.)
  if (attributes.timestampType === 'create' && header.maxTimestamp !== timestampMax) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch maxTimestamp ${header.maxTimestamp} is not its records' newest timestamp ${timestampMax}`, {
      details: { maxTimestamp: header.maxTimestamp, recordTimestampMax: timestampMax },
    });
  }
  if (outsideWindow !== undefined && window !== undefined) throw timestampOutsideWindow(outsideWindow.index, outsideWindow.timestamp, window);
}

/** The timestamp a record carries when its producer set none. */
const NO_TIMESTAMP = -1;

function timestampOutsideWindow(index: number, timestamp: number, window: { minMs: number; maxMs: number }): BrokerError {
  const isAhead = timestamp > window.maxMs;
  const configKey = isAhead ? 'message.timestamp.after.max.ms' : 'message.timestamp.before.max.ms';
  return new BrokerError(
    'INVALID_TIMESTAMP',
    `record ${index} has timestamp ${timestamp} (${formatTimestamp(timestamp)}), ${isAhead ? 'later' : 'earlier'} than the topic's ${configKey} allows ` +
      `(${isAhead ? 'latest' : 'earliest'} accepted: ${formatTimestamp(isAhead ? window.maxMs : window.minMs)}): fix the producer's clock or timestamps, or raise ${configKey} for the topic`,
    { details: { recordTimestamp: timestamp, [isAhead ? 'latestAcceptedTimestamp' : 'earliestAcceptedTimestamp']: isAhead ? window.maxMs : window.minMs, configKey } },
  );
}

/** ISO 8601 in UTC, or the number as it is when no date has it. */
function formatTimestamp(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? String(ms) : date.toISOString();
}

/**
 * A header key is a string: readers decode it as UTF-8, so bytes that are not would read back
 * as other bytes (each bad sequence as U+FFFD), and the stored record would differ from every
 * copy a consumer sees. `keyStart` is where the key's length varint starts.
 */
function validateBatchRecordsHeaderKey(section: Buffer, keyStart: number, keyEnd: number, index: number): void {
  const lengthCursor: ReadCursor = { position: keyStart, end: keyEnd };
  readVarint(section, lengthCursor);
  if (!isUtf8(section.subarray(lengthCursor.position, keyEnd))) {
    throw new BrokerError('INVALID_REQUEST', `record ${index} has a header key that is not valid UTF-8: header keys are strings; put binary data in the header value`);
  }
}

/** Skips a length-prefixed field; `lengthMin` is −1 where null is allowed, 0 where not. */
function skipBytesField(section: Buffer, cursor: ReadCursor, index: number, what: string, lengthMin: number): void {
  const sizeBytes = readVarint(section, cursor);
  if (sizeBytes < lengthMin || cursor.position + sizeBytes > cursor.end) {
    throw new BrokerError('CORRUPT_MESSAGE', `record ${index}: ${what} length ${sizeBytes} does not fit the record`);
  }
  if (sizeBytes > 0) cursor.position += sizeBytes;
}

/**
 * Decodes batches laid back to back (a fetch response, a slice of a segment), in order. A
 * partial batch at the end, shorter than its own length field says, is ignored as Kafka's
 * clients do: a fetch may cut the last batch at its byte limit. Damage anywhere else throws as
 * `decodeBatch` does; a length field too small to hold a header is damage, not a partial batch.
 */
export function* iterateBatches(bytes: Buffer, options: DecodeBatchOptions = {}): Generator<DecodedBatch> {
  yield* iterateBatchesAs(bytes, options, makeDecodedRecord);
}

/** `iterateBatches` with each record built by `make` (see `RecordFactory`). */
export function* iterateBatchesAs<R>(bytes: Buffer, options: DecodeBatchOptions, make: RecordFactory<R>): Generator<DecodedBatch<R>> {
  for (let position = 0, sizeBytes = wholeBatchBytesAt(bytes, 0); sizeBytes !== undefined; position += sizeBytes, sizeBytes = wholeBatchBytesAt(bytes, position)) {
    yield decodeBatchAs(bytes, position, options, make);
  }
}

/**
 * The size of the whole batch at `position` of batches laid back to back, or undefined when
 * fewer bytes than that are left (the end, or a partial batch a fetch cut at its byte limit).
 * A length field too small to hold a header is damage (CORRUPT_MESSAGE), not a partial batch.
 */
function wholeBatchBytesAt(bytes: Buffer, position: number): number | undefined {
  if (bytes.length - position < BATCH_LOG_OVERHEAD_BYTES) return undefined;
  const batchLength = bytes.readInt32BE(position + BatchField.batchLength);
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch at byte ${position} has an impossible length ${batchLength}`);
  }
  const sizeBytes = batchLength + BATCH_LOG_OVERHEAD_BYTES;
  return sizeBytes > bytes.length - position ? undefined : sizeBytes;
}

/** What a `RecordCursor` reads, beyond `DecodeBatchOptions`. */
export interface RecordCursorOptions extends DecodeBatchOptions {
  /** Records below this offset are stepped over without being built, and batches wholly below it without being decompressed. Default 0. */
  fromOffset?: number;
  /**
   * Steps over control batches (their CRC checked, their records not read), as a consumer
   * does: they mark transaction ends and hold no application records. Default false.
   */
  isControlSkipped?: boolean;
}

/** The batch a `RecordCursor` is inside: its records section, decompressed once, and how far it got. */
interface CursorBatch {
  header: BatchHeader;
  section: Buffer;
  read: ReadCursor;
  /** Records of the batch read so far, built or stepped over. */
  recordIndex: number;
  isLogAppendTime: boolean;
  /** Whether some of its records may lie below `fromOffset` (each record's offset is then read first). */
  isFiltered: boolean;
}

/**
 * Reads the records of whole batches laid back to back (what `iterateBatches` reads) a few at a
 * time, keeping its place between calls: `next` builds one record, `take` up to a count. Only
 * the batch it is inside is decompressed, once, and held until its last record is read (keys
 * and values are views into it), so a reader can hand out a gzip batch of millions of records
 * in bounded slices, never building them all at once nor inflating a batch twice. Records below
 * `fromOffset` are stepped over without being built (a seek into the middle of a batch).
 *
 * The checks and errors are `decodeBatch`'s, each made when the cursor gets there: a batch's
 * header and CRC when it enters the batch, a record's fields when it reads that record, the
 * record count when it leaves the batch. So the records before a malformed one come out before
 * the error does; inside a batch whose CRC matched, only a broken encoder makes one (the broker
 * checks every record at produce time). After an error every call throws it again.
 *
 * Mutable: owned by the one caller that made it.
 */
export class RecordCursor<R = DecodedRecord> {
  /**
   * The offset right after the last record or batch the cursor passed: where a reader that
   * stops here resumes. Starts at `fromOffset` and never moves back.
   */
  nextOffset: number;
  /** The header of the batch the record `next` returned last is from: the same object for every record of that batch. */
  header: BatchHeader | undefined;
  /** Set once no whole batch is left to read (a partial batch at the end is ignored, as `iterateBatches` does). */
  isDone = false;

  private readonly bytes: Buffer;
  /** The caller's factory, noting each built record's offset for `nextOffset`. */
  private readonly make: RecordFactory<R>;
  private builtOffset = -1;
  private readonly decompressedBytesMax: number;
  private readonly fromOffset: number;
  private readonly isControlSkipped: boolean;
  /** Byte position in `bytes` of the next batch to enter. */
  private batchPosition = 0;
  private batch: CursorBatch | undefined;
  /** The error the cursor met; every call throws it from then on. */
  private failure: { error: unknown } | undefined;

  constructor(bytes: Buffer, options: RecordCursorOptions, make: RecordFactory<R>) {
    const decompressedBytesMax = options.decompressedBytesMax ?? DECOMPRESSED_BYTES_MAX_DEFAULT;
    assert(Number.isSafeInteger(decompressedBytesMax) && decompressedBytesMax > 0, 'decompressedBytesMax must be positive');
    this.bytes = bytes;
    this.make = (offset, timestamp, key, value, headers) => {
      this.builtOffset = offset;
      return make(offset, timestamp, key, value, headers);
    };
    this.decompressedBytesMax = decompressedBytesMax;
    this.fromOffset = options.fromOffset ?? 0;
    this.isControlSkipped = options.isControlSkipped ?? false;
    this.nextOffset = this.fromOffset;
  }

  /** The next record at or after `fromOffset`, or undefined at the end (`isDone`). Throws `decodeBatch`'s errors. */
  next(): R | undefined {
    if (this.failure !== undefined) throw this.failure.error;
    try {
      return this.nextRecord();
    } catch (error) {
      this.failure = { error };
      throw error;
    }
  }

  /**
   * Up to `countMax` next records, fewer only at the end. An error after some records returns
   * those, and the next call throws it; an error before any throws at once.
   */
  take(countMax: number): R[] {
    const records: R[] = [];
    while (records.length < countMax) {
      let record: R | undefined;
      try {
        record = this.next();
      } catch (error) {
        if (records.length === 0) throw error;
        return records;
      }
      if (record === undefined) break;
      records.push(record);
    }
    return records;
  }

  private nextRecord(): R | undefined {
    for (;;) {
      const batch = this.batch ?? this.nextRecordEnterBatch();
      if (batch === undefined) {
        if (this.isDone) return undefined;
        continue; // stepped over a batch
      }
      while (batch.recordIndex < batch.header.recordCount) {
        const record = this.nextRecordRead(batch);
        if (record === undefined) continue;
        this.header = batch.header;
        if (batch.recordIndex === batch.header.recordCount) {
          // Left at once, so `isDone` is exact after a batch's last record; what this finds
          // wrong comes with the next call, after the record already built.
          try {
            this.nextRecordLeaveBatch(batch);
          } catch (error) {
            this.failure = { error };
          }
        }
        return record;
      }
      this.nextRecordLeaveBatch(batch);
    }
  }

  /** Enters the next whole batch: undefined when it steps over it, or at the end (`isDone`). */
  private nextRecordEnterBatch(): CursorBatch | undefined {
    const position = this.batchPosition;
    const sizeBytes = wholeBatchBytesAt(this.bytes, position);
    if (sizeBytes === undefined) {
      this.isDone = true;
      return undefined;
    }
    const header = decodeBatchHeaderOrThrow(this.bytes, position);
    this.batchPosition = position + sizeBytes;
    const lastOffset = header.baseOffset + header.lastOffsetDelta;
    if (lastOffset < this.fromOffset) return undefined;
    if (this.isControlSkipped && (header.attributes & CONTROL_BIT) !== 0) {
      this.nextOffset = Math.max(this.nextOffset, lastOffset + 1);
      return undefined;
    }
    const attributes = readBatchAttributes(header.attributes);
    const storedSection = this.bytes.subarray(position + BATCH_HEADER_BYTES, position + header.sizeBytes);
    const section = decompressRecords(attributes.compression, storedSection, { decompressedBytesMax: this.decompressedBytesMax });
    // Bounds the record loop by the bytes present before trusting recordCount.
    if (header.recordCount * RECORD_BYTES_MIN > section.length) {
      throw decodeBatchCountMismatch(header, `its ${section.length}-byte records section cannot hold that many`);
    }
    const batch: CursorBatch = {
      header,
      section,
      read: { position: 0, end: section.length },
      recordIndex: 0,
      isLogAppendTime: attributes.timestampType === 'log-append',
      isFiltered: header.baseOffset < this.fromOffset,
    };
    this.batch = batch;
    return batch;
  }

  /** Reads the batch's next record: built, or undefined when it lies below `fromOffset`. */
  private nextRecordRead(batch: CursorBatch): R | undefined {
    const { header, section, read } = batch;
    if (read.position >= section.length) throw decodeBatchCountMismatch(header, `the records section ends after ${batch.recordIndex}`);
    batch.recordIndex++;
    if (batch.isFiltered) {
      const recordStart = read.position;
      const bodySize = readVarint(section, read);
      const recordEnd = read.position + bodySize;
      if (bodySize < RECORD_BODY_BYTES_MIN || recordEnd > section.length) {
        throw new BrokerError('CORRUPT_MESSAGE', `record length ${bodySize} at byte ${recordStart} does not fit the records section`);
      }
      read.end = recordEnd;
      read.position += 1; // record attributes, unused
      readVarlong(section, read);
      const offsetDelta = readVarint(section, read);
      if (offsetDelta !== batch.recordIndex - 1) throw decodeBatchOffsetDeltaWrong(batch.recordIndex - 1, offsetDelta);
      const offset = header.baseOffset + offsetDelta;
      read.end = section.length;
      if (offset < this.fromOffset) {
        read.position = recordEnd;
        return undefined;
      }
      read.position = recordStart;
    }
    const record = decodeBatchRecord(section, read, header, batch.recordIndex - 1, batch.isLogAppendTime, this.make);
    this.nextOffset = Math.max(this.nextOffset, this.builtOffset + 1);
    return record;
  }

  /** Leaves the batch (it holds no more records than it declares), and notes when no whole batch follows it. */
  private nextRecordLeaveBatch(batch: CursorBatch): void {
    this.batch = undefined;
    if (batch.read.position !== batch.section.length) {
      throw decodeBatchCountMismatch(batch.header, `${batch.section.length - batch.read.position} bytes follow the last one`);
    }
    this.nextOffset = Math.max(this.nextOffset, batch.header.baseOffset + batch.header.lastOffsetDelta + 1);
    if (wholeBatchBytesAt(this.bytes, this.batchPosition) === undefined) this.isDone = true;
  }
}

/**
 * Calls `visit` with each record of the whole batches in `bytes` (laid back to back, as
 * `iterateBatches` reads them) whose offset is at least `fromOffset`, in order, until `visit`
 * returns false. Nothing is kept and records below `fromOffset` are stepped over without
 * being built, so a reader that needs part of a batch holds one record at a time: a gzip batch
 * of empty records can hold millions (a few MiB inflate to 64 MiB of 7-byte records), and
 * decoding it whole took gigabytes. The checks are `decodeBatch`'s, for the records reached
 * (a `RecordCursor` reads them).
 */
export function visitRecords(bytes: Buffer, options: RecordCursorOptions, visit: (record: DecodedRecord, header: BatchHeader) => boolean): void {
  const cursor = new RecordCursor(bytes, options, makeDecodedRecord);
  for (let record = cursor.next(); record !== undefined; record = cursor.next()) {
    if (!visit(record, cursor.header!)) return;
  }
}

/** The records of every whole batch in `bytes`, in order; see `iterateBatches`. */
export function decodeBatches(bytes: Buffer, options: DecodeBatchOptions = {}): DecodedRecord[] {
  const records: DecodedRecord[] = [];
  for (const batch of iterateBatches(bytes, options)) {
    for (const record of batch.records) records.push(record);
  }
  return records;
}
