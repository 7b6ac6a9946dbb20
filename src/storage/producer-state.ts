/**
 * The idempotent producer's broker side for one partition (Kafka's ProducerStateManager): for
 * each producer id, its current epoch and the sequence numbers and offsets of its last five
 * appended batches, so a retried produce resolves with the offsets of the batch already in the
 * log instead of being appended twice.
 *
 * Owner of mutable state: the partition's single writer (partition-log.ts). It checks each
 * batch of a write run against a `ProducerStateChanges` (tentative: it sees the committed state
 * plus the earlier batches of the same run, so a retry queued behind its original is caught),
 * and commits the changes only once the run's bytes reached the acknowledgement point; after a
 * failed write it drops them, which is the rollback. Replay at open (recovery.ts) and snapshot
 * loading also go through the writer's object, before the log takes any append.
 *
 * Rules for a batch with producerId ≥ 0 (batches with producerId < 0 bypass all of this):
 * - Unknown producer id: accepted with any sequence. Its state may have expired or been
 *   evicted, or it never wrote here; rejecting it would wedge a producer that did nothing
 *   wrong. The cost: a retry of a batch whose producer state is gone is appended again.
 * - Epoch lower than the stored one: PRODUCER_FENCED (a newer producer took over the id).
 * - Epoch higher: the batch must start at sequence 0 (OUT_OF_ORDER_SEQUENCE otherwise); the
 *   entry restarts at the new epoch.
 * - Same epoch: a (baseSequence, lastSequence) equal to one of the five cached batches is a
 *   duplicate and resolves with that batch's original offsets and maxTimestamp (its append
 *   time under LogAppendTime, not the retry's); otherwise baseSequence must be
 *   the newest cached lastSequence + 1 (OUT_OF_ORDER_SEQUENCE otherwise).
 * Sequences are int32 and wrap from 2^31 − 1 to 0, as in Kafka.
 *
 * Bounds: at most `producersMax` producers (the least recently appended one is evicted, and
 * then counts as unknown); each holds at most five batches. An entry not seen for longer than
 * `expirationMs` is dropped when a snapshot is taken or loaded (producer-snapshot.ts). "Seen"
 * is the later of its newest batch's maxTimestamp (what Kafka measures alone) and the broker's
 * clock when that batch was appended, or when the open rebuilt the entry from the log (which
 * holds no append times). Kafka's rule alone would forget, at every roll, a producer that is
 * appending right now with old create timestamps (a backfill or replay: the create-time window
 * has no lower bound by default), and append its retries again (idempotence.test.ts
 * "keeps a producer whose batches carry old create timestamps").
 *
 * Not done here: transactions (the transactional bit is ignored), file I/O (see
 * producer-snapshot.ts and recovery.ts).
 */
import { assert } from '../common/assert.js';
import { BrokerError } from '../errors/index.js';
import type { BatchHeader } from '../protocol/index.js';

/** Batches remembered per producer: Kafka's limit on in-flight requests of an idempotent producer. */
export const PRODUCER_BATCHES_CACHED_MAX = 5;

const INT32_MAX = 0x7fff_ffff;

export interface ProducerBatchMetadata {
  firstSequence: number;
  lastSequence: number;
  baseOffset: number;
  lastOffset: number;
  /**
   * The batch's maxTimestamp as stored: under LogAppendTime, the time the broker stamped at
   * its append, which a duplicate is answered with (as Kafka's BatchMetadata.timestamp).
   */
  maxTimestamp: number;
}

export interface ProducerEntry {
  producerId: number;
  epoch: number;
  /** The producer's newest batches of this epoch, oldest first; 1 to 5 of them. */
  batches: ProducerBatchMetadata[];
  /**
   * When the producer was last seen (what expiry measures): the later of its newest batch's
   * maxTimestamp and the broker's clock at that batch's append (or at the open that replayed it).
   */
  lastTimestamp: number;
}

export type ProducerVerdict =
  | { kind: 'append' }
  | { kind: 'duplicate'; batch: ProducerBatchMetadata }
  | { kind: 'rejected'; error: BrokerError };

const APPEND: ProducerVerdict = Object.freeze({ kind: 'append' });

export interface ProducerStateOptions {
  topic: string;
  partition: number;
  /** Producers remembered (limits.producersPerPartitionMax). */
  producersMax: number;
  /** defaults.producerIdExpirationMs. */
  expirationMs: number;
}

/** `sequence + increment` in Kafka's int32 sequence space, which wraps from 2^31 − 1 to 0. */
export function incrementSequence(sequence: number, increment: number): number {
  return sequence > INT32_MAX - increment ? increment - (INT32_MAX - sequence) - 1 : sequence + increment;
}

/**
 * Client-input validation, before an append is queued: an idempotent batch (producerId ≥ 0)
 * needs a non-negative epoch and base sequence. Throws INVALID_REQUEST.
 */
