/**
 * The producer's bookkeeping for one partition: the batch being filled, the closed batches
 * waiting to go, the sent-but-unacknowledged ones, and the idempotence sequence numbers.
 *
 * Owner: the producer (single writer, event-loop code; nothing here is async).
 *
 * Invariants:
 * - `unacked` holds batches in creation order (`ordinal`); at most `inFlightMax` of them
 *   (more only after a split, below), and no batch is sent more than `inFlightMax` ordinals
 *   after the oldest of them, so every unacknowledged batch is within the broker's
 *   five-batch duplicate window.
 * - Batches are sent in creation order. After any failure the partition *recovers*: it sends
 *   nothing until every in-flight batch has answered and the backoff has passed, then resends
 *   the unacknowledged batches in order before anything new. A batch that answered
 *   OUT_OF_ORDER_SEQUENCE while an earlier one was failing is simply resent
 *   (producer.test.ts: "resends later in-flight batches in order after a retriable failure").
 * - A retried batch keeps its sequence, so the broker answers a duplicate with the original
 *   offsets. Sequences change only when the recovery step finds a gap left by a batch that
 *   failed for good and was certainly not appended; a batch that *may* have been appended is
 *   never renumbered: the recovery asks for an epoch bump instead (`prepareResend`).
 * - Before an epoch bump restarts the sequences (`resetForNewEpoch`), every batch that holds a
 *   sequence of the current epoch and may have been appended is resolved: resent as it is,
 *   under the old epoch, until the broker says whether it holds it (`nextToResolve`, as
 *   Kafka's TransactionManager keeps a partition with unresolved sequences from bumping).
 *   Success or a duplicate: appended, acknowledged with the broker's offsets.
 *   OUT_OF_ORDER_SEQUENCE: not appended (`onNotAppended`), so a new sequence is safe. The
 *   broker (storage/producer-state.ts) answers a resend as a duplicate only while it is among
 *   the producer's last five batches there (PRODUCER_BATCHES_CACHED_MAX); an older one gets
 *   OUT_OF_ORDER_SEQUENCE, as a gap does, and would be taken for "not appended". That cannot
 *   happen to an unacknowledged batch, by the window above: every batch the broker may have
 *   appended after it was sent fewer than `inFlightMax` (at most five: the producer refuses
 *   more with idempotence) ordinals after it, so at most four came after it, and nothing new
 *   is sent while batches are being resolved.
 * - A batch the broker refused as too large (certainly not appended) is replaced in `unacked`
 *   by its pieces, which take over its sequence range; the batches behind it then fail with
 *   OUT_OF_ORDER_SEQUENCE and are resent behind the pieces by the same recovery
 *   (`replaceBySplit`). Every batch the broker sees has its own ordinal, so the window
 *   counts pieces as batches; `unacked` may then hold more than `inFlightMax` batches, and
 *   only those within the window are sent.
 * - With idempotence, one batch at a time is in flight until the broker has acknowledged a
 *   batch of this producer epoch here. The broker takes any sequence from a producer it does
 *   not know (storage/producer-state.ts), so a batch sent together with one it refuses
 *   (too large, LIMIT_REACHED, …) would be appended before it, and the refused one, resent,
 *   after. Once it knows the producer it refuses such a batch as OUT_OF_ORDER_SEQUENCE. The
 *   cost is one round trip per partition when the producer starts (and after an epoch bump)
 *   (producer.test.ts: "sends one batch at a time until…").
 *
 * Not here: encoding, timers, transport (producer.ts).
 */
import { AssertionError } from '../common/index.js';
import { incrementSequence, type ProducerBatch } from './producer-batch.js';

export type PrepareResendResult = 'ok' | 'needs-epoch-bump';

/** How large the batches of one topic are made; shared by the topic's partitions. */
export interface TopicBatchSizing {
  /**
   * A batch closes at this many estimated bytes: the producer's `batchBytes`, until the broker
   * refused a batch of the topic as too large (max.message.bytes); then at most half of that
   * batch's size. It doubles back toward `batchBytes` every BATCH_BYTES_REGROW_MS after the
   * last change, so a limit raised later is used again; while the limit stays low that costs
   * one refused (never appended) batch per interval.
   */
  batchBytes: number;
  /** When `batchBytes` last shrank or grew (client clock). */
  changedAtMs: number;
}

/** How long a topic's reduced batch size holds before the producer tries twice the size. */
export const BATCH_BYTES_REGROW_MS = 30_000;

