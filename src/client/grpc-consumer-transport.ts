/**
 * The consumer's transport over gRPC: Subscribe streams to the partition leader (the
 * bootstrap broker on a single node), ListOffsets through `Admin` (retried), and metadata
 * refreshes through the shared `MetadataCache`.
 *
 * Each Subscribe stream takes a slot on the client's stream connections (`Connections.streamSlot`:
 * at most `STREAMS_PER_CONNECTION_MAX` on each, counted for all consumers of the client) and
 * gives it back when it ends, so that no stream waits, queued and unsent, behind the broker's
 * limit of concurrent calls per connection (test/integration/client-consumer.test.ts).
 *
 * A stream that ends below the broker's handlers, or that the broker never took
 * (`reportNotTaken`), marks its address unreachable, so the consumer's next stream that may go
 * to any broker tries the next bootstrap address.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerError } from '../errors/index.js';
import { ErrorMetadata } from '../protocol/index.js';
import type { SubscribeRequest } from '../protocol/generated/runnel/v1/SubscribeRequest.js';
import type { SubscribeResponse__Output } from '../protocol/generated/runnel/v1/SubscribeResponse.js';
import type { Admin } from './admin.js';
import type { Connections } from './connections.js';
import { asSubscriptionStream, type ConsumerTransport, type ListedOffset, type SubscriptionStream } from './consumer.js';
import type { MetadataCache } from './metadata-cache.js';
import type { OffsetSpec } from './types.js';
import { closingController } from './retry.js';

export class GrpcConsumerTransport implements ConsumerTransport {
  private readonly connections: Connections;
  private readonly admin: Admin;
  private readonly metadata: MetadataCache;
  /** Told once when the consumer closes (the client then forgets it). */
  private onClose: (() => void) | undefined;
  /** Aborted by close(): a metadata refresh this consumer joined stops unless another part of the client waits for it. */
  private readonly closing = closingController();
  /** The address each open stream went to (`reportNotTaken`); weak, so ended streams drop out. */
  private readonly streamAddresses = new WeakMap<SubscriptionStream, string>();

  constructor(connections: Connections, admin: Admin, metadata: MetadataCache, onClose?: () => void) {
    this.connections = connections;
    this.admin = admin;
    this.metadata = metadata;
    this.onClose = onClose;
  }

  openSubscription(topic: string, partition: number): SubscriptionStream {
    const address = this.metadata.leaderAddress(topic, partition) ?? this.connections.anyAddress();
    const slot = this.connections.streamSlot(address);
    let call: grpc.ClientDuplexStream<SubscribeRequest, SubscribeResponse__Output>;
    try {
      call = slot.log.subscribe();
    } catch (error) {
      slot.release();
      throw error;
    }
    // 'status' comes once whichever way the call ends (a cancel too). One that ended below
    // the broker's handlers (no runnel-reason: refused, unknown host) sends the reopened
    // stream to the next bootstrap broker.
    call.once('status', (status: grpc.StatusObject) => {
      slot.release();
      if (status.code !== grpc.status.OK && status.code !== grpc.status.CANCELLED && status.metadata.get(ErrorMetadata.reason).length === 0) {
        this.connections.reportUnreachable(address);
      }
    });
    const stream = asSubscriptionStream(call);
    this.streamAddresses.set(stream, address);
    return stream;
  }

  reportNotTaken(stream: SubscriptionStream): void {
    const address = this.streamAddresses.get(stream);
    if (address !== undefined) this.connections.reportUnreachable(address);
  }

  async listOffset(topic: string, partition: number, spec: Exclude<OffsetSpec, number>, signal: AbortSignal): Promise<ListedOffset> {
    const offsets = await this.admin.listOffsets({ topic, partitions: [partition], spec, signal });
    const found = offsets.find((offset) => offset.partition === partition);
    if (found === undefined) {
      throw new BrokerError('PARTITION_NOT_FOUND', `ListOffsets returned nothing for ${topic}-${partition}`, { topic, partition });
    }
    return { offset: found.offset, timestamp: found.timestamp };
  }

  refreshMetadata(topic: string): Promise<number> {
    return this.metadata.load(topic, { signal: this.closing.signal });
  }

  close(): void {
    this.closing.abort(new BrokerError('INVALID_REQUEST', 'the consumer is closed'));
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }
}
