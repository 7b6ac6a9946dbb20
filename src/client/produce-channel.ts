/**
 * The producer's transport to one broker: `ProduceChannel` is the seam (the producer's unit
 * tests drive a fake), `GrpcProduceChannel` the real one over the `ProduceStream` bidi call.
 *
 * One long-lived stream carries every produce request to that broker. Each request has a
 * `sequence` the reply echoes; the broker answers in request order, so replies are matched
 * against a FIFO of pending requests (a mismatch is a protocol violation and breaks the
 * stream). When the stream fails, every pending request fails with that error and the next
 * `send` opens a new stream: which requests to resend, and when, is the producer's call
 * (it resends the same batches, keeping their sequence numbers).
 *
 * A failure that carries no Runnel reason (connection dropped, broker killed, stream reset)
 * is reported as BROKER_UNAVAILABLE (retriable), whatever status grpc-js chose: the
 * requests may or may not have been appended, and idempotent resending is the cure.
 *
 * Owns: the stream and its pending FIFO (single writer: event-loop callbacks here).
 */
import type * as grpc from '@grpc/grpc-js';
import { BrokerError } from '../errors/index.js';
import type { ProduceRequest } from '../protocol/generated/runnel/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../protocol/generated/runnel/v1/ProduceResponse.js';
import type { LogServiceClient } from '../protocol/generated/runnel/v1/LogService.js';
import { errorFromGrpc, isTransportFailure } from './errors.js';

export type ProduceReplyCallback = (error: BrokerError | undefined, response: ProduceResponse__Output | undefined) => void;

/** Where the producer sends requests. Replies (or failures) come back in send order. */
export interface ProduceChannel {
  /** Requests sent whose reply has not come back. */
  readonly inFlightCount: number;
  /** Sends one request; `onReply` is called exactly once. `request.sequence` must be set. */
  send(request: ProduceRequest, onReply: ProduceReplyCallback): void;
  /**
   * Gives up on the current stream (its broker stopped answering): pending requests fail with
   * `error`, and the next `send` opens a new stream. Nothing happens once closed.
   */
  reset(error: BrokerError): void;
  /** Ends the stream; pending requests fail with BROKER_UNAVAILABLE. Idempotent. */
  close(): void;
}

interface PendingRequest {
  sequence: string;
  onReply: ProduceReplyCallback;
}

type ProduceStreamCall = grpc.ClientDuplexStream<ProduceRequest, ProduceResponse__Output>;

export class GrpcProduceChannel implements ProduceChannel {
  private readonly openStream: () => ProduceStreamCall;
  private stream: ProduceStreamCall | undefined;
  /** Sent, not yet answered, in send order. Bounded by the producer's in-flight cap. */
  private pending: PendingRequest[] = [];
  private isClosed = false;

  private readonly onTransportFailure: () => void;

  /**
   * `client` is the broker's LogService stub (connections.ts owns its channel).
   * `onTransportFailure` hears of a stream that broke below the broker's handlers, so the
   * next stream can go to another bootstrap broker (`Connections.reportUnreachable`).
   */
  constructor(client: LogServiceClient, onTransportFailure: () => void = () => undefined) {
    this.openStream = () => client.produceStream();
    this.onTransportFailure = onTransportFailure;
  }

  get inFlightCount(): number {
    return this.pending.length;
  }

  send(request: ProduceRequest, onReply: ProduceReplyCallback): void {
    if (this.isClosed) {
      onReply(new BrokerError('BROKER_UNAVAILABLE', 'the produce stream is closed'), undefined);
      return;
    }
    const stream = this.stream ?? this.open();
    this.pending.push({ sequence: String(request.sequence), onReply });
    // grpc-js serialises here (the batch bytes are copied into the frame), so the producer
    // may restamp a batch's header for a later retry without touching this send.
    stream.write(request);
  }

  reset(error: BrokerError): void {
    if (this.isClosed) return;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    // A broker that takes requests and never answers is as good as unreachable.
    this.onTransportFailure();
    this.failPending(error);
  }

  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    this.failPending(new BrokerError('BROKER_UNAVAILABLE', 'the produce stream was closed'));
  }

  private open(): ProduceStreamCall {
    const stream = this.openStream();
    this.stream = stream;
    stream.on('data', (response: ProduceResponse__Output) => this.onResponse(stream, response));
    stream.on('error', (error: unknown) => {
      if (stream === this.stream && isTransportFailure(error)) this.onTransportFailure();
      this.onStreamEnd(stream, toStreamError(error));
    });
    // A stream the broker ends cleanly while requests are pending lost them all the same.
    stream.on('end', () => this.onStreamEnd(stream, new BrokerError('BROKER_UNAVAILABLE', 'the broker ended the produce stream')));
    return stream;
  }

  private onResponse(stream: ProduceStreamCall, response: ProduceResponse__Output): void {
    if (stream !== this.stream) return;
    const head = this.pending[0];
    if (head === undefined || head.sequence !== response.sequence) {
      const error = new BrokerError(
        'BROKER_UNAVAILABLE',
        `produce stream reply ${response.sequence} does not match the oldest request ${head?.sequence ?? '(none)'}; reopening`,
      );
      this.stream = undefined;
      stream.cancel();
      this.failPending(error);
      return;
    }
    this.pending.shift();
    head.onReply(undefined, response);
  }

  private onStreamEnd(stream: ProduceStreamCall, error: BrokerError): void {
    if (stream !== this.stream) return;
    this.stream = undefined;
    this.failPending(error);
  }

  private failPending(error: BrokerError): void {
    const pending = this.pending;
    this.pending = [];
    for (const request of pending) request.onReply(error, undefined);
  }
}

function toStreamError(error: unknown): BrokerError {
  if (isTransportFailure(error)) {
    const message = error instanceof Error ? error.message : String(error);
    return new BrokerError('BROKER_UNAVAILABLE', `produce stream failed: ${message}`, { cause: error });
  }
  return errorFromGrpc(error);
}
