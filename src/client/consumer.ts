/**
 * A consumer with manual assignment: the application names the partitions (`assign`),
 * positions them (`seek`), and reads records with `for await (const record of consumer)`
 * (or whole chunks with `batches()`), in offset order per partition. `stopAt` bounds
 * partitions (a replay up to the end offsets taken first); the iterator ends once every one
 * has reached its bound, and otherwise waits for records for ever (a tail).
 *
 * Transport: one `Subscribe` stream per assigned partition, not long-poll `Fetch`. The
 * broker pushes record batches as they exist (replay at disk speed, tailing without a poll
 * loop) while the client holds credit; the client grants credit back as the application
 * takes records, so at most a window per partition is buffered here (`bufferBytes` shared
 * among the assigned partitions, each window within `partitionBufferBytes`) and the broker
 * never buffers for a slow reader. A Fetch loop would pay one request round trip per
 * chunk and ~120 µs of client CPU per call (FINDINGS.md) for the same bytes. Batches come in
 * RECORD_FORMAT_BATCHES, exactly as stored, and are decoded here through a `RecordCursor`,
 * which checks every batch's CRC-32C; records below the requested offset are stepped over
 * unbuilt (a fetched batch may start earlier), and control batches are skipped.
 *
 * Decoded records are bounded too, not only buffered bytes: a reply is decoded a slice of at
 * most `SLICE_RECORD_COUNT_MAX` records at a time, the next slice only once the application
 * asks for more than it was handed, and each batch is inflated once for all its slices, to at
 * most `DECOMPRESSED_BYTES_MAX_DEFAULT` (64 MiB, the broker's `decompressedRecordsBytesMax`,
 * which every batch it stored passed): a gzip bomb stops there with RECORD_TOO_LARGE. A
 * gzip batch of millions of tiny records used to become millions of record objects (over a
 * gigabyte) before the first one came out. Records before a malformed one in a batch whose
 * CRC matched (which only a broken encoder makes) now come out before the failure does.
 *
 * Failures: a stream that breaks without a Runnel reason (broker restarted or killed) or with
 * a retriable one is reopened from the next offset after capped exponential backoff, until
 * `retry.timeoutMs` passes without data; `onRetry` hears of each reopen scheduled and
 * `onRecovered` of the end of the outage. A stream the broker has not answered (its response
 * headers, which the broker sends as it takes the stream) within `requestTimeoutMs` counts as
 * broken too: a hung broker (a stopped process, a frozen host) accepts TCP connections and
 * never answers, and grpc-js waits for its HTTP/2 handshake without a deadline, so such a
 * stream used to wait forever, with no `onRetry` and no failure at `retry.timeoutMs`. Such a
 * give-up counts against the address as a refused connection does (`reportNotTaken`), so with
 * several bootstrap addresses the reopened stream tries another one; it used to end as
 * CANCELLED, which left a hung address first in line for every stream.
 * TOPIC_NOT_FOUND / PARTITION_NOT_FOUND refresh the metadata once and then fail.
 * OFFSET_OUT_OF_RANGE moves to `autoOffsetReset` and tells `onOffsetReset`. A failure
 * that is not retried is thrown by the iterator once, and the partition stops until the next
 * `seek`.
 *
 * Owns (single writer: this class, on the event loop): per partition the position, the fetch
 * offset, the buffered chunks and the stream; the queues of partitions with records to hand out
 * and of failures to throw, so that no step of reading walks every assigned partition.
 * Callbacks of a stream or ListOffsets that resolve after a seek, an unassign or close carry
 * an older `generation` and are ignored; a ListOffsets still retried then is cancelled
 * (`stopStream`), since its retries would otherwise hold timers and calls for the client's
 * whole retry budget after close.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Clock } from '../common/index.js';
import { MiB, KiB } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import { DECOMPRESSED_BYTES_MAX_DEFAULT, int64ToNumber, numberToInt64, RecordCursor, SUBSCRIBE_CREDIT_BYTES_MAX, type RecordFactory } from '../protocol/index.js';
import type { SubscribeRequest } from '../protocol/generated/runnel/v1/SubscribeRequest.js';
import type { SubscribeResponse__Output } from '../protocol/generated/runnel/v1/SubscribeResponse.js';
import { clientClock } from './client-clock.js';
import { errorFromGrpc, isTransportFailure } from './errors.js';
import { backoffDelayMs, retryOptionsOrThrow, type RandomSource, type RetryOptions } from './retry.js';
import type { ConsumerRecord, OffsetSpec, TopicPartition } from './types.js';

export interface ConsumerOptions {
  /**
   * Where an assigned partition starts before any `seek`, and where it moves after
   * OFFSET_OUT_OF_RANGE: 'latest' (default, as Kafka), 'earliest', or 'none' (fail instead).
   */
  autoOffsetReset?: 'earliest' | 'latest' | 'none';
  /** Bytes buffered per partition at most (the Subscribe credit window). Default 8 MiB, at most 256 MiB (the broker's credit cap). */
  partitionBufferBytes?: number;
  /**
   * Bytes buffered across all assigned partitions: each gets an equal share as its window,
   * within [64 KiB, partitionBufferBytes] (so more than this with more than `bufferBytes` /
   * 64 KiB partitions; a reply also holds at least one whole batch). Default 64 MiB, as
   * Kafka's fetch.max.bytes bounds a whole fetch rather than a partition.
   */
  bufferBytes?: number;
  /** Largest single Subscribe reply. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Reconnect backoff; `timeoutMs` is how long a partition may fail before it gives up. */
  retry?: Partial<RetryOptions>;
  /**
   * How long a Subscribe stream may wait for the broker to take it (its response headers)
   * before it counts as a failed attempt and is reopened after a backoff, at the next
   * bootstrap address when there are several (as after a refused connection). Default 30 s; a
   * consumer made by `RunnelClient` uses the client's `requestTimeoutMs`.
   */
  requestTimeoutMs?: number;
  /**
   * Called each time a partition's stream broke (or could not open) with a transport or
   * retriable failure and will be reopened after a backoff: how a caller learns that reading
   * stalled because the broker went away (`runnel consume` says so on stderr). From a
   * microtask, never from inside a consumer call.
   */
  onRetry?: (error: BrokerError, retrying: RetryingPartition) => void;
  /**
   * Called once when a partition that `onRetry` reported streams again: its reopened stream
   * delivered a reply, or the broker took it and it stayed open for `retry.backoffMsMax` (a
   * partition with nothing new gets no reply, so staying open is the sign; a stream the broker
   * has not taken, as with a hung broker, is not one).
   * Not called when a seek or unassign ends the retrying instead. From a microtask.
   */
  onRecovered?: (recovered: RecoveredPartition) => void;
  /**
   * Called each time a partition moved to `autoOffsetReset` because its offset was out of
   * range (retention deleted the records it was at, or the log is shorter than it after a
   * topic was re-created): how a caller learns that records were skipped, and which, as
   * Kafka's consumer logs it. Not called with autoOffsetReset 'none' (the iterator throws
   * OFFSET_OUT_OF_RANGE instead). From a microtask.
   */
  onOffsetReset?: (reset: OffsetReset) => void;
  clock?: Clock;
  random?: RandomSource;
}