export class ProducerPartition {
  readonly topic: string;
  readonly partition: number;
  readonly sizing: TopicBatchSizing;
  /** The batch records are being appended to; closed by size, linger or flush. */
  open: ProducerBatch | undefined;
  cancelLinger: (() => void) | undefined;
  /** Closed, never sent, in order. */
  readonly ready: ProducerBatch[] = [];
  /** Sent at least once and not yet complete, in order. */
  unacked: ProducerBatch[] = [];
  /** Batches of `unacked` with a request on the wire. */
  inFlight = 0;
  /** Sequence the next never-sent batch gets. */
  nextSequence = 0;
  /** Failures seen (any batch); an OUT_OF_ORDER reply is expected when this grew since its send. */
  failureCount = 0;
  /** Waiting for in-flight replies and the backoff before resending. */
  isRecovering = false;
  retryAtMs = 0;
  cancelRetryTimer: (() => void) | undefined;
  /** Ordinal and last sequence of the newest acknowledged batch in this epoch; -1 for none. */
  private lastAckedOrdinal = -1;
  private lastAckedSequence = -1;
  private nextOrdinal = 0;

  constructor(topic: string, partition: number, sizing: TopicBatchSizing) {
    this.topic = topic;
    this.partition = partition;
    this.sizing = sizing;
  }

  takeOrdinal(): number {
    return this.nextOrdinal++;
  }

  /** Whether any batch of this partition is open, waiting, or unacknowledged. */
  get hasWork(): boolean {
    return this.open !== undefined || this.ready.length > 0 || this.unacked.length > 0;
  }

  /**
   * The batch to send next, or undefined when the partition must wait (recovering with
   * replies outstanding or backoff pending, or `inFlightMax` reached). Does not mark it sent.
   * A recovery step may report that sequences cannot be repaired without an epoch bump.
   */
  nextToSend(nowMs: number, inFlightMax: number, isIdempotent: boolean): ProducerBatch | 'needs-epoch-bump' | undefined {
    if (this.isRecovering) {
      if (this.inFlight > 0 || nowMs < this.retryAtMs) return undefined;
      if (isIdempotent && this.prepareResend() === 'needs-epoch-bump') return 'needs-epoch-bump';
      this.isRecovering = false;
    }
    // The broker may not know this producer yet (see the file comment).
    if (isIdempotent && this.lastAckedOrdinal < 0 && this.inFlight > 0) return undefined;
    const oldest = this.unacked[0];
    for (const batch of this.unacked) {
      if (batch.isInFlight) continue;
      // Only after a split can `unacked` reach past the window (see the file comment).
      if (batch.ordinal - oldest!.ordinal >= inFlightMax) return undefined;
      return batch;
    }
    if (this.unacked.length >= inFlightMax) return undefined;
    const next = this.ready[0];
    // The broker recognises a duplicate among a producer's last five batches only: with
    // batches acknowledged after an older unacknowledged one, a new batch could push that
    // one out of the window, and its resend would then be appended again.
    if (next !== undefined && oldest !== undefined && next.ordinal - oldest.ordinal >= inFlightMax) return undefined;
    return next;
  }

  /**
   * Whether a batch holds a sequence of the current epoch that the broker may have appended,
   * so the epoch must not be bumped yet (see the file comment). In flight or waiting.
   */
  get hasUnresolvedSequence(): boolean {
    return this.firstUnresolved() !== undefined;
  }

  /**
   * The oldest batch with an unresolved sequence, to resend under its old epoch and sequence
   * before an epoch bump; undefined while a batch is in flight here (one resend at a time, in
   * order) or a backoff is pending. Does not mark it sent, and renumbers nothing.
   */
  nextToResolve(nowMs: number): ProducerBatch | undefined {
    if (this.inFlight > 0 || (this.isRecovering && nowMs < this.retryAtMs)) return undefined;
    return this.firstUnresolved();
  }

  /**
   * The broker answered OUT_OF_ORDER_SEQUENCE to `batch`: no attempt of it was appended, or
   * the broker would have answered a duplicate (within the window, see the file comment).
   */
  onNotAppended(batch: ProducerBatch): void {
    batch.mayBeAppended = false;
  }

  /**
   * The first batch that holds a sequence of this epoch and may have been appended, unless a
   * batch before it certainly was not: one with a sequence, no attempt of unknown outcome and
   * no reply outstanding. The broker appends a known producer's sequences only in order, so
   * nothing after such a batch is in the log either, and resending it first could only put it
   * ahead of that batch.
   */
  private firstUnresolved(): ProducerBatch | undefined {
    for (const batch of this.unacked) {
      if (batch.baseSequence < 0) return undefined; // numbered after a reset, or never sent
      if (batch.mayBeAppended) return batch;
      if (!batch.isInFlight) return undefined;
    }
    return undefined;
  }

  /**
   * Records that `batch` (from `nextToSend`) goes on the wire now; assigns its sequence on
   * its first send when idempotent.
   */
  markSent(batch: ProducerBatch, isIdempotent: boolean): void {
    if (this.ready[0] === batch) {
      this.ready.shift();
      this.unacked.push(batch);
    }
    if (isIdempotent && batch.baseSequence < 0) {
      batch.baseSequence = this.nextSequence;
      this.nextSequence = incrementSequence(this.nextSequence, batch.recordCount);
    }
    batch.isInFlight = true;
    batch.attempts++;
    batch.failureCountAtSend = this.failureCount;
    this.inFlight++;
  }

