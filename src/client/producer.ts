/**
 * The producer, shaped like Kafka's: records are appended to a per-partition batch, a batch
 * closes when it reaches `batchBytes` or has lingered `lingerMs` (sooner while records wait
 * for buffer space: see Memory below), and closed batches go out over one `ProduceStream`
 * per broker, many partitions per request.
 *
 * Hot path (`send`): normalise the record, pick the partition, append to the open batch,
 * return a `PendingSend` handle. No promise, no encoding, no I/O per record; a batch is
 * encoded once, when it is first sent (one allocation, one CRC). The bench in the client
 * report measured this loop (send + encode + CRC + stream write, broker excluded).
 *
 * Idempotence (on by default with acks 'all'): one InitProducerId, then per partition
 * increasing sequence numbers in the batch header, at most five batches unacknowledged per
 * partition (the broker's duplicate window). A batch that fails retriably is resent with the
 * *same* sequence after the in-flight ones before it answered (producer-partition.ts), so a
 * broker that already appended it answers with the original offsets. When the sequence state
 * cannot be repaired (a batch whose outcome is unknown failed for good, or the broker reports
 * an unexplained sequence gap) the producer bumps its epoch and restarts every partition's
 * sequences at 0, as Kafka's does (KIP-360); but first, with nothing new sent, it resends
 * every batch that holds a sequence of the old epoch and may have been appended (an attempt
 * went unanswered) under that old epoch and sequence until its outcome is known: a success
 * or duplicate acknowledges it with the broker's offsets, OUT_OF_ORDER_SEQUENCE says it was
 * not appended (it takes a new sequence after the bump), and a batch past its delivery
 * deadline fails with its outcome unknown (in the log at most once). So a bump appends no
 * record twice and reorders none within a partition (resolveThenBumpEpoch). Until the broker
 * has acknowledged one batch of a partition, that partition has one batch in flight: the
 * broker takes any sequence from a producer it does not know, and a batch sent beside a
 * refused one would overtake it. Tests: producer.test.ts ("resends a batch after a broken
 * stream with the same sequence…", "resends later in-flight batches in order…", "bumps the
 * epoch…", "resolves batches that may have been appended before an epoch bump", "sends one
 * batch at a time until…"), test/integration/client-idempotence.test.ts,
 * test/fault/broker-chaos.test.ts.
 *
 * Batches larger than a topic's max.message.bytes (the broker refuses them whole with
 * BATCH_TOO_LARGE, before the write) are split, as Kafka's producer does: a refused batch of
 * two records or more is replaced by pieces of about half its size or less, which take its
 * place and sequence range; the batches in flight behind it come back OUT_OF_ORDER_SEQUENCE
 * and are resent behind the pieces, so order and exactly-once hold. The topic's later
 * batches close at the smaller size, which doubles back toward `batchBytes` every 30 s
 * (BATCH_BYTES_REGROW_MS), so a limit raised later is used again. A record refused alone fails
 * with RECORD_TOO_LARGE, and only its send; a batch an earlier attempt may have appended is
 * not split but fails (its pieces could be appended twice). Tests: producer.test.ts
 * ("Producer batches the broker refuses as too large"),
 * test/integration/client-max-message-bytes.test.ts.
 *
 * Errors: a non-retriable error fails the records of that batch only. Retriable errors
 * (BROKER_UNAVAILABLE, ACK_TIMEOUT, LIMIT_REACHED, …) retry with capped exponential backoff
 * until `deliveryTimeoutMs` after the batch was created (without idempotence a resent batch
 * may be appended twice, and behind batches sent after it unless one batch is in flight per
 * partition: see `inFlightBatchesPerPartitionMax`); batches waiting for a producer id
 * fail at that deadline too, with InitProducerId's last failure as their last error
 * (InitProducerId retries for the client's retry budget, and is asked again after it while
 * batches wait, so a short budget cannot fail them sooner). Records waiting for their topic's
 * metadata (its first use) are bounded the same way: the load is retried while any waits, each
 * fails at its delivery deadline counted from its `send`, and a batch such a record joins keeps
 * that deadline (waitForMetadata). PRODUCER_FENCED is fatal: every
 * pending and later record fails with it. Besides each record's handle, failures reach the
 * `onError` option once per failed batch and the `ackedRecords`/`failedRecords` counters of
 * `metrics()`, so a sender need not observe every record to notice one.
 *
 * Memory: `bufferBytes` bounds an estimate of the memory held, not only record bytes: records
 * waiting for metadata or in batches not yet encoded count their bytes plus
 * RECORD_HEAP_BYTES each (objects and views cost ~230 B a record), encoded batches (sent,
 * waiting for their ack) their encoded bytes, observed records OBSERVED_RECORD_HEAP_BYTES
 * more (producer-batch.ts). Records beyond it wait in `bufferWaiters`, up to `bufferBytes`
 * more (BUFFER_WAITING_BYTES_MIN at least); a record beyond that fails at once (LIMIT_REACHED).
 * While anything waits for space, open batches stop lingering and go out as soon as they can
 * be sent (stopLingering), as Kafka's RecordAccumulator sends every batch while its buffer
 * is exhausted: a batch holds its space until it is sent, so a linger longer than
 * `bufferWaitMsMax` would otherwise fail waiting records against a healthy broker.
 *
 * Owns (single writer: this class, on the event loop): the accumulator (open and ready
 * batches), the buffer budget, the records waiting for metadata or buffer space, the producer
 * id and epoch, the retry timers. The channels belong to the transport it is given.
 */
import type { Clock } from '../common/index.js';
import { KiB, MiB } from '../common/index.js';
import { BrokerError, isBrokerError, type Reason } from '../errors/index.js';
import { BATCH_HEADER_BYTES, CHANNEL_OPTIONS, checkHeaderKeyOrThrow, DECOMPRESSED_BYTES_MAX_DEFAULT, encodeBatch, HEADERS_PER_RECORD_MAX, int64ToNumber, type LogRecord, type RecordHeader } from '../protocol/index.js';
import type { PartitionData } from '../protocol/generated/runnel/v1/PartitionData.js';
import type { ProduceRequest } from '../protocol/generated/runnel/v1/ProduceRequest.js';
import type { ProduceResponse__Output } from '../protocol/generated/runnel/v1/ProduceResponse.js';
import type { PartitionResult__Output } from '../protocol/generated/runnel/v1/PartitionResult.js';
import { clientClock } from './client-clock.js';
import { errorFromPartitionError } from './errors.js';
import type { ProduceChannel } from './produce-channel.js';
import { BufferAccount, PendingSend, ProducerBatch, RECORD_HEAP_BYTES, stampBatchSequence, type BatchOutcome } from './producer-batch.js';
import { BATCH_BYTES_REGROW_MS, ProducerPartition, type TopicBatchSizing } from './producer-partition.js';
import { Partitioner } from './partitioner.js';
import { backoffDelayMs, retryOptionsOrThrow, type RandomSource, type RetryOptions } from './retry.js';
import type { ProducerRecord, RecordMetadata } from './types.js';

export type Acks = 'none' | 'leader' | 'all';

export interface ProducerOptions {
  /** When a record counts as written: 'all' (default) every in-sync replica has it; 'leader'; 'none'. */
  acks?: Acks;
  /**
   * Default: true with acks 'all', false otherwise (as Kafka). True with other acks is rejected.
   * Without idempotence a retry may append a batch twice (an earlier attempt may have been
   * appended: ACK_TIMEOUT, a broken stream), and may put it after the batches sent behind it
   * (see `inFlightBatchesPerPartitionMax`).
   */
  idempotent?: boolean;
  /**
   * How long a batch waits for more records before it is sent. Default 5. Not while the
   * buffer is exhausted (see `bufferBytes`): while a record or a `waitForBufferSpace()` caller
   * waits for space, open batches go out as soon as they can be sent (nothing of their
   * partition queued ahead of them, room in flight), however long the linger; batches opened
   * once nobody waits linger again.
   */
  lingerMs?: number;
  /**
   * A batch closes at this many (estimated) bytes of records. Default 256 KiB, at most
   * 64 MiB (no broker takes a larger batch). For a topic whose max.message.bytes refused a
   * batch, the producer uses less from then on (see the class comment).
   */
  batchBytes?: number;
  /**
   * Memory the producer may hold for records waiting to be sent or acknowledged; records sent
   * beyond it wait (`hasBufferSpace` turns false), up to as many bytes again (at least 4 MiB), and past that
   * fail at once with LIMIT_REACHED, so memory stays bounded however fast `send` is called.
   * Counted as the memory they take, not only
   * their bytes: a record not yet encoded costs its key, value and header bytes plus ~256 B,
   * a sent batch its encoded size, an observed record (awaited, `then`) ~512 B more until its
   * batch completes. Default 32 MiB. While anyone waits for space, open batches do not wait
   * for `lingerMs` (as in Kafka, where every batch is ready once the buffer is exhausted): only
   * sending them gives their space back, so a long linger cannot hold the buffer full, nor
   * make records waiting for space fail when `bufferWaitMsMax` is shorter than it.
   */
  bufferBytes?: number;
  /** How long a record may wait for buffer space before it fails with LIMIT_REACHED. Default 60 s. */
  bufferWaitMsMax?: number;
  compression?: 'none' | 'gzip';
  /**
   * Unacknowledged batches per partition; at most 5 with idempotence. Default 5. Without
   * idempotence, more than 1 lets a batch resent after a retriable error (LIMIT_REACHED,
   * ACK_TIMEOUT, BROKER_UNAVAILABLE, …) land after a batch sent behind it, so records of a
   * partition may be stored out of send order, as with Kafka's
   * max.in.flight.requests.per.connection > 1; set 1 to keep the order at the cost of one
   * round trip per batch. With idempotence the order is always kept (producer.test.ts:
   * "keeps send order without idempotence only with one batch in flight…").
   */
  inFlightBatchesPerPartitionMax?: number;
  /**
   * A record fails when not acknowledged this long after its batch was created, whatever held
   * it: retries, a broker that does not answer, or waiting for a producer id. Default 120 s.
   */
  deliveryTimeoutMs?: number;
  /** The broker waits this long for acks before ACK_TIMEOUT (sent as timeout_ms). Default 30 s. */
  ackTimeoutMs?: number;
  /** Backoff between retries of a failed batch. */
  retry?: Partial<Pick<RetryOptions, 'backoffMsMin' | 'backoffMsMax'>>;
  /**
   * Called once for every group of records that failed together: a batch that failed for
   * good, or records that failed before reaching a batch (one call per record, or per topic
   * when a topic's metadata load failed them all, or a fatal error failed what was waiting).
   * Every failed record is reported this way exactly once, whether or not its handle is
   * observed, so a high-rate sender can notice failures without a promise per record; the
   * failed records are also counted in `metrics().failedRecords`.
   *
   * Always called from a microtask, never from inside `send()` or another producer call, so
   * it may call the producer (e.g. `close()`). An exception it throws is not caught (it
   * becomes an uncaught exception, as from an event listener).
   */
  onError?: (error: BrokerError, failed: FailedRecords) => void;
  /**
   * Called each time a batch failed with a retriable error (broker unreachable or restarting,
   * ACK_TIMEOUT, LIMIT_REACHED, …) and will be sent again after a backoff: how a caller learns
   * that records are stuck well before `deliveryTimeoutMs` fails them (`runnel produce` tells
   * the operator on stderr). Also called, for each batch waiting for it, each time
   * InitProducerId (the producer id an idempotent producer needs before its first send, and
   * again for an epoch bump) failed retriably and will be retried. And called once per topic,
   * with `partition` undefined, each time loading a topic's metadata (its partition count,
   * which a record needs before it can be batched) failed retriably and will be retried, for
   * the records waiting for it. Delivery has resumed once a record is acknowledged after such
   * a call; there is no separate "recovered" call. Not called for the resends that sequence
   * bookkeeping needs (OUT_OF_ORDER_SEQUENCE behind an earlier failure) or for the one
   * metadata refresh after TOPIC_NOT_FOUND. Called from a microtask, like `onError`.
   */
  onRetry?: (error: BrokerError, retrying: RetryingRecords) => void;
  /** Test seams. */
  clock?: Clock;
  random?: RandomSource;
}

/** Which records an `onError` call reports. */
export interface FailedRecords {
  /** The records' topic ('' for a record sent without a valid topic). */
  topic: string;
  /** The batch's partition; undefined for records that failed before a partition was chosen. */
  partition: number | undefined;
  /** How many records failed with this error. */
  recordCount: number;
}