/** Which partition an `onRetry` call reports. */
export interface RetryingPartition {
  topic: string;
  partition: number;
  /** Consecutive failed attempts, the one just reported included. */
  attempts: number;
  /** When (clock ms) the partition fails if it has not streamed again; Infinity when `retry.timeoutMs` is. */
  giveUpAtMs: number;
}

/** What an `onOffsetReset` call reports. */
export interface OffsetReset {
  topic: string;
  partition: number;
  /** Where the partition was reading when the broker answered OFFSET_OUT_OF_RANGE. */
  fromOffset: number;
  /** Where it reads now: the log start ('earliest') or end ('latest') at the time of the reset. */
  toOffset: number;
  resetTo: 'earliest' | 'latest';
  error: BrokerError;
}

/** Which partition an `onRecovered` call reports. */
export interface RecoveredPartition {
  topic: string;
  partition: number;
  /** From its first failed attempt until now. */
  outageMs: number;
}

/** The part of a gRPC duplex call the consumer uses (a fake implements it in tests). */
export interface SubscriptionStream {
  write(message: SubscribeRequest): boolean;
  cancel(): void;
  on(event: 'data', listener: (response: SubscribeResponse__Output) => void): unknown;
  /** The response headers: the broker took the stream (it sends them once it has checked `start`). */
  on(event: 'metadata', listener: (metadata: unknown) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** What the consumer needs from outside; `RunnelClient` wires the gRPC versions. */
export interface ConsumerTransport {
  /** Opens a Subscribe stream to the leader of `topic`/`partition`. */
  openSubscription(topic: string, partition: number): SubscriptionStream;
  /**
   * Resolves `spec` via ListOffsets (retried): the offset, and for a time the timestamp of the
   * record found there, or -1 when no record is that late (the offset is then the log end).
   * When `signal` aborts (the seek or reset was overtaken: a later seek, an unassign, close),
   * the attempt in flight is cancelled, no other starts, and it rejects.
   */
  listOffset(topic: string, partition: number, spec: Exclude<OffsetSpec, number>, signal: AbortSignal): Promise<ListedOffset>;
  /**
   * The broker never took `stream` (no response headers within `requestTimeoutMs`) and the
   * consumer gives up on it: its address counts as unreachable, as a refused connection does,
   * so the stream reopened next goes to another bootstrap address. Called before the stream
   * is cancelled; a cancelled stream is not reported otherwise (the consumer cancels for many
   * reasons: seek, unassign, close).
   */
  reportNotTaken(stream: SubscriptionStream): void;
  /** Reloads the topic's metadata; resolves with its partition count or rejects TOPIC_NOT_FOUND. */
  refreshMetadata(topic: string): Promise<number>;
  /** The consumer is closed (called once, by its `close()`): it opens nothing more. */
  close(): void;
}

/** What ListOffsets answered for one partition. */
export interface ListedOffset {
  offset: number;
  /** For a time: the found record's timestamp, or -1 when no record is that late; otherwise -1. */
  timestamp: number;
}

type FetchState =
  | { kind: 'idle' }
  /** Waiting for ListOffsets; `abort` cancels it (with its retries) once the wait is overtaken. */
  | { kind: 'resolving'; abort: AbortController }
  | {
      kind: 'streaming';
      stream: SubscriptionStream;
      /** When the broker took the stream (headers or data); undefined until then. */
      acceptedAtMs: number | undefined;
      /** Fails the stream if the broker has not taken it within `requestTimeoutMs`; undefined once it has. */
      cancelAcceptTimer: (() => void) | undefined;
      cancelRecoveryTimer: (() => void) | undefined;
    }
  | { kind: 'backoff'; cancel: () => void }
  | { kind: 'failed'; error: BrokerError; isReported: boolean };

class AssignedPartition {
  readonly topic: string;
  readonly partition: number;
  state: FetchState = { kind: 'idle' };
  /** Bumped by seek, unassign and close; stale callbacks compare against it. */
  generation = 0;
  /** Next offset to hand out; records below it are dropped. -1 until positioned. */
  position = -1;
  /** Where the stream continues: the `next_offset` of the newest reply. */
  fetchOffset = -1;
  highWatermark = -1;
  /** Replies not yet decoded, oldest first. Bounded by the credit window. */
  chunks: Buffer[] = [];
  bufferedBytes = 0;
  /**
   * The reply being decoded slice by slice (taken off `chunks`, no longer counted in
   * `bufferedBytes`): it holds the reply and the one batch of it inflated now. Undefined
   * between replies.
   */
  decoding: RecordCursor<ConsumerRecord> | undefined;
  /**
   * Credit the broker holds for this stream as far as the client knows: granted, less what
   * replies used (negative after a batch larger than the credit). The client grants enough to
   * keep it plus `bufferedBytes` at the window (`grantCredit`).
   */
  brokerCreditBytes = 0;
  isPaused = false;
  /** In the consumer's `ready` queue (at most once there). */
  isQueuedReady = false;
  /** Consecutive failed stream attempts, and when the first of them failed. */
  failedAttempts = 0;
  firstFailureMs = 0;
  hasRefreshedMetadata = false;
  /**
   * OFFSET_OUT_OF_RANGE at the fetch offset while records fetched before it are still
   * buffered: those go out first, then the reset (or, with autoOffsetReset 'none', the
   * failure) applies (`afterBufferedRecords`).
   */
  outOfRangeAfterBuffered: BrokerError | undefined;
  /**
   * `stopAt`: no record at or after it is handed out, and the partition is finished once its
   * position reaches it (`isFinished`). Undefined: no bound, the partition is read for ever.
   */
  stopOffset: number | undefined;

  /** Decodes straight into `ConsumerRecord`s of this partition (no second object per record). */
  readonly makeRecord: RecordFactory<ConsumerRecord>;

  constructor(topic: string, partition: number) {
    this.topic = topic;
    this.partition = partition;
    this.makeRecord = (offset, timestamp, key, value, headers) => ({ topic, partition, offset, key, value, headers, timestamp });
  }

  /** Whether the partition has reached its `stopOffset` and handed out all it holds below it. */
  isFinished(): boolean {
    return this.stopOffset !== undefined && this.position >= 0 && this.position >= this.stopOffset && !this.hasUndecoded() && this.state.kind !== 'failed';
  }

  /** Whether records fetched are still to be decoded: whole replies, or the rest of one. */
  hasUndecoded(): boolean {
    return this.chunks.length > 0 || this.decoding !== undefined;
  }

  /** Drops what was fetched and not yet decoded. */
  dropUndecoded(): void {
    this.chunks = [];
    this.bufferedBytes = 0;
    this.decoding = undefined;
  }
}

/** Which chunk `nextChunk` returned last: what an iterator checks before each record it hands out. */
interface ChunkStamp {
  version: number;
  assigned: AssignedPartition | undefined;
  generation: number;
}

/**
 * First in, first out, with an O(1) amortized `shift` (an array's moves every element): the
 * consumer's queues of partitions with records to decode and of failures to report.
 */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // Drops the taken front once it is half the array: copying the rest costs no more than
    // the shifts since the last copy.
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Credit below which a reopened stream still starts (the broker sends a batch at least). */
const CREDIT_BYTES_MIN = 64 * KiB;

/** `requestTimeoutMs` unless given: the client's default deadline of one call attempt. */
const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;

/**
 * Most records decoded at a time: one slice of a reply, which the iterator hands out (or
 * `batches()` yields) before the next slice is decoded. A record's headers count as records
 * here, since each costs about as much heap.
 *
 * Why bound it: one stored batch can hold millions of records (a gzip batch of empty records
 * inflates to up to DECOMPRESSED_BYTES_MAX_DEFAULT, 64 MiB, some 9 million 7-byte records), and
 * a decoded record costs ~150 B of heap, ~350 B with a key and a value (two Buffer views),
 * a header ~170 B (measured on Node 20): decoded whole, such a batch took over a gigabyte
 * before its first record came out. Why 4096: a slice then holds ~0.6–1.4 MiB of record
 * objects (keys and values are views into the one inflated section the cursor holds, not
 * copies), while the cost per slice, one more pass through `nextChunk` (a promise hop), stays
 * negligible beside thousands of records.
 */
export const SLICE_RECORD_COUNT_MAX = 4096;

export class Consumer implements AsyncIterable<ConsumerRecord> {
  private readonly transport: ConsumerTransport;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly retry: RetryOptions;
  private readonly requestTimeoutMs: number;
  private readonly autoOffsetReset: 'earliest' | 'latest' | 'none';
  private readonly partitionBufferBytes: number;
  private readonly bufferBytes: number;
  /** Each partition's credit window: its share of `bufferBytes` (`assign`). */
  private windowBytes: number;
  private readonly maxMessageBytes: number;
  private readonly onRetry: ((error: BrokerError, retrying: RetryingPartition) => void) | undefined;
  private readonly onRecovered: ((recovered: RecoveredPartition) => void) | undefined;
  private readonly onOffsetReset: ((reset: OffsetReset) => void) | undefined;
  /** Assigned partitions in assignment order; bounded by what the application assigns. */
  private partitions: AssignedPartition[] = [];
  private readonly byKey = new Map<string, AssignedPartition>();
  /**
   * Partitions that may have records to decode, each once (`isQueuedReady`), in the order the
   * iterator takes them: one slice each, then to the back if it still has some (round robin).
   * Joined when a reply is buffered or the partition resumed; one that is paused, failed or
   * unassigned when its turn comes leaves it. So handing out a slice costs the same however
   * many partitions are assigned: it used to walk every assigned partition, twice (one for
   * failures), which with 10,000 partitions tailed at 5,000 records/s took 75 % of a core.
   */
  private readonly ready = new Fifo<AssignedPartition>();
  /** Failures the iterator has not thrown yet, oldest first, with the partition's generation then. */
  private readonly unreportedFailures = new Fifo<{ assigned: AssignedPartition; generation: number }>();
  /**
   * Index in `partitions` of one found not finished (`isEveryPartitionFinished`), checked first:
   * the walk past finished ones is paid once per partition finishing, not at every wait.
   */
  private unfinishedIndex = 0;
  /**
   * Records an iterator had decoded but not handed out when the loop over it ended (a
   * `break`); the next read hands them out first, so leaving a loop loses nothing.
   */
  private leftovers: { assigned: AssignedPartition; generation: number; records: ConsumerRecord[]; positionAfter: number }[] = [];
  /**
   * Bumped by seek, assign, pause and close. An iterator holding decoded records checks it
   * before each one it hands out, so none of an older position, of a paused or unassigned
   * partition, or after close comes out (`RecordIterator`).
   */
  controlVersion = 0;
  /** `controlVersion`, the partition and its generation when `nextChunk` last returned a chunk. */
  lastChunkStamp: ChunkStamp = { version: 0, assigned: undefined, generation: 0 };
  /**
   * While an iterator hands out a chunk record by record: its partition (and generation) and
   * the offset of the chunk's next record, which `position()` reports until the chunk is done
   * (then the partition's own position, after the whole chunk, is right again). Set by
   * `noteHandedOut`, cleared when a chunk is returned or records are given back.
   */
  private handingOut: { assigned: AssignedPartition | undefined; generation: number; nextOffset: number } = { assigned: undefined, generation: 0, nextOffset: -1 };
  /** Shared by every waiting `nextChunk` call; resolved (and dropped) by `wake`. */
  private wakeup: { promise: Promise<void>; resolve: () => void } | undefined;
  private isClosed = false;

  constructor(transport: ConsumerTransport, options: ConsumerOptions = {}) {
    this.transport = transport;
    this.clock = options.clock ?? clientClock;
    this.random = options.random ?? Math.random;
    this.retry = retryOptionsOrThrow(options.retry, 'consumer');
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT;
    this.autoOffsetReset = options.autoOffsetReset ?? 'latest';
    this.partitionBufferBytes = options.partitionBufferBytes ?? 8 * MiB;
    this.bufferBytes = options.bufferBytes ?? 64 * MiB;
    this.windowBytes = this.partitionBufferBytes;
    this.maxMessageBytes = options.maxMessageBytes ?? 1 * MiB;
    this.onRetry = options.onRetry;
    this.onRecovered = options.onRecovered;
    this.onOffsetReset = options.onOffsetReset;
    if (!['earliest', 'latest', 'none'].includes(this.autoOffsetReset)) {
      throw new BrokerError('INVALID_REQUEST', `autoOffsetReset must be 'earliest', 'latest' or 'none'`);
    }
    // A window past the broker's credit cap would wait for data the broker never sends.
    if (!Number.isSafeInteger(this.partitionBufferBytes) || this.partitionBufferBytes < CREDIT_BYTES_MIN || this.partitionBufferBytes > SUBSCRIBE_CREDIT_BYTES_MAX) {
      throw new BrokerError('INVALID_REQUEST', `partitionBufferBytes must be an integer from ${CREDIT_BYTES_MIN} to ${SUBSCRIBE_CREDIT_BYTES_MAX} (the most Subscribe credit a broker keeps)`);
    }
    if (!Number.isSafeInteger(this.bufferBytes) || this.bufferBytes < CREDIT_BYTES_MIN) {
      throw new BrokerError('INVALID_REQUEST', `bufferBytes must be an integer ≥ ${CREDIT_BYTES_MIN}`);
    }
    if (!Number.isSafeInteger(this.requestTimeoutMs) || this.requestTimeoutMs < 1) {
      throw new BrokerError('INVALID_REQUEST', `requestTimeoutMs must be a positive integer (ms)`);
    }
  }

  /**
   * Replaces the assignment. Partitions no longer assigned stop at once (buffered records
   * are dropped); newly assigned ones start at `autoOffsetReset` unless sought. Does not
   * check that the partitions exist: a missing one fails on the iterator after one metadata
   * refresh (TOPIC_NOT_FOUND or PARTITION_NOT_FOUND). Throws INVALID_REQUEST when closed.
   */
  assign(partitions: TopicPartition[]): void {
    this.ensureOpen();
    this.controlVersion++;
    const wanted = new Map<string, TopicPartition>();
    for (const tp of partitions) {
      if (typeof tp.topic !== 'string' || tp.topic.length === 0 || !Number.isInteger(tp.partition) || tp.partition < 0) {
        throw new BrokerError('INVALID_REQUEST', `not a topic partition: ${JSON.stringify(tp)}`);
      }
      wanted.set(keyOf(tp.topic, tp.partition), tp);
    }
    for (const assigned of this.partitions) {
      if (!wanted.has(keyOf(assigned.topic, assigned.partition))) this.stop(assigned);
    }
    const next: AssignedPartition[] = [];
    for (const [key, tp] of wanted) {
      let assigned = this.byKey.get(key);
      if (assigned === undefined) {
        assigned = new AssignedPartition(tp.topic, tp.partition);
        this.byKey.set(key, assigned);
        if (this.autoOffsetReset === 'none') {
          assigned.state = { kind: 'idle' }; // waits for a seek
        } else {
          this.resolveAndStart(assigned, this.autoOffsetReset, false).catch(() => undefined);
        }
      }
      next.push(assigned);
    }
    for (const key of [...this.byKey.keys()]) if (!wanted.has(key)) this.byKey.delete(key);
    this.partitions = next;
    // Streams already open keep the credit they hold; from their next grant on, they fill
    // only up to the new window.
    this.windowBytes = Math.max(CREDIT_BYTES_MIN, Math.min(this.partitionBufferBytes, Math.floor(this.bufferBytes / Math.max(1, next.length))));
    this.unfinishedIndex = 0;
    this.wake();
  }

  /** The current assignment. */
  assignment(): TopicPartition[] {
    return this.partitions.map(({ topic, partition }) => ({ topic, partition }));
  }

  /**
   * Moves an assigned partition: to the earliest or latest offset, an exact offset, or the
   * first record whose timestamp is at or after `{ timestamp }` (the log end offset when no
   * record is that late; every record appended after that is yielded, whatever its own
   * timestamp, as in Kafka). Buffered records are dropped; the next record the
   * iterator yields for the partition is at the new position. Resolves once the position is
   * known (ListOffsets, retried). Reasons: INVALID_REQUEST (not assigned, closed, bad
   * spec), TOPIC_NOT_FOUND, PARTITION_NOT_FOUND, or the last retriable error. A seek
   * overtaken while it waits for ListOffsets (by a later seek of the partition, its unassign,
   * or `close()`) resolves at once without moving anything, and its ListOffsets is cancelled
   * with its retries, so nothing of it outlives the consumer.
   */
  async seek(tp: TopicPartition, spec: OffsetSpec): Promise<void> {
    this.ensureOpen();
    const assigned = this.byKey.get(keyOf(tp.topic, tp.partition));
    if (assigned === undefined) {
      throw new BrokerError('INVALID_REQUEST', `${tp.topic}-${tp.partition} is not assigned`, { topic: tp.topic, partition: tp.partition });
    }
    if (typeof spec === 'number' && (!Number.isSafeInteger(spec) || spec < 0)) {
      throw new BrokerError('INVALID_REQUEST', `seek offset must be a non-negative integer, got ${spec}`);
    }
    this.controlVersion++;
    await this.resolveAndStart(assigned, spec, true);
  }

  /**
   * Bounds the reading of assigned partitions, each at its `offset` (exclusive): no record at
   * or after it is handed out, and a partition whose position reaches it (by reading, a seek, or
   * an offset reset past it) is finished: its stream stops. Once every assigned partition is
   * finished, the iterator and `batches()` end (done) instead of waiting for records: how a job
   * reads up to the end offsets it took first (`admin.listOffsets({ spec: 'latest' })`, the
   * "snapshot" end) and knows when it is done, also for a partition with nothing to read from
   * its start, or one moved past its bound by an offset reset (which `onOffsetReset` reports).
   * Without it, a loop waiting for each partition's last record waited for ever there.
   * The bound stays through seeks; a later call replaces it, and a partition finished below
   * the new bound streams again from its position. Records already decoded at or past a
   * lowered bound are not handed out; one lowered under records already handed out leaves the
   * position after them. No I/O, not retried. Throws INVALID_REQUEST for a
   * partition not assigned, an offset that is not a non-negative integer, or when closed.
   * Test: consumer.test.ts, "stopAt".
   */
  stopAt(offsets: { topic: string; partition: number; offset: number }[]): void {
    this.ensureOpen();
    const bounded: { assigned: AssignedPartition; offset: number }[] = [];
    for (const { topic, partition, offset } of offsets) {
      const assigned = this.byKey.get(keyOf(topic, partition));
      if (assigned === undefined) throw new BrokerError('INVALID_REQUEST', `${topic}-${partition} is not assigned: assign it before stopAt`, { topic, partition });
      if (!Number.isSafeInteger(offset) || offset < 0) throw new BrokerError('INVALID_REQUEST', `stopAt offset must be a non-negative integer, got ${offset}`);
      bounded.push({ assigned, offset });
    }
    this.controlVersion++; // an iterator gives back what it decoded; takeLeftover applies the bound to it
    for (const { assigned, offset } of bounded) {
      const wasFinished = assigned.isFinished();
      assigned.stopOffset = offset;
      if (assigned.position < 0) continue; // still resolving, or waiting for a seek: checked when positioned
      if (assigned.position >= offset) {
        this.finishPartition(assigned);
      } else if (wasFinished && assigned.state.kind === 'idle') {
        assigned.fetchOffset = assigned.position;
        this.startStream(assigned);
      }
    }
    this.wake();
  }

  /**
   * The next offset the iterator yields for `tp`: right after the last record it handed out,
   * also in the middle of a fetched chunk (after a whole chunk with `batches()`), so it is
   * the offset to resume from once those records are processed. Undefined if unknown.
   */
  position(tp: TopicPartition): number | undefined {
    const assigned = this.byKey.get(keyOf(tp.topic, tp.partition));
    if (assigned === undefined) return undefined;
    const handingOut = this.handingOut;
    if (handingOut.assigned === assigned && handingOut.generation === assigned.generation) return handingOut.nextOffset;
    return assigned.position < 0 ? undefined : assigned.position;
  }

  /** The partition's high watermark as of the newest reply (lag = it − position); undefined if none yet. */
  highWatermark(tp: TopicPartition): number | undefined {
    const assigned = this.byKey.get(keyOf(tp.topic, tp.partition));
    return assigned === undefined || assigned.highWatermark < 0 ? undefined : assigned.highWatermark;
  }

  /** Stops yielding records of these partitions; the stream stops when its credit runs out. */
  pause(partitions: TopicPartition[]): void {
    this.controlVersion++;
    for (const tp of partitions) {
      const assigned = this.byKey.get(keyOf(tp.topic, tp.partition));
      if (assigned !== undefined) assigned.isPaused = true;
    }
  }

  /** Yields records of these partitions again. */
  resume(partitions: TopicPartition[]): void {
    for (const tp of partitions) {
      const assigned = this.byKey.get(keyOf(tp.topic, tp.partition));
      if (assigned === undefined || !assigned.isPaused) continue;
      assigned.isPaused = false;
      this.markReady(assigned);
      // Its failure left the queue when its turn came while paused.
      if (assigned.state.kind === 'failed' && !assigned.state.isReported) this.unreportedFailures.push({ assigned, generation: assigned.generation });
    }
    this.wake();
  }

  /**
   * Records in offset order per partition, partitions interleaved chunk by chunk. Waits for
   * data; ends when the consumer closes, or once every assigned partition has reached its
   * `stopAt` bound; throws a partition's non-retried failure once.
   */
  [Symbol.asyncIterator](): AsyncIterator<ConsumerRecord> {
    return new RecordIterator(this);
  }

  /**
   * The same records as arrays (a slice of at most `SLICE_RECORD_COUNT_MAX` records of one
   * Subscribe reply of one partition each): the faster way to read when records are handled
   * in bulk.
   */
  async *batches(): AsyncGenerator<ConsumerRecord[]> {
    for (;;) {
      const chunk = await this.nextChunk();
      if (chunk === undefined) return;
      yield chunk;
    }
  }

  /**
   * Ends every stream and cancels every ListOffsets still retried for a seek or an offset
   * reset (such a seek resolves without moving anything; see `seek`): nothing the consumer
   * started keeps a timer or a call alive after this. Iterators finish. Idempotent.
   */
  close(): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    this.isClosed = true;
    this.controlVersion++;
    for (const assigned of this.partitions) this.stop(assigned);
    this.partitions = [];
    this.byKey.clear();
    this.ready.clear();
    this.unreportedFailures.clear();
    this.leftovers = [];
    this.transport.close();
    this.wake();
    return Promise.resolve();
  }

  /** The next non-empty chunk of records, or undefined once closed. */
  async nextChunk(): Promise<ConsumerRecord[] | undefined> {
    for (;;) {
      if (this.isClosed) return undefined;
      const leftover = this.takeLeftover();
      if (leftover !== undefined) return leftover;
      const failed = this.takeUnreportedFailure();
      if (failed !== undefined) throw failed;
      const assigned = this.takeReadyPartition();
      if (assigned !== undefined) {
        const records = this.decodeNextSlice(assigned);
        this.markReady(assigned); // to the back, if it has more
        if (records.length > 0) {
          this.handingOut.assigned = undefined;
          this.lastChunkStamp = { version: this.controlVersion, assigned, generation: assigned.generation };
          return records;
        }
        continue;
      }
      if (this.isEveryPartitionFinished()) return undefined;
      if (this.wakeup === undefined) {
        let resolve!: () => void;
        const promise = new Promise<void>((settle) => {
          resolve = settle;
        });
        this.wakeup = { promise, resolve };
      }
      await this.wakeup.promise;
    }
  }

  /**
   * Gives back records an iterator decoded but did not hand out (its loop ended early, or a
   * seek, pause, assign or close came between); they come first on the next read, unless
   * their partition is sought or unassigned meanwhile, or was already (`generation`, when
   * given, is the partition's generation when they were decoded).
   */
  unread(records: ConsumerRecord[], generation?: number): void {
    this.handingOut.assigned = undefined;
    const first = records[0];
    if (first === undefined || this.isClosed) return;
    const assigned = this.byKey.get(keyOf(first.topic, first.partition));
    if (assigned === undefined || (generation !== undefined && generation !== assigned.generation)) return;
    this.leftovers.push({ assigned, generation: assigned.generation, records, positionAfter: assigned.position });
    assigned.position = first.offset;
  }

  /**
   * An iterator handed out a record of the chunk `stamp` names; `next` is the chunk's record
   * after it, undefined when that was the last (`position()`).
   */
  noteHandedOut(stamp: ChunkStamp, next: ConsumerRecord | undefined): void {
    const handingOut = this.handingOut;
    handingOut.assigned = next === undefined ? undefined : stamp.assigned;
    handingOut.generation = stamp.generation;
    handingOut.nextOffset = next === undefined ? -1 : next.offset;
  }

  private takeLeftover(): ConsumerRecord[] | undefined {
    for (let index = 0; index < this.leftovers.length; index++) {
      const leftover = this.leftovers[index]!;
      if (leftover.assigned.generation !== leftover.generation || this.byKey.get(keyOf(leftover.assigned.topic, leftover.assigned.partition)) !== leftover.assigned) {
        this.leftovers.splice(index--, 1);
        continue;
      }
      if (leftover.assigned.isPaused) continue;
      this.leftovers.splice(index, 1);
      // Given back, then perhaps bounded below them (a `stopAt` since): what is at or past the bound never comes out.
      const records = this.takeBelowStop(leftover.assigned, leftover.records, leftover.positionAfter);
      if (records.length === 0) {
        index--;
        continue;
      }
      this.handingOut.assigned = undefined;
      this.lastChunkStamp = { version: this.controlVersion, assigned: leftover.assigned, generation: leftover.generation };
      return records;
    }
    return undefined;
  }

  /**
   * `records`, taken in order from the partition's position on, end at `positionAfter` (past
   * them, and past any control batch after them): moves the position there, and when that
   * reaches the partition's `stopAt` bound, drops the records at or past it and finishes the
   * partition. The position then stays at the bound, or at the first record dropped when the
   * bound was lowered under records already handed out: never back before those (a commit or
   * resume there would hand them out again). Returns the records to hand out.
   * The one place a `stopAt` bound cuts records: a reply's slice as it is decoded, and the
   * records an iterator gave back (`takeLeftover`).
   */
  private takeBelowStop(assigned: AssignedPartition, records: ConsumerRecord[], positionAfter: number): ConsumerRecord[] {
    const stopOffset = assigned.stopOffset;
    if (stopOffset === undefined || positionAfter < stopOffset) {
      assigned.position = positionAfter;
      return records;
    }
    let keptCount = records.length;
    while (keptCount > 0 && records[keptCount - 1]!.offset >= stopOffset) keptCount--;
    // The records from the bound on were not handed out; `assigned.position` is where `records` start.
    assigned.position = keptCount < records.length ? Math.max(assigned.position, stopOffset) : positionAfter;
    this.finishPartition(assigned);
    return keptCount < records.length ? records.slice(0, keptCount) : records;
  }

  // ---- Positioning and streams --------------------------------------------------------------

  /**
   * Positions the partition at `spec` and starts its stream. A failure to resolve the
   * position rejects; with `isCallerWaiting` false (assign, offset reset) nobody awaits that
   * promise, so the iterator reports the failure instead.
   */
  private async resolveAndStart(
    assigned: AssignedPartition,
    spec: OffsetSpec,
    isCallerWaiting: boolean,
    outOfRange?: { error: BrokerError; fromOffset: number },
  ): Promise<void> {
    this.stopStream(assigned);
    const generation = ++assigned.generation;
    assigned.outOfRangeAfterBuffered = undefined;
    assigned.dropUndecoded();
    assigned.position = -1;
    const abort = new AbortController();
    assigned.state = { kind: 'resolving', abort };
    let listed: ListedOffset;
    try {
      listed = typeof spec === 'number' ? { offset: spec, timestamp: -1 } : await this.transport.listOffset(assigned.topic, assigned.partition, spec, abort.signal);
    } catch (error) {
      // Overtaken (a later seek, an unassign, close; `stopStream` cancelled the call): what
      // overtook it decides the partition, so this seek ends without a say, as one whose
      // answer comes after that does below.
      if (assigned.generation !== generation) return;
      const brokerError = errorFromGrpc(error);
      assigned.state = { kind: 'failed', error: brokerError, isReported: isCallerWaiting };
      if (!isCallerWaiting) this.unreportedFailures.push({ assigned, generation });
      this.wake();
      throw brokerError;
    }
    if (assigned.generation !== generation || this.isClosed) return;
    const offset = listed.offset;
    assigned.position = offset;
    assigned.fetchOffset = offset;
    // For a time, the broker's answer is the record itself (log.proto), so nothing is filtered
    // by timestamp here: the records after it are yielded whatever their own timestamps, as in
    // Kafka, and with no record that late the position is the log end.
    // A seek ends an outage (see the onRecovered option); an offset reset after a reopen
    // found the log moved does not: the stream opened next tells onRecovered when it works.
    if (isCallerWaiting) assigned.failedAttempts = 0;
    if (assigned.stopOffset !== undefined && offset >= assigned.stopOffset) assigned.state = { kind: 'idle' }; // finished: nothing below its bound to read
    else this.startStream(assigned);
    this.wake();
    const onOffsetReset = this.onOffsetReset;
    if (outOfRange !== undefined && onOffsetReset !== undefined && (spec === 'earliest' || spec === 'latest')) {
      const reset: OffsetReset = { topic: assigned.topic, partition: assigned.partition, fromOffset: outOfRange.fromOffset, toOffset: offset, resetTo: spec, error: outOfRange.error };
      queueMicrotask(() => onOffsetReset(reset));
    }
  }

  private startStream(assigned: AssignedPartition): void {
    const generation = assigned.generation;
    let stream: SubscriptionStream;
    try {
      stream = this.transport.openSubscription(assigned.topic, assigned.partition);
    } catch (error) {
      this.onStreamFailure(assigned, generation, undefined, errorFromGrpc(error), false);
      return;
    }
    const state: FetchState & { kind: 'streaming' } = { kind: 'streaming', stream, acceptedAtMs: undefined, cancelAcceptTimer: undefined, cancelRecoveryTimer: undefined };
    assigned.state = state;
    const creditBytes = Math.max(this.windowBytes - assigned.bufferedBytes, CREDIT_BYTES_MIN);
    assigned.brokerCreditBytes = creditBytes;
    state.cancelAcceptTimer = this.clock.setTimer(this.requestTimeoutMs, () => {
      state.cancelAcceptTimer = undefined;
      if (assigned.state === state && assigned.generation === generation && !this.isClosed) this.transport.reportNotTaken(stream);
      const error = new BrokerError(
        'BROKER_UNAVAILABLE',
        `the broker did not take the subscription to ${assigned.topic}-${assigned.partition} within ${this.requestTimeoutMs} ms (requestTimeoutMs): it may be hung or unreachable`,
        { topic: assigned.topic, partition: assigned.partition },
      );
      this.onStreamFailure(assigned, generation, stream, error, true);
    });
    stream.on('metadata', () => this.startStreamAccepted(assigned, generation, state));
    stream.on('data', (response) => this.onData(assigned, stream, response));
    stream.on('error', (error) => {
      const isTransport = isTransportFailure(error);
      this.onStreamFailure(assigned, generation, stream, isTransport ? transportError(error) : errorFromGrpc(error), isTransport);
    });
    stream.on('end', () =>
      this.onStreamFailure(assigned, generation, stream, new BrokerError('BROKER_UNAVAILABLE', 'the broker ended the subscription'), true),
    );
    stream.write({
      start: {
        topic: assigned.topic,
        partition: assigned.partition,
        offset: numberToInt64(assigned.fetchOffset),
        creditBytes,
        format: 'RECORD_FORMAT_BATCHES',
        maxMessageBytes: this.maxMessageBytes,
      },
    });
  }

  /**
   * The broker took the stream (headers, or data first): no more deadline for that, and after a
   * failure, the stream counts as recovered once it has stayed up for the longest backoff
   * (`startStreamRecovered`; a partition with nothing new gets no reply, so staying up is the
   * sign).
   */
  private startStreamAccepted(assigned: AssignedPartition, generation: number, state: FetchState & { kind: 'streaming' }): void {
    if (assigned.state !== state || assigned.generation !== generation || state.acceptedAtMs !== undefined) return;
    state.acceptedAtMs = this.clock.nowMs();
    state.cancelAcceptTimer?.();
    state.cancelAcceptTimer = undefined;
    if (assigned.failedAttempts > 0) {
      state.cancelRecoveryTimer = this.clock.setTimer(this.retry.backoffMsMax, () => {
        state.cancelRecoveryTimer = undefined;
        if (assigned.state === state && assigned.generation === generation) this.startStreamRecovered(assigned);
      });
    }
  }

  private onData(assigned: AssignedPartition, stream: SubscriptionStream, response: SubscribeResponse__Output): void {
    if (assigned.state.kind !== 'streaming' || assigned.state.stream !== stream) return;
    this.startStreamAccepted(assigned, assigned.generation, assigned.state);
    let nextOffset: number;
    try {
      nextOffset = int64ToNumber(response.nextOffset, 'next_offset');
      assigned.highWatermark = int64ToNumber(response.highWatermark, 'high_watermark');
    } catch (error) {
      this.failPartition(assigned, errorFromGrpc(error));
      return;
    }
    if (response.recordBatches.length > 0) {
      assigned.chunks.push(response.recordBatches);
      assigned.bufferedBytes += response.recordBatches.length;
      assigned.brokerCreditBytes -= response.recordBatches.length;
      this.markReady(assigned);
    }
    if (nextOffset > assigned.fetchOffset) assigned.fetchOffset = nextOffset;
    if (assigned.failedAttempts > 0) this.startStreamRecovered(assigned);
    assigned.failedAttempts = 0;
    assigned.hasRefreshedMetadata = false;
    this.wake();
  }

  /** A stream reopened after failures works again: the retrying is over; tells `onRecovered`. */
  private startStreamRecovered(assigned: AssignedPartition): void {
    if (assigned.state.kind === 'streaming') {
      assigned.state.cancelRecoveryTimer?.();
      assigned.state.cancelRecoveryTimer = undefined;
    }
    const recovered: RecoveredPartition = { topic: assigned.topic, partition: assigned.partition, outageMs: this.clock.nowMs() - assigned.firstFailureMs };
    assigned.failedAttempts = 0;
    const onRecovered = this.onRecovered;
    if (onRecovered !== undefined) queueMicrotask(() => onRecovered(recovered));
  }

  /**
   * A stream broke (or could not open). Retriable and transport failures reopen from the
   * fetch offset after backoff; the rest follow the class comment.
   */
  private onStreamFailure(
    assigned: AssignedPartition,
    generation: number,
    stream: SubscriptionStream | undefined,
    error: BrokerError,
    isTransport: boolean,
  ): void {
    if (assigned.generation !== generation || this.isClosed) return;
    if (stream !== undefined && (assigned.state.kind !== 'streaming' || assigned.state.stream !== stream)) return;
    // A stream the broker took and that stayed up past the longest backoff was a recovery,
    // even if no data came (an idle partition): this failure starts a new outage with its own
    // retry budget. One the broker never took was not, however long it waited.
    const state = assigned.state;
    if (state.kind === 'streaming' && state.acceptedAtMs !== undefined && this.clock.nowMs() - state.acceptedAtMs >= this.retry.backoffMsMax) assigned.failedAttempts = 0;
    if (state.kind === 'streaming') {
      state.cancelRecoveryTimer?.();
      state.cancelAcceptTimer?.();
    }
    stream?.cancel();
    assigned.state = { kind: 'idle' };
    if (error.reason === 'OFFSET_OUT_OF_RANGE' && assigned.hasUndecoded()) {
      // The log moved (retention, or a tail cut at an unclean restart) past where the stream
      // was; what it fetched before is still due, in order, as Kafka's consumer delivers
      // what it buffered before it resets.
      assigned.outOfRangeAfterBuffered = error;
      return;
    }
    if (error.reason === 'OFFSET_OUT_OF_RANGE') {
      if (this.autoOffsetReset !== 'none') this.resolveAndStart(assigned, this.autoOffsetReset, false, { error, fromOffset: assigned.fetchOffset }).catch(() => undefined);
      else this.failPartition(assigned, outOfRangeWithoutReset(assigned, error));
      return;
    }
    if ((error.reason === 'TOPIC_NOT_FOUND' || error.reason === 'PARTITION_NOT_FOUND') && !assigned.hasRefreshedMetadata) {
      assigned.hasRefreshedMetadata = true;
      this.transport.refreshMetadata(assigned.topic).then(
        (partitionCount) => {
          if (assigned.generation !== generation) return;
          if (assigned.partition < partitionCount) this.restartLater(assigned, generation, error);
          else this.failPartition(assigned, error);
        },
        (refreshError: unknown) => {
          if (assigned.generation === generation) this.failPartition(assigned, errorFromGrpc(refreshError));
        },
      );
      return;
    }
    if (isTransport || error.retriable) {
      this.restartLater(assigned, generation, error);
      return;
    }
    this.failPartition(assigned, error);
  }

  private restartLater(assigned: AssignedPartition, generation: number, error: BrokerError): void {
    const nowMs = this.clock.nowMs();
    if (assigned.failedAttempts === 0) assigned.firstFailureMs = nowMs;
    const delayMs = backoffDelayMs(assigned.failedAttempts, this.retry, this.random);
    assigned.failedAttempts++;
    if (nowMs + delayMs - assigned.firstFailureMs > this.retry.timeoutMs) {
      this.failPartition(assigned, error);
      return;
    }
    const cancel = this.clock.setTimer(delayMs, () => {
      if (assigned.generation !== generation || this.isClosed) return;
      this.startStream(assigned);
    });
    assigned.state = { kind: 'backoff', cancel };
    const onRetry = this.onRetry;
    if (onRetry !== undefined) {
      const retrying: RetryingPartition = {
        topic: assigned.topic,
        partition: assigned.partition,
        attempts: assigned.failedAttempts,
        giveUpAtMs: assigned.firstFailureMs + this.retry.timeoutMs,
      };
      queueMicrotask(() => onRetry(error, retrying));
    }
  }

  /**
   * The partition reached its `stopOffset`: its stream stops, and what it fetched past the bound
   * is dropped (a later `stopAt` above it streams again from the position). Keeps the position.
   */
  private finishPartition(assigned: AssignedPartition): void {
    this.stopStream(assigned);
    assigned.dropUndecoded();
    assigned.outOfRangeAfterBuffered = undefined;
    this.wake();
  }

  private failPartition(assigned: AssignedPartition, error: BrokerError): void {
    this.stopStream(assigned);
    assigned.state = { kind: 'failed', error, isReported: false };
    this.unreportedFailures.push({ assigned, generation: assigned.generation });
    this.wake();
  }

  /** Ends the partition's stream, backoff or ListOffsets (with its retries), keeping its position. */
  private stopStream(assigned: AssignedPartition): void {
    const state = assigned.state;
    if (state.kind === 'resolving') {
      assigned.state = { kind: 'idle' };
      state.abort.abort(new BrokerError('INVALID_REQUEST', `the seek of ${assigned.topic}-${assigned.partition} was overtaken by a later seek, an unassign or close`));
    } else if (state.kind === 'streaming') {
      assigned.state = { kind: 'idle' };
      state.cancelRecoveryTimer?.();
      state.cancelAcceptTimer?.();
      state.stream.cancel();
    } else if (state.kind === 'backoff') {
      assigned.state = { kind: 'idle' };
      state.cancel();
    }
  }

  private stop(assigned: AssignedPartition): void {
    assigned.generation++;
    assigned.outOfRangeAfterBuffered = undefined;
    this.stopStream(assigned);
    assigned.dropUndecoded();
  }

  // ---- Handing out records ------------------------------------------------------------------

  /** The next partition in `ready` with records to decode, not paused nor failed; the others leave the queue. */
  private takeReadyPartition(): AssignedPartition | undefined {
    for (;;) {
      const assigned = this.ready.shift();
      if (assigned === undefined) return undefined;
      assigned.isQueuedReady = false;
      if (isReady(assigned)) return assigned;
    }
  }

  /** Queues the partition (at the back) if it has records to decode and is not there yet. */
  private markReady(assigned: AssignedPartition): void {
    if (assigned.isQueuedReady || !isReady(assigned)) return;
    assigned.isQueuedReady = true;
    this.ready.push(assigned);
  }

  /**
   * The oldest failure not thrown yet of a partition not paused (a paused one's failure leaves
   * the queue and comes back on `resume`), marked thrown. Failures of an older generation (the
   * partition was sought or unassigned since) are dropped.
   */
  private takeUnreportedFailure(): BrokerError | undefined {
    for (;;) {
      const failure = this.unreportedFailures.shift();
      if (failure === undefined) return undefined;
      const { assigned, generation } = failure;
      if (assigned.generation !== generation || assigned.state.kind !== 'failed' || assigned.state.isReported || assigned.isPaused) continue;
      assigned.state.isReported = true;
      return assigned.state.error;
    }
  }

  /**
   * Whether there are assigned partitions and every one is finished (`stopAt`). Starts at one
   * found unfinished before, usually still so; a full walk happens only as partitions finish.
   */
  private isEveryPartitionFinished(): boolean {
    const count = this.partitions.length;
    if (count === 0) return false;
    for (let step = 0; step < count; step++) {
      const index = (this.unfinishedIndex + step) % count;
      if (!this.partitions[index]!.isFinished()) {
        this.unfinishedIndex = index;
        return false;
      }
    }
    return true;
  }

  /**
   * Decodes the next slice of the partition's records at or after its position: at most
   * `SLICE_RECORD_COUNT_MAX` (headers included), from the reply being decoded or else the
   * oldest buffered one (CRC-checked). Empty when what it passed was below the position or in a
   * control batch. Moves the position past what it passed.
   */
  private decodeNextSlice(assigned: AssignedPartition): ConsumerRecord[] {
    const cursor = assigned.decoding ?? this.decodeNextSliceStartReply(assigned);
    const records: ConsumerRecord[] = [];
    let decodedCount = 0;
    try {
      while (decodedCount < SLICE_RECORD_COUNT_MAX) {
        const record = cursor.next();
        if (record === undefined) break;
        decodedCount += 1 + record.headers.length;
        records.push(record);
      }
    } catch (error) {
      // Records this slice decoded before the damage go out first; the cursor throws the
      // same error again on the next slice, which fails the partition then.
      if (records.length === 0) {
        assigned.decoding = undefined;
        this.failPartition(assigned, errorFromGrpc(error));
        return records;
      }
    }
    if (cursor.isDone) assigned.decoding = undefined;
    const kept = this.takeBelowStop(assigned, records, cursor.nextOffset);
    if (!assigned.hasUndecoded() && assigned.outOfRangeAfterBuffered !== undefined) this.afterBufferedRecords(assigned, assigned.outOfRangeAfterBuffered);
    return kept;
  }

  /** Takes the oldest buffered reply off the window (granting its credit back) to decode it. */
  private decodeNextSliceStartReply(assigned: AssignedPartition): RecordCursor<ConsumerRecord> {
    const bytes = assigned.chunks.shift()!;
    assigned.bufferedBytes -= bytes.length;
    this.grantCredit(assigned);
    // The broker's own bound when it checked the batch at produce time, whatever reply size
    // this consumer asked for: a stored batch it accepted must decode here too.
    const cursor = new RecordCursor(bytes, { decompressedBytesMax: DECOMPRESSED_BYTES_MAX_DEFAULT, fromOffset: assigned.position, isControlSkipped: true }, assigned.makeRecord);
    assigned.decoding = cursor;
    return cursor;
  }

  /** The last buffered record is decoded: now the OFFSET_OUT_OF_RANGE that waited for it applies. */
  private afterBufferedRecords(assigned: AssignedPartition, error: BrokerError): void {
    assigned.outOfRangeAfterBuffered = undefined;
    if (this.autoOffsetReset === 'none') this.failPartition(assigned, outOfRangeWithoutReset(assigned, error));
    else this.resolveAndStart(assigned, this.autoOffsetReset, false, { error, fromOffset: assigned.fetchOffset }).catch(() => undefined);
  }

  /** Tops the broker's credit up to the window less what is buffered, a quarter window at least at a time. */
  private grantCredit(assigned: AssignedPartition): void {
    const state = assigned.state;
    const grantBytes = this.windowBytes - assigned.bufferedBytes - assigned.brokerCreditBytes;
    if (state.kind !== 'streaming' || grantBytes < this.windowBytes / 4) return;
    state.stream.write({ creditBytes: grantBytes });
    assigned.brokerCreditBytes += grantBytes;
  }

  private wake(): void {
    const wakeup = this.wakeup;
    this.wakeup = undefined;
    wakeup?.resolve();
  }

  private ensureOpen(): void {
    if (this.isClosed) throw new BrokerError('INVALID_REQUEST', 'the consumer is closed');
  }
}

/**
 * Hand-rolled rather than an async generator: a generator's `yield` inside `for await` costs
 * several promise hops per record; this returns an already-resolved promise for every record
 * of a decoded chunk.
 */
class RecordIterator implements AsyncIterator<ConsumerRecord> {
  private readonly consumer: Consumer;
  private chunk: ConsumerRecord[] = [];
  private index = 0;
  private isDone = false;
  /** The consumer's `lastChunkStamp` for `chunk`. */
  private stamp: ChunkStamp = { version: 0, assigned: undefined, generation: 0 };

