/**
 * Sizes of protobuf messages as every protobuf library computes them for a message it parsed
 * (ByteSize() in Python and C++, proto.Size in Go, getSerializedSize() in Java): the proto3
 * encoding in which a field without presence is left out at its default value (0, empty),
 * and a field with presence (`optional`, a member of a oneof, a message) is counted whenever
 * it is set. The broker charges Subscribe credit in RECORD_FORMAT_RECORDS by this size of each
 * SubscribeResponse, so a client in any language can give back exactly what it was charged.
 * It is a property of the message, not of the bytes on the wire: protobufjs (under grpc-js)
 * writes a field set to its default too, and that does not change the size here.
 *
 * Only field numbers 1 to 15 are sized here (one-byte tags), which covers every field of the
 * messages sized. No I/O, no state.
 */
import type { DecodedRecord } from './record-batch.js';

/** One-byte tag: field numbers 1 to 15. */
const TAG_BYTES = 1;
/** A negative int64 is written as its 64-bit two's complement: always ten bytes. */
const NEGATIVE_INT64_VARINT_BYTES = 10;

/** Bytes of `value` as a protobuf varint (uint64, or int64 where a negative takes ten). */
export function protoVarintSizeBytes(value: number): number {
  if (value < 0) return NEGATIVE_INT64_VARINT_BYTES;
  let sizeBytes = 1;
  // Division, not shifts: a safe integer can pass 2^32, where JS shifts wrap.
  for (let rest = Math.floor(value / 128); rest > 0; rest = Math.floor(rest / 128)) sizeBytes++;
  return sizeBytes;
}

/** Bytes of an int64 field without presence: nothing at 0. */
export function protoInt64FieldSizeBytes(value: number): number {
  return value === 0 ? 0 : TAG_BYTES + protoVarintSizeBytes(value);
}

/** Bytes of a length-delimited field (bytes, string, message) whose payload is `lengthBytes` long and is counted (set, or non-empty). */
export function protoLengthDelimitedFieldSizeBytes(lengthBytes: number): number {
  return TAG_BYTES + protoVarintSizeBytes(lengthBytes) + lengthBytes;
}

/**
 * Bytes one record adds to a SubscribeResponse (or FetchResponse) as a `FetchedRecord` in its
 * `records` field, tag and length included. `key`, `value` and a header's `value` are
 * `optional`: counted when not null, even when empty.
 */
export function fetchedRecordFieldSizeBytes(record: DecodedRecord): number {
  let sizeBytes = protoInt64FieldSizeBytes(record.offset) + protoInt64FieldSizeBytes(record.timestamp);
  if (record.key !== null) sizeBytes += protoLengthDelimitedFieldSizeBytes(record.key.length);
  if (record.value !== null) sizeBytes += protoLengthDelimitedFieldSizeBytes(record.value.length);
  for (const header of record.headers) {
    const keyBytes = Buffer.byteLength(header.key, 'utf8');
    let headerBytes = keyBytes === 0 ? 0 : protoLengthDelimitedFieldSizeBytes(keyBytes);
    if (header.value !== null) headerBytes += protoLengthDelimitedFieldSizeBytes(header.value.length);
    sizeBytes += protoLengthDelimitedFieldSizeBytes(headerBytes);
  }
  return protoLengthDelimitedFieldSizeBytes(sizeBytes);
}

/** The parts of a SubscribeResponse that its size depends on. */
export interface SubscribeResponseParts {
  recordBatchesBytes: number;
  /** The sum of `fetchedRecordFieldSizeBytes` over its records. */
  recordsFieldBytes: number;
  highWatermark: number;
  logStartOffset: number;
  nextOffset: number;
}

/** Bytes of a SubscribeResponse (fields 1 to 5 of log.proto), as ByteSize() counts them. */
export function subscribeResponseSizeBytes(parts: SubscribeResponseParts): number {
  return (
    (parts.recordBatchesBytes === 0 ? 0 : protoLengthDelimitedFieldSizeBytes(parts.recordBatchesBytes)) +
    parts.recordsFieldBytes +
    protoInt64FieldSizeBytes(parts.highWatermark) +
    protoInt64FieldSizeBytes(parts.logStartOffset) +
    protoInt64FieldSizeBytes(parts.nextOffset)
  );
}