/** Which records an `onRetry` call reports. */
export interface RetryingRecords {
  topic: string;
  /**
   * The batch's partition; undefined when the records wait for the topic's metadata, before a
   * partition was chosen (as in `FailedRecords`).
   */
  partition: number | undefined;
  /** Records in the batch that will be sent again, or records waiting for the topic's metadata. */
  recordCount: number;
  /**
   * Sends of this batch so far, the failed one included; when the failure is InitProducerId's
   * or the metadata load's (see `onRetry`), the sends before it (0 before the first producer
   * id, and always 0 for records waiting for metadata).
   */
  attempts: number;
  /**
   * When (clock ms) the batch fails with the last error if still unacknowledged: its creation
   * plus `deliveryTimeoutMs`. For records waiting for metadata, the oldest one's: its `send`
   * plus `deliveryTimeoutMs`.
   */
  deliveryDeadlineMs: number;
}

/** What the producer needs from outside; `RunnelClient` wires the gRPC versions. */
export interface ProducerTransport {
  /**
   * A new producer id (no argument) or the next epoch of `current`; retries internally, and
   * tells `onRetry` of each failure it will retry.
   */
  initProducerId(
    current: { producerId: number; producerEpoch: number } | undefined,
    onRetry?: (error: BrokerError) => void,
  ): Promise<{ producerId: number; producerEpoch: number }>;
  /** The cached partition count of `topic`, if known. */
  partitionCount(topic: string): number | undefined;
  /**
   * Fetches `topic`'s partition count from the broker (TOPIC_NOT_FOUND if it has none);
   * retries retriable failures for the client's retry budget, and tells `onRetry` of each
   * failure it will retry.
   */
  loadPartitionCount(topic: string, onRetry?: (error: BrokerError) => void): Promise<number>;
  /** The channel to the leader of `topic`/`partition`. */
  channelFor(topic: string, partition: number): ProduceChannel;
  /** Closes this producer's channels. */
  close(): void;
}

/** Counters an operator (or a test) can watch against their limits. */
export interface ProducerMetrics {
  /** Memory held against `bufferBytes` (see there): waiting for metadata, batched, in flight. */
  bufferUsedBytes: number;
  bufferBytes: number;
  /** Records waiting for metadata or for buffer space. */
  waitingRecords: number;
  inFlightBatches: number;
  /** Batch sends that failed retriably and were (or will be) sent again, since creation. */
  batchRetries: number;
  /** Epoch bumps after an unrepairable sequence state, since creation. */
  epochBumps: number;
  /** Batches split after the broker refused them as too large (max.message.bytes), since creation. */
  batchSplits: number;
  /** Records acknowledged by the broker (per `acks`), since creation. */
  ackedRecords: number;
  /** Records that failed (each also reported to `onError`), since creation. */
  failedRecords: number;
  producerId: number;
  producerEpoch: number;
}

interface ResolvedOptions {
  acks: Acks;
  isIdempotent: boolean;
  lingerMs: number;
  batchBytes: number;
  bufferBytes: number;
  bufferWaitMsMax: number;
  compression: 'none' | 'gzip';
  inFlightMax: number;
  deliveryTimeoutMs: number;
  ackTimeoutMs: number;
  retry: RetryOptions;
  onError: ((error: BrokerError, failed: FailedRecords) => void) | undefined;
  onRetry: ((error: BrokerError, retrying: RetryingRecords) => void) | undefined;
}

/** A record that could not be appended yet (metadata unknown, buffer full). */
interface WaitingRecord {
  handle: PendingSend;
  topic: string;
  explicitPartition: number | undefined;
  record: LogRecord;
  /** Estimated encoded size (see estimateRecordBytes). */
  sizeBytes: number;
  /** Whether metadata was already refreshed once for this record. */
  hasRefreshed: boolean;
  enqueuedMs: number;
  /**
   * While it waits for its topic's metadata: when its delivery timeout started, its `send`
   * (or, for a record let in after waiting for buffer space, that moment, as for a record
   * batched then). The batch it joins counts its deadline from here at the latest.
   */
  deliveryFromMs: number;
  /**
   * Which `send` this is (0 for the producer's first): flush() waits for every record sent
   * before it, which may wait again after it was let in (newestWaitingSentBefore).
   */
  sendIndex: number;
}

/**
 * The records of one topic waiting for its metadata, and the load that will let them be
 * batched (waitForMetadata). Bounded like every record: each fails at its delivery deadline.
 */
interface MetadataWait {
  /** In order of `deliveryFromMs` (send order), so the head is the first to expire. */
  records: WaitingRecord[];
  /** The last retried failure of the load: what the records fail with at their deadline. */
  lastError: BrokerError | undefined;
  /** Loads the metadata again after the transport gave up on a retriable failure. */
  cancelRetryTimer: (() => void) | undefined;
  /** Fails the head record at its delivery deadline. */
  cancelDeadlineTimer: (() => void) | undefined;
}

/** Per-record bytes beyond key, value and headers: length, attributes, deltas, lengths (varints). */
const RECORD_OVERHEAD_BYTES = 24;
/** What a record of estimated size `sizeBytes` holds in memory until encoded, beyond that size. */
const RECORD_HELD_EXTRA_BYTES = RECORD_HEAP_BYTES - RECORD_OVERHEAD_BYTES;
/** The least the records waiting for buffer space may hold, so small buffers still queue a few (waitForBuffer). */
const BUFFER_WAITING_BYTES_MIN = 4 * MiB;
/** Largest record accepted: one batch must still fit a gRPC message with room for framing. */
const RECORD_BYTES_MAX = (CHANNEL_OPTIONS['grpc.max_send_message_length'] as number) - 64 * KiB;
/**
 * Largest `batchBytes`: the broker inflates a compressed batch only up to this bound, and no
 * topic's max.message.bytes allows more. A larger batch is refused whole, or does not fit one
 * gRPC message, though each of its records alone would be taken.
 */
const BATCH_BYTES_MAX = DECOMPRESSED_BYTES_MAX_DEFAULT;
/** A request closes at this many bytes; more requests keep the broker's appends pipelined. */
const REQUEST_BYTES_MAX = 8 * MiB;
/** Partitions per request; the broker accepts 10,000. */
const REQUEST_PARTITIONS_MAX = 1_000;
/** Requests in flight per stream; the broker stops reading a stream at 64. */
const CHANNEL_IN_FLIGHT_MAX = 32;
/** Records stamped with one clock reading at most (see recordTimestampMs). */
const TIMESTAMP_USES_MAX = 64;
/** Kafka's limit for idempotence: the broker remembers five batches per producer. */
const IDEMPOTENT_IN_FLIGHT_MAX = 5;
/**
 * An attempt number past every doubling: backoffDelayMs gives the longest backoff
 * (askIdentityAgainLater, loadMetadataAgainLater: the transport's retries are behind).
 */
const RETRY_AGAIN_BACKOFF_ATTEMPT = 30;

const EMPTY_HEADERS: RecordHeader[] = Object.freeze([]) as unknown as RecordHeader[];

const ACKS_ON_WIRE = { none: 'ACKS_NONE', leader: 'ACKS_LEADER', all: 'ACKS_ALL' } as const;

/**
 * Reasons that prove the broker did not append the batch (rejected before the write). Any
 * other failure leaves the outcome open, and such a batch is never renumbered.
 */
const NOT_APPENDED_REASONS: ReadonlySet<Reason> = new Set<Reason>([
  'INVALID_REQUEST',
  'INVALID_TOPIC_NAME',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'UNSUPPORTED_COMPRESSION',
  'RECORD_TOO_LARGE',
  'BATCH_TOO_LARGE',
  'TOPIC_NOT_FOUND',
  'PARTITION_NOT_FOUND',
  'LIMIT_REACHED',
  'PRODUCER_FENCED',
  'OUT_OF_ORDER_SEQUENCE',
  'UNAUTHENTICATED',
]);

type IdState = 'none' | 'initializing' | 'ready' | 'bumping';

export class Producer {
  private readonly options: ResolvedOptions;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly transport: ProducerTransport;
  private readonly partitioner: Partitioner;
  /** Topic → partition states, indexed by partition. Bounded by the topics' partition counts. */
  private readonly topics = new Map<string, ProducerPartition[]>();
  /** Topic → the batch size its partitions use (shrinks on BATCH_TOO_LARGE); one per key of `topics`. */
  private readonly topicSizing = new Map<string, TopicBatchSizing>();
  /** Partitions that may have something to send; drain() prunes it. */
  private readonly sendable = new Set<ProducerPartition>();
  /**
   * Partitions with a batch to send whose channel has CHANNEL_IN_FLIGHT_MAX requests in flight,
   * per channel, out of `sendable` until one of those requests is answered (`onChannelRoom`).
   * Left in `sendable`, every drain (one per burst of `send` calls) walked them all to find
   * nothing sendable: with 10,000 partitions that was most of the producer's CPU.
   */
  private readonly waitingForChannel = new Map<ProduceChannel, Set<ProducerPartition>>();
  /** Partitions whose open batch closes at the next drain (lingerMs 0, or flushing). */
  private readonly closeOnDrain = new Set<ProducerPartition>();
  /** Partitions whose open batch waits for its linger timer (and nothing else). */
  private readonly lingering = new Set<ProducerPartition>();
  /**
   * Partitions whose open batch was open while someone waited for buffer space: it closes at
   * the first drain that could send it, linger or not (stopLingering).
   */
  private readonly closeOnceSendable = new Set<ProducerPartition>();
  /** Topic → the records waiting for its metadata, in send order. */
  private readonly metadataWaiters = new Map<string, MetadataWait>();
  /** Records waiting for buffer space, in send order (from `bufferWaitersHead`). */
  private bufferWaiters: WaitingRecord[] = [];
  private bufferWaitersHead = 0;
  /** What the records in `bufferWaiters` would hold once admitted; at most max(`bufferBytes`, BUFFER_WAITING_BYTES_MIN) (waitForBuffer). */
  private bufferWaitingBytes = 0;
  private cancelBufferTimer: (() => void) | undefined;
  /** Memory held against `bufferBytes`: `metadataWaitingBytes` plus every batch's `heldBytes`. */
  private readonly buffer = new BufferAccount();
  /**
   * Held by records waiting for their topic's metadata (part of `buffer`), so a sender that
   * applies back-pressure cannot pile up records while a topic's first metadata load is in
   * flight, and records of other topics cannot take their share.
   */
  private metadataWaitingBytes = 0;
  /** Whether encoding released buffer space during the current drain (waiters to admit). */
  private isBufferReleased = false;
  /** Callers of waitForBufferSpace(); bounded by the callers awaiting it. */
  private bufferSpaceWaiters: (() => void)[] = [];
  private idState: IdState = 'none';
  /** The last retried failure of the InitProducerId in progress: why batches waiting for it fail. */
  private identityLastError: BrokerError | undefined;
  /** Fails batches past their delivery deadline while they wait for a producer id (armIdentityWaitTimer). */
  private cancelIdentityWaitTimer: (() => void) | undefined;
  /** Asks for a producer id again after InitProducerId gave up (askIdentityAgainLater). */
  private cancelIdentityRetryTimer: (() => void) | undefined;
  private producerId = -1;
  private producerEpoch = -1;
  private needsEpochBump = false;
  private inFlightBatchCount = 0;
  private batchRetryCount = 0;
  private epochBumpCount = 0;
  private batchSplitCount = 0;
  private ackedRecordCount = 0;
  private failedRecordCount = 0;
  private requestSequence = 1;
  /** Records sent so far (see WaitingRecord.sendIndex). */
  private sendCount = 0;
  private flushing = 0;
  private isDrainScheduled = false;
  private isDraining = false;
  private shouldDrainAgain = false;
  private isClosed = false;
  private closePromise: Promise<void> | undefined;
  /** Whether close() has finished (its timeouts then have nothing left to fail). */
  private isCloseDone = false;
  /** Cancels the timers of close() calls with a timeout; bounded by those calls until close is done. */
  private closeTimerCancels: (() => void)[] = [];
  private fatalError: BrokerError | undefined;
  /** The first failure of a record nobody awaited, reported by the next flush(). */
  private unobservedFailure: BrokerError | undefined;
  private cachedTimestampMs = 0;
  private timestampUsesLeft = 0;
  private isTimestampResetQueued = false;

