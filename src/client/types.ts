/**
 * The record shapes the client's public API takes and returns. Plain data, no behaviour.
 */

/** A partition of a topic. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A record header as a producer gives it: a null value is kept as null (as in Kafka). */
export interface ProducerRecordHeader {
  key: string;
  value: Buffer | string | null;
}

/** One record handed to `Producer.send`. */
export interface ProducerRecord {
  topic: string;
  /** Explicit partition; otherwise chosen from the key (murmur2, as Kafka) or sticky for null keys. */
  partition?: number;
  /** Strings are sent as UTF-8. */
  key?: Buffer | string | null;
  /** Null is a tombstone under compaction. Strings are sent as UTF-8. */
  value: Buffer | string | null;
  /** An array keeps order and repeated keys; an object is the common shorthand. */
  headers?: ProducerRecordHeader[] | Record<string, Buffer | string | null>;
  /** Create time in ms since the Unix epoch; defaults to the time of `send`. */
  timestamp?: number;
}

/** Where an acknowledged record landed. */
export interface RecordMetadata {
  topic: string;
  partition: number;
  /** The record's offset; -1 with `acks: 'none'`, where the broker reports none. */
  offset: number;
  /** Its create time, or the broker's log-append time when the topic stamps that. */
  timestamp: number;
}

/** A record header as read back. */
export interface ConsumerRecordHeader {
  key: string;
  value: Buffer | null;
}

/**
 * One record read by a `Consumer`. `key` and `value` are views into the fetched bytes, not
 * copies: keep them as long as needed, they are not reused by the client.
 */
export interface ConsumerRecord {
  topic: string;
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: ConsumerRecordHeader[];
  timestamp: number;
}

/** Where to start reading: the first or next offset, an exact offset, or the first at or after a time. */
export type OffsetSpec = 'earliest' | 'latest' | number | { timestamp: number };
