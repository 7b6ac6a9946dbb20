/**
 * The 61-byte header of a record batch v2 (Kafka's magic 2 layout, ../shared/RECORD_BATCH.md)
 * and its validation. Reading and checking the header is all the broker's hot path does: it
 * never decodes individual records on append, fetch or replication.
 *
 * Byte layout (big-endian):
 *
 * | pos | size | field                 | covered by CRC |
 * |----:|-----:|-----------------------|----------------|
 * |   0 |    8 | baseOffset            | no (leader writes it in place) |
 * |   8 |    4 | batchLength           | no (= total size − 12)          |
 * |  12 |    4 | partitionLeaderEpoch  | no (leader stamps it)           |
 * |  16 |    1 | magic = 2             | no                              |
 * |  17 |    4 | crc (CRC-32C, uint32) | —                               |
 * |  21 |    2 | attributes            | yes, and every byte after it    |
 * |  23 |    4 | lastOffsetDelta       | yes |
 * |  27 |    8 | baseTimestamp         | yes |
 * |  35 |    8 | maxTimestamp          | yes |
 * |  43 |    8 | producerId            | yes |
 * |  51 |    2 | producerEpoch         | yes |
 * |  53 |    4 | baseSequence          | yes |
 * |  57 |    4 | recordCount           | yes |
 * |  61 |    … | records               | yes |
 */
import { BrokerError } from '../errors/index.js';
import { crc32c } from './crc32c.js';
import { tryReadInt64, writeInt64 } from './int64.js';

export const BATCH_HEADER_BYTES = 61;
/** Bytes before `batchLength` counts: baseOffset (8) + batchLength (4). */
export const BATCH_LOG_OVERHEAD_BYTES = 12;
export const BATCH_MAGIC = 2;

export const BatchField = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordCount: 57,
} as const;

/** The CRC covers from `attributes` to the end of the batch. */
export const BATCH_CRC_START = BatchField.attributes;

export const COMPRESSION_MASK = 0x07;
export const TIMESTAMP_TYPE_BIT = 0x08;
export const TRANSACTIONAL_BIT = 0x10;
export const CONTROL_BIT = 0x20;

export interface BatchHeader {
  baseOffset: number;
  /** Whole batch size in bytes, header included (batchLength + 12). */
  sizeBytes: number;
  partitionLeaderEpoch: number;
  magic: number;
  crc: number;
  attributes: number;
  lastOffsetDelta: number;
  baseTimestamp: number;
  maxTimestamp: number;
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  recordCount: number;
}

/**
 * Reads the header at `position` without checking the CRC. Returns `undefined` when fewer
 * than 61 bytes remain, or a field is structurally impossible (negative length, int64 out of
 * safe range) — callers treat that as a damaged or torn batch.
 */
export function tryReadBatchHeader(bytes: Buffer, position = 0): BatchHeader | undefined {
  if (bytes.length - position < BATCH_HEADER_BYTES) return undefined;
  const batchLength = bytes.readInt32BE(position + BatchField.batchLength);
  if (batchLength < BATCH_HEADER_BYTES - BATCH_LOG_OVERHEAD_BYTES) return undefined;
  const baseOffset = tryReadInt64(bytes, position + BatchField.baseOffset);
  const baseTimestamp = tryReadInt64(bytes, position + BatchField.baseTimestamp);
  const maxTimestamp = tryReadInt64(bytes, position + BatchField.maxTimestamp);
  const producerId = tryReadInt64(bytes, position + BatchField.producerId);
  if (baseOffset === undefined || baseTimestamp === undefined || maxTimestamp === undefined || producerId === undefined) {
    return undefined;
  }
  return {
    baseOffset,
    sizeBytes: batchLength + BATCH_LOG_OVERHEAD_BYTES,
    partitionLeaderEpoch: bytes.readInt32BE(position + BatchField.partitionLeaderEpoch),
    magic: bytes.readInt8(position + BatchField.magic),
    crc: bytes.readUInt32BE(position + BatchField.crc),
    attributes: bytes.readInt16BE(position + BatchField.attributes),
    lastOffsetDelta: bytes.readInt32BE(position + BatchField.lastOffsetDelta),
    baseTimestamp,
    maxTimestamp,
    producerId,
    producerEpoch: bytes.readInt16BE(position + BatchField.producerEpoch),
    baseSequence: bytes.readInt32BE(position + BatchField.baseSequence),
    recordCount: bytes.readInt32BE(position + BatchField.recordCount),
  };
}

/**
 * The magic byte of the batch at `position`, or `undefined` when the bytes end before it. Every
 * Kafka message format (magic 0, 1 and 2) keeps it at byte 16, so it can be read, and a batch
 * of another format told apart, before anything laid out after it.
 */