  constructor(transport: ProducerTransport, options: ProducerOptions = {}) {
    this.options = resolveOptions(options);
    this.transport = transport;
    this.clock = options.clock ?? clientClock;
    this.random = options.random ?? Math.random;
    this.partitioner = new Partitioner(this.random);
  }

  /**
   * Queues one record and returns its pending result: a promise-compatible handle (await it,
   * or `then`/`catch`) that resolves with the record's partition and offset once the broker
   * acknowledged it per `acks` (with 'all': every in-sync replica has it), or rejects with a
   * `BrokerError`. Never throws.
   *
   * The record waits first for its topic's metadata (once per topic) and for buffer space
   * when `bufferBytes` are held; a record that cannot get space within `bufferWaitMsMax`
   * fails with LIMIT_REACHED, and so does one sent while `bufferBytes` more already wait
   * (for space, or for their topic's metadata). Retries are internal (see the class comment); with
   * idempotence a retry never duplicates the record.
   *
   * Reasons: INVALID_REQUEST (bad record, closed producer), TOPIC_NOT_FOUND,
   * PARTITION_NOT_FOUND (after one metadata refresh), RECORD_TOO_LARGE (the record alone is
   * larger than the client's limit or the topic's max.message.bytes), BATCH_TOO_LARGE (only
   * for a batch an earlier attempt may have appended, which is not split; a batch too large
   * for the topic is otherwise split and resent), LIMIT_REACHED, any retriable reason once
   * `deliveryTimeoutMs` passed, PRODUCER_FENCED.
   *
   * High-rate callers need not await each record: send many, apply back-pressure with
   * `hasBufferSpace` / `waitForBufferSpace()`, and `flush()` at the end (it reports the first
   * failure nobody awaited); the `onError` option and `metrics().failedRecords` tell of
   * failures as they happen. An awaited (observed) record holds ~512 B more buffer until its
   * batch completes. A loop that never yields to the event loop queues every record in
   * memory: nothing is sent until it yields.
   */
  send(record: ProducerRecord): Promise<RecordMetadata> {
    const handle = new PendingSend();
    const refusal = this.fatalError ?? (this.isClosed ? new BrokerError('INVALID_REQUEST', 'the producer is closed') : undefined);
    if (refusal !== undefined) {
      this.failWaiting(handle, refusal, topicOf(record), partitionOf(record));
      return handle;
    }
    let logRecord: LogRecord;
    let sizeBytes: number;
    try {
      checkTopicField(record);
      logRecord = this.toLogRecord(record);
      sizeBytes = estimateRecordBytes(logRecord);
      // Refused before it waits for anything: waiting for its topic's metadata or for buffer
      // space, it would hold that space (blocking other records) only to fail later, or fail
      // as LIMIT_REACHED, which a retry cannot cure.
      if (sizeBytes > RECORD_BYTES_MAX) {
        throw new BrokerError('RECORD_TOO_LARGE', `record of about ${sizeBytes} bytes exceeds the client's ${RECORD_BYTES_MAX}-byte limit`, { topic: record.topic });
      }
    } catch (error) {
      this.failWaiting(handle, isBrokerError(error) ? error : new BrokerError('INVALID_REQUEST', String(error)), topicOf(record), partitionOf(record));
      return handle;
    }
    const topic = record.topic;
    const sendIndex = this.sendCount++;
    const partitionCount = this.metadataWaiters.has(topic) ? undefined : this.transport.partitionCount(topic);
    if (partitionCount === undefined) {
      const nowMs = this.clock.nowMs();
      this.waitForMetadata({ handle, topic, explicitPartition: record.partition, record: logRecord, sizeBytes, hasRefreshed: false, enqueuedMs: 0, deliveryFromMs: nowMs, sendIndex });
    } else if (this.bufferWaitersHead < this.bufferWaiters.length) {
      this.waitForBuffer({ handle, topic, explicitPartition: record.partition, record: logRecord, sizeBytes, hasRefreshed: false, enqueuedMs: 0, deliveryFromMs: 0, sendIndex });
    } else {
      this.place(handle, topic, record.partition, logRecord, sizeBytes, false, partitionCount, undefined, sendIndex);
    }
    return handle;
  }

  /**
   * Sends every open batch now and resolves when every record sent before the call has been
   * acknowledged or has failed. Rejects with the first failure, since the last flush, of a
   * record whose result nobody awaited (so no failure goes unreported), or with the fatal
   * error of a fenced producer. Does not retry beyond what each batch already does.
   */
  async flush(): Promise<void> {
    const sendIndexEnd = this.sendCount;
    this.flushing++;
    try {
      // Each wait queue lets its records go in queue order, so waiting for the newest one sent
      // before this call covers those ahead of it. One let go may wait again (in another
      // queue, or for its topic's metadata again after a PARTITION_NOT_FOUND), so look again
      // until none sent before this call waits; then every batch that exists is one this
      // flush must see complete.
      this.closeAllOpenBatches();
      this.drain();
      for (let newest = this.newestWaitingSentBefore(sendIndexEnd); newest.length > 0; newest = this.newestWaitingSentBefore(sendIndexEnd)) {
        await Promise.all(newest.map((waiting) => new Promise<void>((resolve) => waiting.handle.onPlaced(resolve))));
      }
      this.closeAllOpenBatches();
      const waits: Promise<void>[] = [];
      this.forEachPartition((partition) => {
        for (const batch of partition.ready) waits.push(new Promise((resolve) => batch.onDone(resolve)));
        for (const batch of partition.unacked) waits.push(new Promise((resolve) => batch.onDone(resolve)));
      });
      this.drain();
      await Promise.all(waits);
    } finally {
      this.flushing--;
    }
    const failure = this.fatalError ?? this.unobservedFailure;
    this.unobservedFailure = undefined;
    if (failure !== undefined) throw failure;
  }

  /** Whether a record sent now would be appended at once rather than wait for buffer space. */
  get hasBufferSpace(): boolean {
    return this.bufferWaitersHead === this.bufferWaiters.length && this.buffer.usedBytes < this.options.bufferBytes;
  }

  /**
   * Resolves when `hasBufferSpace` is true again: the way for a high-rate sender that does
   * not await each record to apply back-pressure (`if (!p.hasBufferSpace) await
   * p.waitForBufferSpace()`). Resolves at once when there is space, or the producer is
   * closed or failed.
   */
  waitForBufferSpace(): Promise<void> {
    if (this.hasBufferSpace || this.isClosed || this.fatalError !== undefined) return Promise.resolve();
    this.stopLingering();
    return new Promise((resolve) => this.bufferSpaceWaiters.push(resolve));
  }

  /**
   * Stops taking records, flushes, and closes the producer's streams; then the InitProducerId
   * and metadata loads it started stop retrying (a load another producer or consumer of the
   * client still waits for goes on), so a closed producer holds no timer or call. With `timeoutMs`,
   * records still unacknowledged then fail with REQUEST_TIMED_OUT instead of being waited
   * for. Rejects like `flush()` when a record nobody awaited failed. Idempotent: a later call
   * returns the same promise, and its `timeoutMs` applies as well (the earliest deadline wins).
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closePromise ??= this.closeOnce();
    // Every call's timeout counts, not only the first one's: a close() still waiting for a
    // broker that is down must give way to a later close({ timeoutMs }) (a shutdown handler,
    // RunnelClient.close), as Kafka's close(Duration) does from another thread.
    if (options.timeoutMs !== undefined && !this.isCloseDone) this.armCloseTimeout(options.timeoutMs);
    return this.closePromise;
  }

  /** Counters and gauges of this producer (buffer use against its bound, outcomes, retries, identity). */
  metrics(): ProducerMetrics {
    let waitingRecords = this.bufferWaiters.length - this.bufferWaitersHead;
    for (const wait of this.metadataWaiters.values()) waitingRecords += wait.records.length;
    return {
      bufferUsedBytes: this.buffer.usedBytes,
      bufferBytes: this.options.bufferBytes,
      waitingRecords,
      inFlightBatches: this.inFlightBatchCount,
      batchRetries: this.batchRetryCount,
      epochBumps: this.epochBumpCount,
      batchSplits: this.batchSplitCount,
      ackedRecords: this.ackedRecordCount,
      failedRecords: this.failedRecordCount,
      producerId: this.producerId,
      producerEpoch: this.producerEpoch,
    };
  }

  // ---- Accumulating -------------------------------------------------------------------------

