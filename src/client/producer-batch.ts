/**
 * One producer batch: the records bound for one partition that travel, are retried, and
 * succeed or fail together; and `PendingSend`, the per-record handle `Producer.send` returns.
 *
 * Why a handle instead of a promise per record: at a million records a second, a `Promise`
 * plus its resolver closures per record is a measurable share of the producer's CPU (and of
 * the garbage), and most high-rate callers never look at each record's offset. A
 * `PendingSend` is a small object that only becomes a promise when someone awaits it (or
 * calls `then`). The batch settles all observed handles in one loop when the broker answers;
 * unobserved records cost nothing at that point. Failures of records nobody observed are not
 * lost: the producer keeps the first such error and `flush()` rejects with it.
 *
 * Memory: a record waiting in an open or ready batch costs a few hundred bytes of heap (its
 * `LogRecord`, Buffer views, array slots) besides its key and value; once the batch is encoded
 * (on its first send) the records are dropped and only the encoded bytes and one timestamp per
 * record stay (offsets are baseOffset + index). `heldBytes` is what the batch holds by that
 * measure, charged to the producer's `BufferAccount` as it changes, so `bufferBytes` bounds
 * real memory (producer.test.ts: "charges the buffer with…").
 *
 * Split: when the broker refuses a batch as larger than the topic's max.message.bytes, the
 * producer decodes its records again (`decodeRecords`) and hands them over to smaller batches
 * (`handOver`). The refused batch then never completes itself: its handles follow it to the
 * pieces (`PendingSend` looks the record up when observed), its buffer charge moves to them,
 * and its `onDone` callbacks run once every piece is done (producer.test.ts: "splits a
 * refused batch…").
 *
 * Owns (single writer: the producer's event-loop code; no state here changes across an
 * await): the records until encoded, the encoded bytes until acknowledged, the sequence
 * bookkeeping of this batch, its outcome, and its share of the buffer account.
 */
import { AssertionError } from '../common/index.js';
import type { BrokerError } from '../errors/index.js';
import {
  BATCH_CRC_START,
  BatchField,
  crc32c,
  decodeBatchAs,
  DECOMPRESSED_BYTES_MAX_DEFAULT,
  writeInt64,
  type LogRecord,
  type RecordHeader,
} from '../protocol/index.js';
import type { RecordMetadata } from './types.js';

/**
 * Heap one record holds until its batch is encoded, besides its key, value and header bytes:
 * the `LogRecord`, its Buffer views, the batch's array slot. Measured ~230 B on Node 20 x64
 * (a fresh 40-byte Buffer value per record, handles not kept).
 */
export const RECORD_HEAP_BYTES = 256;
/**
 * Heap an observed handle holds until its batch completes: its promise and resolvers plus the
 * observer's reaction and closures. Measured ~540 B with one `.then(onOk, onFail)` per record.
 */
export const OBSERVED_RECORD_HEAP_BYTES = 512;
/** Heap of one batch besides its records or bytes: the object, its arrays, its request entry. */
export const BATCH_HEAP_BYTES = 512;

/**
 * The producer's buffer use in bytes of memory held (see `ProducerOptions.bufferBytes`): the
 * records waiting for metadata and every batch's `heldBytes`. Single writer: the producer's
 * event-loop code, directly or through its batches.
 */
export class BufferAccount {
  usedBytes = 0;
}

export type BatchOutcome =
  | { kind: 'acked'; baseOffset: number; logAppendTimeMs: number }
  | { kind: 'failed'; error: BrokerError };