export function validateProducerFieldsOrThrow(header: BatchHeader): void {
  if (header.producerId < 0) return;
  if (header.producerEpoch < 0 || header.baseSequence < 0) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `an idempotent batch (producer id ${header.producerId}) needs producerEpoch ≥ 0 and baseSequence ≥ 0, got ${header.producerEpoch} and ${header.baseSequence}`,
    );
  }
}

export class ProducerState {
  /** By producer id; Map order is least recently appended first (re-inserted on every append). */
  private readonly entries = new Map<number, ProducerEntry>();

  constructor(readonly options: ProducerStateOptions) {
    assert(options.producersMax >= 1, 'at least one producer must fit');
    assert(options.expirationMs > 0, 'producer expiry must be positive');
  }

  get producerCount(): number {
    return this.entries.size;
  }

  /** The committed entry of `producerId` (read only: for tests, tools and the snapshot). */
  entryOf(producerId: number): Readonly<ProducerEntry> | undefined {
    return this.entries.get(producerId);
  }

  /** Committed entries, least recently appended first. */
  allEntries(): readonly Readonly<ProducerEntry>[] {
    return [...this.entries.values()];
  }

  /**
   * Starts the tentative changes of a write run appended at `nowMs` (the broker's clock).
   * `after` is the still uncommitted changes of the run written before it (flush=always
   * pipelining, partition-log.ts): the new run sees them, must commit after them, and is
   * dropped with them.
   */
  beginChanges(nowMs: number, after?: ProducerStateChanges): ProducerStateChanges {
    return new ProducerStateChanges(this, nowMs, after);
  }

  /** The verdict on a batch against the committed state alone, recording nothing. */
  verdictFor(header: BatchHeader): ProducerVerdict {
    assert(header.producerId >= 0, 'only idempotent batches are checked');
    const entry = this.entries.get(header.producerId);
    return (entry === undefined ? undefined : checkBatch(entry, header, this.options)) ?? APPEND;
  }

  /**
   * Applies a batch already in the log (replay at open, `nowMs` the time of the open), without
   * checks: the log is the truth. An epoch other than the stored one restarts the entry, as
   * Kafka's replay does. The log holds no append times, so the producer counts as seen at the
   * open: it may live up to one expiry longer than it would have, never shorter.
   */
  replay(header: BatchHeader, nowMs: number): void {
    if (header.producerId < 0) return;
    const entry = this.entries.get(header.producerId);
    const next = entry !== undefined && entry.epoch === header.producerEpoch ? entry : newEntry(header);
    addBatch(next, header, header.baseOffset, nowMs);
    this.put(next);
  }

  /** Replaces the state with `entries` (a loaded snapshot, least recently used first), dropping expired ones. */
  load(entries: readonly ProducerEntry[], nowMs: number): void {
    this.entries.clear();
    for (const entry of entries) this.put({ ...entry, batches: entry.batches.map((batch) => ({ ...batch })) });
    this.removeExpired(nowMs);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Drops entries whose newest batch is older than the expiry; returns how many went. */
  removeExpired(nowMs: number): number {
    let removed = 0;
    for (const [producerId, entry] of this.entries) {
      if (nowMs - entry.lastTimestamp > this.options.expirationMs) {
        this.entries.delete(producerId);
        removed++;
      }
    }
    return removed;
  }

  /** Stores `entry` as the most recently used one, evicting the least recently used past the bound. */
  put(entry: ProducerEntry): void {
    this.entries.delete(entry.producerId);
    this.entries.set(entry.producerId, entry);
    if (this.entries.size <= this.options.producersMax) return;
    for (const producerId of this.entries.keys()) {
      this.entries.delete(producerId);
      if (this.entries.size <= this.options.producersMax) break;
    }
  }
}

/**
 * The tentative effect of one write run on a `ProducerState`: `check` sees the committed
 * state plus every batch this run (and an uncommitted earlier run it was started after)
 * accepted before, and `commit` publishes them. Dropping the object without `commit` is the
 * rollback (nothing committed is ever touched before it).
 */
export class ProducerStateChanges {
  /** Working copies of the entries this run touched, in first-touch order. */
  private readonly touched = new Map<number, ProducerEntry>();

  constructor(
    private readonly state: ProducerState,
    /** The broker's clock at the run's append. */
    private readonly nowMs: number,
    private earlier?: ProducerStateChanges,
  ) {}

  /** The entry as this run sees it: its own change, else the earlier run's, else the committed one. */
  private entryOf(producerId: number): Readonly<ProducerEntry> | undefined {
    return this.touched.get(producerId) ?? (this.earlier !== undefined ? this.earlier.entryOf(producerId) : this.state.entryOf(producerId));
  }

