/**
 * gRPC adapter of LogService (proto/runnel/v1/log.proto): Produce, ProduceStream, Fetch,
 * Subscribe, ListOffsets, InitProducerId. Validates input (validate.ts), calls the Broker,
 * and maps errors once (status.ts). No storage logic here.
 */
import type * as grpc from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import { KiB, MiB } from '../../common/units.js';
import type { Clock } from '../../common/clock.js';
import { limits } from '../../config/limits.js';
import { BROKER_STOPPING_MESSAGE, BrokerError } from '../../errors/index.js';
import type { Logger } from '../../observability/index.js';
import { fetchedRecordFieldSizeBytes, int64ToNumber, numberToInt64, subscribeResponseSizeBytes, visitRecords, type BatchHeader } from '../../protocol/index.js';
import type { Acks, Broker, FetchResult, OffsetQuery } from '../../broker/index.js';
import type { LogServiceHandlers } from '../../protocol/generated/runnel/v1/LogService.js';
import type { FetchedRecord } from '../../protocol/generated/runnel/v1/FetchedRecord.js';
import type { ProduceRequest__Output } from '../../protocol/generated/runnel/v1/ProduceRequest.js';
import type { ProduceResponse } from '../../protocol/generated/runnel/v1/ProduceResponse.js';
import type { SubscribeRequest__Output } from '../../protocol/generated/runnel/v1/SubscribeRequest.js';
import type { ByteBudget } from '../byte-budget.js';
import { requestOrThrow, heldBytesOf } from '../request-guard.js';
import { endWithError, toErrorMessage, toServiceError } from '../status.js';
import { acksFromWire, batchFromPartitionData, formatFromWire, checkListOffsetsTimestamp, checkMaxBytes, checkOffset, checkPartition, checkTopic, distinctWithin, invalid } from '../validate.js';

const FETCH_BYTES_DEFAULT = 1 * MiB;
const SUBSCRIBE_MESSAGE_BYTES_DEFAULT = 1 * MiB;
const SUBSCRIBE_WAIT_MS = 30_000;
/**
 * Most decoded record bytes one RECORD_FORMAT_RECORDS reply carries (beyond its first batch):
 * well inside `limits.grpcMessageBytesMax`, and a bound on the decompression done for it.
 */
const DECODED_REPLY_BYTES_MAX = 16 * MiB;
/** What a decoded record (or header) adds to a reply beyond its bytes: field tags, lengths, offset, timestamp. */
const FETCHED_RECORD_OVERHEAD_BYTES = 32;

export interface LogServiceDeps {
  broker: Broker;
  logger: Logger;
  clock: Clock;
  produceTimeoutMs: number;
  /**
   * Aborted when the server starts to shut down: a parked Fetch answers at once with what it
   * has, a Subscribe ends with BROKER_UNAVAILABLE (the client reopens it elsewhere or later),
   * and a ProduceStream answers what it has taken and then ends the same way. Without this,
   * long-lived calls hold the shutdown until its grace period runs out.
   */
  stopping: AbortSignal;
  /** Produce request bytes held at once over every call (byte-budget.ts). */
  produceBudget: ByteBudget;
}

/** Runs `onStop` once when `signal` aborts; returns the remover (call it when the call ends). */
function whenStopping(signal: AbortSignal, onStop: () => void): () => void {
  if (signal.aborted) {
    queueMicrotask(onStop);
    return () => undefined;
  }
  signal.addEventListener('abort', onStop, { once: true });
  return () => signal.removeEventListener('abort', onStop);
}

/**
 * Calls `forget` when a streaming call is over, whichever way it ends: finished by us
 * ('finish'), cancelled by the client, or torn down ('close'); a second call is harmless.
 */
function forgetWhenDone(call: NodeJS.EventEmitter, forget: () => void): void {
  call.once('finish', forget);
  call.once('cancelled', forget);
  call.once('close', forget);
}

function produceBudgetSpent(budget: ByteBudget): BrokerError {
  return new BrokerError(
    'LIMIT_REACHED',
    `the broker holds ${budget.used} bytes of produce requests, its limit (produceBytesInFlightMax ${budget.bytesMax}); retry after a backoff`,
    { details: { usedBytes: budget.used, bytesMax: budget.bytesMax } },
  );
}

/** A Produce request that passed `checkedProduceOrThrow`, with its acks and timeout. */
interface CheckedProduce {
  request: ProduceRequest__Output;
  acks: Acks;
  timeoutMs: number;
}

