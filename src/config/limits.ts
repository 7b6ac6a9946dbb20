/**
 * Hard ceilings the code relies on for correctness and bounded memory. Operators cannot raise
 * them. Each says why it exists and what happens when it is hit. Relationships between them
 * and the defaults are checked once, at module load, at the bottom of defaults.ts.
 */
import { GiB, KiB, MiB } from '../common/units.js';

export const limits = {
  /**
   * Largest `segment.bytes`. Index entries store a u32 file position; keeping segments below
   * 2^31 leaves room for one oversize batch at the end. Hit: the topic config is rejected.
   */
  segmentBytesMax: 2 * GiB - 1,
  /** Smallest `segment.bytes`: below this a segment holds too few batches to be worth a file. */
  segmentBytesMin: 1 * KiB,
  /**
   * Largest file position an index entry can hold (u32). Hit: the segment rolls before the
   * batch that would start beyond it.
   */
  segmentPositionMax: 0xffff_ffff,
  /**
   * Largest offset − baseOffset inside one segment (u32 in the offset index). Hit: the segment
   * rolls before the batch whose last offset would exceed it.
   */
  relativeOffsetMax: 0xffff_ffff,
  /**
   * Largest record batch accepted (`max.message.bytes` cannot be set above it). Bounds the
   * memory one append or one read of a single batch may take. Hit: BATCH_TOO_LARGE.
   */
  batchBytesMax: 64 * MiB,
  /**
   * Largest records section of one batch after decompression. A few KiB of gzip can inflate to
   * gigabytes, so zlib is told to stop here (protocol/compression.ts): it bounds the memory the
   * broker's produce check, a RECORD_FORMAT_RECORDS Fetch or Subscribe, a ListOffsets by time,
   * the client's Consumer and `runnel log dump --records` take per batch. Readers use the same
   * bound as the produce check, so every batch the broker stored decodes. Hit: RECORD_TOO_LARGE
   * (a produce is refused, nothing written; a read of that batch fails).
   */
  decompressedRecordsBytesMax: 64 * MiB,
  /** Largest read of one partition in one call. Hit: the read is cut at a batch boundary. */
  readBytesMax: 64 * MiB,
  /**
   * Subscribe credit a stream may hold unspent (granted and not yet used up by replies).
   * Hit: more is not added; a consumer's window per partition must stay within it.
   */
  subscribeCreditBytesMax: 256 * MiB,
  /**
   * Appends queued on one partition waiting for the writer. Bounds memory held by batches
   * not yet written. Hit: LIMIT_REACHED (retriable), nothing written.
   */
  pendingAppendsPerPartitionMax: 10_000,
  /** Bytes queued on one partition waiting for the writer. Hit: LIMIT_REACHED. */
  pendingAppendBytesPerPartitionMax: 256 * MiB,
  /** Longest topic name (Kafka's limit; leaves room for `-<partition>` in a 255-byte file name). */
  topicNameLengthMax: 249,
  /**
   * Longest topic config value a client may send. The longest valid one is a 16-digit number;
   * unchecked, a 60 MB value held the event loop for seconds and took ~1 GB while it was
   * parsed. Hit: the create or alter is rejected with INVALID_REQUEST.
   */
  topicConfigValueLengthMax: 1_024,
  /** Partitions in one topic. Hit: the create or alter is rejected. */
  partitionsPerTopicMax: 10_000,
  /** Smallest index interval: an entry per batch at most every 64 bytes keeps indexes small. */
  indexIntervalBytesMin: 64,
  /**
   * Largest gRPC message either way, set on both ends of every channel: one largest batch
   * plus request framing. Hit: RESOURCE_EXHAUSTED from gRPC before any handler runs.
   */
  grpcMessageBytesMax: 64 * MiB + 1 * MiB,
  /** Produce requests a ProduceStream may have in flight before the broker stops reading it. */
  produceStreamInFlightMax: 64,
  /** Distinct topics named in one metadata request (duplicates count once). Hit: INVALID_REQUEST. */
  topicsPerMetadataRequestMax: 1_000,
  /** Partitions named in one Produce request. Hit: INVALID_REQUEST. */
  partitionsPerRequestMax: 10_000,
  /**
   * Plain records in one Produce request, all partitions together. grpc-js builds an object
   * for each before a handler runs, so this is counted on the wire first
   * (server/request-guard.ts). Hit: INVALID_REQUEST, nothing decoded.
   */
  recordsPerProduceRequestMax: 1_000_000,
  /** Headers on one record. Hit: INVALID_REQUEST. */
  headersPerRecordMax: 1_000,
  /** Headers on the plain records of one Produce request, counted as records are. Hit: INVALID_REQUEST. */
  headersPerProduceRequestMax: 1_000_000,
  /**
   * Largest request message of every method but Produce and ProduceStream (which carry
   * batches up to `grpcMessageBytesMax`). Their largest valid requests (1,000 topic names,
   * 10,000 partitions) take well under 1 MiB, and a repeated field's empty elements cost
   * ~50 times their wire size once decoded. Hit: INVALID_REQUEST, nothing decoded.
   */
  requestBytesMax: 1 * MiB,
  /** Longest a Fetch may park waiting for data. Longer requests are cut to this. */
  fetchWaitMsMax: 60_000,
  /**
   * Partition logs one broker opens or closes at the same time. Each open or close holds a few
   * descriptors of its own (the segment, index and state files it reads or writes), outside
   * `openSegmentFilesMax`: a burst over 3,000 partitions with a small `openPartitionsMax` closed
   * them all at once and ran the broker out of descriptors (EMFILE). Hit: the next open or close
   * waits for one to finish.
   */
  logOpensClosesInFlightMax: 8,
  /**
   * Descriptors storage holds at once outside the segment file cache (`openSegmentFilesMax`):
   * files it opens only for a moment, such as partition state and producer snapshot writes,
   * index loads and writes, directory fsyncs and a new segment's create. A burst of rolls or of
   * first writes after a clean start over 2,000 partitions opened one each at once and ran a
   * broker under `ulimit -n 400` out of descriptors (EMFILE). 64 keeps dozens of partitions
   * rolling in parallel on the thread pool, which runs 4 at a time anyway. Hit: the operation
   * waits for one to finish.
   */
  storageFileOpsInFlightMax: 64,
  /**
   * How long closing storage (`LogManager.close`) waits, once every log is closed, for reads
   * still holding files: segment files, or index files a read is loading or rebuilding. A read
   * does not go through its log's writer queue, so the log's close does not wait for it, and
   * its file is never closed under it; all it still waits for is its own disk reads (at most
   * `readBytesMax`, or one segment's scan for a rebuild). Hit: the close returns and logs a
   * warning naming what is still in use; those files close as their reads end.
   */
  closeReadWaitMsMax: 5_000,
  /** Parked fetches and subscriptions per partition. Hit: LIMIT_REACHED. */
  waitersPerPartitionMax: 10_000,
  /** Producer ids remembered per partition for idempotence (least recently used go first). */
  producersPerPartitionMax: 10_000,
  /** Largest offset a partition may reach: offsets are JS numbers, checked to stay safe. */
  offsetMax: Number.MAX_SAFE_INTEGER,
  /**
   * Topics one broker's metadata store holds. `listTopics` and topic metadata responses carry
   * every topic record at once (~1 KiB each with overrides), so 10,000 keeps a full listing near
   * 10 MiB, well inside `grpcMessageBytesMax`. Hit: topic create fails with LIMIT_REACHED.
   */
  topicsPerBrokerMax: 10_000,
  /**
   * Largest replication factor, and so the largest `min.insync.replicas`. Every replica costs
   * the leader a follower fetch loop and every metadata response a line; Kafka deployments use
   * 3, rarely 5. Hit: the topic create or config change is rejected with INVALID_REQUEST.
   */
  replicationFactorMax: 16,
  /**
   * Longest `flush=interval:<ms>`: an hour. Beyond it "interval" means "never" in practice, and
   * a power loss could take more than an hour of acknowledged records. Hit: the topic config is
   * rejected with INVALID_REQUEST.
   */
  flushIntervalMsMax: 3_600_000,
} as const;
