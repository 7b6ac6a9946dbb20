/**
 * Composition root and lifecycle of a broker's core: builds meta/ and storage/ and serves
 * topics, produce, fetch and offsets to the adapters above. It holds no network code: the
 * gRPC server lives in server/ (`startServer(broker)`), and `runnel broker` wires both.
 */
export { Broker, type Acks, type BrokerCloseStage, type BrokerOpenOptions, type FetchOptions, type FetchResult, type OffsetQuery, type PartitionInfo, type ProduceOptions, type ProduceResult, type TopicInfo } from './broker.js';
export { LOCK_FILE_NAME, ensureDataDirNotInUse, liveHolder, lockDataDir, type DataDirLock } from './data-dir-lock.js';
export { AUTO_OPEN_SEGMENT_FILES_MAX, AUTO_OPEN_SEGMENT_FILES_MIN, autoOpenSegmentFilesMax } from './open-files-limit.js';