  private toLogRecord(record: ProducerRecord): LogRecord {
    const timestamp = record.timestamp ?? this.recordTimestampMs();
    if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
      throw new BrokerError('INVALID_REQUEST', `record timestamp must be a non-negative integer (ms), got ${String(timestamp)}`);
    }
    if (record.value === undefined) {
      throw new BrokerError('INVALID_REQUEST', 'record value is required (null for a tombstone)');
    }
    return {
      key: toBytesOrNull(record.key, 'key'),
      value: toBytesOrNull(record.value, 'value'),
      headers: record.headers === undefined ? EMPTY_HEADERS : toHeaders(record.headers),
      timestamp,
    };
  }

  /**
   * The create time for a record without one. Reading the clock costs ~50 ns here, a tenth
   * of the whole per-record budget, so one reading serves up to 64 records sent in the same
   * synchronous run (microseconds apart); any later tick reads the clock again.
   */
  private recordTimestampMs(): number {
    if (this.timestampUsesLeft === 0) {
      this.cachedTimestampMs = this.clock.nowMs();
      this.timestampUsesLeft = TIMESTAMP_USES_MAX;
      if (!this.isTimestampResetQueued) {
        this.isTimestampResetQueued = true;
        queueMicrotask(this.resetTimestamp);
      }
    }
    this.timestampUsesLeft--;
    return this.cachedTimestampMs;
  }

  private readonly resetTimestamp = (): void => {
    this.timestampUsesLeft = 0;
    this.isTimestampResetQueued = false;
  };

  /**
   * Appends one record whose topic metadata is known; may divert it to a wait queue.
   * `deliveryFromMs` is given for a record that waited for metadata: when its delivery timeout
   * started (see WaitingRecord); undefined means now. `sendIndex`: see WaitingRecord.
   */
  private place(
    handle: PendingSend,
    topic: string,
    explicitPartition: number | undefined,
    record: LogRecord,
    sizeBytes: number,
    hasRefreshed: boolean,
    partitionCount: number,
    deliveryFromMs: number | undefined,
    sendIndex: number,
  ): void {
    let partitionNumber: number;
    try {
      partitionNumber = this.partitioner.partition(topic, record.key, explicitPartition, partitionCount);
    } catch (error) {
      const brokerError = error as BrokerError;
      if (brokerError.reason === 'PARTITION_NOT_FOUND' && !hasRefreshed) {
        // Partitions may have been added since the metadata was cached: refresh once.
        this.waitForMetadata({ handle, topic, explicitPartition, record, sizeBytes, hasRefreshed: true, enqueuedMs: 0, deliveryFromMs: deliveryFromMs ?? this.clock.nowMs(), sendIndex });
      } else {
        this.failWaiting(handle, brokerError, topic, explicitPartition);
      }
      return;
    }
    const heldBytes = sizeBytes + RECORD_HELD_EXTRA_BYTES;
    const usedBytes = this.buffer.usedBytes;
    if (usedBytes > 0 && usedBytes + heldBytes > this.options.bufferBytes) {
      this.waitForBuffer({ handle, topic, explicitPartition, record, sizeBytes, hasRefreshed, enqueuedMs: 0, deliveryFromMs: 0, sendIndex });
      return;
    }
    const partition = this.partitionState(topic, partitionNumber);
    const batchBytes = this.batchBytesFor(partition.sizing);
    let batch = partition.open;
    if (batch !== undefined && batch.estimatedBytes + sizeBytes > batchBytes) {
      this.closeOpenBatch(partition);
      batch = undefined;
    }
    batch ??= this.openBatch(partition);
    // Its delivery timeout started before the batch was made: the batch's deadline is its oldest record's.
    if (deliveryFromMs !== undefined && deliveryFromMs < batch.createdMs) batch.createdMs = deliveryFromMs;
    handle.place(batch, batch.append(record, sizeBytes, heldBytes));
    if (batch.estimatedBytes >= batchBytes) {
      this.closeOpenBatch(partition);
    }
  }

  private partitionState(topic: string, partitionNumber: number): ProducerPartition {
    let partitions = this.topics.get(topic);
    if (partitions === undefined) {
      partitions = [];
      this.topics.set(topic, partitions);
    }
    let partition = partitions[partitionNumber];
    if (partition === undefined) {
      let sizing = this.topicSizing.get(topic);
      if (sizing === undefined) {
        sizing = { batchBytes: this.options.batchBytes, changedAtMs: 0 };
        this.topicSizing.set(topic, sizing);
      }
      partition = new ProducerPartition(topic, partitionNumber, sizing);
      partitions[partitionNumber] = partition;
    }
    return partition;
  }

  /** The topic's batch size now, first doubling a reduced one whose interval has passed. */
  private batchBytesFor(sizing: TopicBatchSizing): number {
    if (sizing.batchBytes < this.options.batchBytes) {
      const nowMs = this.clock.nowMs();
      if (nowMs - sizing.changedAtMs >= BATCH_BYTES_REGROW_MS) {
        sizing.batchBytes = Math.min(this.options.batchBytes, sizing.batchBytes * 2);
        sizing.changedAtMs = nowMs;
      }
    }
    return sizing.batchBytes;
  }

  private openBatch(partition: ProducerPartition): ProducerBatch {
    const batch = new ProducerBatch(partition.topic, partition.partition, partition.takeOrdinal(), this.clock.nowMs(), this.buffer);
    partition.open = batch;
    if (this.options.lingerMs > 0 && this.flushing === 0) {
      partition.cancelLinger = this.clock.setTimer(this.options.lingerMs, () => {
        if (partition.open !== batch) return;
        partition.cancelLinger = undefined;
        this.closeOpenBatch(partition);
        this.drain();
      });
      if (this.isBufferExhausted) {
        // Opened while someone waits for space (a record let in ahead of others, say).
        this.closeOnceSendable.add(partition);
        this.scheduleDrain();
      } else {
        this.lingering.add(partition);
      }
    } else {
      this.closeOnDrain.add(partition);
      this.scheduleDrain();
    }
    return batch;
  }

  private closeOpenBatch(partition: ProducerPartition): void {
    const batch = partition.open;
    if (batch === undefined) return;
    partition.cancelLinger?.();
    partition.cancelLinger = undefined;
    this.lingering.delete(partition);
    this.closeOnceSendable.delete(partition);
    partition.open = undefined;
    partition.ready.push(batch);
    this.partitioner.onBatchClosed(partition.topic, partition.partition);
    this.sendable.add(partition);
    this.scheduleDrain();
  }

  /**
   * Someone starts to wait for buffer space (a record in `bufferWaiters`, or a caller of
   * waitForBufferSpace()): no open batch waits for its linger from now on. Each closes at the
   * first drain that could send it (closeOpenBatchesOnceSendable), and so does a batch opened
   * while anyone still waits (openBatch); once nobody waits, new batches linger again.
   *
   * Why: a lingering batch holds buffer space that only its send gives back (encoding, then
   * the ack). Otherwise a full buffer waits out `lingerMs`, and records waiting for space
   * fail with LIMIT_REACHED when `bufferWaitMsMax` is shorter, against a healthy broker.
   * Kafka's RecordAccumulator likewise counts every batch ready to send while threads wait
   * for memory (`exhausted`).
   * Tests: producer.test.ts ("sends open batches early while the buffer is exhausted").
   */
  private stopLingering(): void {
    if (this.lingering.size === 0) return;
    for (const partition of this.lingering) this.closeOnceSendable.add(partition);
    this.lingering.clear();
    this.scheduleDrain();
  }

  /** Whether someone waits for buffer space (see stopLingering). */
  private get isBufferExhausted(): boolean {
    return this.bufferWaitersHead < this.bufferWaiters.length || this.bufferSpaceWaiters.length > 0;
  }

  /**
   * Closes each open batch of `closeOnceSendable` that the drain could send now: no closed
   * batch of its partition waits ahead of it, and its partition has room in flight. One that
   * could not go yet keeps taking records instead of being cut small behind batches that go
   * first anyway, as a Kafka batch stays open until the sender drains it. It does not wait
   * long: the batches ahead of it are sent or answered, and each reply, retry timer or
   * producer id brings a drain that looks again. Its linger timer stays armed.
   */
  private closeOpenBatchesOnceSendable(): void {
    for (const partition of this.closeOnceSendable) {
      if (partition.ready.length > 0 || partition.unacked.length >= this.options.inFlightMax) continue;
      this.closeOpenBatch(partition); // leaves the set: deleting while iterating a Set is safe
    }
  }

  // ---- Waiting for metadata and buffer space -----------------------------------------------

  /**
   * Holds `waiting` until its topic's partition count is known. The first record of a topic
   * starts the load; the transport retries it for the client's retry budget (60 s by default,
   * 5 s in the CLI), and while records still wait after a retriable failure it is loaded again
   * (loadMetadataAgainLater), as a failed batch is sent again: what bounds a record is its
   * delivery timeout, counted from its `send`, not the retry budget (Kafka bounds this wait by
   * max.block.ms inside send(); here send() never blocks). Each record fails at its deadline
   * with the load's last error (armMetadataDeadlineTimer); each retried failure reaches
   * `onRetry`. A failure that is not retriable (TOPIC_NOT_FOUND, which the broker answers
   * from its current metadata; UNAUTHENTICATED; INVALID_REQUEST) fails them all at once.
   * Test: producer.test.ts ("Producer waiting for a topic's metadata").
   */
  private waitForMetadata(waiting: WaitingRecord): void {
    const heldBytes = waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES;
    // Records waiting for metadata hold buffer space, and may now wait up to the delivery
    // timeout: the same bound as records waiting for space (the buffer, and as much again)
    // keeps a sender that does not wait for space from queueing without limit meanwhile.
    const heldMax = this.options.bufferBytes + Math.max(this.options.bufferBytes, BUFFER_WAITING_BYTES_MIN);
    if (this.buffer.usedBytes > 0 && this.buffer.usedBytes + this.bufferWaitingBytes + heldBytes > heldMax) {
      this.failWaiting(waiting.handle, this.bufferFullError(waiting.topic), waiting.topic, waiting.explicitPartition);
      return;
    }
    this.metadataWaitingBytes += heldBytes;
    this.buffer.usedBytes += heldBytes;
    const wait = this.metadataWaiters.get(waiting.topic);
    if (wait !== undefined) {
      waitForMetadataInsert(wait.records, waiting);
      return;
    }
    const started: MetadataWait = { records: [waiting], lastError: undefined, cancelRetryTimer: undefined, cancelDeadlineTimer: undefined };
    this.metadataWaiters.set(waiting.topic, started);
    this.armMetadataDeadlineTimer(waiting.topic, started);
    this.loadMetadata(waiting.topic, started);
  }

  /** One load of `topic`'s metadata (retried by the transport) for `wait`, if it is still the topic's wait when it lands. */
  private loadMetadata(topic: string, wait: MetadataWait): void {
    this.transport.loadPartitionCount(topic, (error) => this.onMetadataRetry(topic, wait, error)).then(
      (partitionCount) => {
        if (this.metadataWaiters.get(topic) === wait) this.releaseMetadataWaiters(topic, partitionCount, undefined);
      },
      (error: unknown) => this.onMetadataLoadFailure(topic, wait, toBrokerError(error)),
    );
  }

  /** The transport gave up on the load: load again later while records wait and the failure is retriable, else fail them. */
  private onMetadataLoadFailure(topic: string, wait: MetadataWait, error: BrokerError): void {
    if (this.metadataWaiters.get(topic) !== wait) return; // its records were placed, expired or failed meanwhile
    if (error.retriable) {
      this.loadMetadataAgainLater(topic, wait, error);
      return;
    }
    this.releaseMetadataWaiters(topic, undefined, error);
  }

  /**
   * The transport retried the load for the client's retry budget: after the longest backoff
   * (with jitter) it is asked again, for as long as some record of the topic still waits.
   */
  private loadMetadataAgainLater(topic: string, wait: MetadataWait, error: BrokerError): void {
    this.onMetadataRetry(topic, wait, error);
    const delayMs = backoffDelayMs(RETRY_AGAIN_BACKOFF_ATTEMPT, this.options.retry, this.random);
    wait.cancelRetryTimer = this.clock.setTimer(delayMs, () => {
      wait.cancelRetryTimer = undefined;
      if (this.metadataWaiters.get(topic) === wait) this.loadMetadata(topic, wait);
    });
  }

  /** A retried failure of the load: the waiting records' last error, and `onRetry` hears of it. */
  private onMetadataRetry(topic: string, wait: MetadataWait, error: BrokerError): void {
    if (this.metadataWaiters.get(topic) !== wait) return;
    wait.lastError = error;
    const onRetry = this.options.onRetry;
    const head = wait.records[0];
    if (onRetry === undefined || head === undefined) return;
    const retrying: RetryingRecords = {
      topic,
      partition: undefined,
      recordCount: wait.records.length,
      attempts: 0,
      deliveryDeadlineMs: head.deliveryFromMs + this.options.deliveryTimeoutMs,
    };
    queueMicrotask(() => onRetry(error, retrying));
  }

  /**
   * One timer per waiting topic, for its oldest record: fails the records past their delivery
   * deadline, then re-arms for the next. A millisecond late, as in armReplyTimer: timers may
   * fire early by that much.
   */
  private armMetadataDeadlineTimer(topic: string, wait: MetadataWait): void {
    const head = wait.records[0];
    if (head === undefined) return;
    const deadlineMs = head.deliveryFromMs + this.options.deliveryTimeoutMs;
    wait.cancelDeadlineTimer = this.clock.setTimer(Math.max(0, deadlineMs - this.clock.nowMs()) + 1, () => {
      wait.cancelDeadlineTimer = undefined;
      if (this.metadataWaiters.get(topic) !== wait) return;
      this.armMetadataDeadlineTimerExpire(topic, wait);
    });
  }

  /** Fails `wait`'s records whose delivery deadline has passed; ends the wait when none is left. */
  private armMetadataDeadlineTimerExpire(topic: string, wait: MetadataWait): void {
    const nowMs = this.clock.nowMs();
    let expiredCount = 0;
    while (expiredCount < wait.records.length && wait.records[expiredCount]!.deliveryFromMs + this.options.deliveryTimeoutMs <= nowMs) expiredCount++;
    const expired = wait.records.splice(0, expiredCount);
    this.releaseMetadataHeldBytes(expired);
    if (wait.records.length === 0) this.endMetadataWait(topic, wait);
    else this.armMetadataDeadlineTimer(topic, wait);
    this.failWaitingGroup(expired, metadataDeliveryTimeout(topic, wait.lastError));
    this.admitBufferWaiters();
    this.notifyBufferSpace();
  }

  /** Removes `wait` and stops its timers; a load still running for it is ignored when it lands. */
  private endMetadataWait(topic: string, wait: MetadataWait): void {
    if (this.metadataWaiters.get(topic) === wait) this.metadataWaiters.delete(topic);
    wait.cancelRetryTimer?.();
    wait.cancelRetryTimer = undefined;
    wait.cancelDeadlineTimer?.();
    wait.cancelDeadlineTimer = undefined;
  }

  /** Gives back the buffer space records waiting for metadata held. */
  private releaseMetadataHeldBytes(records: WaitingRecord[]): void {
    for (const waiting of records) {
      const heldBytes = waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES;
      this.metadataWaitingBytes -= heldBytes;
      this.buffer.usedBytes -= heldBytes;
    }
  }

  private releaseMetadataWaiters(topic: string, partitionCount: number | undefined, error: BrokerError | undefined): void {
    const wait = this.metadataWaiters.get(topic);
    const list = wait?.records ?? [];
    if (wait !== undefined) this.endMetadataWait(topic, wait);
    this.releaseMetadataHeldBytes(list);
    const failure = error ?? (partitionCount === undefined ? new BrokerError('TOPIC_NOT_FOUND', `topic ${topic} not found`, { topic }) : this.fatalError);
    if (failure !== undefined) {
      this.failWaitingGroup(list, failure);
      this.admitBufferWaiters();
      this.notifyBufferSpace();
      return;
    }
    for (const waiting of list) {
      if (waiting.handle.batch !== undefined) continue;
      if (this.bufferWaitersHead < this.bufferWaiters.length) {
        this.waitForBuffer(waiting);
      } else {
        this.place(waiting.handle, topic, waiting.explicitPartition, waiting.record, waiting.sizeBytes, waiting.hasRefreshed, partitionCount!, waiting.deliveryFromMs, waiting.sendIndex);
      }
    }
    // The space these records held may let records of other topics in, which waited for it.
    this.admitBufferWaiters();
    this.notifyBufferSpace();
  }

  private bufferFullError(topic: string): BrokerError {
    return new BrokerError(
      'LIMIT_REACHED',
      `the producer's buffer (bufferBytes ${this.options.bufferBytes}) is full and as much again (at least ${BUFFER_WAITING_BYTES_MIN}) waits for it: await the send promises, or \`if (!producer.hasBufferSpace) await producer.waitForBufferSpace()\`, before sending more`,
      { topic },
    );
  }

  private waitForBuffer(waiting: WaitingRecord): void {
    const heldBytes = waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES;
    if (this.bufferWaitersHead < this.bufferWaiters.length && this.bufferWaitingBytes + heldBytes > Math.max(this.options.bufferBytes, BUFFER_WAITING_BYTES_MIN)) {
      // As many bytes again wait already: a sender that does not wait for space would queue
      // without bound. It hears of it now, per record (and through onError / metrics).
      this.failWaiting(waiting.handle, this.bufferFullError(waiting.topic), waiting.topic, waiting.explicitPartition);
      return;
    }
    waiting.enqueuedMs = this.clock.nowMs();
    this.bufferWaiters.push(waiting);
    this.bufferWaitingBytes += heldBytes;
    this.armBufferTimer();
    this.stopLingering();
  }

  /** Appends waiting records while buffer space allows, in order. */
  private admitBufferWaiters(): void {
    while (this.bufferWaitersHead < this.bufferWaiters.length) {
      const waiting = this.bufferWaiters[this.bufferWaitersHead]!;
      const usedBytes = this.buffer.usedBytes;
      const fits = usedBytes === 0 || usedBytes + waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES <= this.options.bufferBytes;
      if (!fits) break;
      this.bufferWaiters[this.bufferWaitersHead++] = undefined as unknown as WaitingRecord;
      this.bufferWaitingBytes -= waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES;
      const partitionCount = this.transport.partitionCount(waiting.topic);
      if (partitionCount === undefined) {
        waiting.deliveryFromMs = this.clock.nowMs(); // let in now, as a record batched now
        this.waitForMetadata(waiting);
      } else {
        this.place(waiting.handle, waiting.topic, waiting.explicitPartition, waiting.record, waiting.sizeBytes, waiting.hasRefreshed, partitionCount, undefined, waiting.sendIndex);
      }
    }
    this.compactBufferWaiters();
  }

  private compactBufferWaiters(): void {
    if (this.bufferWaitersHead === this.bufferWaiters.length) {
      this.bufferWaiters = [];
      this.bufferWaitersHead = 0;
      this.cancelBufferTimer?.();
      this.cancelBufferTimer = undefined;
    } else if (this.bufferWaitersHead > 1024 && this.bufferWaitersHead * 2 > this.bufferWaiters.length) {
      this.bufferWaiters = this.bufferWaiters.slice(this.bufferWaitersHead);
      this.bufferWaitersHead = 0;
    }
  }

  /** One timer, for the oldest waiter: records waiting past `bufferWaitMsMax` fail. */
  private armBufferTimer(): void {
    if (this.cancelBufferTimer !== undefined) return;
    const head = this.bufferWaiters[this.bufferWaitersHead];
    if (head === undefined) return;
    const delayMs = Math.max(0, head.enqueuedMs + this.options.bufferWaitMsMax - this.clock.nowMs());
    this.cancelBufferTimer = this.clock.setTimer(delayMs, () => {
      this.cancelBufferTimer = undefined;
      const nowMs = this.clock.nowMs();
      while (this.bufferWaitersHead < this.bufferWaiters.length) {
        const waiting = this.bufferWaiters[this.bufferWaitersHead]!;
        if (waiting.enqueuedMs + this.options.bufferWaitMsMax > nowMs) break;
        this.bufferWaiters[this.bufferWaitersHead++] = undefined as unknown as WaitingRecord;
        this.bufferWaitingBytes -= waiting.sizeBytes + RECORD_HELD_EXTRA_BYTES;
        this.failWaiting(
          waiting.handle,
          new BrokerError('LIMIT_REACHED', `no buffer space within ${this.options.bufferWaitMsMax} ms (bufferBytes ${this.options.bufferBytes})`, {
            topic: waiting.topic,
          }),
          waiting.topic,
          waiting.explicitPartition,
        );
      }
      this.compactBufferWaiters();
      this.armBufferTimer();
    });
  }

  /** The last record of each wait queue (in queue order) sent before `sendIndexEnd`. */
  private newestWaitingSentBefore(sendIndexEnd: number): WaitingRecord[] {
    const newest: WaitingRecord[] = [];
    for (const wait of this.metadataWaiters.values()) {
      const last = wait.records.findLast((waiting) => waiting.sendIndex < sendIndexEnd);
      if (last !== undefined) newest.push(last);
    }
    for (let index = this.bufferWaiters.length - 1; index >= this.bufferWaitersHead; index--) {
      const waiting = this.bufferWaiters[index]!;
      if (waiting.sendIndex < sendIndexEnd) {
        newest.push(waiting);
        break;
      }
    }
    return newest;
  }

  private closeAllOpenBatches(): void {
    this.forEachPartition((partition) => {
      if (partition.open !== undefined) this.closeOpenBatch(partition);
    });
  }

  private *allWaiting(): Generator<WaitingRecord> {
    for (const wait of this.metadataWaiters.values()) yield* wait.records;
    for (let index = this.bufferWaitersHead; index < this.bufferWaiters.length; index++) yield this.bufferWaiters[index]!;
  }

  /** Fails one record that never reached a batch, and reports it. */
  private failWaiting(handle: PendingSend, error: BrokerError, topic: string, partition: number | undefined): void {
    if (!handle.failUnplaced(error)) this.unobservedFailure ??= error;
    this.reportFailure(error, topic, partition, 1);
  }

  /** Fails waiting records that never reached a batch, reported once per topic. */
  private failWaitingGroup(list: Iterable<WaitingRecord>, error: BrokerError): void {
    const countByTopic = new Map<string, number>();
    for (const waiting of list) {
      if (waiting.handle.batch !== undefined) continue;
      if (!waiting.handle.failUnplaced(error)) this.unobservedFailure ??= error;
      countByTopic.set(waiting.topic, (countByTopic.get(waiting.topic) ?? 0) + 1);
    }
    for (const [topic, count] of countByTopic) this.reportFailure(error, topic, undefined, count);
  }

  /** Counts failed records and tells `onError`, from a microtask (never re-entrant). */
  private reportFailure(error: BrokerError, topic: string, partition: number | undefined, recordCount: number): void {
    this.failedRecordCount += recordCount;
    const onError = this.options.onError;
    if (onError !== undefined) queueMicrotask(() => onError(error, { topic, partition, recordCount }));
  }

  // ---- Sending ------------------------------------------------------------------------------

  private scheduleDrain(): void {
    if (this.isDrainScheduled) return;
    this.isDrainScheduled = true;
    // A microtask, so every record appended in the current synchronous run shares the drain.
    queueMicrotask(() => {
      this.isDrainScheduled = false;
      this.drain();
    });
  }

  /**
   * Sends what can be sent: for every partition with work, the next batch (resends first),
   * one batch per partition per request, requests grouped per channel. Re-entrant calls (a
   * channel that fails synchronously) are folded into one more pass.
   */
  private drain(): void {
    if (this.isDraining) {
      this.shouldDrainAgain = true;
      return;
    }
    this.isDraining = true;
    try {
      do {
        this.shouldDrainAgain = false;
        this.drainOnce();
      } while (this.shouldDrainAgain);
    } finally {
      this.isDraining = false;
    }
    if (this.isBufferReleased) {
      // Encoded batches hold less than their records did: room for waiting records.
      this.isBufferReleased = false;
      this.admitBufferWaiters();
      this.notifyBufferSpace();
    }
  }

  private drainOnce(): void {
    for (const partition of this.closeOnDrain) this.closeOpenBatch(partition);
    this.closeOnDrain.clear();
    this.closeOpenBatchesOnceSendable();
    if (this.fatalError !== undefined || this.sendable.size === 0) return;
    if (this.options.isIdempotent && this.idState !== 'ready') {
      if (this.idState === 'none') this.initProducerId();
      this.armIdentityWaitTimer();
      return;
    }
    const nowMs = this.clock.nowMs();
    if (this.needsEpochBump) {
      this.resolveThenBumpEpoch(nowMs);
      return;
    }
    for (;;) {
      // The last pass may have sent the batches ahead of such an open one.
      if (this.closeOnceSendable.size > 0) this.closeOpenBatchesOnceSendable();
      const requests = new Map<ProduceChannel, RequestBuilder>();
      let isAnyAdded = false;
      for (const partition of this.sendable) {
        if (this.needsEpochBump) break;
        isAnyAdded = this.addNextBatch(partition, requests, nowMs) || isAnyAdded;
      }
      for (const [channel, request] of requests) this.sendRequest(channel, request);
      if (!isAnyAdded || this.needsEpochBump) break;
    }
    if (this.needsEpochBump) this.resolveThenBumpEpoch(nowMs);
  }

  /** Adds `partition`'s next batch to its channel's request; returns whether one was added. */
  private addNextBatch(partition: ProducerPartition, requests: Map<ProduceChannel, RequestBuilder>, nowMs: number): boolean {
    const next = partition.nextToSend(nowMs, this.options.inFlightMax, this.options.isIdempotent);
    if (next === 'needs-epoch-bump') {
      this.needsEpochBump = true;
      return false;
    }
    if (next === undefined) {
      this.sendable.delete(partition);
      // Waiting out a backoff with nothing in flight: only a timer can wake it.
      if (partition.isRecovering && partition.inFlight === 0 && partition.cancelRetryTimer === undefined) this.armRetryTimer(partition);
      return false;
    }
    if (next.createdMs + this.options.deliveryTimeoutMs <= nowMs) {
      // Past its deadline: it fails here, never goes on the wire. A resend (its backoff ended
      // after the deadline) would be past due at once, and its reply timer would give up on
      // the whole stream a millisecond later, failing every other partition's request on it
      // (producer.test.ts: "fails a batch whose backoff ends past its delivery deadline…").
      const error = deliveryTimeout(next, next.lastError);
      if (next.attempts > 0 || next.baseSequence >= 0) {
        // Sent before (its outcome may be unknown: failBatch then asks for an epoch bump), or
        // a piece of a split batch, never sent but holding part of the split batch's
        // sequence range. It leaves like a batch that failed for good: the recovery
        // renumbers the batches behind it over the gap, if it was certainly not appended.
        this.failBatch(partition, next, error);
      } else {
        // Never sent, so no sequence was used: it leaves without a gap.
        partition.remove(next);
        this.completeBatch(next, { kind: 'failed', error });
      }
      return true;
    }
    return this.addToRequest(partition, next, requests);
  }

  /** Adds `batch`, due now, to its channel's request; returns whether it was added or failed. */
  private addToRequest(partition: ProducerPartition, next: ProducerBatch, requests: Map<ProduceChannel, RequestBuilder>): boolean {
    let channel: ProduceChannel;
    try {
      channel = this.transport.channelFor(partition.topic, partition.partition);
    } catch (error) {
      // No channel can be had (the client was closed under a live producer): fail, never throw from a timer.
      this.failBatch(partition, next, toBrokerError(error));
      return true;
    }
    let request = requests.get(channel);
    if (request?.has(partition) === true) return false;
    // A large batch (up to 64 MiB) goes in a request of its own rather than on top of others:
    // together they could pass the gRPC message limit, and the stream would refuse them all.
    const sizeBytes = next.bytes?.length ?? BATCH_HEADER_BYTES + next.estimatedBytes;
    if (request !== undefined && request.sizeBytes + sizeBytes > REQUEST_BYTES_MAX) {
      this.sendRequest(channel, request);
      requests.delete(channel);
      request = undefined;
    }
    if (request === undefined) {
      if (channel.inFlightCount >= CHANNEL_IN_FLIGHT_MAX) {
        this.waitForChannel(partition, channel);
        return false;
      }
      request = new RequestBuilder();
      requests.set(channel, request);
    }
    partition.markSent(next, this.options.isIdempotent);
    try {
      this.stampBytes(next);
    } catch (error) {
      partition.markAnswered(next);
      this.failBatch(partition, next, toBrokerError(error));
      return true;
    }
    request.add(partition, next);
    if (request.sizeBytes >= REQUEST_BYTES_MAX || request.partitionCount >= REQUEST_PARTITIONS_MAX) {
      this.sendRequest(channel, request);
      requests.delete(channel);
    }
    return true;
  }

  /**
   * Encodes the batch on its first send, which drops its records (only the encoded bytes are
   * held from then on); restamps it when its epoch or sequence changed.
   */
  private stampBytes(batch: ProducerBatch): void {
    const isIdempotent = this.options.isIdempotent;
    if (batch.bytes === undefined) {
      const bytes = encodeBatch({
        records: batch.records,
        compression: this.options.compression,
        producerId: isIdempotent ? this.producerId : -1,
        producerEpoch: isIdempotent ? this.producerEpoch : -1,
        baseSequence: isIdempotent ? batch.baseSequence : -1,
      });
      if (batch.setEncoded(bytes) > 0) this.isBufferReleased = true;
    } else if (
      isIdempotent &&
      (batch.stampedSequence !== batch.baseSequence || batch.stampedEpoch !== this.producerEpoch || batch.stampedProducerId !== this.producerId)
    ) {
      stampBatchSequence(batch.bytes, this.producerId, this.producerEpoch, batch.baseSequence);
    }
    batch.stampedProducerId = isIdempotent ? this.producerId : -1;
    batch.stampedEpoch = isIdempotent ? this.producerEpoch : -1;
    batch.stampedSequence = batch.baseSequence;
  }

  private sendRequest(channel: ProduceChannel, builder: RequestBuilder): void {
    const request: ProduceRequest = {
      sequence: this.requestSequence++,
      acks: ACKS_ON_WIRE[this.options.acks],
      timeoutMs: this.options.ackTimeoutMs,
      topics: builder.topicData(),
    };
    this.inFlightBatchCount += builder.batches.length;
    this.armReplyTimer(channel, builder);
    channel.send(request, (error, response) => {
      // Before onReply's drain, so that drain sends what waited for this room.
      this.onChannelRoom(channel);
      this.onReply(builder, error, response);
    });
  }

  /** `partition` waits, out of `sendable`, until a request on `channel` is answered. */
  private waitForChannel(partition: ProducerPartition, channel: ProduceChannel): void {
    this.sendable.delete(partition);
    let waiting = this.waitingForChannel.get(channel);
    if (waiting === undefined) {
      waiting = new Set();
      this.waitingForChannel.set(channel, waiting);
    }
    waiting.add(partition);
  }

  /**
   * A request on `channel` was answered (or failed): every partition waiting for it may send
   * again, in the order they began to wait, and the drain that follows parks again those that
   * still find it full. Each request answered costs one walk of them, not each drain.
   */
  private onChannelRoom(channel: ProduceChannel): void {
    const waiting = this.waitingForChannel.get(channel);
    if (waiting === undefined) return;
    this.waitingForChannel.delete(channel);
    for (const partition of waiting) this.sendable.add(partition);
  }

  /**
   * A request whose oldest batch reaches its delivery deadline unanswered gives up on its
   * stream (`reset`): a broker that accepts the connection but never answers (stopped, hung)
   * would otherwise hold the request, and its records, forever, since the deadline is checked
   * when a reply comes. Every request on the stream then fails with REQUEST_TIMED_OUT: batches
   * past their deadline fail for good, the others are resent on a new stream. The timer fires
   * a millisecond late, as timers may fire early by that much and the batch must be past due.
   */
  private armReplyTimer(channel: ProduceChannel, builder: RequestBuilder): void {
    let createdMsMin = Number.POSITIVE_INFINITY;
    for (const batch of builder.batches) createdMsMin = Math.min(createdMsMin, batch.createdMs);
    const deadlineMs = createdMsMin + this.options.deliveryTimeoutMs;
    builder.cancelReplyTimer = this.clock.setTimer(Math.max(0, deadlineMs - this.clock.nowMs()) + 1, () => {
      builder.cancelReplyTimer = undefined;
      channel.reset(new BrokerError('REQUEST_TIMED_OUT', `the broker sent no produce reply within the delivery timeout (${this.options.deliveryTimeoutMs} ms)`));
    });
  }

  private onReply(builder: RequestBuilder, error: BrokerError | undefined, response: ProduceResponse__Output | undefined): void {
    builder.cancelReplyTimer?.();
    builder.cancelReplyTimer = undefined;
    this.inFlightBatchCount -= builder.batches.length;
    const results = response === undefined ? undefined : indexResults(response);
    for (const batch of builder.batches) {
      const partition = this.partitionState(batch.topic, batch.partition);
      partition.markAnswered(batch);
      this.sendable.add(partition);
      if (batch.outcome !== undefined) continue; // failed meanwhile (fatal error, close timeout)
      if (error !== undefined) {
        this.onBatchError(partition, batch, error, true);
        continue;
      }
      const result = results?.get(batch.topic)?.get(batch.partition);
      if (result === undefined) {
        this.onBatchError(partition, batch, new BrokerError('BROKER_UNAVAILABLE', 'the produce reply has no result for this partition'), true);
      } else if (result.error !== null && result.error !== undefined) {
        const batchError = errorFromPartitionError(result.error, batch.topic, batch.partition);
        this.onBatchError(partition, batch, batchError, !NOT_APPENDED_REASONS.has(batchError.reason));
      } else {
        this.onBatchAcked(partition, batch, result);
      }
    }
    this.drain();
  }

  /**
   * The acknowledgement point. Durability is what the broker promised for `acks`: with 'all'
   * every in-sync replica has the batch (one node: the leader appended it, in the page cache
   * unless the topic flushes on every write); with 'leader' the leader appended it; with
   * 'none' only that the request was read (offsets are -1).
   */
  private onBatchAcked(partition: ProducerPartition, batch: ProducerBatch, result: PartitionResult__Output): void {
    let outcome: BatchOutcome;
    try {
      outcome = {
        kind: 'acked',
        baseOffset: int64ToNumber(result.baseOffset, 'base_offset'),
        logAppendTimeMs: int64ToNumber(result.logAppendTimeMs, 'log_append_time_ms'),
      };
    } catch (error) {
      outcome = { kind: 'failed', error: toBrokerError(error) };
    }
    partition.onAcked(batch);
    this.completeBatch(batch, outcome);
  }

  /** Decides between resending `batch` (same sequence), waiting for an epoch bump, and failing it. */
  private onBatchError(partition: ProducerPartition, batch: ProducerBatch, error: BrokerError, mayBeAppended: boolean): void {
    if (mayBeAppended) batch.mayBeAppended = true;
    batch.lastError = error;
    const nowMs = this.clock.nowMs();
    const isPastDeadline = nowMs >= batch.createdMs + this.options.deliveryTimeoutMs;
    if (error.reason === 'PRODUCER_FENCED') {
      this.fail(error);
      return;
    }
    if (this.options.isIdempotent && error.reason === 'OUT_OF_ORDER_SEQUENCE') {
      partition.onNotAppended(batch);
      if (isPastDeadline) {
        this.failBatch(partition, batch, error);
      } else if (partition.failureCount > batch.failureCountAtSend) {
        // Expected: an earlier batch of this partition failed after this one was sent.
        this.retryLater(partition, 0);
      } else {
        // The broker's sequence state differs from ours for no reason we know: restart
        // sequences under a new epoch, then resend (the batch was not appended).
        this.needsEpochBump = true;
        this.retryLater(partition, 0);
      }
      return;
    }
    if (error.reason === 'BATCH_TOO_LARGE') {
      // Larger than the topic's max.message.bytes, refused before the write. One record is
      // too large on its own: only its send fails. More are split, unless an earlier attempt
      // may have been appended (the size is checked before duplicates: the pieces could be
      // appended a second time); such a batch fails below with the broker's error, and its
      // unknown outcome makes failBatch ask for an epoch bump.
      if (batch.recordCount === 1) {
        this.failBatch(partition, batch, recordTooLarge(batch, error));
        return;
      }
      if (!batch.mayBeAppended && !isPastDeadline && this.splitBatch(partition, batch, error)) return;
    }
    if ((error.reason === 'TOPIC_NOT_FOUND' || error.reason === 'PARTITION_NOT_FOUND') && !batch.hasRefreshedMetadata && !isPastDeadline) {
      batch.hasRefreshedMetadata = true;
      this.transport.loadPartitionCount(batch.topic).catch(() => undefined);
      this.retryLater(partition, backoffDelayMs(0, this.options.retry, this.random));
      return;
    }
    if (error.retriable && !isPastDeadline) {
      this.reportRetry(batch, error);
      this.retryLater(partition, backoffDelayMs(batch.attempts - 1, this.options.retry, this.random));
      return;
    }
    this.failBatch(partition, batch, isPastDeadline && error.retriable ? deliveryTimeout(batch, error) : error);
  }

  /** Tells `onRetry`, from a microtask (never re-entrant). */
  private reportRetry(batch: ProducerBatch, error: BrokerError): void {
    const onRetry = this.options.onRetry;
    if (onRetry === undefined) return;
    const retrying: RetryingRecords = {
      topic: batch.topic,
      partition: batch.partition,
      recordCount: batch.recordCount,
      attempts: batch.attempts,
      deliveryDeadlineMs: batch.createdMs + this.options.deliveryTimeoutMs,
    };
    queueMicrotask(() => onRetry(error, retrying));
  }

  /**
   * Replaces `batch`, which the broker refused as larger than the topic's max.message.bytes
   * (so it certainly did not append it), by smaller batches holding its records in order,
   * and makes every later batch of the topic smaller. The broker's per-partition error does
   * not carry its limit, so each split halves at least: the topic's batch size becomes half
   * of `batch`'s size (or stays smaller), and `batch` is cut into pieces of about that size.
   * A piece still too large is split again when refused, down to single records.
   *
   * The pieces take `batch`'s place, ordinal and sequence range in the partition, and the
   * partition recovers (ProducerPartition.replaceBySplit): the batches in flight behind it
   * answer OUT_OF_ORDER_SEQUENCE, which is then expected, and are resent behind the pieces.
   * Nothing is sent or awaited here. Returns false, having changed nothing, when the records
   * cannot be decoded again (a bug in the encoder: the batch then fails with `refusal`).
   */
  private splitBatch(partition: ProducerPartition, batch: ProducerBatch, refusal: BrokerError): boolean {
    let records: LogRecord[];
    try {
      records = batch.decodeRecords();
    } catch {
      return false;
    }
    const sizes = records.map(estimateRecordBytes);
    const totalBytes = sizes.reduce((sum, size) => sum + size, 0);
    const sizing = partition.sizing;
    sizing.batchBytes = Math.max(1, Math.min(sizing.batchBytes, Math.floor(totalBytes / 2)));
    sizing.changedAtMs = this.clock.nowMs();
    const pieceCount = Math.min(records.length, Math.max(2, Math.ceil(totalBytes / sizing.batchBytes)));
    // Each record goes to the slice its middle falls in, so the pieces hold about equal bytes
    // (a refused batch of n equal records becomes two of n/2, never n−1 and 1); the first and
    // the last record always fall in different slices, so there are at least two pieces.
    const pieces: ProducerBatch[] = [];
    let piece: ProducerBatch | undefined;
    let pieceSlice = -1;
    let bytesBefore = 0;
    for (let index = 0; index < records.length; index++) {
      const size = sizes[index]!;
      const slice = Math.min(pieceCount - 1, Math.floor(((bytesBefore + size / 2) * pieceCount) / totalBytes));
      bytesBefore += size;
      if (piece === undefined || slice !== pieceSlice) {
        // Created when `batch` was: the delivery timeout still counts from then.
        piece = new ProducerBatch(batch.topic, batch.partition, batch.ordinal, batch.createdMs, this.buffer);
        piece.hasRefreshedMetadata = batch.hasRefreshedMetadata;
        piece.lastError = refusal;
        pieces.push(piece);
        pieceSlice = slice;
      }
      piece.append(records[index]!, size, size + RECORD_HELD_EXTRA_BYTES);
    }
    // From here the pieces hold the records and their buffer charge; `batch` lets go of both.
    partition.replaceBySplit(batch, pieces);
    batch.handOver(pieces);
    this.batchSplitCount++;
    return true;
  }

  private retryLater(partition: ProducerPartition, backoffMs: number): void {
    this.batchRetryCount++;
    partition.onRetry(this.clock.nowMs(), backoffMs);
    this.armRetryTimer(partition);
  }

  /** Wakes the partition when its backoff has passed. */
  private armRetryTimer(partition: ProducerPartition): void {
    partition.cancelRetryTimer?.();
    partition.cancelRetryTimer = this.clock.setTimer(Math.max(0, partition.retryAtMs - this.clock.nowMs()), () => {
      partition.cancelRetryTimer = undefined;
      // Timers may fire a millisecond before the wall clock says they are due: the backoff
      // is over when the timer fires, so a recheck of the time must not put it back to sleep.
      partition.retryAtMs = Math.min(partition.retryAtMs, this.clock.nowMs());
      this.sendable.add(partition);
      this.drain();
    });
  }

  private failBatch(partition: ProducerPartition, batch: ProducerBatch, error: BrokerError): void {
    partition.onFailed(batch);
    this.sendable.add(partition);
    if (this.options.isIdempotent && batch.mayBeAppended && batch.baseSequence >= 0) {
      // Its sequence may be in the broker's log: later batches cannot take it over.
      this.needsEpochBump = true;
    }
    this.completeBatch(batch, { kind: 'failed', error });
  }

  /** Settles `batch` (which releases its buffer charge), counts and reports the outcome. */
  private completeBatch(batch: ProducerBatch, outcome: BatchOutcome): void {
    const hasUnobserved = batch.complete(outcome);
    if (outcome.kind === 'acked') {
      this.ackedRecordCount += batch.recordCount;
    } else {
      if (hasUnobserved) this.unobservedFailure ??= outcome.error;
      this.reportFailure(outcome.error, batch.topic, batch.partition, batch.recordCount);
    }
    this.admitBufferWaiters();
    this.notifyBufferSpace();
  }

  private notifyBufferSpace(): void {
    if (this.bufferSpaceWaiters.length === 0 || !(this.hasBufferSpace || this.fatalError !== undefined || this.isClosed)) return;
    const waiters = this.bufferSpaceWaiters;
    this.bufferSpaceWaiters = [];
    for (const resolve of waiters) resolve();
  }

  // ---- Producer id and epoch ----------------------------------------------------------------

  private initProducerId(): void {
    this.idState = 'initializing';
    this.identityLastError = undefined;
    this.requestIdentity();
  }

  /**
   * The way to an epoch bump (KIP-360, as Kafka's TransactionManager does it for batches with
   * unresolved sequences): the bump restarts every partition's sequences at 0, and the broker
   * cannot recognise a batch of the old epoch as a duplicate once it carries a new epoch and
   * sequence. So first each batch that holds a sequence of the current epoch and may have been
   * appended is resent as it is, under the old epoch, one per partition at a time, until its
   * outcome is known (ProducerPartition.nextToResolve): success or a duplicate acknowledges it
   * with the broker's offsets; OUT_OF_ORDER_SEQUENCE says it was not appended, so it takes a
   * new sequence after the bump; at its delivery deadline it fails (outcome unknown: at most
   * once). Nothing new is sent meanwhile. Once none is left and nothing is in flight, the
   * epoch is bumped. Tests: producer.test.ts ("resolves batches that may have been appended
   * before an epoch bump").
   */
  private resolveThenBumpEpoch(nowMs: number): void {
    const requests = new Map<ProduceChannel, RequestBuilder>();
    let isAnyUnresolved = false;
    this.forEachPartition((partition) => {
      while (partition.hasUnresolvedSequence) {
        const batch = partition.nextToResolve(nowMs);
        if (batch === undefined) {
          // Waiting out a backoff with nothing in flight: only a timer can wake it.
          if (partition.inFlight === 0 && partition.cancelRetryTimer === undefined) this.armRetryTimer(partition);
          return;
        }
        if (batch.createdMs + this.options.deliveryTimeoutMs <= nowMs) {
          // Its outcome stays unknown: it may be in the log once, and is never sent again.
          this.failBatch(partition, batch, deliveryTimeout(batch, batch.lastError));
          continue;
        }
        this.addToRequest(partition, batch, requests);
        return;
      }
    });
    for (const [channel, request] of requests) this.sendRequest(channel, request);
    // Counted after the loop: a batch failed at its deadline there resolved its partition.
    this.forEachPartition((partition) => (isAnyUnresolved ||= partition.hasUnresolvedSequence));
    if (!isAnyUnresolved) this.bumpEpochWhenIdle();
  }

  /**
   * With nothing in flight and no sequence unresolved (resolveThenBumpEpoch), asks for the
   * next epoch and restarts every partition's sequences.
   */
  private bumpEpochWhenIdle(): void {
    if (this.idState !== 'ready' || this.inFlightBatchCount > 0) return;
    this.idState = 'bumping';
    this.identityLastError = undefined;
    this.requestIdentity();
    // The batches waiting for the bump may see no other drain before their deadline.
    this.armIdentityWaitTimer();
  }

  /** One InitProducerId, retried by the transport, for what `idState` waits for: a first id or the next epoch. */
  private requestIdentity(): void {
    const isBump = this.idState === 'bumping';
    const current = isBump ? { producerId: this.producerId, producerEpoch: this.producerEpoch } : undefined;
    this.transport.initProducerId(current, (error) => this.onIdentityRetry(error)).then(
      (identity) => {
        this.stopIdentityWaitTimer();
        this.producerId = identity.producerId;
        this.producerEpoch = identity.producerEpoch;
        this.idState = 'ready';
        if (isBump) {
          this.needsEpochBump = false;
          this.epochBumpCount++;
          this.forEachPartition((partition) => {
            partition.resetForNewEpoch();
            this.sendable.add(partition);
          });
        }
        this.drain();
      },
      (error: unknown) => this.onIdentityFailure(toBrokerError(error)),
    );
  }

  /**
   * InitProducerId failed for good. PRODUCER_FENCED is fatal. A retriable failure while
   * batches still wait for the id is retried again (askIdentityAgainLater). Otherwise what is
   * pending fails with that error and the next record starts over with a new id.
   */
  private onIdentityFailure(error: BrokerError): void {
    this.stopIdentityWaitTimer();
    if (error.reason === 'PRODUCER_FENCED') {
      this.fail(error);
      return;
    }
    if (error.retriable && this.fatalError === undefined && this.hasBatchWaitingForIdentity()) {
      this.askIdentityAgainLater(error);
      return;
    }
    this.giveUpIdentity(error);
  }

  /**
   * The transport retries InitProducerId for the client's retry budget (60 s by default, 5 s
   * in the CLI), but what bounds a record is its delivery timeout, retries or not: a broker
   * down for longer than the budget while the producer waits for its id (or an epoch bump)
   * must not fail records that a producer with an id would keep retrying. So after a backoff,
   * as a failed batch is sent again, InitProducerId is asked again while any batch still
   * waits; meanwhile armIdentityWaitTimer fails each at its deadline, with `error` as its last
   * error.
   * Test: producer.test.ts ("asks for a producer id again while records wait…").
   */
  private askIdentityAgainLater(error: BrokerError): void {
    this.onIdentityRetry(error);
    this.armIdentityWaitTimer();
    // The budget's worth of attempts is behind: the longest backoff, with jitter.
    const delayMs = backoffDelayMs(RETRY_AGAIN_BACKOFF_ATTEMPT, this.options.retry, this.random);
    this.cancelIdentityRetryTimer = this.clock.setTimer(delayMs, () => {
      this.cancelIdentityRetryTimer = undefined;
      // The batches may have failed at their deadline, or all failed (fail(), close()) meanwhile.
      if (this.fatalError !== undefined) return;
      if (this.hasBatchWaitingForIdentity()) this.requestIdentity();
      else this.giveUpIdentity(undefined); // records still open start over with a new id
    });
  }

  /** No producer id for now: what is pending fails with `error` (if given), and the next record starts over with a new id. */
  private giveUpIdentity(error: BrokerError | undefined): void {
    this.idState = 'none';
    this.needsEpochBump = false;
    if (error !== undefined) this.failAllPending(error);
    this.forEachPartition((partition) => partition.resetForNewEpoch());
  }

  private stopIdentityRetryTimer(): void {
    this.cancelIdentityRetryTimer?.();
    this.cancelIdentityRetryTimer = undefined;
  }

  /**
   * InitProducerId failed and will be tried again (by the transport, or askIdentityAgainLater):
   * its error becomes the last error of the batches waiting for it, and `onRetry` hears of each
   * of them, as of a batch that failed and will be sent again. Otherwise a caller watching
   * `onRetry` (`runnel produce`, on stderr) would see nothing while a broker that is down keeps
   * a producer without an id from sending.
   */
  private onIdentityRetry(error: BrokerError): void {
    this.identityLastError = error;
    this.forEachBatchWaitingForIdentity((batch) => this.reportRetry(batch, error));
  }

  /** Whether a closed batch waits for a producer id. */
  private hasBatchWaitingForIdentity(): boolean {
    let isAnyWaiting = false;
    this.forEachBatchWaitingForIdentity(() => (isAnyWaiting = true));
    return isAnyWaiting;
  }

  /** Each closed batch waiting for a producer id (none is in flight while the producer waits for one). */
  private forEachBatchWaitingForIdentity(action: (batch: ProducerBatch) => void): void {
    this.forEachPartition((partition) => {
      for (const batch of partition.unacked) if (!batch.isInFlight) action(batch);
      for (const batch of partition.ready) action(batch);
    });
  }

  /**
   * While the producer waits for a producer id (the first one, or an epoch bump), its batches
   * cannot be sent, so neither the check before a send nor a reply timer (armReplyTimer) can
   * fail them at their delivery deadline; InitProducerId retries for the client's whole retry
   * budget (60 s by default), which may be far longer than `deliveryTimeoutMs`. This one timer,
   * for the earliest deadline among the waiting batches, fails those past it as any batch past
   * its deadline fails, with the last InitProducerId failure as the last error. Re-armed from
   * drain() (a batch closed meanwhile) and after each expiry; stopped once the id comes.
   */
  private armIdentityWaitTimer(): void {
    if (this.cancelIdentityWaitTimer !== undefined) return;
    let createdMsMin = Number.POSITIVE_INFINITY;
    this.forEachPartition((partition) => {
      for (const batch of partition.unacked) createdMsMin = Math.min(createdMsMin, batch.createdMs);
      for (const batch of partition.ready) createdMsMin = Math.min(createdMsMin, batch.createdMs);
    });
    if (createdMsMin === Number.POSITIVE_INFINITY) return;
    const deadlineMs = createdMsMin + this.options.deliveryTimeoutMs;
    // A millisecond late, as in armReplyTimer: timers may fire early by that much.
    this.cancelIdentityWaitTimer = this.clock.setTimer(Math.max(0, deadlineMs - this.clock.nowMs()) + 1, () => {
      this.cancelIdentityWaitTimer = undefined;
      if (this.idState !== 'initializing' && this.idState !== 'bumping') return;
      this.armIdentityWaitTimerExpire();
      this.armIdentityWaitTimer();
    });
  }

  /** Fails every batch waiting for a producer id whose delivery deadline has passed. */
  private armIdentityWaitTimerExpire(): void {
    const nowMs = this.clock.nowMs();
    const waitingFor = this.idState === 'bumping' ? 'the next producer epoch' : 'a producer id';
    const lastError = this.identityLastError ?? new BrokerError('REQUEST_TIMED_OUT', `still waiting for ${waitingFor} (InitProducerId not answered)`);
    // The id is what they wait for now, so its failure is their last error (not, say, the
    // OUT_OF_ORDER_SEQUENCE that asked for the bump).
    this.forEachPartition((partition) => {
      // None is in flight: a bump waits until nothing is, and before the first id nothing was sent.
      for (const batch of [...partition.unacked]) {
        if (!batch.isInFlight && batch.createdMs + this.options.deliveryTimeoutMs <= nowMs) this.failBatch(partition, batch, deliveryTimeout(batch, lastError));
      }
      for (const batch of [...partition.ready]) {
        if (batch.createdMs + this.options.deliveryTimeoutMs > nowMs) continue;
        // Never sent, so no sequence was used: it leaves without a gap.
        partition.remove(batch);
        this.completeBatch(batch, { kind: 'failed', error: deliveryTimeout(batch, lastError) });
      }
    });
  }

  private stopIdentityWaitTimer(): void {
    this.cancelIdentityWaitTimer?.();
    this.cancelIdentityWaitTimer = undefined;
  }

  // ---- Failing and closing ------------------------------------------------------------------

  /** Fatal: every pending and later record fails with `error`. */
  private fail(error: BrokerError): void {
    this.fatalError ??= error;
    this.stopIdentityRetryTimer();
    this.failAllPending(this.fatalError);
  }

  private failAllPending(error: BrokerError): void {
    const waiting = [...this.allWaiting()];
    for (const [topic, wait] of [...this.metadataWaiters]) this.endMetadataWait(topic, wait);
    this.buffer.usedBytes -= this.metadataWaitingBytes;
    this.metadataWaitingBytes = 0;
    this.bufferWaiters = [];
    this.bufferWaitersHead = 0;
    this.bufferWaitingBytes = 0;
    this.cancelBufferTimer?.();
    this.cancelBufferTimer = undefined;
    this.failWaitingGroup(waiting, error);
    this.lingering.clear();
    this.closeOnceSendable.clear();
    this.waitingForChannel.clear();
    this.forEachPartition((partition) => {
      partition.cancelLinger?.();
      partition.cancelLinger = undefined;
      partition.cancelRetryTimer?.();
      partition.cancelRetryTimer = undefined;
      const batches = [...(partition.open === undefined ? [] : [partition.open]), ...partition.ready, ...partition.unacked];
      partition.open = undefined;
      for (const batch of batches) {
        partition.remove(batch);
        if (batch.outcome === undefined) this.completeBatch(batch, { kind: 'failed', error });
      }
    });
    this.notifyBufferSpace();
  }

  private forEachPartition(action: (partition: ProducerPartition) => void): void {
    for (const partitions of this.topics.values()) {
      for (const partition of partitions) if (partition !== undefined) action(partition);
    }
  }

  private async closeOnce(): Promise<void> {
    this.isClosed = true;
    try {
      await this.flush();
    } finally {
      this.isCloseDone = true;
      for (const cancel of this.closeTimerCancels) cancel();
      this.closeTimerCancels = [];
      this.stopIdentityRetryTimer();
      // Armed while batches waited for a producer id; a close timeout failed them, and the
      // timer would hold the process until their deadline (producer.test.ts: "leaves no timer…").
      this.stopIdentityWaitTimer();
      this.failAllPending(new BrokerError('INVALID_REQUEST', 'the producer is closed'));
      this.transport.close();
    }
  }

  /** After `timeoutMs`, what a close is still waiting for fails with REQUEST_TIMED_OUT. */
  private armCloseTimeout(timeoutMs: number): void {
    this.closeTimerCancels.push(
      this.clock.setTimer(timeoutMs, () =>
        this.failAllPending(new BrokerError('REQUEST_TIMED_OUT', `the producer closed after ${timeoutMs} ms with records unacknowledged`)),
      ),
    );
  }
}

