/**
 * Topic and cluster administration over AdminService, plus ListOffsets (LogService).
 *
 * Every method is one unary call with a deadline, retried on retriable failures (broker
 * unavailable, timed out, limit reached) with capped exponential backoff until the client's
 * retry deadline. Changes (create, delete, alter, add partitions) fail at once with DISK_FULL
 * or STORAGE_ERROR instead: the broker's disk needs an operator (retry.ts,
 * `isRetriableForAdminChange`). Replies are converted to plain objects with offsets as JS numbers (range
 * checked by `int64ToNumber`).
 *
 * Owns: nothing mutable. Connections belong to `Connections`.
 */
import { BrokerError } from '../errors/index.js';
import { int64ToNumber, numberToInt64 } from '../protocol/index.js';
import type { CreateTopicResponse__Output } from '../protocol/generated/runnel/v1/CreateTopicResponse.js';
import type { DeleteTopicResponse__Output } from '../protocol/generated/runnel/v1/DeleteTopicResponse.js';
import type { ListTopicsResponse__Output } from '../protocol/generated/runnel/v1/ListTopicsResponse.js';
import type { Metadata__Output } from '../protocol/generated/runnel/v1/Metadata.js';
import type { PartitionOffset__Output } from '../protocol/generated/runnel/v1/PartitionOffset.js';
import type { TopicDescription__Output } from '../protocol/generated/runnel/v1/TopicDescription.js';
import type { Connections } from './connections.js';
import { errorFromPartitionError, isTransportFailure } from './errors.js';
import { anySignal, isRetriableForAdminChange, withRetry } from './retry.js';
import type { OffsetSpec } from './types.js';

export interface CreateTopicOptions {
  name: string;
  /** Default: the broker's (1). */
  partitions?: number;
  /** Default: the broker's (1 on a single node). */
  replicationFactor?: number;
  /** Kafka's names (`retention.ms`, `segment.bytes`, …) plus `flush` = always | interval:<ms> | never. */
  configs?: Record<string, string>;
}

export interface PartitionDescription {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  sizeBytes: number;
  /** 'online' or 'offline' (then `offlineReason` says why). */
  status: string;
  offlineReason: string;
}

export interface TopicDescription {
  name: string;
  partitions: PartitionDescription[];
  /** Effective configs: broker defaults merged with the overrides. */
  configs: Record<string, string>;
  /** Only this topic's overrides. */
  overrides: Record<string, string>;
  replicationFactor: number;
}

export interface TopicSummary {
  name: string;
  partitions: number;
  replicationFactor: number;
}

export interface BrokerInfo {
  id: number;
  host: string;
  port: number;
}

export interface TopicMetadata {
  name: string;
  partitions: { partition: number; leader: number; leaderEpoch: number }[];
}

export interface ClusterMetadata {
  clusterId: string;
  controllerId: number;
  brokers: BrokerInfo[];
  topics: TopicMetadata[];
}

export interface ListOffsetsOptions extends RetryListener {
  topic: string;
  /** Default: every partition of the topic. */
  partitions?: number[];
  /**
   * 'earliest', 'latest', or `{ timestamp }`: the first record at or after `timestamp`, as
   * Kafka's ListOffsets by time answers.
   */
  spec: Exclude<OffsetSpec, number>;
}

export interface PartitionOffset {
  partition: number;
  /**
   * 'earliest': the log start offset; 'latest': the log end offset. By timestamp: the offset
   * of the first record, in the first batch whose newest timestamp is at or after the one
   * asked for, whose own timestamp is (records in a batch need not be in time order, so an
   * older record may follow it); with no record that late, the log end offset.
   */
  offset: number;
  /**
   * By timestamp: the timestamp of the record at `offset`. -1 for 'earliest', 'latest', and a
   * timestamp with no record that late.
   */
  timestamp: number;
}

/** One partition's answer from `listOffsetsEach`: its offset, or the error it alone got. */
export type PartitionOffsetResult = (PartitionOffset & { error?: undefined }) | { partition: number; error: BrokerError };

/**
 * For a call that is retried: told of each failure that will be, before the backoff (so a
 * caller can say that it waits, and why, while it waits).
 */
export interface RetryListener {
  onRetry?: (error: BrokerError) => void;
  /**
   * Ends the call when it aborts, as the client's close does: the attempt in flight is
   * cancelled and no other starts; it rejects with the signal's reason when that is a
   * `BrokerError`, else with the last error. How a consumer or producer that closes stops what
   * it started.
   */
  signal?: AbortSignal;
}

/** How admin changes are retried: not on a full or failing disk. */
const ADMIN_CHANGE = { isRetriable: isRetriableForAdminChange };

