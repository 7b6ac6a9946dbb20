/**
 * Operator-tunable defaults. Every default lies inside its limit; the relationships are
 * asserted below at module load, each with its reason.
 */
import { assert } from '../common/assert.js';
import { GiB, KiB, MiB } from '../common/units.js';
import { limits } from './limits.js';

export const defaults = {
  /** Roll the active segment once it would exceed this (Kafka: segment.bytes). */
  segmentBytes: 1 * GiB,
  /** Roll the active segment when its first batch is older than this (Kafka: segment.ms, 7 days). */
  segmentMs: 7 * 24 * 3_600_000,
  /** Delete whole segments whose newest record is older than this (Kafka: retention.ms, 7 days). */
  retentionMs: 7 * 24 * 3_600_000,
  /** Delete oldest segments while the partition exceeds this; -1 = no size limit (Kafka's default). */
  retentionBytes: -1,
  /** Bytes of log between two sparse index entries (Kafka: index.interval.bytes). */
  indexIntervalBytes: 4 * KiB,
  /** Largest batch a producer may send (Kafka: max.message.bytes). */
  maxMessageBytes: 4 * MiB,
  /**
   * When appended bytes are fdatasync'ed. `interval:1000` bounds what a power loss can take to
   * about one second of acknowledged records on a single node with no replicas; a process crash
   * loses nothing (the bytes are in the page cache). See storage/flush-policy.ts.
   */
  flush: 'interval:1000',
  /**
   * Segment log files open at once across all partitions of a storage user that does not say
   * (benches, tools). The broker sizes its own from the open-files limit unless set: half of
   * it, from this to 65,536 (broker/open-files-limit.ts `autoOpenSegmentFilesMax`).
   */
  openSegmentFilesMax: 1024,
  /** Memory for loaded indexes of sealed segments, across all partitions. */
  indexCacheBytesMax: 64 * MiB,
  /**
   * Partition logs kept open at once; the least recently used idle ones are closed. At least
   * one topic of the most partitions (`limits.partitionsPerTopicMax`): a producer writing
   * round-robin to more partitions than this makes the least recently used log the next one
   * written, so every append reopened a log another close had just made durable. With 2,048
   * and 10,000 partitions at 1,000 records/s the broker opened and closed ~400 logs a second
   * (1.2 cores, end-to-end p99 55–140 ms) and still held ~9,990 open, as closes (a few at a
   * time) could not catch up; with 10,000: no closes, 0.45 cores, p99 12–15 ms, the same RSS
   * (~0.6–0.9 GB). An open log holds no descriptor of its own (segment files are in the
   * bounded `openSegmentFilesMax` cache), only memory.
   */
  openPartitionsMax: 10_000,
  /** A partition with no append or read for this long is closed (cleanly) to free its memory. */
  partitionIdleMs: 10 * 60_000,
  /** How often retention runs over open partitions. */
  retentionCheckIntervalMs: 5 * 60_000,
  /**
   * An idempotent producer's state (epoch, last sequences) is dropped from a partition's
   * producer snapshot once it has not been seen for this long: neither its newest batch
   * timestamp nor the broker's clock at that batch's append is this recent (Kafka:
   * producer.id.expiration.ms, 1 day, which counts from the batch timestamp alone; see
   * storage/producer-state.ts). Its next batch is then accepted with any sequence.
   */
  producerIdExpirationMs: 24 * 3_600_000,
  /**
   * Replicas that must hold a batch before an acks=all produce is acknowledged (Kafka:
   * min.insync.replicas, default 1).
   */
  minInsyncReplicas: 1,
  /** What happens to old segments (Kafka: cleanup.policy). Only `delete` exists so far. */
  cleanupPolicy: 'delete',
  /**
   * Which timestamp a record keeps: the producer's (`CreateTime`) or the broker's at append
   * (`LogAppendTime`) (Kafka: message.timestamp.type, default CreateTime).
   */
  messageTimestampType: 'CreateTime',
  /**
   * How far in the future a create-time record's timestamp may lie, against the broker's
   * clock (Kafka: message.timestamp.after.max.ms; one hour, Kafka 4.0's default). A record
   * stamped years ahead would otherwise keep its segment from ever expiring or rolling by time.
   */
  messageTimestampAfterMaxMs: 3_600_000,
  /**
   * How far in the past a create-time record's timestamp may lie (Kafka:
   * message.timestamp.before.max.ms). No limit by default, as in Kafka: replays and backfills
   * carry old timestamps.
   */
  messageTimestampBeforeMaxMs: Number.MAX_SAFE_INTEGER,
} as const;

assert(defaults.segmentBytes <= limits.segmentBytesMax, 'segment.bytes default must fit 32-bit index positions');
assert(defaults.segmentBytes >= limits.segmentBytesMin, 'segment.bytes default must be above its floor');
assert(
  limits.segmentBytesMax + limits.batchBytesMax <= limits.segmentPositionMax,
  'a full segment plus one largest batch must still have u32 positions, so rolling on size suffices',
);
assert(defaults.indexIntervalBytes < defaults.segmentBytes, 'the index interval must be smaller than a segment');
assert(defaults.indexIntervalBytes >= limits.indexIntervalBytesMin, 'the index interval must be above its floor');
assert(defaults.openPartitionsMax >= limits.partitionsPerTopicMax, 'a topic of the most partitions, written round-robin, must fit open, or every append reopens a log');
assert(defaults.maxMessageBytes <= limits.batchBytesMax, 'max.message.bytes default must be within the batch limit');
assert(limits.readBytesMax >= limits.batchBytesMax, 'a read must be able to return the largest batch whole');
assert(limits.decompressedRecordsBytesMax >= limits.batchBytesMax, 'the records of the largest uncompressed batch must pass the decompressed bound');
assert(
  limits.pendingAppendBytesPerPartitionMax >= limits.batchBytesMax,
  'one largest batch must fit in the append queue, or it could never be appended',
);
assert(defaults.producerIdExpirationMs > 0, 'producer state must live a positive time, or every retry would look new');
assert(
  defaults.minInsyncReplicas >= 1 && defaults.minInsyncReplicas <= limits.replicationFactorMax,
  'the min.insync.replicas default must be a replica count a topic can have',
);
assert(
  !defaults.flush.startsWith('interval:') || Number(defaults.flush.slice('interval:'.length)) <= limits.flushIntervalMsMax,
  'the flush interval default must be within its ceiling',
);
