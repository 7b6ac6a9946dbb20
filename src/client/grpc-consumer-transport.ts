/**
 * The consumer's transport over gRPC: Subscribe streams to the partition leader (the
 * bootstrap broker on a single node), ListOffsets through `Admin` (retried), and metadata
 * refreshes through the shared `MetadataCache`. Holds no state of its own.
 */
import { BrokerError } from '../errors/index.js';
import type { Admin } from './admin.js';
import type { Connections } from './connections.js';
import { asSubscriptionStream, type ConsumerTransport, type ListedOffset, type SubscriptionStream } from './consumer.js';
import type { MetadataCache } from './metadata-cache.js';
import type { OffsetSpec } from './types.js';

export class GrpcConsumerTransport implements ConsumerTransport {
  private readonly connections: Connections;
  private readonly admin: Admin;
  private readonly metadata: MetadataCache;

  constructor(connections: Connections, admin: Admin, metadata: MetadataCache) {
    this.connections = connections;
    this.admin = admin;
    this.metadata = metadata;
  }

  openSubscription(topic: string, partition: number): SubscriptionStream {
    const address = this.metadata.leaderAddress(topic, partition) ?? this.connections.anyAddress();
    return asSubscriptionStream(this.connections.log(address).subscribe());
  }

  async listOffset(topic: string, partition: number, spec: Exclude<OffsetSpec, number>): Promise<ListedOffset> {
    const offsets = await this.admin.listOffsets({ topic, partitions: [partition], spec });
    const found = offsets.find((offset) => offset.partition === partition);
    if (found === undefined) {
      throw new BrokerError('PARTITION_NOT_FOUND', `ListOffsets returned nothing for ${topic}-${partition}`, { topic, partition });
    }
    return { offset: found.offset, timestamp: found.timestamp };
  }

  refreshMetadata(topic: string): Promise<number> {
    return this.metadata.load(topic);
  }
}
