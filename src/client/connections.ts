/**
 * One gRPC channel per broker address, shared by that broker's LogService and AdminService
 * stubs, plus the unary-call helper every client part uses (deadline, error mapping, retry).
 *
 * Owns: the channels. Nothing else in the client creates one, so `close()` here is what lets
 * the process exit. grpc-js reconnects a channel by itself after a broker restart; the
 * reconnect backoff is capped lower than grpc-js's default (1 s doubling to 120 s) so a
 * broker that is back after a few seconds is found within about a second, not minutes.
 *
 * Does not: pick partition leaders (metadata-cache.ts) or retry streams (producer and
 * consumer own their streams' lifecycles).
 */
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/index.js';
import { CHANNEL_OPTIONS, loadRunnelProto } from '../protocol/index.js';
import type { AdminServiceClient } from '../protocol/generated/runnel/v1/AdminService.js';
import type { LogServiceClient } from '../protocol/generated/runnel/v1/LogService.js';
import { BrokerError } from '../errors/index.js';
import { checkBrokerAddressesOrThrow } from './broker-address.js';
import { errorFromGrpc, isTransportFailure } from './errors.js';
import { abortReasonOr, anySignal, closingController, withRetry, type RandomSource, type RetryOptions } from './retry.js';

export interface ConnectionsOptions {
  /** Bootstrap brokers, `host:port` each (port 1-65535); checked here, INVALID_REQUEST otherwise. */
  brokers: string[];
  /** Sent as the gRPC user agent so broker logs can tell clients apart. */
  clientId?: string;
  clock: Clock;
  random: RandomSource;
  retry: RetryOptions;
  /** Deadline of one unary call attempt. */
  requestTimeoutMs: number;
}

interface BrokerStubs {
  log: LogServiceClient;
  admin: AdminServiceClient;
}

/**
 * Long-lived streams one connection of `streamLog` carries at most. A broker serves at most
 * `inFlightRequestsPerConnectionMax` calls at once on a connection (HTTP/2
 * max_concurrent_streams, default 1,024), and the client's HTTP/2 session queues the streams
 * past that, unsent: a Subscribe stream beyond it would wait, silently, until another ends.
 * Well below the broker's default, so that a consumer of thousands of partitions spreads its
 * streams over enough connections.
 */
export const STREAMS_PER_CONNECTION_MAX = 100;

/** grpc-js reconnect backoff: 100 ms doubling to 1 s (defaults 1 s to 120 s). */
const RECONNECT_BACKOFF_MS_MIN = 100;
const RECONNECT_BACKOFF_MS_MAX = 1_000;

/** A unary stub method, bound: request, call options, callback. */
export type UnaryInvoker<Response> = (
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: Response) => void,
) => grpc.ClientUnaryCall;

export class Connections {
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly retry: RetryOptions;
  readonly requestTimeoutMs: number;
  private readonly bootstrap: readonly string[];
  private readonly stubs = new Map<string, BrokerStubs>();
  /** LogService stubs on connections of their own for long-lived streams, by `index@address`. */
  private readonly streamStubs = new Map<string, LogServiceClient>();
  /**
   * Per broker address: long-lived streams open on each of its stream connections, by index.
   * Counted here, for the whole client, because the connections are the client's: every
   * consumer's streams share them.
   */
  private readonly streamCounts = new Map<string, number[]>();
  private readonly channelOptions: grpc.ChannelOptions;
  /** Aborted by close(): ends every retry wait so pending calls settle promptly. */
  private readonly closing = closingController();
  private bootstrapIndex = 0;

  constructor(options: ConnectionsOptions) {
    checkBrokerAddressesOrThrow(options.brokers);
    this.bootstrap = [...options.brokers];
    this.clock = options.clock;
    this.random = options.random;
    this.retry = options.retry;
    this.requestTimeoutMs = options.requestTimeoutMs;
    this.bootstrapIndex = Math.floor(options.random() * this.bootstrap.length);
    this.channelOptions = {
      ...CHANNEL_OPTIONS,
      'grpc.initial_reconnect_backoff_ms': RECONNECT_BACKOFF_MS_MIN,
      'grpc.max_reconnect_backoff_ms': RECONNECT_BACKOFF_MS_MAX,
      ...(options.clientId === undefined ? {} : { 'grpc.primary_user_agent': `runnel-client/${options.clientId}` }),
    };
  }

  get signal(): AbortSignal {
    return this.closing.signal;
  }

  get isClosed(): boolean {
    return this.closing.signal.aborted;
  }

  /**
   * The address a call that may go to any broker should use now: the bootstrap address that
   * last answered, or the next one to try after `reportUnreachable`. Unary calls, produce
   * streams and Subscribe streams all start here, so one dead or mistyped address in the list
   * costs one failed attempt, not every call.
   */
  anyAddress(): string {
    return this.bootstrap[this.bootstrapIndex]!;
  }

  /**
   * A call to `address` failed below the broker's handlers (refused, unknown host, no answer
   * in time, a Subscribe stream it did not take within `requestTimeoutMs`): calls that may go
   * to any broker move on to the next bootstrap address. Nothing
   * changes when `address` is not the current one (another failure already moved on).
   */
  reportUnreachable(address: string): void {
    if (this.bootstrap[this.bootstrapIndex] === address) this.bootstrapIndex = (this.bootstrapIndex + 1) % this.bootstrap.length;
  }

  log(address: string): LogServiceClient {
    return this.stubsFor(address).log;
  }

  admin(address: string): AdminServiceClient {
    return this.stubsFor(address).admin;
  }

