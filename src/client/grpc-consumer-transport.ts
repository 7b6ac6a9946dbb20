/**
 * The consumer's transport over gRPC: Subscribe streams to the partition leader (the
 * bootstrap broker on a single node), ListOffsets through `Admin` (retried), and metadata
 * refreshes through the shared `MetadataCache`.
 *
 * Owns: how many Subscribe streams are open on each of its connections to each broker. The
 * streams are spread over connections of their own, at most `STREAMS_PER_CONNECTION_MAX` on
 * each, so that a consumer of many partitions never has a stream queued, unsent, behind the
 * broker's limit of concurrent calls per connection (test/integration/client-consumer.test.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerError } from '../errors/index.js';
import { ErrorMetadata } from '../protocol/index.js';
import type { Admin } from './admin.js';
import { STREAMS_PER_CONNECTION_MAX, type Connections } from './connections.js';
import { asSubscriptionStream, type ConsumerTransport, type ListedOffset, type SubscriptionStream } from './consumer.js';
import type { MetadataCache } from './metadata-cache.js';
import type { OffsetSpec } from './types.js';

export class GrpcConsumerTransport implements ConsumerTransport {
  private readonly connections: Connections;
  private readonly admin: Admin;
  private readonly metadata: MetadataCache;
  /** Per broker address: open Subscribe streams on each of its stream connections, by index. */
  private readonly streamCounts = new Map<string, number[]>();

  constructor(connections: Connections, admin: Admin, metadata: MetadataCache) {
    this.connections = connections;
    this.admin = admin;
    this.metadata = metadata;
  }

  openSubscription(topic: string, partition: number): SubscriptionStream {
    const address = this.metadata.leaderAddress(topic, partition) ?? this.connections.anyAddress();
    let counts = this.streamCounts.get(address);
    if (counts === undefined) {
      counts = [];
      this.streamCounts.set(address, counts);
    }
    let index = counts.findIndex((count) => count < STREAMS_PER_CONNECTION_MAX);
    if (index < 0) index = counts.push(0) - 1;
    const call = this.connections.streamLog(address, index).subscribe();
    counts[index]!++;
    // 'status' comes once whichever way the call ends (a cancel too). One that ended below
    // the broker's handlers (no runnel-reason: refused, unknown host) sends the reopened
    // stream to the next bootstrap broker.
    call.once('status', (status: grpc.StatusObject) => {
      counts[index]!--;
      if (status.code !== grpc.status.OK && status.code !== grpc.status.CANCELLED && status.metadata.get(ErrorMetadata.reason).length === 0) {
        this.connections.reportUnreachable(address);
      }
    });
    return asSubscriptionStream(call);
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
