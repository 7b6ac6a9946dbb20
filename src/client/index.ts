/**
 * The TypeScript client library: connections, metadata cache, producer, consumer, admin,
 * retry policy. It imports only protocol/, errors/ and common/, so it runs in a process with
 * no broker code.
 *
 * Who owns which state (each has a single writer, the event loop code of its owner):
 * - `Connections` (connections.ts): one gRPC channel per broker address; closing it is what
 *   lets the process exit.
 * - `MetadataCache` (metadata-cache.ts): partition counts and leaders per topic, and the loads
 *   in progress with the callers to tell of their retries.
 * - `Producer` (producer.ts): the accumulator (open and ready batches), buffer budget, wait
 *   queues, producer id and epoch; per partition, `ProducerPartition` (producer-partition.ts)
 *   keeps sequences and the unacknowledged batches; each `ProducerBatch` (producer-batch.ts)
 *   its records until encoded, then its bytes, its outcome and its share of the buffer. Its
 *   ProduceStreams (produce-channel.ts) belong to its transport (grpc-producer-transport.ts).
 * - `Consumer` (consumer.ts): per assigned partition the position, fetch offset, buffered
 *   chunks, the reply being decoded slice by slice (its `RecordCursor`) and the Subscribe stream.
 * - `Admin` (admin.ts): nothing mutable.
 * - `RunnelClient` (runnel-client.ts): the above, and the producers and consumers it made.
 *
 * Start with `createClient({ brokers: ['127.0.0.1:9092'] })`.
 */
export { Admin } from './admin.js';
export type {
  BrokerInfo,
  ClusterMetadata,
  CreateTopicOptions,
  ListOffsetsOptions,
  PartitionDescription,
  PartitionOffset,
  PartitionOffsetResult,
  RetryListener,
  TopicDescription,
  TopicMetadata,
  TopicSummary,
} from './admin.js';
export { describeBrokerAddressProblem } from './broker-address.js';
export { Consumer, SLICE_RECORD_COUNT_MAX, type ConsumerOptions, type OffsetReset, type RecoveredPartition, type RetryingPartition } from './consumer.js';
export { errorFromGrpc, errorFromPartitionError, reasonForStatus } from './errors.js';
export { PendingSend } from './producer-batch.js';
export { Producer, type Acks, type FailedRecords, type ProducerMetrics, type ProducerOptions, type RetryingRecords } from './producer.js';
export { RETRY_DEFAULTS, type RetryOptions } from './retry.js';
export { RunnelClient, createClient, type ClientOptions, type CloseOptions } from './runnel-client.js';
export type {
  ConsumerRecord,
  ConsumerRecordHeader,
  OffsetSpec,
  ProducerRecord,
  ProducerRecordHeader,
  RecordMetadata,
  TopicPartition,
} from './types.js';
export { BrokerError, isBrokerError, isBrokerStoppingError, type Reason } from '../errors/index.js';
