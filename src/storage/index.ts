/**
 * The durable local log of partitions: segments, sparse offset and time indexes, recovery,
 * retention, and the file-system seam. Knows nothing of gRPC, lmdb or pino; receives a
 * `Logger` and a `FileSystem`.
 *
 * Who owns what mutable state:
 * - `PartitionLog`: its segment list, append queue, flush timer, status and idempotent
 *   producer state (`ProducerState`); its single writer (runWriter) is the only code that
 *   changes its files or its producer state.
 * - `LogManager`: the map of known and open partitions, each closed log's retention summary,
 *   the idle and retention timers, and (through its `ClosableFileSystem`) whether storage may
 *   still open files.
 * - `FileHandleCache` / `IndexCache`: shared, broker-wide, bounded pools.
 */
export { FileHandleCache } from './file-handle-cache.js';
export { IndexCache } from './index-cache.js';
export { ForwardingFileHandle, OnCloseFileHandle, nodeFileSystem, takeBytes, writeFileAtomically, type FileHandle, type FileSystem, type OpenMode } from './file-system.js';
export { PRODUCER_SNAPSHOT_FILE_NAME, isPartitionDirectoryListing, partitionDirName, segmentFileName, tryParsePartitionDirName } from './file-names.js';
export { formatFlushPolicy, parseFlushPolicy, type FlushPolicy } from './flush-policy.js';
export {
  PartitionLog,
  type AppendedBatch,
  type AppendListener,
  type AppendOptions,
  type AppendResult,
  type PartitionLogConfig,
  type PartitionLogOptions,
  type PartitionLogStats,
  type ReadOptions,
  type ReadResult,
} from './partition-log.js';
export { countSegmentsToDelete, type RetentionPolicy } from './retention.js';
export { encodeProducerSnapshot, type ProducerSnapshot } from './producer-snapshot.js';
export { LogManager, type LogManagerOptions, type TopicPartition } from './log-manager.js';
export { forEachStoredBatch, repairPartitionDirectory, verifyPartitionDirectory, type MissingRecords, type RepairPlan, type SegmentReport, type VerifyReport } from './inspect.js';