/** Where a call about a topic partition should go; undefined means any bootstrap broker. */
export type PartitionRouter = (topic: string, partition: number | undefined) => string | undefined;

export class Admin {
  private readonly connections: Connections;
  private readonly route: PartitionRouter;

  constructor(connections: Connections, route: PartitionRouter = () => undefined) {
    this.connections = connections;
    this.route = route;
  }

  /**
   * Creates a topic. Reasons: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_NAME, INVALID_REQUEST (bad
   * config or counts), DISK_FULL and STORAGE_ERROR (not retried). Retried on other retriable
   * failures; since a retry may follow an attempt that succeeded unseen,
   * TOPIC_ALREADY_EXISTS after a retry can mean "created by us".
   */
  async createTopic(options: CreateTopicOptions): Promise<TopicDescription> {
    const response = await this.connections.callWithRetry<CreateTopicResponse__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).createTopic(
        {
          name: options.name,
          partitions: options.partitions ?? 0,
          replicationFactor: options.replicationFactor ?? 0,
          configs: options.configs ?? {},
        },
        callOptions,
        callback,
      ),
      ADMIN_CHANGE,
    );
    if (response.topic === null) throw new BrokerError('INTERNAL_ERROR', 'CreateTopic replied without the topic');
    return toTopicDescription(response.topic);
  }

  /** Deletes a topic and its data. Reasons: TOPIC_NOT_FOUND. Retried on retriable failures. */
  async deleteTopic(name: string): Promise<void> {
    await this.connections.callWithRetry<DeleteTopicResponse__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).deleteTopic({ name }, callOptions, callback),
      ADMIN_CHANGE,
    );
  }

  /** Every topic with its partition count. Idempotent, retried. */
  async listTopics(): Promise<TopicSummary[]> {
    const response = await this.connections.callWithRetry<ListTopicsResponse__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).listTopics({}, callOptions, callback),
    );
    return response.topics.map((topic) => ({ name: topic.name, partitions: topic.partitions, replicationFactor: topic.replicationFactor }));
  }

  /**
   * Partitions (leader, ISR, offsets, size, status) and configs. Reasons: TOPIC_NOT_FOUND.
   * `onRetry` hears of each failure that will be retried.
   */
  async describeTopic(name: string, options: RetryListener = {}): Promise<TopicDescription> {
    const response = await this.connections.callWithRetry<TopicDescription__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).describeTopic({ name }, callOptions, callback),
      { onRetry: options.onRetry, signal: options.signal },
    );
    return toTopicDescription(response);
  }

  /** Sets and removes per-topic overrides. Reasons: TOPIC_NOT_FOUND, INVALID_REQUEST. Idempotent. */
  async alterTopicConfigs(options: { name: string; set?: Record<string, string>; remove?: string[] }): Promise<TopicDescription> {
    const response = await this.connections.callWithRetry<TopicDescription__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).alterTopicConfigs({ name: options.name, set: options.set ?? {}, remove: options.remove ?? [] }, callOptions, callback),
      ADMIN_CHANGE,
    );
    return toTopicDescription(response);
  }

  /** Grows a topic to `partitionCount` partitions (never shrinks). Reasons: TOPIC_NOT_FOUND, INVALID_REQUEST. */
  async addPartitions(options: { name: string; partitionCount: number }): Promise<TopicDescription> {
    const response = await this.connections.callWithRetry<TopicDescription__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).addPartitions({ name: options.name, partitionCount: options.partitionCount }, callOptions, callback),
      ADMIN_CHANGE,
    );
    return toTopicDescription(response);
  }

  /**
   * Brokers and, for `topics` (all when empty), partition leaders. Reasons: TOPIC_NOT_FOUND.
   * `onRetry` hears of each failure that will be retried.
   */
  async getMetadata(topics: string[] = [], options: RetryListener = {}): Promise<ClusterMetadata> {
    const response = await this.connections.callWithRetry<Metadata__Output>((address) => (callOptions, callback) =>
      this.connections.admin(address).getMetadata({ topics }, callOptions, callback),
      { onRetry: options.onRetry, signal: options.signal },
    );
    return toClusterMetadata(response);
  }

  /**
   * Earliest, latest, or by-timestamp offsets per partition, from the partitions' leader (see
   * `PartitionOffset`: by timestamp the answer is the first record at or after the time, with
   * its own timestamp; a negative time is refused with INVALID_REQUEST).
   * Throws the first partition's error (TOPIC_NOT_FOUND, PARTITION_NOT_FOUND, …); retriable
   * ones are retried first. Idempotent.
   */
  async listOffsets(options: ListOffsetsOptions): Promise<PartitionOffset[]> {
    const results = await this.listOffsetsEach(options);
    const failed = results.find((result) => result.error !== undefined);
    if (failed?.error !== undefined) throw failed.error;
    return results as PartitionOffset[];
  }

  /**
   * `listOffsets`, but a partition's own error (an offline partition: CORRUPT_DATA,
   * STORAGE_ERROR) comes back in its place instead of failing the others, so a report can
   * show every partition. Retriable errors are retried first, as in `listOffsets`;
   * `options.onRetry` hears of each failure that will be retried.
   */
  async listOffsetsEach(options: ListOffsetsOptions): Promise<PartitionOffsetResult[]> {
    const request = {
      topic: options.topic,
      partitions: options.partitions ?? [],
      spec: options.spec === 'earliest' ? 'OFFSET_SPEC_EARLIEST' : options.spec === 'latest' ? 'OFFSET_SPEC_LATEST' : 'OFFSET_SPEC_TIMESTAMP',
      timestampMs: typeof options.spec === 'object' ? numberToInt64(options.spec.timestamp) : '0',
    } as const;
    if (typeof options.spec === 'object' && !Number.isSafeInteger(options.spec.timestamp)) {
      throw new BrokerError('INVALID_REQUEST', `timestamp must be an integer (ms), got ${options.spec.timestamp}`);
    }
    const { connections } = this;
    // The answer whose retriable partition error was thrown to retry: once the retries are
    // over, it is returned as it is (that partition with its error, the others answered).
    let retried: { results: PartitionOffsetResult[]; error: BrokerError } | undefined;
    const { signal, dispose } = anySignal([connections.signal, options.signal]);
    try {
      const context = { clock: connections.clock, random: connections.random, retry: connections.retry, signal, onRetry: options.onRetry };
      return await withRetry(context, async () => {
        const address = this.route(options.topic, options.partitions?.[0]) ?? connections.anyAddress();
        let response: { partitions: PartitionOffset__Output[] };
        try {
          response = await connections.call<{ partitions: PartitionOffset__Output[] }>(
            (callOptions, callback) => connections.log(address).listOffsets(request, callOptions, callback),
            signal,
          );
        } catch (error) {
          if (isTransportFailure(error) && !signal.aborted) connections.reportUnreachable(address);
          throw error;
        }
        const results: PartitionOffsetResult[] = response.partitions.map((result) =>
          result.error !== null && result.error !== undefined
            ? { partition: result.partition, error: errorFromPartitionError(result.error, options.topic, result.partition) }
            : { partition: result.partition, offset: int64ToNumber(result.offset, 'offset'), timestamp: int64ToNumber(result.timestampMs, 'timestamp_ms') },
        );
        // A retriable one (a partition briefly unavailable) retries the whole call.
        const retriable = results.find((result) => result.error?.retriable === true);
        if (retriable?.error === undefined) return results;
        retried = { results, error: retriable.error };
        throw retriable.error;
      });
    } catch (error) {
      if (retried !== undefined && error === retried.error) return retried.results;
      throw error;
    } finally {
      dispose();
    }
  }
}