/** The batches of one request, and its wire form. */
class RequestBuilder {
  readonly batches: ProducerBatch[] = [];
  sizeBytes = 0;
  /** Cancels the timer that gives up on the stream when no reply comes (armReplyTimer). */
  cancelReplyTimer: (() => void) | undefined;
  private readonly partitions = new Set<ProducerPartition>();
  private readonly byTopic = new Map<string, PartitionData[]>();

  get partitionCount(): number {
    return this.partitions.size;
  }

  has(partition: ProducerPartition): boolean {
    return this.partitions.has(partition);
  }

  add(partition: ProducerPartition, batch: ProducerBatch): void {
    this.partitions.add(partition);
    this.batches.push(batch);
    const bytes = batch.bytes!;
    this.sizeBytes += bytes.length;
    let list = this.byTopic.get(batch.topic);
    if (list === undefined) {
      list = [];
      this.byTopic.set(batch.topic, list);
    }
    list.push({ partition: batch.partition, recordBatch: bytes });
  }

  topicData(): { topic: string; partitions: PartitionData[] }[] {
    return [...this.byTopic].map(([topic, partitions]) => ({ topic, partitions }));
  }
}

function indexResults(response: ProduceResponse__Output): Map<string, Map<number, PartitionResult__Output>> {
  const byTopic = new Map<string, Map<number, PartitionResult__Output>>();
  for (const topic of response.topics) {
    const byPartition = new Map<number, PartitionResult__Output>();
    for (const result of topic.partitions) byPartition.set(result.partition, result);
    byTopic.set(topic.topic, byPartition);
  }
  return byTopic;
}

