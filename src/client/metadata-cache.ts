/**
 * The client's view of topic metadata: partition counts (for the partitioner) and partition
 * leaders (for routing), fetched with AdminService.GetMetadata.
 *
 * Owns: the cached topics and the in-flight loads (single writer: this class; a load's
 * result replaces the entry when it lands, so readers between two awaits may see the old
 * count, which only delays a new partition's first use).
 *
 * Policy: a topic is loaded on first use. Entries older than `maxAgeMs` are refreshed in the
 * background on access (the stale value is still answered). Callers that hit
 * TOPIC_NOT_FOUND or PARTITION_NOT_FOUND refresh once with `load` and fail if the refreshed
 * metadata still says so. Concurrent loads of one topic share one call (retried for the
 * client's retry budget), and each caller's `onRetry` hears of its retried failures.
 *
 * Routing: on a single broker every call goes to the bootstrap address the user gave (the
 * broker's advertised address may be spelled differently, e.g. `localhost` vs `127.0.0.1`).
 * With several brokers, a partition's calls go to its leader's advertised `host:port`.
 */
import type { Clock } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import type { ClusterMetadata } from './admin.js';

/** Loads the metadata of `topics`, telling `onRetry` of each failure it will retry. */
export type FetchMetadata = (topics: string[], onRetry: (error: BrokerError) => void) => Promise<ClusterMetadata>;

/** A load in progress and the callers to tell of its retried failures. */
interface RunningLoad {
  partitionCount: Promise<number>;
  /** Bounded by the callers that joined the load; dropped with it. */
  retryListeners: Set<(error: BrokerError) => void>;
}

interface TopicEntry {
  partitionCount: number;
  /** Leader address per partition; empty with a single broker. */
  leaders: (string | undefined)[];
  fetchedMs: number;
}

/** Five minutes, Kafka's `metadata.max.age.ms`. */
export const METADATA_MAX_AGE_MS_DEFAULT = 5 * 60_000;

export class MetadataCache {
  private readonly fetchMetadata: FetchMetadata;
  private readonly clock: Clock;
  private readonly maxAgeMs: number;
  /** Bounded by the topics this client uses. */
  private readonly topics = new Map<string, TopicEntry>();
  private readonly loads = new Map<string, RunningLoad>();

  constructor(fetchMetadata: FetchMetadata, clock: Clock, maxAgeMs = METADATA_MAX_AGE_MS_DEFAULT) {
    this.fetchMetadata = fetchMetadata;
    this.clock = clock;
    this.maxAgeMs = maxAgeMs;
  }

  /** The cached partition count, or undefined when the topic was never loaded. */
  partitionCount(topic: string): number | undefined {
    const entry = this.topics.get(topic);
    if (entry === undefined) return undefined;
    if (this.clock.nowMs() - entry.fetchedMs > this.maxAgeMs && !this.loads.has(topic)) {
      this.load(topic).catch(() => undefined); // refreshed in the background; failures surface on use
    }
    return entry.partitionCount;
  }

  /**
   * Fetches `topic`'s metadata now (joining a load already running) and returns its
   * partition count. Rejects with TOPIC_NOT_FOUND when the broker has no such topic (the
   * cached entry is dropped then), or with the call's error after its retries. `onRetry`
   * hears of each retried failure of the load from the time it joins.
   */
  load(topic: string, onRetry?: (error: BrokerError) => void): Promise<number> {
    let running = this.loads.get(topic);
    if (running === undefined) {
      const retryListeners = new Set<(error: BrokerError) => void>();
      const partitionCount = this.fetchTopic(topic, (error) => {
        for (const listener of retryListeners) listener(error);
      }).finally(() => this.loads.delete(topic));
      running = { partitionCount, retryListeners };
      this.loads.set(topic, running);
    }
    if (onRetry !== undefined) running.retryListeners.add(onRetry);
    return running.partitionCount;
  }

  /** The address of `topic`/`partition`'s leader when known and there are several brokers. */
  leaderAddress(topic: string, partition: number): string | undefined {
    return this.topics.get(topic)?.leaders[partition];
  }

  private async fetchTopic(topic: string, onRetry: (error: BrokerError) => void): Promise<number> {
    let metadata: ClusterMetadata;
    try {
      metadata = await this.fetchMetadata([topic], onRetry);
    } catch (error) {
      if (error instanceof BrokerError && error.reason === 'TOPIC_NOT_FOUND') this.topics.delete(topic);
      throw error;
    }
    const found = metadata.topics.find((candidate) => candidate.name === topic);
    if (found === undefined || found.partitions.length === 0) {
      this.topics.delete(topic);
      throw new BrokerError('TOPIC_NOT_FOUND', `topic ${topic} does not exist`, { topic });
    }
    const partitionCount = Math.max(...found.partitions.map((partition) => partition.partition)) + 1;
    const leaders: (string | undefined)[] = [];
    if (metadata.brokers.length > 1) {
      const addressById = new Map(metadata.brokers.map((broker) => [broker.id, `${broker.host}:${broker.port}`]));
      for (const partition of found.partitions) leaders[partition.partition] = addressById.get(partition.leader);
    }
    this.topics.set(topic, { partitionCount, leaders, fetchedMs: this.clock.nowMs() });
    return partitionCount;
  }
}