/** Gives `bytes` back to `budget` once every append in `appends` is settled (none rejects). */
function releaseWhenAppended(budget: ByteBudget, bytes: number, appends: readonly Promise<void>[]): void {
  void Promise.all(appends).then(() => budget.release(bytes));
}

function noop(): void {}

function shuttingDown(): BrokerError {
  return new BrokerError('BROKER_UNAVAILABLE', BROKER_STOPPING_MESSAGE);
}

export function createLogService(deps: LogServiceDeps): LogServiceHandlers {
  const { broker, logger } = deps;

  /**
   * The checks that fail a Produce request as a whole (its guard's verdict, acks, the partition
   * count, a partition named twice), apart from its per-partition work: they run before
   * anything of the request starts, so a ProduceStream can refuse it without having started
   * the requests read after it.
   */
  function checkedProduceOrThrow(request: ProduceRequest__Output): CheckedProduce {
    requestOrThrow(request);
    const acks = acksFromWire(request.acks);
    const timeoutMs = request.timeoutMs === 0 ? deps.produceTimeoutMs : Math.min(request.timeoutMs, deps.produceTimeoutMs * 10);
    let partitionCount = 0;
    for (const topic of request.topics) partitionCount += topic.partitions.length;
    if (partitionCount > limits.partitionsPerRequestMax) throw invalid(`a produce request names ${partitionCount} partitions; at most ${limits.partitionsPerRequestMax}`);
    checkedProduceDistinctPartitionsOrThrow(request);
    return { request, acks, timeoutMs };
  }

  /**
   * Refuses a Produce request that names one partition twice (twice in a topic's list, or in
   * the topic listed twice), before anything is appended: appending both would put them in the
   * log in no set order, with two results for the one partition that a client matching results
   * by partition cannot tell apart. Bounded: at most `partitionsPerRequestMax` entries, checked
   * above.
   */
  function checkedProduceDistinctPartitionsOrThrow(request: ProduceRequest__Output): void {
    const partitionsByTopic = new Map<string, Set<number>>();
    for (const topicData of request.topics) {
      let seen = partitionsByTopic.get(topicData.topic);
      if (seen === undefined) {
        seen = new Set();
        partitionsByTopic.set(topicData.topic, seen);
      }
      for (const data of topicData.partitions) {
        if (seen.has(data.partition)) {
          throw invalid(`partition ${data.partition} of topic ${JSON.stringify(topicData.topic)} is named twice in one produce request, so none of it was appended; send each partition once, with its records in one batch`);
        }
        seen.add(data.partition);
      }
    }
  }

  /**
   * One checked Produce request: every partition in parallel, each with its own result or
   * error. Each append started goes into `appends`, settled once its batch is written or
   * refused: with ACKS_NONE, or after ACK_TIMEOUT, that is later than the reply, and the
   * request's bytes are held until then.
   */
  async function produce({ request, acks, timeoutMs }: CheckedProduce, appends: Promise<void>[]): Promise<ProduceResponse> {
    const nowMs = deps.clock.nowMs();
    const topics = await Promise.all(
      request.topics.map(async (topicData) => ({
        topic: topicData.topic,
        partitions: await Promise.all(
          topicData.partitions.map(async (data) => {
            try {
              const topic = checkTopic(topicData.topic);
              const partition = checkPartition(data.partition);
              const batch = batchFromPartitionData(data, nowMs);
              const result = await broker.produce({ topic, partition, batch, acks, timeoutMs, onAppending: (settled) => appends.push(settled) });
              return {
                partition: data.partition,
                baseOffset: numberToInt64(result.baseOffset),
                logAppendTimeMs: numberToInt64(result.logAppendTimeMs),
                logStartOffset: numberToInt64(result.logStartOffset),
                error: null,
              };
            } catch (error) {
              return { partition: data.partition, baseOffset: '-1', logAppendTimeMs: '-1', logStartOffset: '-1', error: toErrorMessage(error, logger, 'Produce') };
            }
          }),
        ),
      })),
    );
    return { sequence: request.sequence, topics };
  }

  /**
   * The records of `result` from `fromOffset` on, decoded, batch by batch while their decoded
   * size stays within `bytesMax` (the first batch always goes, so a reader never stalls). A
   * compressed batch can decode to many times its stored size: without this bound a reply
   * could outgrow the gRPC message limit and the reader would be stuck at that offset. The
   * first batch itself is cut after the record that reaches DECODED_REPLY_BYTES_MAX: one gzip
   * batch can hold millions of empty records, and decoding it whole ran the broker out of
   * memory. Returns where the reply ends (the next offset to ask for) and the size of the
   * reply's `records` field as protobuf counts it (`fetchedRecordFieldSizeBytes`).
   */
  function toFetchedRecords(result: FetchResult, fromOffset: number, bytesMax: number): { records: FetchedRecord[]; nextOffset: number; recordsFieldBytes: number } {
    const records: FetchedRecord[] = [];
    let decodedBytes = 0;
    let recordsFieldBytes = 0;
    let nextOffset = result.nextOffset;
    // The records of the batch being read, kept apart until it is known to fit `bytesMax`.
    let batchHeader: BatchHeader | undefined;
    let batchRecords: FetchedRecord[] = [];
    let batchBytes = 0;
    let batchFieldBytes = 0;
    const isFirstBatch = (): boolean => records.length === 0;
    try {
      visitRecords(result.bytes, { fromOffset }, (record, header) => {
        if (header !== batchHeader) {
          for (const fetched of batchRecords) records.push(fetched);
          decodedBytes += batchBytes;
          recordsFieldBytes += batchFieldBytes;
          batchHeader = header;
          batchRecords = [];
          batchBytes = 0;
          batchFieldBytes = 0;
        }
        let recordBytes = FETCHED_RECORD_OVERHEAD_BYTES + (record.key?.length ?? 0) + (record.value?.length ?? 0);
        for (const header of record.headers) recordBytes += header.key.length + (header.value?.length ?? 0) + FETCHED_RECORD_OVERHEAD_BYTES;
        const replyBytes = decodedBytes + batchBytes + recordBytes;
        if (!isFirstBatch() && replyBytes > bytesMax) {
          // Only whole batches after the first: this one goes in the next reply.
          batchRecords = [];
          batchBytes = 0;
          batchFieldBytes = 0;
          nextOffset = Math.max(header.baseOffset, fromOffset);
          return false;
        }
        if (batchRecords.length > 0 && replyBytes > DECODED_REPLY_BYTES_MAX) {
          nextOffset = record.offset;
          return false;
        }
        const fetched: FetchedRecord = {
          offset: numberToInt64(record.offset),
          headers: record.headers.map((header) => (header.value === null ? { key: header.key } : { key: header.key, value: header.value })),
          timestampMs: numberToInt64(record.timestamp),
        };
        if (record.key !== null) fetched.key = record.key;
        if (record.value !== null) fetched.value = record.value;
        batchRecords.push(fetched);
        batchBytes += recordBytes;
        batchFieldBytes += fetchedRecordFieldSizeBytes(record);
        return true;
      });
      for (const fetched of batchRecords) records.push(fetched);
      recordsFieldBytes += batchFieldBytes;
    } catch (error) {
      // The batch passed its CRC check on the way in and out, so this is stored data the broker
      // cannot decode, not a bad request.
      if (error instanceof BrokerError && (error.reason === 'CORRUPT_MESSAGE' || error.reason === 'UNSUPPORTED_COMPRESSION')) {
        throw new BrokerError('CORRUPT_DATA', `a stored batch at or after offset ${fromOffset} cannot be decoded (${error.message}); RECORD_FORMAT_BATCHES still returns its bytes`, {
          details: { offset: fromOffset },
        });
      }
      throw error;
    }
    return { records, nextOffset, recordsFieldBytes };
  }

  /**
   * A Fetch or Subscribe reply in `format`; `bytesMax` bounds decoded records (see
   * toFetchedRecords). `creditBytes` is what the reply costs a Subscribe stream (log.proto,
   * SubscribeStart): in RECORD_FORMAT_BATCHES the length of `record_batches`, in
   * RECORD_FORMAT_RECORDS the size of the whole message as protobuf counts it. Both are what
   * the client received, so a client that grants back what it received never stalls. Not
   * the stored bytes of the batches read in records format: those include records not sent
   * (below the start offset, after a cut at the decode budget) that a records client cannot
   * see, so granting back what it got would leave it short for good
   * (test/integration/broker-api.test.ts, "starts inside a batch larger than its credit").
   */
  function fetchReply(result: FetchResult, format: 'records' | 'batches', fromOffset: number, bytesMax: number) {
    const decoded = format === 'batches' ? undefined : toFetchedRecords(result, fromOffset, Math.min(bytesMax, DECODED_REPLY_BYTES_MAX));
    const nextOffset = decoded?.nextOffset ?? result.nextOffset;
    const creditBytes =
      decoded === undefined
        ? result.bytes.length
        : subscribeResponseSizeBytes({
            recordBatchesBytes: 0,
            recordsFieldBytes: decoded.recordsFieldBytes,
            highWatermark: result.highWatermark,
            logStartOffset: result.logStartOffset,
            nextOffset,
          });
    return {
      reply: {
        recordBatches: decoded === undefined ? result.bytes : Buffer.alloc(0),
        records: decoded?.records ?? [],
        highWatermark: numberToInt64(result.highWatermark),
        logStartOffset: numberToInt64(result.logStartOffset),
        nextOffset: numberToInt64(nextOffset),
      },
      nextOffset,
      creditBytes,
    };
  }

  return {
    Produce(call, callback) {
      const bytes = heldBytesOf(call.request);
      if (!deps.produceBudget.tryTake(bytes)) {
        callback(toServiceError(produceBudgetSpent(deps.produceBudget), logger, 'Produce'));
        return;
      }
      // The request's bytes stay held until its appends are written, not only until the reply:
      // with ACKS_NONE the reply comes first, and a client could otherwise queue appends
      // without bound while the budget showed nothing held.
      const appends: Promise<void>[] = [];
      Promise.resolve()
        .then(() => produce(checkedProduceOrThrow(call.request), appends))
        .finally(() => releaseWhenAppended(deps.produceBudget, bytes, appends))
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error, logger, 'Produce')),
        );
    },

    ProduceStream(call) {
      // Replies go back in request order. Reading pauses while too many requests are in
      // flight (replies not yet written, or appends not yet written: an ACKS_NONE request is
      // answered before its append is), or while the broker-wide produce budget is spent, so
      // HTTP/2 flow control holds the client back instead of broker memory.
      const budget = deps.produceBudget;
      const inFlight: Promise<ProduceResponse>[] = [];
      let appendingCount = 0;
      let isWriting = false;
      let isEnded = false;
      let isFailed = false;
      // A request failed as a whole: nothing read after it is started.
      let isRefused = false;
      let isStopping = false;
      let stopWaitingForRoom: (() => void) | undefined;
      const isFull = (): boolean => inFlight.length >= limits.produceStreamInFlightMax || appendingCount >= limits.produceStreamInFlightMax;
      /** Reads on if nothing holds it back; while the budget is spent, once there is room. */
      const resumeIfRoom = (): void => {
        if (isFailed || isRefused || isStopping || call.cancelled || !call.isPaused()) return;
        if (budget.isSpent) {
          stopWaitingForRoom ??= budget.whenRoom(() => {
            stopWaitingForRoom = undefined;
            resumeIfRoom();
          });
          return;
        }
        if (!isFull()) call.resume();
      };
      const pump = async (): Promise<void> => {
        if (isWriting || isFailed) return;
        isWriting = true;
        try {
          while (inFlight.length > 0) {
            const response = await (inFlight[0] as Promise<ProduceResponse>);
            inFlight.shift();
            if (call.cancelled) return;
            if (!call.write(response)) await new Promise<void>((resolve) => call.once('drain', resolve));
            resumeIfRoom();
          }
          if (isEnded) call.end();
          // Shutting down: every request taken is answered; requests the client sent after
          // them were never read, and the status tells it to resend them.
          else if (isStopping) throw shuttingDown();
        } catch (error) {
          // The stream ends here with this request's status; requests after it are dropped
          // unanswered (the client sees the status, and resends from its own unacknowledged).
          isFailed = true;
          inFlight.length = 0; // each already has a handler (below)
          endWithError(call, toServiceError(error, logger, 'ProduceStream'));
        } finally {
          isWriting = false;
        }
      };
      call.on('data', (request: ProduceRequest__Output) => {
        if (isFailed || isRefused) return;
        let response: Promise<ProduceResponse>;
        try {
          const checked = checkedProduceOrThrow(request);
          // Read already: it is answered whatever the budget, which stops the reading after it.
          const bytes = heldBytesOf(request);
          budget.take(bytes);
          appendingCount++;
          const appends: Promise<void>[] = [];
          response = produce(checked, appends);
          void response
            .then(noop, noop)
            .then(() => Promise.all(appends))
            .then(() => {
              budget.release(bytes);
              appendingCount--;
              resumeIfRoom();
            });
        } catch (error) {
          // Refused as a whole: its status ends the stream once the replies before it went out.
          // Requests after it are not started (the client fails them with that status, so
          // none of them may be in the log) and reading stops.
          isRefused = true;
          call.pause();
          response = Promise.reject(error);
        }
        // Handled now: a request may fail while an earlier one is still awaited (pump reports it
        // when its turn comes); left unhandled until then, it would stop the process.
        response.catch(noop);
        inFlight.push(response);
        if (isFull() || budget.isSpent) {
          call.pause();
          resumeIfRoom(); // waits for room when that is what holds it back
        }
        void pump();
      });
      const stopWatching = whenStopping(deps.stopping, () => {
        isStopping = true;
        call.pause();
        void pump();
      });
      call.on('end', () => {
        isEnded = true;
        void pump();
      });
      forgetWhenDone(call, () => {
        stopWatching();
        stopWaitingForRoom?.();
      });
      call.on('error', () => undefined);
    },

    Fetch(call, callback) {
      const request = call.request;
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      // Shutting down: a parked fetch answers now with what it has.
      const stopWatching = whenStopping(deps.stopping, () => controller.abort());
      (async () => {
        requestOrThrow(request);
        const offset = checkOffset(request.offset);
        const maxBytes = checkMaxBytes(request.maxBytes, FETCH_BYTES_DEFAULT);
        const format = formatFromWire(request.format);
        const result = await broker.fetch({
          topic: checkTopic(request.topic),
          partition: checkPartition(request.partition),
          offset,
          maxBytes,
          minBytes: request.minBytes,
          maxWaitMs: request.maxWaitMs,
          signal: controller.signal,
        });
        return fetchReply(result, format, offset, maxBytes).reply;
      })()
        .finally(stopWatching)
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toServiceError(error, logger, 'Fetch')),
        );
    },

    Subscribe(call) {
      // Credit-based: the broker sends while the client has credit (bytes) left; further
      // request messages add credit. With none left, nothing is read from disk. The next read
      // is started while the previous reply drains, so disk and network overlap; at most one
      // reply is buffered beyond what HTTP/2 flow control lets out.
      const controller = new AbortController();
      let credit = 0;
      let wake: (() => void) | undefined;
      let isStarted = false;
      const fail = (error: unknown): void => {
        controller.abort();
        endWithError(call, toServiceError(error, logger, 'Subscribe'));
      };
      // One abort listener for the whole call (not one per wait): it wakes whatever waits.
      controller.signal.addEventListener('abort', () => wake?.(), { once: true });
      const waitUntilWoken = (): Promise<void> =>
        new Promise<void>((resolve) => {
          wake = resolve;
          if (controller.signal.aborted) resolve();
        });
      call.on('cancelled', () => controller.abort());
      call.on('error', () => controller.abort());
      // A client that half-closed (grpcurl does after its last message) can grant no more
      // credit: it gets what its credit covers, then the call ends with OK. A half-close
      // before `start` ends the call at once.
      let isHalfClosed = false;
      call.on('end', () => {
        isHalfClosed = true;
        if (!isStarted) call.end();
        wake?.();
      });
      const stopWatching = whenStopping(deps.stopping, () => fail(shuttingDown()));
      forgetWhenDone(call, stopWatching);
      call.on('data', (message: SubscribeRequest__Output) => {
        try {
          requestOrThrow(message);
        } catch (error) {
          fail(error);
          return;
        }
        // Credit before `start` was dropped silently (start sets the credit), and a client that
        // granted it could wait for data that never came: it breaks the rule like any other.
        if (message.kind === 'creditBytes' && isStarted) {
          credit = Math.min(credit + (message.creditBytes ?? 0), limits.subscribeCreditBytesMax);
          wake?.();
          return;
        }
        if (message.kind !== 'start' || message.start === null || message.start === undefined || isStarted) {
          fail(invalid('the first Subscribe message must be `start`, and only the first'));
          return;
        }
        isStarted = true;
        const start = message.start;
        // Capped as grants are: the credit a stream holds never passes the limit.
        credit = Math.min(start.creditBytes, limits.subscribeCreditBytesMax);
        (async () => {
          const topic = checkTopic(start.topic);
          const partition = checkPartition(start.partition);
          let offset = checkOffset(start.offset);
          const messageBytesMax = checkMaxBytes(start.maxMessageBytes, SUBSCRIBE_MESSAGE_BYTES_DEFAULT);
          const format = formatFromWire(start.format);
          // The headers now, before any data (log.proto): a client waits for them, up to its
          // request deadline, to know the broker took the stream, since a partition with
          // nothing new sends nothing for as long as it stays quiet (client/consumer.ts).
          if (!call.cancelled) call.sendMetadata(new Metadata());
          const read = (from: number): Promise<FetchResult> =>
            broker.fetch({
              topic,
              partition,
              offset: from,
              // At least 1 KiB of a small credit left (one reply may overshoot it), but never
              // past max_message_bytes: a reply holds more than that only as one larger batch.
              maxBytes: Math.min(Math.max(credit, 1 * KiB), messageBytesMax),
              minBytes: 1,
              maxWaitMs: SUBSCRIBE_WAIT_MS,
              signal: controller.signal,
            });
          let readAhead: Promise<FetchResult> | undefined;
          try {
            while (!controller.signal.aborted) {
              if (credit <= 0 && readAhead === undefined) {
                if (isHalfClosed) {
                  controller.abort();
                  call.end();
                  return;
                }
                await waitUntilWoken();
                continue;
              }
              const result = await (readAhead ?? read(offset));
              readAhead = undefined;
              if (result.bytes.length === 0 || controller.signal.aborted) continue;
              const { reply, nextOffset, creditBytes } = fetchReply(result, format, offset, messageBytesMax);
              credit -= creditBytes;
              offset = nextOffset;
              if (credit > 0) readAhead = read(offset);
              if (!call.write(reply)) {
                // Credit grants also wake us: keep waiting until the reply really drained.
                let isDrained = false;
                call.once('drain', () => {
                  isDrained = true;
                  wake?.();
                });
                while (!isDrained && !controller.signal.aborted) await waitUntilWoken();
              }
            }
          } finally {
            // A read still in flight when the call ends: its result (or abort) is not needed.
            readAhead?.catch(() => undefined);
          }
        })().catch(fail);
      });
    },

    ListOffsets(call, callback) {
      const request = call.request;
      (async () => {
        requestOrThrow(request);
        const topic = checkTopic(request.topic);
        const query: OffsetQuery =
          request.spec === 'OFFSET_SPEC_EARLIEST'
            ? { kind: 'earliest' }
            : request.spec === 'OFFSET_SPEC_TIMESTAMP'
              ? { kind: 'timestamp', timestampMs: checkListOffsetsTimestamp(request.timestampMs) }
              : request.spec === 'OFFSET_SPEC_LATEST'
                ? { kind: 'latest' }
                : (() => {
                    throw invalid('spec must be OFFSET_SPEC_EARLIEST, OFFSET_SPEC_LATEST or OFFSET_SPEC_TIMESTAMP');
                  })();
        const partitions =
          request.partitions.length > 0
            ? distinctWithin(request.partitions, limits.partitionsPerTopicMax, 'partitions in a ListOffsets request')
            : (broker.metadata([topic]).topics[0]?.partitions ?? []);
        const results = await Promise.all(
          partitions.map(async (partition) => {
            try {
              // Per partition, as the README promises: one past any topic's last fails only itself.
              const found = await broker.listOffset(topic, checkPartition(partition), query);
              return { partition, offset: numberToInt64(found.offset), timestampMs: numberToInt64(found.timestampMs), error: null };
            } catch (error) {
              if (error instanceof BrokerError && error.reason === 'TOPIC_NOT_FOUND') throw error;
              return { partition, offset: '-1', timestampMs: '-1', error: toErrorMessage(error, logger, 'ListOffsets') };
            }
          }),
        );
        return { partitions: results };
      })().then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error, logger, 'ListOffsets')),
      );
    },

    InitProducerId(call, callback) {
      // Converted inside the chain: a producer_id beyond 2^53 is INVALID_REQUEST, not a throw.
      Promise.resolve()
        .then(() => requestOrThrow(call.request))
        .then(() => broker.initProducerId({ producerId: int64ToNumber(call.request.producerId, 'producer_id'), producerEpoch: call.request.producerEpoch }))
        .then(
          (result) => callback(null, { producerId: numberToInt64(result.producerId), producerEpoch: result.producerEpoch }),
          (error: unknown) => callback(toServiceError(error, logger, 'InitProducerId')),
        );
    },
  } satisfies LogServiceHandlers as LogServiceHandlers & grpc.UntypedServiceImplementation;
}