function deliveryTimeout(batch: ProducerBatch, lastError: BrokerError | undefined): BrokerError {
  const message = `records not acknowledged within the delivery timeout${lastError === undefined ? '' : `; last error: ${lastError.message}`}`;
  // Keep the last error's reason: it says why (BROKER_UNAVAILABLE, ACK_TIMEOUT, …).
  return new BrokerError(lastError?.reason ?? 'REQUEST_TIMED_OUT', message, {
    topic: batch.topic,
    partition: batch.partition,
    details: { attempts: batch.attempts },
    cause: lastError,
  });
}

/** The error of records whose delivery deadline passed while they waited for `topic`'s metadata. */
function metadataDeliveryTimeout(topic: string, lastError: BrokerError | undefined): BrokerError {
  const why = lastError === undefined ? `still waiting for topic ${topic}'s metadata (GetMetadata not answered)` : `last error: ${lastError.message}`;
  // Keep the last error's reason, as deliveryTimeout does.
  return new BrokerError(lastError?.reason ?? 'REQUEST_TIMED_OUT', `records not acknowledged within the delivery timeout; ${why}`, { topic, cause: lastError });
}

/**
 * Adds `waiting` to a topic's records waiting for metadata, keeping them in `deliveryFromMs`
 * order: nearly always at the end (a later send); a record let in from the buffer queue or
 * back for a metadata refresh may belong further up.
 */