  constructor(consumer: Consumer) {
    this.consumer = consumer;
  }

  next(): Promise<IteratorResult<ConsumerRecord>> {
    if (this.index < this.chunk.length) {
      if (this.stamp.version === this.consumer.controlVersion) {
        const value = this.chunk[this.index++]!;
        this.consumer.noteHandedOut(this.stamp, this.chunk[this.index]);
        return Promise.resolve({ value, done: false });
      }
      // A seek, pause, assign or close since the chunk was decoded: the rest goes back, and
      // the consumer decides what of it still comes out (unread).
      this.consumer.unread(this.chunk.slice(this.index), this.stamp.generation);
      this.chunk = [];
      this.index = 0;
    }
    if (this.isDone) return Promise.resolve({ value: undefined, done: true });
    return this.consumer.nextChunk().then(
      (chunk) => {
        if (chunk === undefined) {
          this.isDone = true;
          return { value: undefined, done: true };
        }
        if (this.isDone) {
          // `return()` came while this call waited (a read raced against a timeout, then
          // given up): nobody reads this iterator any more, so the chunk goes back whole, for
          // the next loop. Kept here, its records after the first were lost, and the position
          // had moved past them.
          this.consumer.unread(chunk, this.consumer.lastChunkStamp.generation);
          return { value: undefined, done: true };
        }
        this.chunk = chunk;
        this.stamp = this.consumer.lastChunkStamp;
        this.index = 1;
        this.consumer.noteHandedOut(this.stamp, chunk[1]);
        return { value: chunk[0]!, done: false };
      },
      (error: unknown) => {
        this.chunk = [];
        this.index = 0;
        throw error;
      },
    );
  }