export function toTopicDescription(topic: TopicDescription__Output): TopicDescription {
  return {
    name: topic.name,
    replicationFactor: topic.replicationFactor,
    configs: { ...topic.configs },
    overrides: { ...topic.overrides },
    partitions: topic.partitions.map((partition) => ({
      partition: partition.partition,
      leader: partition.leader,
      replicas: [...partition.replicas],
      isr: [...partition.isr],
      logStartOffset: int64ToNumber(partition.logStartOffset, 'log_start_offset'),
      logEndOffset: int64ToNumber(partition.logEndOffset, 'log_end_offset'),
      highWatermark: int64ToNumber(partition.highWatermark, 'high_watermark'),
      sizeBytes: int64ToNumber(partition.sizeBytes, 'size_bytes'),
      status: partition.status,
      offlineReason: partition.offlineReason,
    })),
  };
}

export function toClusterMetadata(metadata: Metadata__Output): ClusterMetadata {
  return {
    clusterId: metadata.clusterId,
    controllerId: metadata.controllerId,
    brokers: metadata.brokers.map((broker) => ({ id: broker.id, host: broker.host, port: broker.port })),
    topics: metadata.topics.map((topic) => ({
      name: topic.name,
      partitions: topic.partitions.map((partition) => ({
        partition: partition.partition,
        leader: partition.leader,
        leaderEpoch: partition.leaderEpoch,
      })),
    })),
  };
}