  /** A reply (or failure) for an in-flight batch came back. */
  markAnswered(batch: ProducerBatch): void {
    if (!batch.isInFlight) return;
    batch.isInFlight = false;
    this.inFlight--;
  }

  onAcked(batch: ProducerBatch): void {
    this.remove(batch);
    if (batch.ordinal > this.lastAckedOrdinal && batch.baseSequence >= 0) {
      this.lastAckedOrdinal = batch.ordinal;
      this.lastAckedSequence = batch.lastSequence;
    }
  }

  /** `batch` will be resent after `backoffMs`, after every reply still outstanding. */
  onRetry(nowMs: number, backoffMs: number): void {
    this.failureCount++;
    this.isRecovering = true;
    this.retryAtMs = Math.max(this.retryAtMs, nowMs + backoffMs);
  }

  /** `batch` failed for good; it leaves the partition, and the rest recovers around the gap. */
  onFailed(batch: ProducerBatch): void {
    this.remove(batch);
    this.failureCount++;
    this.isRecovering = true;
  }

  /**
   * Puts `pieces` (new batches holding `batch`'s records in order, never sent) in the place of
   * `batch`, which the broker refused as too large and certainly did not append, and starts a
   * recovery: nothing more is sent until the batches in flight behind it have answered
   * (OUT_OF_ORDER_SEQUENCE, expected now), then the pieces go first. With idempotence the
   * pieces take over `batch`'s sequence range, so the batches behind keep theirs unless
   * `prepareResend` finds another gap. Ordinals of every later batch move up to make room.
   */
  replaceBySplit(batch: ProducerBatch, pieces: ProducerBatch[]): void {
    const index = this.unacked.indexOf(batch);
    if (index < 0 || batch.isInFlight) {
      throw new AssertionError(`batch ${this.topic}-${this.partition}#${batch.ordinal} is not waiting in unacked, so it cannot be split`);
    }
    const shift = pieces.length - 1;
    for (const later of this.unacked.slice(index + 1)) later.ordinal += shift;
    for (const later of this.ready) later.ordinal += shift;
    if (this.open !== undefined) this.open.ordinal += shift;
    this.nextOrdinal += shift;
    if (this.lastAckedOrdinal > batch.ordinal) this.lastAckedOrdinal += shift;
    let sequence = batch.baseSequence;
    pieces.forEach((piece, offset) => {
      piece.ordinal = batch.ordinal + offset;
      piece.baseSequence = sequence;
      if (sequence >= 0) sequence = incrementSequence(sequence, piece.recordCount);
    });
    this.unacked.splice(index, 1, ...pieces);
    this.failureCount++;
    this.isRecovering = true;
  }

  /** A new producer epoch: sequences restart at 0, in order, for every unacknowledged batch. */
  resetForNewEpoch(): void {
    this.lastAckedOrdinal = -1;
    this.lastAckedSequence = -1;
    this.nextSequence = 0;
    for (const batch of this.unacked) {
      batch.baseSequence = -1;
      batch.mayBeAppended = false;
    }
    // Sequences are reassigned by markSent in send order, which is creation order.
    this.isRecovering = this.unacked.length > 0;
    this.retryAtMs = 0;
  }

  /** Removes `batch` from whichever queue holds it. */
  remove(batch: ProducerBatch): void {
    const unackedIndex = this.unacked.indexOf(batch);
    if (unackedIndex >= 0) {
      this.unacked.splice(unackedIndex, 1);
      return;
    }
    const readyIndex = this.ready.indexOf(batch);
    if (readyIndex >= 0) this.ready.splice(readyIndex, 1);
  }

  /**
   * The recovery step, with nothing in flight: makes the unacknowledged batches' sequences
   * continue from the newest acknowledged one. Batches older than it are resent as they are
   * (the broker resolves them as duplicates); a batch already in place keeps its sequence; a
   * batch after a gap is renumbered only if it cannot have been appended. Batches that got a
   * sequence under a reset epoch (-1) are left for markSent.
   */
  prepareResend(): PrepareResendResult {
    // With nothing acknowledged yet in this epoch, the first batch must carry sequence 0.
    let expected = this.lastAckedOrdinal >= 0 ? incrementSequence(this.lastAckedSequence, 1) : 0;
    for (const batch of this.unacked) {
      if (batch.baseSequence < 0) break; // never sent, nor is any after it: numbered from `expected` when sent
      if (batch.ordinal < this.lastAckedOrdinal) continue;
      if (batch.baseSequence !== expected) {
        if (batch.mayBeAppended) return 'needs-epoch-bump';
        batch.baseSequence = expected;
      }
      expected = incrementSequence(batch.lastSequence, 1);
    }
    this.nextSequence = expected;
    return 'ok';
  }

}

