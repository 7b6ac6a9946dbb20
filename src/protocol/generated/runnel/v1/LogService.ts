// Original file: proto/runnel/v1/log.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { FetchRequest as _runnel_v1_FetchRequest, FetchRequest__Output as _runnel_v1_FetchRequest__Output } from '../../runnel/v1/FetchRequest.js';
import type { FetchResponse as _runnel_v1_FetchResponse, FetchResponse__Output as _runnel_v1_FetchResponse__Output } from '../../runnel/v1/FetchResponse.js';
import type { InitProducerIdRequest as _runnel_v1_InitProducerIdRequest, InitProducerIdRequest__Output as _runnel_v1_InitProducerIdRequest__Output } from '../../runnel/v1/InitProducerIdRequest.js';
import type { InitProducerIdResponse as _runnel_v1_InitProducerIdResponse, InitProducerIdResponse__Output as _runnel_v1_InitProducerIdResponse__Output } from '../../runnel/v1/InitProducerIdResponse.js';
import type { ListOffsetsRequest as _runnel_v1_ListOffsetsRequest, ListOffsetsRequest__Output as _runnel_v1_ListOffsetsRequest__Output } from '../../runnel/v1/ListOffsetsRequest.js';
import type { ListOffsetsResponse as _runnel_v1_ListOffsetsResponse, ListOffsetsResponse__Output as _runnel_v1_ListOffsetsResponse__Output } from '../../runnel/v1/ListOffsetsResponse.js';
import type { ProduceRequest as _runnel_v1_ProduceRequest, ProduceRequest__Output as _runnel_v1_ProduceRequest__Output } from '../../runnel/v1/ProduceRequest.js';
import type { ProduceResponse as _runnel_v1_ProduceResponse, ProduceResponse__Output as _runnel_v1_ProduceResponse__Output } from '../../runnel/v1/ProduceResponse.js';
import type { SubscribeRequest as _runnel_v1_SubscribeRequest, SubscribeRequest__Output as _runnel_v1_SubscribeRequest__Output } from '../../runnel/v1/SubscribeRequest.js';
import type { SubscribeResponse as _runnel_v1_SubscribeResponse, SubscribeResponse__Output as _runnel_v1_SubscribeResponse__Output } from '../../runnel/v1/SubscribeResponse.js';