  /**
   * A LogService stub for one more long-lived stream to `address`, on the first of the
   * client's stream connections to it (separate from the one unary calls use) that carries
   * fewer than `STREAMS_PER_CONNECTION_MAX` streams (see there), and `release`, which the
   * caller calls once when that stream has ended. The bound is the client's, whatever part
   * of it opens the streams: two consumers of 100 partitions each used to count their streams
   * apart, put all 200 on one connection, and a broker serving 128 calls on one left 72
   * partitions unread, silently (test/integration/client-consumer.test.ts).
   */
  streamSlot(address: string): { log: LogServiceClient; release: () => void } {
    this.ensureOpen();
    let counts = this.streamCounts.get(address);
    if (counts === undefined) {
      counts = [];
      this.streamCounts.set(address, counts);
    }
    let index = counts.findIndex((count) => count < STREAMS_PER_CONNECTION_MAX);
    if (index < 0) index = counts.push(0) - 1;
    const log = this.streamLog(address, index);
    counts[index]!++;
    let isReleased = false;
    const release = (): void => {
      if (isReleased) return;
      isReleased = true;
      counts[index]!--;
    };
    return { log, release };
  }

  /** The LogService stub on stream connection number `index` to `address` (`streamSlot`). */
  private streamLog(address: string, index: number): LogServiceClient {
    const key = `${index}@${address}`;
    let log = this.streamStubs.get(key);
    if (log === undefined) {
      const { proto } = loadRunnelProto();
      // A local subchannel pool: otherwise grpc-js would share one connection among every
      // channel to the same address with the same options.
      log = new proto.runnel.v1.LogService(address, grpc.credentials.createInsecure(), { ...this.channelOptions, 'grpc.use_local_subchannel_pool': 1 });
      this.streamStubs.set(key, log);
    }
    return log;
  }

  /**
   * One unary call with a deadline, retried on retriable failures until the retry deadline
   * (moving on to the next bootstrap broker after a transport failure when the call may go
   * anywhere). `invoke` receives the address to call: `options.address()`, else any
   * bootstrap broker. `options.isRetriable` decides which failures are retried (default: the
   * error's `retriable` flag); `options.onRetry` hears of each failure that will be. Throws the
   * mapped `BrokerError`. `options.signal` (the producer or consumer that asked closed) ends
   * the call as the client's close does: the attempt in flight is cancelled, no other starts,
   * and its reason is thrown when it is a `BrokerError`.
   */
  callWithRetry<Response>(
    invoke: (address: string) => UnaryInvoker<Response>,
    options: { address?: () => string; isRetriable?: (error: BrokerError) => boolean; onRetry?: (error: BrokerError) => void; signal?: AbortSignal } = {},
  ): Promise<Response> {
    const { signal, dispose } = anySignal([this.closing.signal, options.signal]);
    const context = { clock: this.clock, random: this.random, retry: this.retry, signal, onRetry: options.onRetry };
    return withRetry(context, async () => {
      this.ensureOpen();
      const target = options.address !== undefined ? options.address() : this.anyAddress();
      try {
        return await this.call(invoke(target), signal);
      } catch (error) {
        if (isTransportFailure(error) && !signal.aborted) this.reportUnreachable(target);
        throw error;
      }
    }, options.isRetriable).finally(dispose);
  }

  /**
   * One attempt of a unary call with the request deadline; rejects with the mapped error.
   * When `signal` aborts first, the call is cancelled and rejects with the signal's reason
   * (a `BrokerError`) or the mapped CANCELLED status: it would otherwise wait for its deadline
   * (`requestTimeoutMs`, 30 s by default) at a hung broker.
   */
  call<Response>(invoke: UnaryInvoker<Response>, signal?: AbortSignal): Promise<Response> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReasonOr(signal, new BrokerError('INVALID_REQUEST', 'the call was cancelled before it started')));
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = invoke({ deadline: Date.now() + this.requestTimeoutMs }, (error, response) => {
        signal?.removeEventListener('abort', onAbort);
        if (error !== null) reject(signal?.aborted === true ? abortReasonOr(signal, errorFromGrpc(error)) : errorFromGrpc(error));
        else if (response === undefined) reject(new BrokerError('INTERNAL_ERROR', 'the broker sent an empty reply'));
        else resolve(response);
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Throws INVALID_REQUEST once closed: using a closed client is a caller bug, not a retriable state. */
  ensureOpen(): void {
    if (this.isClosed) throw new BrokerError('INVALID_REQUEST', 'the client is closed');
  }

  /** Closes every channel; calls and streams still open fail with CANCELLED. Idempotent. */
  close(): void {
    this.closing.abort();
    for (const stubs of this.stubs.values()) {
      stubs.log.close();
      stubs.admin.close();
    }
    this.stubs.clear();
    for (const log of this.streamStubs.values()) log.close();
    this.streamStubs.clear();
    this.streamCounts.clear();
  }

  private stubsFor(address: string): BrokerStubs {
    this.ensureOpen();
    let stubs = this.stubs.get(address);
    if (stubs === undefined) {
      const { proto } = loadRunnelProto();
      const credentials = grpc.credentials.createInsecure();
      const log = new proto.runnel.v1.LogService(address, credentials, this.channelOptions);
      // The admin stub rides the same channel: one TCP connection per broker.
      const admin = new proto.runnel.v1.AdminService(address, credentials, {
        ...this.channelOptions,
        channelOverride: log.getChannel(),
      });
      stubs = { log, admin };
      this.stubs.set(address, stubs);
    }
    return stubs;
  }
}
