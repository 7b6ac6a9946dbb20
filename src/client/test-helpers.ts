/**
 * Fakes for the client's unit tests: a produce channel whose replies the test controls, a
 * producer transport around it, and a tiny in-memory partition log that answers produce
 * requests the way the broker's idempotence rules do (duplicates get their original
 * offsets, sequence gaps get OUT_OF_ORDER_SEQUENCE), its size limit (BATCH_TOO_LARGE) and its
 * record checks (one bad record refuses the batch).
 * Not part of the client's surface.
 */
import { EventEmitter } from 'node:events';
import type { Clock } from '../common/index.js';
import { BrokerError, type Reason } from '../errors/index.js';
import {
  decodeBatch,
  DECOMPRESSED_BYTES_MAX_DEFAULT,
  HEADERS_PER_RECORD_MAX,
  tryReadBatchHeader,
  validateBatchRecordsOrThrow,
  type BatchHeader,
  type DecodedRecord,
} from '../protocol/index.js';
import type { ProduceRequest } from '../protocol/generated/runnel/v1/ProduceRequest.js';
import type { PartitionResult__Output } from '../protocol/generated/runnel/v1/PartitionResult.js';
import type { SubscribeRequest } from '../protocol/generated/runnel/v1/SubscribeRequest.js';
import type { SubscribeResponse__Output } from '../protocol/generated/runnel/v1/SubscribeResponse.js';
import type { ConsumerTransport, ListedOffset, SubscriptionStream } from './consumer.js';
import type { ProduceChannel, ProduceReplyCallback } from './produce-channel.js';
import type { ProducerTransport } from './producer.js';
import { withRetry, type RetryOptions } from './retry.js';
import type { OffsetSpec } from './types.js';

export interface SentPartition {
  topic: string;
  partition: number;
  bytes: Buffer;
  header: BatchHeader;
}

export interface SentRequest {
  request: ProduceRequest;
  partitions: SentPartition[];
  onReply: ProduceReplyCallback;
}

/** What the test answers for one partition of a request. */
export type PartitionAnswer = { baseOffset: number; logAppendTimeMs?: number } | { error: Reason; message?: string };

export class FakeProduceChannel implements ProduceChannel {
  /** Every request ever sent, in order. */
  readonly sent: SentRequest[] = [];
  /** Sent and not yet answered, oldest first. */
  pending: SentRequest[] = [];
  isClosed = false;

  get inFlightCount(): number {
    return this.pending.length;
  }

  send(request: ProduceRequest, onReply: ProduceReplyCallback): void {
    const partitions: SentPartition[] = [];
    for (const topic of request.topics ?? []) {
      for (const data of topic.partitions ?? []) {
        // Copied: the producer may restamp its buffer for a later retry, as after a real send.
        const bytes = Buffer.from(data.recordBatch as Buffer);
        partitions.push({ topic: topic.topic!, partition: data.partition!, bytes, header: tryReadBatchHeader(bytes)! });
      }
    }
    const sent = { request, partitions, onReply };
    this.sent.push(sent);
    this.pending.push(sent);
  }

  close(): void {
    this.isClosed = true;
  }

  /** How many times the producer gave up on the stream (`reset`). */
  resetCount = 0;

  reset(error: BrokerError): void {
    this.resetCount++;
    this.failAll(error);
  }

  /** Answers the oldest pending request, partition by partition. */
  replyNext(answer: (partition: SentPartition) => PartitionAnswer): void {
    const sent = this.pending.shift();
    if (sent === undefined) throw new Error('no pending request to reply to');
    const byTopic = new Map<string, PartitionResult__Output[]>();
    for (const partition of sent.partitions) {
      const result = answer(partition);
      const list = byTopic.get(partition.topic) ?? [];
      byTopic.set(partition.topic, list);
      list.push(
        'error' in result
          ? {
              partition: partition.partition,
              baseOffset: '-1',
              logAppendTimeMs: '-1',
              logStartOffset: '-1',
              error: { reason: result.error, message: result.message ?? result.error, retriable: new BrokerError(result.error, '').retriable },
            }
          : {
              partition: partition.partition,
              baseOffset: String(result.baseOffset),
              logAppendTimeMs: String(result.logAppendTimeMs ?? -1),
              logStartOffset: '0',
              error: null,
            },
      );
    }
    sent.onReply(undefined, {
      sequence: String(sent.request.sequence),
      topics: [...byTopic].map(([topic, partitions]) => ({ topic, partitions })),
    });
  }

  /** Fails every pending request as a broken stream does. */
  failAll(error: BrokerError = new BrokerError('BROKER_UNAVAILABLE', 'stream broke')): void {
    const pending = this.pending;
    this.pending = [];
    for (const sent of pending) sent.onReply(error, undefined);
  }
}

/**
 * One partition log with the broker's idempotence rules (storage/producer-state.ts), small
 * enough to read: per producer the epoch and the last five batches' sequences and offsets.
 */