export class ProducerBatch {
  readonly topic: string;
  readonly partition: number;
  /**
   * Position among this partition's batches: creation order, which is also send order. Moves
   * up when an earlier batch is split, so that each batch the broker sees has its own
   * (ProducerPartition.replaceBySplit).
   */
  ordinal: number;
  /**
   * When the batch was created, or earlier: when the delivery timeout of a record that
   * waited for its topic's metadata started (its send), if that record joined the batch while
   * open. Its delivery deadline counts from here.
   */
  createdMs: number;
  /** Records until the batch is encoded (or completes unencoded); then only `timestamps` is kept. */
  records: LogRecord[] = [];
  /** Sum of the records' estimated encoded sizes, for `batchBytes`. */
  estimatedBytes = 0;
  /**
   * Memory this batch holds, as charged to the buffer account: BATCH_HEAP_BYTES, plus per
   * record its bytes and RECORD_HEAP_BYTES until encoded, then the encoded bytes and 8 bytes
   * of timestamp; plus OBSERVED_RECORD_HEAP_BYTES per observed record. 0 once complete.
   */
  heldBytes = BATCH_HEAP_BYTES;
  /** The encoded batch, from its first send (`setEncoded`) until it completes. */
  bytes: Buffer | undefined;
  /** Sequence of the first record; -1 until the first send (or without idempotence). */
  baseSequence = -1;
  /** Producer id and epoch the bytes were stamped with; -1 until the first send. */
  stampedProducerId = -1;
  stampedEpoch = -1;
  /** Sequence the bytes were stamped with, to notice a renumbering. */
  stampedSequence = -1;
  /** Sends so far. */
  attempts = 0;
  /** Whether a request carrying it is on the wire (its reply has not come back). */
  isInFlight = false;
  /**
   * Whether some attempt may have been appended although no success came back (the stream
   * broke, the ack timed out). Such a batch must be resent with its own sequence and never
   * renumbered, or the broker could take a later batch for its duplicate.
   */
  mayBeAppended = false;
  /** The partition's failure count when this batch was last sent (out-of-order tracking). */
  failureCountAtSend = 0;
  /** Whether a TOPIC_NOT_FOUND/PARTITION_NOT_FOUND already led to one metadata refresh. */
  hasRefreshedMetadata = false;
  /** The last retriable error, reported if the delivery deadline passes. */
  lastError: BrokerError | undefined;
  outcome: BatchOutcome | undefined;
  /**
   * Set when the broker refused the batch as too large and its records went on in these
   * smaller batches, in order; the batch itself then never completes.
   */
  pieces: ProducerBatch[] | undefined;
  /** Pieces not yet done (see `onDone`). */
  private piecesPending = 0;
  /** The records' timestamps, once the records are dropped (encoded or complete). */
  private timestamps: Float64Array | undefined;
  private observers: PendingSend[] | undefined;
  private doneCallbacks: (() => void)[] | undefined;
  private readonly account: BufferAccount;

  constructor(topic: string, partition: number, ordinal: number, createdMs: number, account: BufferAccount) {
    this.topic = topic;
    this.partition = partition;
    this.ordinal = ordinal;
    this.createdMs = createdMs;
    this.account = account;
    account.usedBytes += this.heldBytes;
  }

  get recordCount(): number {
    return this.timestamps?.length ?? this.records.length;
  }

  /** Last sequence number this batch covers (base + count − 1, wrapping as Kafka does). */
  get lastSequence(): number {
    return incrementSequence(this.baseSequence, this.recordCount - 1);
  }

  /** Adds a record: `estimatedBytes` encoded, `heldBytes` held in memory until encoded. */
  append(record: LogRecord, estimatedBytes: number, heldBytes: number): number {
    this.records.push(record);
    this.estimatedBytes += estimatedBytes;
    this.heldBytes += heldBytes;
    this.account.usedBytes += heldBytes;
    return this.records.length - 1;
  }

  /**
   * Keeps `bytes`, the encoded records, and drops the records (their timestamps stay for
   * `metadataFor`); the charge becomes what is held now. Returns the bytes released (< 0
   * when the encoded form holds more, as for a few tiny records).
   */
  setEncoded(bytes: Buffer): number {
    this.bytes = bytes;
    this.dropRecords();
    const observed = this.observers?.length ?? 0;
    const heldBytes = BATCH_HEAP_BYTES + bytes.length + this.timestamps!.byteLength + observed * OBSERVED_RECORD_HEAP_BYTES;
    const releasedBytes = this.heldBytes - heldBytes;
    this.heldBytes = heldBytes;
    this.account.usedBytes -= releasedBytes;
    return releasedBytes;
  }

  /** Registers a handle to settle when the batch completes; it holds memory until then. */
  observe(handle: PendingSend): void {
    (this.observers ??= []).push(handle);
    if (this.outcome !== undefined) return;
    this.heldBytes += OBSERVED_RECORD_HEAP_BYTES;
    this.account.usedBytes += OBSERVED_RECORD_HEAP_BYTES;
  }

  /** Calls `callback` once the batch completed, or every piece of it did (at once if so). */
  onDone(callback: () => void): void {
    if (this.isDone) callback();
    else (this.doneCallbacks ??= []).push(callback);
  }

  private get isDone(): boolean {
    return this.outcome !== undefined || (this.pieces !== undefined && this.piecesPending === 0);
  }

  /**
   * The records again, decoded from the encoded bytes (the records were dropped when it was
   * encoded), for a split. Throws `BrokerError` if the bytes do not decode, which would be a
   * bug in the encoder.
   */
  decodeRecords(): LogRecord[] {
    const bytes = this.bytes;
    if (bytes === undefined) return this.records;
    // The decompressed section is about the records' estimated size; the bound only guards.
    const decompressedBytesMax = Math.max(DECOMPRESSED_BYTES_MAX_DEFAULT, 2 * this.estimatedBytes);
    return decodeBatchAs<LogRecord>(bytes, 0, { decompressedBytesMax }, makeLogRecord).records;
  }