  /** The verdict on a batch as this run sees the state, recording nothing. */
  verdictFor(header: BatchHeader): ProducerVerdict {
    assert(header.producerId >= 0, 'only idempotent batches are checked');
    const entry = this.entryOf(header.producerId);
    return (entry === undefined ? undefined : checkBatch(entry, header, this.state.options)) ?? APPEND;
  }

  /**
   * Checks a batch the writer is about to place at `baseOffset` (header.producerId ≥ 0) and,
   * when it is to be appended, records it tentatively.
   */
  check(header: BatchHeader, baseOffset: number): ProducerVerdict {
    const producerId = header.producerId;
    assert(producerId >= 0, 'only idempotent batches are checked');
    const entry = this.entryOf(producerId);
    const problem = entry === undefined ? undefined : checkBatch(entry, header, this.state.options);
    if (problem !== undefined) return problem;
    let working = this.touched.get(producerId);
    if (working === undefined || working.epoch !== header.producerEpoch) {
      // Copy on first touch: the committed entry stays as it was until commit.
      working = entry === undefined || entry.epoch !== header.producerEpoch ? newEntry(header) : { ...entry, batches: [...entry.batches] };
      this.touched.set(producerId, working);
    }
    addBatch(working, header, baseOffset, this.nowMs);
    return APPEND;
  }

  /**
   * Publishes every tentative change (after the run's bytes reached the acknowledgement
   * point). The earlier run this one was started after must have committed first.
   */
  commit(): void {
    assert(this.earlier === undefined || this.earlier.touched.size === 0, 'runs commit in write order');
    this.earlier = undefined;
    for (const entry of this.touched.values()) this.state.put(entry);
    this.touched.clear();
  }
}

/** A duplicate or rejection verdict on `header` against `entry`, or `undefined` when it is to be appended. */
function checkBatch(entry: Readonly<ProducerEntry>, header: BatchHeader, where: { topic: string; partition: number }): ProducerVerdict | undefined {
  const { topic, partition } = where;
  const fields = { topic, partition, details: { producerId: header.producerId, producerEpoch: header.producerEpoch, baseSequence: header.baseSequence } };
  if (header.producerEpoch < entry.epoch) {
    return {
      kind: 'rejected',
      error: new BrokerError(
        'PRODUCER_FENCED',
        `producer id ${header.producerId} epoch ${header.producerEpoch} is fenced on ${topic}-${partition}: a newer producer with the same id (epoch ${entry.epoch}) took over`,
        { ...fields, details: { ...fields.details, currentProducerEpoch: entry.epoch } },
      ),
    };
  }
  if (header.producerEpoch > entry.epoch) {
    if (header.baseSequence === 0) return undefined;
    return {
      kind: 'rejected',
      error: new BrokerError(
        'OUT_OF_ORDER_SEQUENCE',
        `producer id ${header.producerId} starts epoch ${header.producerEpoch} on ${topic}-${partition} at sequence ${header.baseSequence}; a new epoch must start at sequence 0`,
        fields,
      ),
    };
  }
  const lastSequence = incrementSequence(header.baseSequence, header.lastOffsetDelta);
  for (const batch of entry.batches) {
    if (batch.firstSequence === header.baseSequence && batch.lastSequence === lastSequence) return { kind: 'duplicate', batch };
  }
  const newest = entry.batches[entry.batches.length - 1] as ProducerBatchMetadata;
  const expected = incrementSequence(newest.lastSequence, 1);
  if (header.baseSequence === expected) return undefined;
  return {
    kind: 'rejected',
    error: new BrokerError(
      'OUT_OF_ORDER_SEQUENCE',
      `out-of-order sequence from producer id ${header.producerId} epoch ${header.producerEpoch} on ${topic}-${partition}: expected sequence ${expected}, got ${header.baseSequence}`,
      { ...fields, details: { ...fields.details, expectedSequence: expected } },
    ),
  };
}

function newEntry(header: BatchHeader): ProducerEntry {
  return { producerId: header.producerId, epoch: header.producerEpoch, batches: [], lastTimestamp: header.maxTimestamp };
}

/** Appends a batch's metadata to `entry` (same epoch), keeping the newest five; the producer was seen at `nowMs`. */
function addBatch(entry: ProducerEntry, header: BatchHeader, baseOffset: number, nowMs: number): void {
  entry.batches.push({
    firstSequence: header.baseSequence,
    lastSequence: incrementSequence(header.baseSequence, header.lastOffsetDelta),
    baseOffset,
    lastOffset: baseOffset + header.lastOffsetDelta,
    maxTimestamp: header.maxTimestamp,
  });
  if (entry.batches.length > PRODUCER_BATCHES_CACHED_MAX) entry.batches.shift();
  entry.lastTimestamp = Math.max(header.maxTimestamp, nowMs);
}