function waitForMetadataInsert(records: WaitingRecord[], waiting: WaitingRecord): void {
  let low = records.length;
  if (low > 0 && records[low - 1]!.deliveryFromMs > waiting.deliveryFromMs) {
    low = 0;
    let high = records.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (records[middle]!.deliveryFromMs <= waiting.deliveryFromMs) low = middle + 1;
      else high = middle;
    }
  }
  records.splice(low, 0, waiting);
}

/** The error of a record refused as too large alone in its batch. */
function recordTooLarge(batch: ProducerBatch, refusal: BrokerError): BrokerError {
  // The broker's message gives the sizes ("batch is N bytes; the limit is M").
  return new BrokerError('RECORD_TOO_LARGE', `record too large for topic ${batch.topic} even in a batch of its own (max.message.bytes): ${refusal.message}`, {
    topic: batch.topic,
    partition: batch.partition,
    cause: refusal,
  });
}

function toBrokerError(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  return new BrokerError('INTERNAL_ERROR', error instanceof Error ? error.message : String(error), { cause: error });
}

/** The topic of a record as sent, for failure reports ('' when it has none). */
function topicOf(record: ProducerRecord | undefined): string {
  return typeof record?.topic === 'string' ? record.topic : '';
}

/** The explicit partition of a record as sent, for failure reports. */
function partitionOf(record: ProducerRecord | undefined): number | undefined {
  return typeof record?.partition === 'number' ? record.partition : undefined;
}