  /**
   * Ends this iteration (a `break` or a throw in the loop); undelivered records go back, also
   * those a `next()` still waiting then receives (it resolves done).
   */
  return(): Promise<IteratorResult<ConsumerRecord>> {
    this.isDone = true;
    if (this.index < this.chunk.length) this.consumer.unread(this.chunk.slice(this.index), this.stamp.generation);
    this.chunk = [];
    return Promise.resolve({ value: undefined, done: true });
  }
}

/**
 * A stream that broke below the broker's handlers, as BROKER_UNAVAILABLE whatever status
 * grpc-js chose (it reports a reset stream as INTERNAL), as the produce channel does: the
 * broker is gone or going, and that is what a report or the final failure should say.
 */
function transportError(error: unknown): BrokerError {
  const mapped = errorFromGrpc(error);
  if (mapped.reason === 'BROKER_UNAVAILABLE') return mapped;
  return new BrokerError('BROKER_UNAVAILABLE', `subscription failed: ${mapped.message}`, { cause: error });
}

/**
 * OFFSET_OUT_OF_RANGE as the iterator throws it with autoOffsetReset 'none': the broker's
 * message ("offset 62 is outside t-0's range [225, 400]") said what, not why nor what to do.
 * Keeps the reason, topic, partition and details (the offset and the log's range, which
 * `runnel consume` reads), with the broker's error as `cause`.
 */
function outOfRangeWithoutReset(assigned: AssignedPartition, error: BrokerError): BrokerError {
  const where = `${assigned.topic}-${assigned.partition}`;
  const offset = Number(error.details.offset ?? assigned.fetchOffset);
  const logStartOffset = Number(error.details.logStartOffset);
  const logEndOffset = Number(error.details.logEndOffset);
  const why =
    Number.isSafeInteger(logEndOffset) && offset > logEndOffset
      ? `${where} now ends at offset ${logEndOffset}, before offset ${offset} this consumer had reached (the topic was deleted and created again, or records were lost)`
      : Number.isSafeInteger(logStartOffset)
        ? `records of ${where} from offset ${offset} up to ${logStartOffset} were deleted (retention) before this consumer read them`
        : `offset ${offset} of ${where} is no longer in its log`;
  return new BrokerError(
    'OFFSET_OUT_OF_RANGE',
    `${why}; autoOffsetReset is 'none', so the partition stops here: seek it ('earliest', an offset or a time) to go on (${error.message})`,
    { topic: assigned.topic, partition: assigned.partition, details: error.details, cause: error },
  );
}

/** Whether the iterator may decode the partition's next slice now. */
function isReady(assigned: AssignedPartition): boolean {
  return assigned.hasUndecoded() && !assigned.isPaused && assigned.state.kind !== 'failed';
}

function keyOf(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

/** A gRPC Subscribe call as a `SubscriptionStream`. */
export function asSubscriptionStream(call: grpc.ClientDuplexStream<SubscribeRequest, SubscribeResponse__Output>): SubscriptionStream {
  return call as unknown as SubscriptionStream;
}