export interface LogServiceClient extends grpc.Client {
  /**
   * Reads one partition from an offset. Long-poll: when fewer than `min_bytes` are
   * available the call waits (up to `max_wait_ms`) until an append arrives. A reply never
   * spans two segments, so one whose offset is near the end of an older segment comes at once
   * with that segment's tail, however short (as in Kafka): continue from `next_offset`.
   */
  Fetch(argument: _runnel_v1_FetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _runnel_v1_FetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _runnel_v1_FetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  Fetch(argument: _runnel_v1_FetchRequest, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Reads one partition from an offset. Long-poll: when fewer than `min_bytes` are
   * available the call waits (up to `max_wait_ms`) until an append arrives. A reply never
   * spans two segments, so one whose offset is near the end of an older segment comes at once
   * with that segment's tail, however short (as in Kafka): continue from `next_offset`.
   */
  fetch(argument: _runnel_v1_FetchRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _runnel_v1_FetchRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _runnel_v1_FetchRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  fetch(argument: _runnel_v1_FetchRequest, callback: grpc.requestCallback<_runnel_v1_FetchResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Hands out a producer id and epoch for idempotent producing. Send an existing
   * producer_id and its epoch to bump the epoch (fencing the older one). An id is handed
   * out once and belongs to the one producer that asked for it. The broker keeps no epoch
   * per id: a bump returns the epoch sent plus one, as Kafka's idempotent producer bumps
   * its own epoch (KIP-360). Fencing is per partition: a batch whose epoch is below the
   * highest that partition has seen for the id is refused with PRODUCER_FENCED.
   */
  InitProducerId(argument: _runnel_v1_InitProducerIdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _runnel_v1_InitProducerIdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _runnel_v1_InitProducerIdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  InitProducerId(argument: _runnel_v1_InitProducerIdRequest, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Hands out a producer id and epoch for idempotent producing. Send an existing
   * producer_id and its epoch to bump the epoch (fencing the older one). An id is handed
   * out once and belongs to the one producer that asked for it. The broker keeps no epoch
   * per id: a bump returns the epoch sent plus one, as Kafka's idempotent producer bumps
   * its own epoch (KIP-360). Fencing is per partition: a batch whose epoch is below the
   * highest that partition has seen for the id is refused with PRODUCER_FENCED.
   */
  initProducerId(argument: _runnel_v1_InitProducerIdRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _runnel_v1_InitProducerIdRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _runnel_v1_InitProducerIdRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  initProducerId(argument: _runnel_v1_InitProducerIdRequest, callback: grpc.requestCallback<_runnel_v1_InitProducerIdResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Earliest, latest, or first offset at or after a timestamp, per partition.
   */
  ListOffsets(argument: _runnel_v1_ListOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _runnel_v1_ListOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _runnel_v1_ListOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  ListOffsets(argument: _runnel_v1_ListOffsetsRequest, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Earliest, latest, or first offset at or after a timestamp, per partition.
   */
  listOffsets(argument: _runnel_v1_ListOffsetsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _runnel_v1_ListOffsetsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _runnel_v1_ListOffsetsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  listOffsets(argument: _runnel_v1_ListOffsetsRequest, callback: grpc.requestCallback<_runnel_v1_ListOffsetsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Appends to one or more partitions. Each partition's data is either one prebuilt record
   * batch (v2 bytes) or plain records the broker encodes into one batch. A request names each
   * partition once: one named twice (twice in a topic's `partitions`, or in a topic listed
   * twice) fails the whole request with INVALID_ARGUMENT (reason INVALID_REQUEST), and
   * nothing of it is appended. The produce requests
   * a broker holds at once, all connections together, have a budget
   * (RUNNEL_PRODUCE_BYTES_IN_FLIGHT_MAX, 256 MiB unless set): a Produce that does not fit
   * beside those held fails with RESOURCE_EXHAUSTED (reason LIMIT_REACHED, retriable). A
   * request is held until its appends are written, also when answered before that (ACKS_NONE,
   * ACK_TIMEOUT).
   */
  Produce(argument: _runnel_v1_ProduceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _runnel_v1_ProduceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _runnel_v1_ProduceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  Produce(argument: _runnel_v1_ProduceRequest, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Appends to one or more partitions. Each partition's data is either one prebuilt record
   * batch (v2 bytes) or plain records the broker encodes into one batch. A request names each
   * partition once: one named twice (twice in a topic's `partitions`, or in a topic listed
   * twice) fails the whole request with INVALID_ARGUMENT (reason INVALID_REQUEST), and
   * nothing of it is appended. The produce requests
   * a broker holds at once, all connections together, have a budget
   * (RUNNEL_PRODUCE_BYTES_IN_FLIGHT_MAX, 256 MiB unless set): a Produce that does not fit
   * beside those held fails with RESOURCE_EXHAUSTED (reason LIMIT_REACHED, retriable). A
   * request is held until its appends are written, also when answered before that (ACKS_NONE,
   * ACK_TIMEOUT).
   */
  produce(argument: _runnel_v1_ProduceRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _runnel_v1_ProduceRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _runnel_v1_ProduceRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  produce(argument: _runnel_v1_ProduceRequest, callback: grpc.requestCallback<_runnel_v1_ProduceResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * The same, as a long-lived bidirectional stream for log shippers: each request carries a
   * `sequence` the reply echoes; replies come back in request order. The broker stops
   * reading while 64 requests are in flight (not yet answered, or not yet appended, as an
   * ACKS_NONE request is answered first), or while that budget is spent, so HTTP/2 flow
   * control pushes back. A request
   * that fails as a whole (over a limit, unknown acks, a partition named twice, not
   * parseable) ends the stream with
   * its status once the replies to the requests before it went out; later ones go unread.
   */
  ProduceStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse__Output>;
  ProduceStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse__Output>;
  /**
   * The same, as a long-lived bidirectional stream for log shippers: each request carries a
   * `sequence` the reply echoes; replies come back in request order. The broker stops
   * reading while 64 requests are in flight (not yet answered, or not yet appended, as an
   * ACKS_NONE request is answered first), or while that budget is spent, so HTTP/2 flow
   * control pushes back. A request
   * that fails as a whole (over a limit, unknown acks, a partition named twice, not
   * parseable) ends the stream with
   * its status once the replies to the requests before it went out; later ones go unread.
   */
  produceStream(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse__Output>;
  produceStream(options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse__Output>;
  
  /**
   * Tails one partition. The first request message starts the subscription; later ones
   * only grant more credit. The broker sends data while the client has credit (bytes; what a
   * reply costs is in SubscribeStart.credit_bytes), so a slow reader never makes the broker
   * buffer without bound. A client that half-closes (as grpcurl does after its last
   * message) gets what its credit covers, then OK. When the broker shuts down the call ends
   * with UNAVAILABLE (reason BROKER_UNAVAILABLE): reopen it.
   * The broker sends the response headers as soon as it has checked `start`, before any data,
   * so a client can tell a broker that took the stream (of a partition with nothing new) from
   * one that never answers (a hung process), and give up on the latter after a deadline.
   */
  Subscribe(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeResponse__Output>;
  Subscribe(options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeResponse__Output>;
  /**
   * Tails one partition. The first request message starts the subscription; later ones
   * only grant more credit. The broker sends data while the client has credit (bytes; what a
   * reply costs is in SubscribeStart.credit_bytes), so a slow reader never makes the broker
   * buffer without bound. A client that half-closes (as grpcurl does after its last
   * message) gets what its credit covers, then OK. When the broker shuts down the call ends
   * with UNAVAILABLE (reason BROKER_UNAVAILABLE): reopen it.
   * The broker sends the response headers as soon as it has checked `start`, before any data,
   * so a client can tell a broker that took the stream (of a partition with nothing new) from
   * one that never answers (a hung process), and give up on the latter after a deadline.
   */
  subscribe(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeResponse__Output>;
  subscribe(options?: grpc.CallOptions): grpc.ClientDuplexStream<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeResponse__Output>;
  
}

export interface LogServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Reads one partition from an offset. Long-poll: when fewer than `min_bytes` are
   * available the call waits (up to `max_wait_ms`) until an append arrives. A reply never
   * spans two segments, so one whose offset is near the end of an older segment comes at once
   * with that segment's tail, however short (as in Kafka): continue from `next_offset`.
   */
  Fetch: grpc.handleUnaryCall<_runnel_v1_FetchRequest__Output, _runnel_v1_FetchResponse>;
  
  /**
   * Hands out a producer id and epoch for idempotent producing. Send an existing
   * producer_id and its epoch to bump the epoch (fencing the older one). An id is handed
   * out once and belongs to the one producer that asked for it. The broker keeps no epoch
   * per id: a bump returns the epoch sent plus one, as Kafka's idempotent producer bumps
   * its own epoch (KIP-360). Fencing is per partition: a batch whose epoch is below the
   * highest that partition has seen for the id is refused with PRODUCER_FENCED.
   */
  InitProducerId: grpc.handleUnaryCall<_runnel_v1_InitProducerIdRequest__Output, _runnel_v1_InitProducerIdResponse>;
  
  /**
   * Earliest, latest, or first offset at or after a timestamp, per partition.
   */
  ListOffsets: grpc.handleUnaryCall<_runnel_v1_ListOffsetsRequest__Output, _runnel_v1_ListOffsetsResponse>;
  
  /**
   * Appends to one or more partitions. Each partition's data is either one prebuilt record
   * batch (v2 bytes) or plain records the broker encodes into one batch. A request names each
   * partition once: one named twice (twice in a topic's `partitions`, or in a topic listed
   * twice) fails the whole request with INVALID_ARGUMENT (reason INVALID_REQUEST), and
   * nothing of it is appended. The produce requests
   * a broker holds at once, all connections together, have a budget
   * (RUNNEL_PRODUCE_BYTES_IN_FLIGHT_MAX, 256 MiB unless set): a Produce that does not fit
   * beside those held fails with RESOURCE_EXHAUSTED (reason LIMIT_REACHED, retriable). A
   * request is held until its appends are written, also when answered before that (ACKS_NONE,
   * ACK_TIMEOUT).
   */
  Produce: grpc.handleUnaryCall<_runnel_v1_ProduceRequest__Output, _runnel_v1_ProduceResponse>;
  
  /**
   * The same, as a long-lived bidirectional stream for log shippers: each request carries a
   * `sequence` the reply echoes; replies come back in request order. The broker stops
   * reading while 64 requests are in flight (not yet answered, or not yet appended, as an
   * ACKS_NONE request is answered first), or while that budget is spent, so HTTP/2 flow
   * control pushes back. A request
   * that fails as a whole (over a limit, unknown acks, a partition named twice, not
   * parseable) ends the stream with
   * its status once the replies to the requests before it went out; later ones go unread.
   */
  ProduceStream: grpc.handleBidiStreamingCall<_runnel_v1_ProduceRequest__Output, _runnel_v1_ProduceResponse>;
  
  /**
   * Tails one partition. The first request message starts the subscription; later ones
   * only grant more credit. The broker sends data while the client has credit (bytes; what a
   * reply costs is in SubscribeStart.credit_bytes), so a slow reader never makes the broker
   * buffer without bound. A client that half-closes (as grpcurl does after its last
   * message) gets what its credit covers, then OK. When the broker shuts down the call ends
   * with UNAVAILABLE (reason BROKER_UNAVAILABLE): reopen it.
   * The broker sends the response headers as soon as it has checked `start`, before any data,
   * so a client can tell a broker that took the stream (of a partition with nothing new) from
   * one that never answers (a hung process), and give up on the latter after a deadline.
   */
  Subscribe: grpc.handleBidiStreamingCall<_runnel_v1_SubscribeRequest__Output, _runnel_v1_SubscribeResponse>;
  
}

export interface LogServiceDefinition extends grpc.ServiceDefinition {
  Fetch: MethodDefinition<_runnel_v1_FetchRequest, _runnel_v1_FetchResponse, _runnel_v1_FetchRequest__Output, _runnel_v1_FetchResponse__Output>
  InitProducerId: MethodDefinition<_runnel_v1_InitProducerIdRequest, _runnel_v1_InitProducerIdResponse, _runnel_v1_InitProducerIdRequest__Output, _runnel_v1_InitProducerIdResponse__Output>
  ListOffsets: MethodDefinition<_runnel_v1_ListOffsetsRequest, _runnel_v1_ListOffsetsResponse, _runnel_v1_ListOffsetsRequest__Output, _runnel_v1_ListOffsetsResponse__Output>
  Produce: MethodDefinition<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse, _runnel_v1_ProduceRequest__Output, _runnel_v1_ProduceResponse__Output>
  ProduceStream: MethodDefinition<_runnel_v1_ProduceRequest, _runnel_v1_ProduceResponse, _runnel_v1_ProduceRequest__Output, _runnel_v1_ProduceResponse__Output>
  Subscribe: MethodDefinition<_runnel_v1_SubscribeRequest, _runnel_v1_SubscribeResponse, _runnel_v1_SubscribeRequest__Output, _runnel_v1_SubscribeResponse__Output>
}