function checkTopicField(record: ProducerRecord): void {
  if (typeof record !== 'object' || record === null || typeof record.topic !== 'string' || record.topic.length === 0) {
    throw new BrokerError('INVALID_REQUEST', 'a record needs a topic (non-empty string)');
  }
  // A partition that no topic can have (1.5, "1", -1) is a mistake in the call, not a partition
  // to look for: refused at once, as Kafka's ProducerRecord does, not as PARTITION_NOT_FOUND
  // after a metadata refresh.
  const partition: unknown = record.partition;
  if (partition !== undefined && (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0)) {
    throw new BrokerError('INVALID_REQUEST', `a record's partition must be an integer ≥ 0 (or left out), got ${JSON.stringify(partition)}`, { topic: record.topic });
  }
}

function toBytesOrNull(value: unknown, what: string): Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  // Plain JavaScript callers may hand over any Uint8Array: wrap it, no copy.
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new BrokerError('INVALID_REQUEST', `record ${what} must be a Buffer, a string or null`);
}

function toHeaders(headers: NonNullable<ProducerRecord['headers']>): RecordHeader[] {
  const entries = Array.isArray(headers) ? headers.map((header) => [header.key, header.value] as const) : Object.entries(headers);
  // The broker refuses the whole batch for one such record: it fails here, alone.
  if (entries.length > HEADERS_PER_RECORD_MAX) throw new BrokerError('INVALID_REQUEST', `a record has ${entries.length} headers; at most ${HEADERS_PER_RECORD_MAX}`);
  return entries.map(([key, value]) => {
    if (typeof key !== 'string') throw new BrokerError('INVALID_REQUEST', 'header keys must be strings');
    checkHeaderKeyOrThrow(key, 'a record');
    return { key, value: toBytesOrNull(value, `header ${key}`) };
  });
}

function estimateRecordBytes(record: LogRecord): number {
  let sizeBytes = RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const header of record.headers) sizeBytes += 10 + Buffer.byteLength(header.key, 'utf8') + (header.value?.length ?? 0);
  return sizeBytes;
}

function resolveOptions(options: ProducerOptions): ResolvedOptions {
  const acks = options.acks ?? 'all';
  if (acks !== 'none' && acks !== 'leader' && acks !== 'all') throw invalidOption(`acks must be 'none', 'leader' or 'all', got ${String(acks)}`);
  const isIdempotent = options.idempotent ?? acks === 'all';
  if (isIdempotent && acks !== 'all') throw invalidOption("idempotence needs acks 'all'");
  const compression = options.compression ?? 'none';
  if (compression !== 'none' && compression !== 'gzip') throw invalidOption(`compression must be 'none' or 'gzip', got ${String(compression)}`);
  const inFlightMax = options.inFlightBatchesPerPartitionMax ?? IDEMPOTENT_IN_FLIGHT_MAX;
  if (isIdempotent && inFlightMax > IDEMPOTENT_IN_FLIGHT_MAX) {
    throw invalidOption(`at most ${IDEMPOTENT_IN_FLIGHT_MAX} batches per partition may be in flight with idempotence`);
  }
  const resolved: ResolvedOptions = {
    acks,
    isIdempotent,
    lingerMs: options.lingerMs ?? 5,
    batchBytes: options.batchBytes ?? 256 * KiB,
    bufferBytes: options.bufferBytes ?? 32 * MiB,
    bufferWaitMsMax: options.bufferWaitMsMax ?? 60_000,
    compression,
    inFlightMax,
    deliveryTimeoutMs: options.deliveryTimeoutMs ?? 120_000,
    ackTimeoutMs: options.ackTimeoutMs ?? 30_000,
    retry: retryOptionsOrThrow(options.retry, 'producer'),
    onError: options.onError,
    onRetry: options.onRetry,
  };
  for (const [name, value, min] of [
    ['lingerMs', resolved.lingerMs, 0],
    ['batchBytes', resolved.batchBytes, 1],
    ['bufferBytes', resolved.bufferBytes, 1],
    ['bufferWaitMsMax', resolved.bufferWaitMsMax, 0],
    ['inFlightBatchesPerPartitionMax', resolved.inFlightMax, 1],
    ['deliveryTimeoutMs', resolved.deliveryTimeoutMs, 1],
    ['ackTimeoutMs', resolved.ackTimeoutMs, 1],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < min) throw invalidOption(`${name} must be an integer ≥ ${min}, got ${value}`);
  }
  if (resolved.batchBytes > BATCH_BYTES_MAX) throw invalidOption(`batchBytes must be at most ${BATCH_BYTES_MAX}, got ${resolved.batchBytes}`);
  if (resolved.bufferBytes < resolved.batchBytes) throw invalidOption('bufferBytes must be at least batchBytes');
  // A batch that lingers as long as its delivery timeout fails the moment it closes (Kafka
  // requires delivery.timeout.ms ≥ linger.ms + request.timeout.ms for the same reason).
  if (resolved.deliveryTimeoutMs <= resolved.lingerMs) {
    throw invalidOption(`deliveryTimeoutMs (${resolved.deliveryTimeoutMs}) must be longer than lingerMs (${resolved.lingerMs}): a batch would fail the moment it closes`);
  }
  if (resolved.onError !== undefined && typeof resolved.onError !== 'function') throw invalidOption('onError must be a function');
  if (resolved.onRetry !== undefined && typeof resolved.onRetry !== 'function') throw invalidOption('onRetry must be a function');
  return resolved;
}

function invalidOption(message: string): BrokerError {
  return new BrokerError('INVALID_REQUEST', `producer option: ${message}`);
}
