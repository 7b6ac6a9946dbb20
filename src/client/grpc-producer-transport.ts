/**
 * The producer's transport over gRPC: InitProducerId through `Connections` (retried), the
 * partition counts from the shared `MetadataCache`, and one `GrpcProduceChannel`
 * (ProduceStream) per broker address, owned by one producer.
 *
 * `close()` (the producer's) ends everything this transport started: its streams, the
 * InitProducerId still retried, and its place in metadata loads, which stop unless another
 * producer or consumer of the client still waits for them (`MetadataCache.load`). Before, the
 * retries of a closed producer ran on for the client's retry budget and held the process.
 */
import { BrokerError } from '../errors/index.js';
import { int64ToNumber, numberToInt64 } from '../protocol/index.js';
import type { InitProducerIdResponse__Output } from '../protocol/generated/runnel/v1/InitProducerIdResponse.js';
import type { Connections } from './connections.js';
import type { MetadataCache } from './metadata-cache.js';
import { GrpcProduceChannel, type ProduceChannel } from './produce-channel.js';
import type { ProducerTransport } from './producer.js';
import { closingController } from './retry.js';

export class GrpcProducerTransport implements ProducerTransport {
  private readonly connections: Connections;
  private readonly metadata: MetadataCache;
  /** One stream per broker address; bounded by the cluster's brokers. */
  private readonly channels = new Map<string, GrpcProduceChannel>();
  private isClosed = false;
  /** Aborted by close(): the InitProducerId and metadata loads this producer started stop. */
  private readonly closing = closingController();
  /** Told once when the producer closes (the client then forgets it). */
  private onClose: (() => void) | undefined;

  constructor(connections: Connections, metadata: MetadataCache, onClose?: () => void) {
    this.connections = connections;
    this.metadata = metadata;
    this.onClose = onClose;
  }

  async initProducerId(
    current: { producerId: number; producerEpoch: number } | undefined,
    onRetry?: (error: BrokerError) => void,
  ): Promise<{ producerId: number; producerEpoch: number }> {
    const request = current === undefined ? { producerId: '0', producerEpoch: 0 } : { producerId: numberToInt64(current.producerId), producerEpoch: current.producerEpoch };
    const response = await this.connections.callWithRetry<InitProducerIdResponse__Output>(
      (address) => (callOptions, callback) => this.connections.log(address).initProducerId(request, callOptions, callback),
      { onRetry, signal: this.closing.signal },
    );
    return { producerId: int64ToNumber(response.producerId, 'producer_id'), producerEpoch: response.producerEpoch };
  }

  partitionCount(topic: string): number | undefined {
    return this.metadata.partitionCount(topic, this.closing.signal);
  }

  loadPartitionCount(topic: string, onRetry?: (error: BrokerError) => void): Promise<number> {
    return this.metadata.load(topic, { onRetry, signal: this.closing.signal });
  }

  channelFor(topic: string, partition: number): ProduceChannel {
    const address = this.metadata.leaderAddress(topic, partition) ?? this.connections.anyAddress();
    let channel = this.channels.get(address);
    if (channel === undefined) {
      const connections = this.connections;
      channel = new GrpcProduceChannel(connections.log(address), () => connections.reportUnreachable(address));
      if (this.isClosed) channel.close();
      this.channels.set(address, channel);
    }
    return channel;
  }

  close(): void {
    this.isClosed = true;
    this.closing.abort(new BrokerError('INVALID_REQUEST', 'the producer is closed'));
    for (const channel of this.channels.values()) channel.close();
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }
}
