/**
 * The wire contract shared by server and client: record batch v2 codec, CRC-32C, varints,
 * murmur2. No I/O.
 *
 * Nothing here holds mutable state: every export is a pure function of its arguments, except
 * the in-place writers (`setBatchBaseOffset`, `setBatchLeaderEpoch`, `writeVarint`, …), which
 * change only the buffer they are given, and `RecordCursor`, whose place in its batches
 * belongs to the one caller that made it. The client imports this folder, so it must stay free
 * of broker code.
 */
export * from './batch-header.js';
export * from './crc32c.js';
export * from './int64.js';
export * from './varint.js';
export * from './compression.js';
export * from './record-batch.js';
export * from './murmur2.js';
export * from './proto-size.js';
export { CHANNEL_OPTIONS, ErrorMetadata, HEADERS_PER_RECORD_MAX, PROTO_FILES, SUBSCRIBE_CREDIT_BYTES_MAX, PROTO_LOADER_OPTIONS, PROTO_ROOT, int64ToNumber, loadRunnelProto, numberToInt64, type RunnelProto } from './grpc.js';