export class FakePartitionLog {
  readonly records: DecodedRecord[] = [];
  /** The topic's max.message.bytes: a larger batch is refused before anything else is checked, as the broker does. */
  maxMessageBytes = Number.POSITIVE_INFINITY;
  private readonly producers = new Map<number, { epoch: number; batches: { first: number; last: number; baseOffset: number }[] }>();

  append(bytes: Buffer): PartitionAnswer {
    if (bytes.length > this.maxMessageBytes) {
      return { error: 'BATCH_TOO_LARGE', message: `batch is ${bytes.length} bytes; the limit is ${this.maxMessageBytes}` };
    }
    const header = tryReadBatchHeader(bytes)!;
    try {
      // The broker's record checks (broker.ts): one bad record refuses the whole batch.
      validateBatchRecordsOrThrow(bytes, header, { headersPerRecordMax: HEADERS_PER_RECORD_MAX, decompressedBytesMax: DECOMPRESSED_BYTES_MAX_DEFAULT });
    } catch (error) {
      if (!(error instanceof BrokerError)) throw error;
      return { error: error.reason, message: error.message };
    }
    const count = header.recordCount;
    if (header.producerId >= 0) {
      const state = this.producers.get(header.producerId);
      const last = header.baseSequence + count - 1;
      if (state !== undefined && header.producerEpoch < state.epoch) return { error: 'PRODUCER_FENCED' };
      if (state !== undefined && header.producerEpoch === state.epoch) {
        const duplicate = state.batches.find((batch) => batch.first === header.baseSequence && batch.last === last);
        if (duplicate !== undefined) return { baseOffset: duplicate.baseOffset };
        const newest = state.batches.at(-1);
        if (newest !== undefined && header.baseSequence !== newest.last + 1) return { error: 'OUT_OF_ORDER_SEQUENCE' };
      }
      if (state !== undefined && header.producerEpoch > state.epoch && header.baseSequence !== 0) return { error: 'OUT_OF_ORDER_SEQUENCE' };
      const entry = state !== undefined && state.epoch === header.producerEpoch ? state : { epoch: header.producerEpoch, batches: [] };
      entry.batches.push({ first: header.baseSequence, last, baseOffset: this.records.length });
      if (entry.batches.length > 5) entry.batches.shift();
      this.producers.set(header.producerId, entry);
    }
    const baseOffset = this.records.length;
    const decoded = decodeBatch(bytes);
    for (const record of decoded.records) this.records.push({ ...record, offset: baseOffset + (record.offset - decoded.header.baseOffset) });
    return { baseOffset };
  }
}

export class FakeProducerTransport implements ProducerTransport {
  readonly channel = new FakeProduceChannel();
  readonly partitionCounts = new Map<string, number>();
  /** Topics that exist on the "broker"; loading others fails with TOPIC_NOT_FOUND. */
  readonly brokerPartitionCounts = new Map<string, number>();
  readonly initCalls: ({ producerId: number; producerEpoch: number } | undefined)[] = [];
  loadCalls = 0;
  /**
   * While set, a metadata load fails: the transport reports it `loadRetriesPerCall` times as a
   * retried failure (its retry budget), then rejects with it. Each call counts one in `loadCalls`.
   */
  loadError: BrokerError | undefined;
  loadRetriesPerCall = 0;
  /** When true, a metadata load never settles (a broker that accepts the call and never answers). */
  holdLoads = false;
  isClosed = false;
  private nextProducerId = 1000;
  /** When set, InitProducerId fails with it. */
  initError: BrokerError | undefined;
  /** When true, InitProducerId stays unanswered (a broker out of reach) until `answerHeldInits()`. */
  holdInit = false;
  /** Reported to the producer as a retried failure of each held InitProducerId. */
  initRetryError: BrokerError | undefined;
  private heldInits: { answer: () => void; fail: (error: BrokerError) => void }[] = [];

  constructor(topics: Record<string, number> = {}) {
    for (const [topic, count] of Object.entries(topics)) {
      this.partitionCounts.set(topic, count);
      this.brokerPartitionCounts.set(topic, count);
    }
  }

  initProducerId(
    current: { producerId: number; producerEpoch: number } | undefined,
    onRetry?: (error: BrokerError) => void,
  ): Promise<{ producerId: number; producerEpoch: number }> {
    this.initCalls.push(current);
    if (this.initError !== undefined) return Promise.reject(this.initError);
    const answer = (): { producerId: number; producerEpoch: number } =>
      current === undefined ? { producerId: this.nextProducerId++, producerEpoch: 0 } : { producerId: current.producerId, producerEpoch: current.producerEpoch + 1 };
    if (!this.holdInit) return Promise.resolve(answer());
    if (this.initRetryError !== undefined) onRetry?.(this.initRetryError);
    return new Promise((resolve, reject) => this.heldInits.push({ answer: () => resolve(answer()), fail: reject }));
  }

  /** Answers every held InitProducerId and stops holding new ones. */
  answerHeldInits(): void {
    this.holdInit = false;
    const held = this.heldInits;
    this.heldInits = [];
    for (const { answer } of held) answer();
  }

