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
 * client's retry budget), and each caller's `onRetry` hears of its retried failures. A caller
 * that joined with a `signal` (a producer's or consumer's, aborted at its close) leaves when
 * that aborts; the call is cancelled once every caller has left, and not before: a load
 * another producer or consumer of the client still waits for goes on.
 *
 * Routing: on a single broker every call goes to the bootstrap address the user gave (the
 * broker's advertised address may be spelled differently, e.g. `localhost` vs `127.0.0.1`).
 * With several brokers, a partition's calls go to its leader's advertised `host:port`.
 */
import type { Clock } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import type { ClusterMetadata } from './admin.js';
import { abortReasonOr } from './retry.js';

/**
 * Loads the metadata of `topics`, telling `onRetry` of each failure it will retry; when
 * `signal` aborts, stops retrying and cancels the attempt in flight.
 */
export type FetchMetadata = (topics: string[], onRetry: (error: BrokerError) => void, signal: AbortSignal) => Promise<ClusterMetadata>;

/** What a caller of `load` may give. */
export interface LoadOptions {
  /** Hears of each retried failure of the load from the time this caller joins. */
  onRetry?: (error: BrokerError) => void;
  /** This caller no longer waits once it aborts (its producer or consumer closed). */
  signal?: AbortSignal;
}

/** A load in progress and the callers to tell of its retried failures. */
interface RunningLoad {
  partitionCount: Promise<number>;
  /** Bounded by the callers that joined the load; dropped with it. */
  retryListeners: Set<(error: BrokerError) => void>;
  /** Cancels the call; aborted when `waitingCount` drops to 0. */
  abort: AbortController;
  /** Callers still waiting for it; one that joined without a signal never leaves. */
  waitingCount: number;
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

  /**
   * The cached partition count, or undefined when the topic was never loaded. A stale entry
   * is refreshed in the background, on behalf of the caller that `signal` stands for.
   */
  partitionCount(topic: string, signal?: AbortSignal): number | undefined {
    const entry = this.topics.get(topic);
    if (entry === undefined) return undefined;
    if (this.clock.nowMs() - entry.fetchedMs > this.maxAgeMs && !this.loads.has(topic) && signal?.aborted !== true) {
      this.load(topic, { signal }).catch(() => undefined); // refreshed in the background; failures surface on use
    }
    return entry.partitionCount;
  }

  /**
   * Fetches `topic`'s metadata now (joining a load already running) and returns its
   * partition count. Rejects with TOPIC_NOT_FOUND when the broker has no such topic (the
   * cached entry is dropped then), or with the call's error after its retries. `onRetry`
   * hears of each retried failure of the load from the time it joins. When `signal` aborts,
   * this caller's promise rejects at once with the signal's reason (a `BrokerError`), and the
   * call is cancelled if no other caller still waits for it.
   */
  load(topic: string, options: LoadOptions = {}): Promise<number> {
    const { onRetry, signal } = options;
    if (signal?.aborted === true) return Promise.reject(this.loadCancelledError(topic, signal));
    const running = this.loads.get(topic) ?? this.loadStart(topic);
    running.waitingCount++;
    // Wrapped, so that leaving removes this caller's listener only, even if another passed the same function.
    const listener = onRetry === undefined ? undefined : (error: BrokerError): void => onRetry(error);
    if (listener !== undefined) running.retryListeners.add(listener);
    if (signal === undefined) return running.partitionCount;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        if (listener !== undefined) running.retryListeners.delete(listener);
        running.waitingCount--;
        if (running.waitingCount === 0) this.loadCancel(topic, running, signal);
        reject(this.loadCancelledError(topic, signal));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      running.partitionCount.then(
        (partitionCount) => {
          signal.removeEventListener('abort', onAbort);
          resolve(partitionCount);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  /** The address of `topic`/`partition`'s leader when known and there are several brokers. */
  leaderAddress(topic: string, partition: number): string | undefined {
    return this.topics.get(topic)?.leaders[partition];
  }

  /** Starts the one call that every `load` of `topic` joins until it settles (or is cancelled). */
  private loadStart(topic: string): RunningLoad {
    const abort = new AbortController();
    const retryListeners = new Set<(error: BrokerError) => void>();
    const onRetry = (error: BrokerError): void => {
      for (const listener of retryListeners) listener(error);
    };
    const running: RunningLoad = { partitionCount: Promise.resolve(0), retryListeners, abort, waitingCount: 0 };
    running.partitionCount = this.fetchTopic(topic, onRetry, abort.signal).finally(() => {
      if (this.loads.get(topic) === running) this.loads.delete(topic);
    });
    this.loads.set(topic, running);
    return running;
  }

  /**
   * Every caller of `running` left: its call is cancelled (no retry of it keeps a timer or a
   * connection busy for the rest of the retry budget), and a later `load` starts a new one.
   */
  private loadCancel(topic: string, running: RunningLoad, signal: AbortSignal): void {
    if (this.loads.get(topic) === running) this.loads.delete(topic);
    running.partitionCount.catch(() => undefined); // nobody waits for it any more
    running.abort.abort(signal.reason);
  }

  private loadCancelledError(topic: string, signal: AbortSignal): BrokerError {
    return abortReasonOr(signal, new BrokerError('INVALID_REQUEST', `the load of ${topic}'s metadata was cancelled`, { topic }));
  }

  private async fetchTopic(topic: string, onRetry: (error: BrokerError) => void, signal: AbortSignal): Promise<number> {
    let metadata: ClusterMetadata;
    try {
      metadata = await this.fetchMetadata([topic], onRetry, signal);
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