  /**
   * Hands the batch's records over to `pieces` (new batches holding them in order, already
   * charged to the buffer account): observed handles move to their piece, this batch's charge
   * is released, and its `onDone` callbacks wait for every piece. The batch never completes
   * after this. A failure in here leaves the batch unchanged (the checks come first).
   */
  handOver(pieces: ProducerBatch[]): void {
    const pieceRecordCount = pieces.reduce((sum, piece) => sum + piece.recordCount, 0);
    if (this.outcome !== undefined || this.pieces !== undefined || pieces.length < 2 || pieceRecordCount !== this.recordCount) {
      throw new AssertionError(`batch ${this.topic}-${this.partition}#${this.ordinal} cannot be handed over to ${pieces.length} pieces of ${pieceRecordCount} records`);
    }
    this.dropRecords();
    this.pieces = pieces;
    this.piecesPending = pieces.length;
    this.bytes = undefined;
    this.account.usedBytes -= this.heldBytes;
    this.heldBytes = 0;
    const observers = this.observers ?? [];
    this.observers = undefined;
    for (const handle of observers) handle.followSplit();
    for (const piece of pieces) {
      piece.onDone(() => {
        if (--this.piecesPending > 0) return;
        const callbacks = this.doneCallbacks ?? [];
        this.doneCallbacks = undefined;
        for (const callback of callbacks) callback();
      });
    }
  }

  /** Where the record at `index` went when this batch was split: its piece and its index there. */
  locate(index: number): { batch: ProducerBatch; index: number } {
    let start = 0;
    for (const piece of this.pieces ?? []) {
      if (index < start + piece.recordCount) return { batch: piece, index: index - start };
      start += piece.recordCount;
    }
    throw new AssertionError(`record ${index} of batch ${this.topic}-${this.partition}#${this.ordinal} is in none of its pieces`);
  }

  /**
   * Settles the batch and every observed handle. Returns whether some records were never
   * observed (their failure must be reported elsewhere). Drops records and bytes, keeping
   * only the timestamps that `metadataFor` needs, and releases its whole charge.
   */
  complete(outcome: BatchOutcome): boolean {
    if (this.outcome !== undefined) throw new AssertionError(`batch ${this.topic}-${this.partition}#${this.ordinal} completed twice`);
    this.outcome = outcome;
    this.dropRecords();
    const timestamps = this.timestamps!;
    this.bytes = undefined;
    this.account.usedBytes -= this.heldBytes;
    this.heldBytes = 0;
    const observers = this.observers ?? [];
    for (const handle of observers) handle.settle();
    this.observers = undefined;
    const callbacks = this.doneCallbacks ?? [];
    this.doneCallbacks = undefined;
    for (const callback of callbacks) callback();
    return observers.length < timestamps.length;
  }

  private dropRecords(): void {
    if (this.timestamps !== undefined) return;
    const records = this.records;
    const timestamps = new Float64Array(records.length);
    for (let index = 0; index < records.length; index++) timestamps[index] = records[index]!.timestamp;
    this.timestamps = timestamps;
    this.records = [];
  }

  /** What the record at `index` resolved to; only after an acked outcome. */
  metadataFor(index: number, outcome: BatchOutcome & { kind: 'acked' }): RecordMetadata {
    const ownTimestamp = this.timestamps?.[index] ?? this.records[index]?.timestamp ?? -1;
    return {
      topic: this.topic,
      partition: this.partition,
      offset: outcome.baseOffset < 0 ? -1 : outcome.baseOffset + index,
      timestamp: outcome.logAppendTimeMs >= 0 ? outcome.logAppendTimeMs : ownTimestamp,
    };
  }
}

/**
 * The handle of one sent record. It satisfies the `Promise<RecordMetadata>` interface (so
 * `await`, `then`, `catch`, `finally` and `Promise.all` work) but is a plain object until
 * observed; `instanceof Promise` is false.
 */
export class PendingSend implements Promise<RecordMetadata> {
  /** The batch holding the record, once placed (records may wait for metadata or buffer space). */
  batch: ProducerBatch | undefined;
  index = -1;
  /**
   * Everything rarely needed, allocated on first need: the common handle (placed at once,
   * never awaited) stays three fields, which the garbage collector notices at 10^6/s.
   */
  private extra: PendingSendExtra | undefined;

  get [Symbol.toStringTag](): string {
    return 'PendingSend';
  }

  then<TResult1 = RecordMetadata, TResult2 = never>(
    onFulfilled?: ((value: RecordMetadata) => TResult1 | PromiseLike<TResult1>) | null,
    onRejected?: ((reason: unknown) => TResult2 | PromiseLike<TResult2>) | null,
  ): Promise<TResult1 | TResult2> {
    return this.asPromise().then(onFulfilled, onRejected);
  }