  /** Fails every held InitProducerId with `error` (as when its retry budget is used up) and stops holding new ones. */
  failHeldInits(error: BrokerError): void {
    this.holdInit = false;
    const held = this.heldInits;
    this.heldInits = [];
    for (const { fail } of held) fail(error);
  }

  partitionCount(topic: string): number | undefined {
    return this.partitionCounts.get(topic);
  }

  loadPartitionCount(topic: string, onRetry?: (error: BrokerError) => void): Promise<number> {
    this.loadCalls++;
    if (this.holdLoads) return new Promise(() => undefined);
    if (this.loadError !== undefined) {
      for (let retry = 0; retry < this.loadRetriesPerCall; retry++) onRetry?.(this.loadError);
      return Promise.reject(this.loadError);
    }
    const count = this.brokerPartitionCounts.get(topic);
    if (count === undefined) {
      this.partitionCounts.delete(topic);
      return Promise.reject(new BrokerError('TOPIC_NOT_FOUND', `topic ${topic} does not exist`, { topic }));
    }
    this.partitionCounts.set(topic, count);
    return Promise.resolve(count);
  }

  channelFor(): ProduceChannel {
    return this.channel;
  }

  close(): void {
    this.isClosed = true;
    this.channel.close();
  }
}

/** Lets queued microtasks and promise callbacks run (no wall-clock time passes). */
export async function settle(rounds = 5): Promise<void> {
  for (let round = 0; round < rounds; round++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A Subscribe stream the test drives: it records what the consumer wrote and emits replies. */
export class FakeSubscription extends EventEmitter implements SubscriptionStream {
  readonly writes: SubscribeRequest[] = [];
  isCancelled = false;
  /** Whether the "broker" takes the stream (sends its headers) as the consumer writes `start`; false: a hung broker. */
  private readonly isTaken: boolean;

  constructor(isTaken = true) {
    super();
    this.isTaken = isTaken;
  }

  override on(event: string, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  write(message: SubscribeRequest): boolean {
    this.writes.push(message);
    if (message.start !== undefined && this.isTaken) this.emit('metadata', {});
    return true;
  }

  cancel(): void {
    this.isCancelled = true;
  }

  reply(bytes: Buffer, nextOffset: number, highWatermark = nextOffset): void {
    const response: SubscribeResponse__Output = {
      recordBatches: bytes,
      records: [],
      highWatermark: String(highWatermark),
      logStartOffset: '0',
      nextOffset: String(nextOffset),
    };
    this.emit('data', response);
  }
}

export class FakeConsumerTransport implements ConsumerTransport {
  readonly subscriptions: { topic: string; partition: number; stream: FakeSubscription }[] = [];
  readonly listOffsetCalls: { topic: string; partition: number; spec: Exclude<OffsetSpec, number>; signal: AbortSignal }[] = [];
  /** A bare number for a time means a record at that time was found there. It may throw, as a failed call does. */
  offsets: (topic: string, partition: number, spec: Exclude<OffsetSpec, number>) => number | ListedOffset = () => 0;
  /**
   * When set, ListOffsets retries a retriable failure of `offsets` the way the client does
   * (`withRetry` on this clock and policy, ended by the call's signal), counting each attempt
   * in `listOffsetAttempts`.
   */
  listOffsetRetry: { clock: Clock; retry: RetryOptions } | undefined;
  listOffsetAttempts = 0;
  partitionCount = 1;
  /** Whether new streams are taken by the "broker" (headers sent); false stands for a hung broker. */
  isTakingStreams = true;
  isClosed = false;
  /** Streams the consumer reported as never taken (`reportNotTaken`), in order. */
  readonly notTaken: SubscriptionStream[] = [];

  openSubscription(topic: string, partition: number): SubscriptionStream {
    const stream = new FakeSubscription(this.isTakingStreams);
    this.subscriptions.push({ topic, partition, stream });
    return stream;
  }

  async listOffset(topic: string, partition: number, spec: Exclude<OffsetSpec, number>, signal: AbortSignal): Promise<ListedOffset> {
    this.listOffsetCalls.push({ topic, partition, spec, signal });
    const attempt = async (): Promise<ListedOffset> => {
      this.listOffsetAttempts++;
      const answer = this.offsets(topic, partition, spec);
      if (typeof answer !== 'number') return answer;
      return { offset: answer, timestamp: typeof spec === 'object' ? spec.timestamp : -1 };
    };
    const retrying = this.listOffsetRetry;
    if (retrying === undefined) return attempt();
    return withRetry({ clock: retrying.clock, random: () => 0.5, retry: retrying.retry, signal }, attempt);
  }

  reportNotTaken(stream: SubscriptionStream): void {
    this.notTaken.push(stream);
  }

  refreshMetadata(): Promise<number> {
    return Promise.resolve(this.partitionCount);
  }

  close(): void {
    this.isClosed = true;
  }

  get latest(): FakeSubscription {
    const last = this.subscriptions.at(-1);
    if (last === undefined) throw new Error('no subscription opened');
    return last.stream;
  }
}
