/**
 * Request validation shared by the gRPC handlers: every field a client sends is checked
 * against its declared limit here, before any work, so a bad request changes nothing.
 */
import { limits } from '../config/limits.js';
import { validateTopicName } from '../config/topic-name.js';
import { BrokerError } from '../errors/index.js';
import { encodeBatch, int64ToNumber, type LogRecord } from '../protocol/index.js';
import type { Acks } from '../broker/index.js';
import type { Acks as WireAcks } from '../protocol/generated/runnel/v1/Acks.js';
import type { RecordFormat as WireRecordFormat } from '../protocol/generated/runnel/v1/RecordFormat.js';
import type { PartitionData__Output } from '../protocol/generated/runnel/v1/PartitionData.js';
import type { Record__Output } from '../protocol/generated/runnel/v1/Record.js';

export function invalid(message: string): BrokerError {
  return new BrokerError('INVALID_REQUEST', message);
}

export function checkTopic(name: string): string {
  validateTopicName(name);
  return name;
}

export function checkPartition(partition: number): number {
  if (!Number.isInteger(partition) || partition < 0) throw invalid(`partition must be an integer ≥ 0, got ${partition}`);
  if (partition >= limits.partitionsPerTopicMax) {
    // No topic can have it: the same answer as for a partition past a topic's last one.
    throw new BrokerError('PARTITION_NOT_FOUND', `partition ${partition} does not exist (a topic has at most ${limits.partitionsPerTopicMax} partitions)`, { partition });
  }
  return partition;
}

/** `items` without repeats, checked against `max` (a request may name each thing once). */
export function distinctWithin<T>(items: readonly T[], max: number, what: string): T[] {
  const distinct = [...new Set(items)];
  if (distinct.length > max) throw invalid(`${what}: ${distinct.length} named; at most ${max}`);
  return distinct;
}

export function checkOffset(value: string | number, what = 'offset'): number {
  const offset = int64ToNumber(value, what);
  if (offset < 0) throw invalid(`${what} must be ≥ 0, got ${offset}`);
  return offset;
}

/**
 * A ListOffsets time: at least 0. Kafka's ListOffsets reads -1 as "latest" and -2 as
 * "earliest" (and -3 as "the newest timestamp"); searched as times, they found the first
 * record, so a Kafka user asking for the latest offset that way got the earliest and re-read
 * the partition. They are refused, naming the specs that say it.
 */
export function checkListOffsetsTimestamp(value: string | number): number {
  const timestampMs = int64ToNumber(value, 'timestamp_ms');
  if (timestampMs < 0) {
    throw invalid(`timestamp_ms must be ≥ 0 (ms since the epoch), got ${timestampMs}; for Kafka's -1 (latest) or -2 (earliest) use OFFSET_SPEC_LATEST or OFFSET_SPEC_EARLIEST`);
  }
  return timestampMs;
}

/**
 * proto3 enums are open: a value this broker does not know (a newer client's, or a number
 * sent by mistake, such as Kafka's acks -1) arrives as its number and is refused, never
 * read as the default.
 */
export function acksFromWire(acks: WireAcks | string | number | undefined): Acks {
  switch (acks) {
    case 'ACKS_NONE':
      return 'none';
    case 'ACKS_LEADER':
      return 'leader';
    case 'ACKS_ALL':
    case 'ACKS_UNSPECIFIED':
    case undefined:
      return 'all';
    default:
      throw invalid(`acks ${String(acks)} is not one of ACKS_NONE (1), ACKS_LEADER (2), ACKS_ALL (3)`);
  }
}

/** How a Fetch or Subscribe reply carries records; an unknown value is refused (see acksFromWire). */
export function formatFromWire(format: WireRecordFormat | string | number | undefined): 'records' | 'batches' {
  switch (format) {
    case 'RECORD_FORMAT_BATCHES':
      return 'batches';
    case 'RECORD_FORMAT_RECORDS':
    case 'RECORD_FORMAT_UNSPECIFIED':
    case undefined:
      return 'records';
    default:
      throw invalid(`format ${String(format)} is not one of RECORD_FORMAT_RECORDS (1), RECORD_FORMAT_BATCHES (2)`);
  }
}

/** Bytes of the response budget: 0 means the default; never above the read limit. */
export function checkMaxBytes(maxBytes: number, fallback: number): number {
  if (maxBytes === 0) return fallback;
  return Math.min(maxBytes, limits.readBytesMax);
}

/**
 * The batch to append for one partition of a Produce request: the client's prebuilt batch
 * as sent (storage validates it), or plain records encoded here into one batch.
 */
export function batchFromPartitionData(data: PartitionData__Output, nowMs: number): Buffer {
  if (data.data === 'recordBatch' && data.recordBatch !== undefined) return data.recordBatch;
  if (data.data !== 'records' || data.records === undefined || data.records === null) {
    throw invalid(`partition ${data.partition}: send either record_batch or records`);
  }
  const records = data.records.records;
  if (records.length === 0) throw invalid(`partition ${data.partition}: records is empty`);
  if (records.length > limits.recordsPerProduceRequestMax) {
    // request-guard.ts counted them on the wire already; kept for callers that build requests.
    throw invalid(`partition ${data.partition}: ${records.length} records; at most ${limits.recordsPerProduceRequestMax} per request`);
  }
  if (data.compression !== 0 && data.compression !== 1) throw new BrokerError('UNSUPPORTED_COMPRESSION', `compression ${data.compression} is not supported; use 0 (none) or 1 (gzip)`);
  const producer = data.producer;
  return encodeBatch({
    records: records.map((record) => toLogRecord(record, nowMs)),
    compression: data.compression === 1 ? 'gzip' : 'none',
    ...(producer === null
      ? {}
      : { producerId: int64ToNumber(producer.producerId, 'producer_id'), producerEpoch: producer.producerEpoch, baseSequence: producer.baseSequence }),
  });
}

function toLogRecord(record: Record__Output, nowMs: number): LogRecord {
  if (record.headers.length > limits.headersPerRecordMax) throw invalid(`a record has ${record.headers.length} headers; at most ${limits.headersPerRecordMax}`);
  const timestamp = int64ToNumber(record.timestampMs, 'timestamp_ms');
  return {
    key: record._key === 'key' ? (record.key ?? Buffer.alloc(0)) : null,
    value: record._value === 'value' ? (record.value ?? Buffer.alloc(0)) : null,
    headers: record.headers.map((header) => ({ key: header.key, value: header._value === 'value' ? (header.value ?? Buffer.alloc(0)) : null })),
    timestamp: timestamp === 0 ? nowMs : timestamp,
  };
}