  catch<TResult = never>(onRejected?: ((reason: unknown) => TResult | PromiseLike<TResult>) | null): Promise<RecordMetadata | TResult> {
    return this.asPromise().catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<RecordMetadata> {
    return this.asPromise().finally(onFinally);
  }

  /** The result as a real promise, created on first use. */
  asPromise(): Promise<RecordMetadata> {
    this.followSplit();
    const extra = (this.extra ??= {});
    if (extra.promise !== undefined) return extra.promise;
    if (extra.error !== undefined) {
      extra.promise = Promise.reject(extra.error);
      return extra.promise;
    }
    const outcome = this.batch?.outcome;
    if (outcome !== undefined) {
      extra.promise = outcome.kind === 'acked' ? Promise.resolve(this.batch!.metadataFor(this.index, outcome)) : Promise.reject(outcome.error);
      return extra.promise;
    }
    extra.promise = new Promise<RecordMetadata>((resolve, reject) => {
      extra.resolve = resolve;
      extra.reject = reject;
    });
    this.batch?.observe(this);
    return extra.promise;
  }

  /** Puts the handle in its batch (called by the producer when the record is appended). */
  place(batch: ProducerBatch, index: number): void {
    this.batch = batch;
    this.index = index;
    const extra = this.extra;
    if (extra === undefined) return;
    if (extra.resolve !== undefined) batch.observe(this);
    this.runPlacedCallbacks(extra);
  }

  /** Calls `callback` once the record is in a batch or has failed (at once if so). */
  onPlaced(callback: () => void): void {
    if (this.batch !== undefined || this.extra?.error !== undefined) callback();
    else ((this.extra ??= {}).placedCallbacks ??= []).push(callback);
  }

  /** Fails a record that never reached a batch. Returns whether the failure was observed. */
  failUnplaced(error: BrokerError): boolean {
    const extra = (this.extra ??= {});
    extra.error = error;
    this.runPlacedCallbacks(extra);
    const reject = extra.reject;
    extra.resolve = extra.reject = undefined;
    if (reject === undefined) return false;
    reject(error);
    return true;
  }

  /**
   * Moves the handle to the piece now holding its record if its batch was split (again and
   * again, for a piece split further), and observes it there if it was observed.
   */
  followSplit(): void {
    let batch = this.batch;
    if (batch?.pieces === undefined) return;
    let index = this.index;
    while (batch.pieces !== undefined) ({ batch, index } = batch.locate(index));
    this.batch = batch;
    this.index = index;
    if (this.extra?.resolve !== undefined) batch.observe(this);
  }

  /** Called by the batch on completion. */
  settle(): void {
    const outcome = this.batch?.outcome;
    const extra = this.extra;
    if (outcome === undefined || extra?.resolve === undefined || extra.reject === undefined) return;
    if (outcome.kind === 'acked') extra.resolve(this.batch!.metadataFor(this.index, outcome));
    else extra.reject(outcome.error);
    extra.resolve = extra.reject = undefined;
  }

  private runPlacedCallbacks(extra: PendingSendExtra): void {
    const callbacks = extra.placedCallbacks;
    extra.placedCallbacks = undefined;
    for (const callback of callbacks ?? []) callback();
  }
}

interface PendingSendExtra {
  /** Set when the record failed before it reached a batch. */
  error?: BrokerError;
  promise?: Promise<RecordMetadata>;
  resolve?: ((metadata: RecordMetadata) => void) | undefined;
  reject?: ((error: BrokerError) => void) | undefined;
  /** Internal waiters (flush) for the record to reach a batch; they do not observe it. */
  placedCallbacks?: (() => void)[] | undefined;
}

function makeLogRecord(_offset: number, timestamp: number, key: Buffer | null, value: Buffer | null, headers: RecordHeader[]): LogRecord {
  return { key, value, headers, timestamp };
}

const INT32_MAX = 0x7fff_ffff;

/** `sequence + increment` in Kafka's int32 sequence space, which wraps from 2^31 − 1 to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  return sequence > INT32_MAX - increment ? increment - (INT32_MAX - sequence) - 1 : sequence + increment;
}

/**
 * Rewrites a batch's producer id, epoch and base sequence in place and recomputes its CRC (both
 * fields are covered by it). Used when a retry must go out under a new epoch or after the
 * sequences of the batches before it changed; costs one CRC pass (~3.5 GB/s).
 */
export function stampBatchSequence(bytes: Buffer, producerId: number, producerEpoch: number, baseSequence: number): void {
  writeInt64(bytes, producerId, BatchField.producerId);
  bytes.writeInt16BE(producerEpoch, BatchField.producerEpoch);
  bytes.writeInt32BE(baseSequence, BatchField.baseSequence);
  bytes.writeUInt32BE(crc32c(bytes.subarray(BATCH_CRC_START)), BatchField.crc);
}