export function tryReadBatchMagic(bytes: Buffer, position = 0): number | undefined {
  if (bytes.length - position <= BatchField.magic) return undefined;
  return bytes.readInt8(position + BatchField.magic);
}

/** Whether the CRC stored in the batch at `position` matches its bytes. */
export function isBatchCrcValid(bytes: Buffer, header: BatchHeader, position = 0): boolean {
  const end = position + header.sizeBytes;
  if (end > bytes.length) return false;
  return crc32c(bytes.subarray(position + BATCH_CRC_START, end)) === header.crc;
}

export interface ValidateBatchOptions {
  /** Largest accepted batch, in bytes (the topic's `max.message.bytes`). */
  batchBytesMax: number;
}

/**
 * Checks that `bytes` holds exactly one well-formed batch as a producer must send it: length
 * matches the bytes received, magic 2, CRC matches, at least one record, lastOffsetDelta =
 * recordCount − 1, within the size limit. Throws `BrokerError` (CORRUPT_MESSAGE,
 * BATCH_TOO_LARGE or INVALID_REQUEST) and never changes `bytes`.
 */
export function validateBatchOrThrow(bytes: Buffer, options: ValidateBatchOptions): BatchHeader {
  if (bytes.length > options.batchBytesMax) {
    throw new BrokerError('BATCH_TOO_LARGE', `batch is ${bytes.length} bytes; the limit is ${options.batchBytesMax}`, {
      details: { batchBytes: bytes.length, batchBytesMax: options.batchBytesMax },
    });
  }
  // The magic first: a legacy message set (magic 0 or 1) is laid out differently after it, so
  // its bytes read as a v2 header are nonsense, and reporting them hid the real cause.
  const magic = tryReadBatchMagic(bytes, 0);
  if (magic !== undefined && magic !== BATCH_MAGIC) {
    throw new BrokerError('CORRUPT_MESSAGE', `unsupported batch magic ${magic}; only magic 2 is accepted`);
  }
  const header = tryReadBatchHeader(bytes, 0);
  if (header === undefined) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch header is malformed or shorter than ${BATCH_HEADER_BYTES} bytes`);
  }
  if (header.sizeBytes !== bytes.length) {
    throw new BrokerError('CORRUPT_MESSAGE', `batchLength says ${header.sizeBytes} bytes but ${bytes.length} were sent`);
  }
  if (!isBatchCrcValid(bytes, header, 0)) {
    throw new BrokerError('CORRUPT_MESSAGE', 'batch CRC-32C does not match its contents');
  }
  if (header.recordCount < 1) {
    throw new BrokerError('CORRUPT_MESSAGE', `batch holds ${header.recordCount} records; at least 1 is required`);
  }
  if (header.lastOffsetDelta !== header.recordCount - 1) {
    throw new BrokerError(
      'CORRUPT_MESSAGE',
      `lastOffsetDelta ${header.lastOffsetDelta} does not match recordCount ${header.recordCount}`,
    );
  }
  if ((header.attributes & CONTROL_BIT) !== 0) {
    throw new BrokerError('INVALID_REQUEST', 'control batches cannot be produced');
  }
  return header;
}

/** Writes the partition-assigned base offset in place; the CRC does not cover it. */
export function setBatchBaseOffset(bytes: Buffer, baseOffset: number, position = 0): void {
  writeInt64(bytes, baseOffset, position + BatchField.baseOffset);
}

/** Stamps the leader epoch in place; the CRC does not cover it. */
export function setBatchLeaderEpoch(bytes: Buffer, leaderEpoch: number, position = 0): void {
  bytes.writeInt32BE(leaderEpoch, position + BatchField.partitionLeaderEpoch);
}

/**
 * Turns a batch into a log-append-time batch (topic config message.timestamp.type =
 * LogAppendTime): sets the timestamp-type attribute bit and maxTimestamp to `nowMs`, then
 * recomputes the CRC, which covers both. Readers then use maxTimestamp for every record.
 */
export function stampLogAppendTime(bytes: Buffer, nowMs: number, position = 0): void {
  const attributes = bytes.readInt16BE(position + BatchField.attributes);
  bytes.writeInt16BE(attributes | TIMESTAMP_TYPE_BIT, position + BatchField.attributes);
  writeInt64(bytes, nowMs, position + BatchField.maxTimestamp);
  const end = position + bytes.readInt32BE(position + BatchField.batchLength) + BATCH_LOG_OVERHEAD_BYTES;
  bytes.writeUInt32BE(crc32c(bytes.subarray(position + BATCH_CRC_START, end)), position + BatchField.crc);
}
