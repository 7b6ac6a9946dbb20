/**
 * `RunnelClient` ties the client together: one `Connections` (a channel per broker), one
 * `MetadataCache`, the `Admin`, and the producers and consumers made from it.
 *
 * Owns: the connections and the metadata cache, and the producers and consumers it created
 * and that are not closed yet, so `close()` can end every stream and channel, after which
 * nothing of the client keeps the process alive. One closed on its own is forgotten then: a
 * long-lived client that makes a consumer per job does not keep every one (and the callbacks
 * it was given) for its lifetime. It also stops what it started (retried ListOffsets,
 * InitProducerId and metadata loads no other part waits for), so a process that closes only
 * the parts it used exits promptly (test/integration/client-close.test.ts).
 */
import type { Clock } from '../common/index.js';
import { Admin } from './admin.js';
import { clientClock } from './client-clock.js';
import { Connections } from './connections.js';
import { Consumer, type ConsumerOptions } from './consumer.js';
import { GrpcConsumerTransport } from './grpc-consumer-transport.js';
import { GrpcProducerTransport } from './grpc-producer-transport.js';
import { MetadataCache, METADATA_MAX_AGE_MS_DEFAULT } from './metadata-cache.js';
import { Producer, type ProducerOptions } from './producer.js';
import { retryOptionsOrThrow, type RandomSource, type RetryOptions } from './retry.js';

export interface ClientOptions {
  /**
   * Bootstrap brokers, `HOST:PORT` or `[IPV6]:PORT` each, port 1-65535; any one of them is
   * enough. `createClient` throws INVALID_REQUEST naming an address not of that form.
   */
  brokers: string[];
  /** Names this client in broker logs (gRPC user agent). */
  clientId?: string;
  /**
   * Deadline of one unary call attempt (admin, ListOffsets, InitProducerId), and how long a
   * consumer's Subscribe stream waits for the broker to take it. Default 30 s.
   */
  requestTimeoutMs?: number;
  /** Backoff and overall deadline of retried unary calls. Default 100 ms doubling to 2 s, for 60 s. */
  retry?: Partial<RetryOptions>;
  /** Cached topic metadata is refreshed after this long. Default 5 minutes. */
  metadataMaxAgeMs?: number;
  clock?: Clock;
  random?: RandomSource;
}

export interface CloseOptions {
  /** How long producers may take to deliver what they hold; then it fails. Default 30 s. */
  timeoutMs?: number;
}

export class RunnelClient {
  /** Topic and cluster administration. */
  readonly admin: Admin;
  private readonly connections: Connections;
  private readonly metadata: MetadataCache;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly producers = new Set<Producer>();
  private readonly consumers = new Set<Consumer>();
  private closePromise: Promise<void> | undefined;

  constructor(options: ClientOptions) {
    this.clock = options.clock ?? clientClock;
    this.random = options.random ?? Math.random;
    this.connections = new Connections({
      brokers: options.brokers,
      clientId: options.clientId,
      clock: this.clock,
      random: this.random,
      retry: retryOptionsOrThrow(options.retry, 'createClient'),
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
    });
    this.admin = new Admin(this.connections, (topic, partition) => (partition === undefined ? undefined : this.metadata.leaderAddress(topic, partition)));
    this.metadata = new MetadataCache((topics, onRetry, signal) => this.admin.getMetadata(topics, { onRetry, signal }), this.clock, options.metadataMaxAgeMs ?? METADATA_MAX_AGE_MS_DEFAULT);
  }

  /**
   * A new producer (see `Producer`); it has its own ProduceStream per broker. Closed by
   * `close()` if not before. Throws INVALID_REQUEST for bad options or a closed client.
   */
  producer(options: ProducerOptions = {}): Producer {
    this.connections.ensureOpen();
    const transport = new GrpcProducerTransport(this.connections, this.metadata, () => this.producers.delete(producer));
    const producer: Producer = new Producer(transport, {
      clock: this.clock,
      random: this.random,
      ...options,
    });
    this.producers.add(producer);
    return producer;
  }

  /** A new consumer with manual assignment (see `Consumer`). Throws INVALID_REQUEST when closed. */
  consumer(options: ConsumerOptions = {}): Consumer {
    this.connections.ensureOpen();
    const transport = new GrpcConsumerTransport(this.connections, this.admin, this.metadata, () => this.consumers.delete(consumer));
    const consumer: Consumer = new Consumer(transport, {
      clock: this.clock,
      random: this.random,
      requestTimeoutMs: this.connections.requestTimeoutMs,
      ...options,
    });
    this.consumers.add(consumer);
    return consumer;
  }

  /**
   * Closes every producer (delivering what they hold for up to `timeoutMs`), every consumer,
   * and every channel. Resolves when all is closed, even if some producer reported a failed
   * record (that error is the rejection of the producer's own `close()`). Idempotent: a later
   * call returns the same promise, and a `timeoutMs` it gives applies to the producers as well,
   * so a second close({ timeoutMs: 0 }) (a second Ctrl-C) ends a first one still delivering.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.closePromise === undefined) {
      this.closePromise = this.closeOnce(options.timeoutMs ?? 30_000);
    } else if (options.timeoutMs !== undefined) {
      // Its rejection is already reported through the first call (closeOnce settles them all).
      for (const producer of this.producers) producer.close({ timeoutMs: options.timeoutMs }).catch(() => undefined);
    }
    return this.closePromise;
  }

  private async closeOnce(timeoutMs: number): Promise<void> {
    try {
      await Promise.allSettled([...this.producers].map((producer) => producer.close({ timeoutMs })));
      await Promise.allSettled([...this.consumers].map((consumer) => consumer.close()));
    } finally {
      this.connections.close();
    }
  }
}

/**
 * Creates a client for the given bootstrap brokers; no connection is made until first use.
 * Throws INVALID_REQUEST for an empty list or an address that is not HOST:PORT with a port in
 * 1-65535 (see broker-address.ts).
 */
export function createClient(options: ClientOptions): RunnelClient {
  return new RunnelClient(options);
}
