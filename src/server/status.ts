/**
 * The one table from error reason to gRPC status code (STYLE H7), and the conversion of any
 * thrown value into what grpc-js sends: status, message, and trailing metadata with the
 * precise reason (`runnel-reason`), whether to retry (`runnel-retriable`) and structured
 * details (`runnel-details`, JSON), so a client in any language can act on it.
 */
import * as grpc from '@grpc/grpc-js';
import { BrokerError, type Reason } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { ErrorMetadata } from '../protocol/index.js';

const STATUS_BY_REASON: Record<Reason, grpc.status> = {
  INVALID_REQUEST: grpc.status.INVALID_ARGUMENT,
  INVALID_TOPIC_NAME: grpc.status.INVALID_ARGUMENT,
  CORRUPT_MESSAGE: grpc.status.INVALID_ARGUMENT,
  INVALID_TIMESTAMP: grpc.status.INVALID_ARGUMENT,
  UNSUPPORTED_COMPRESSION: grpc.status.INVALID_ARGUMENT,
  RECORD_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  BATCH_TOO_LARGE: grpc.status.INVALID_ARGUMENT,
  TOPIC_NOT_FOUND: grpc.status.NOT_FOUND,
  PARTITION_NOT_FOUND: grpc.status.NOT_FOUND,
  TOPIC_ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  OFFSET_OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  PARTITION_OFFLINE: grpc.status.UNAVAILABLE,
  SHUTTING_DOWN: grpc.status.UNAVAILABLE,
  BROKER_UNAVAILABLE: grpc.status.UNAVAILABLE,
  STORAGE_ERROR: grpc.status.UNAVAILABLE,
  DISK_FULL: grpc.status.RESOURCE_EXHAUSTED,
  LIMIT_REACHED: grpc.status.RESOURCE_EXHAUSTED,
  CORRUPT_DATA: grpc.status.DATA_LOSS,
  PRODUCER_FENCED: grpc.status.FAILED_PRECONDITION,
  OUT_OF_ORDER_SEQUENCE: grpc.status.FAILED_PRECONDITION,
  ACK_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  REQUEST_TIMED_OUT: grpc.status.DEADLINE_EXCEEDED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  INTERNAL_ERROR: grpc.status.INTERNAL,
};

export function statusForReason(reason: Reason): grpc.status {
  return STATUS_BY_REASON[reason];
}

/**
 * What to send for `error`. A BrokerError keeps its reason and message (logged at debug as
 * 'request refused'); anything else is a bug or an unexpected failure: INTERNAL, logged here
 * at error with its stack. `logger` is the server's repeat-limited one (server.ts).
 */
export function toServiceError(error: unknown, logger: Logger, method: string): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (error instanceof BrokerError) {
    metadata.set(ErrorMetadata.reason, error.reason);
    metadata.set(ErrorMetadata.retriable, String(error.retriable));
    const details: Record<string, unknown> = { ...error.details };
    if (error.topic !== undefined) details.topic = error.topic;
    if (error.partition !== undefined) details.partition = error.partition;
    metadata.set(ErrorMetadata.details, asciiJson(details));
    logRefused(logger, method, error);
    return { code: statusForReason(error.reason), details: error.message, metadata };
  }
  logger.error(unexpectedErrorFields(method, error), 'unexpected error in a request');
  metadata.set(ErrorMetadata.reason, 'INTERNAL_ERROR');
  metadata.set(ErrorMetadata.retriable, 'false');
  return { code: grpc.status.INTERNAL, details: 'internal broker error; see the broker log', metadata };
}

/** The parts of a grpc-js server stream `endWithError` needs. */
interface EndableStream {
  readonly cancelled: boolean;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
  emit(event: 'error', error: Error): boolean;
}

/**
 * Ends a server stream (Subscribe, ProduceStream) with `status`: its code, message and trailing
 * metadata reach the client once the replies already written have drained. grpc-js sends a
 * stream's status only through its own 'error' listener, which ends the stream; `destroy`
 * sends none, and the client would wait for its deadline without learning why.
 */
export function endWithError(call: EndableStream, status: Partial<grpc.StatusObject>): void {
  if (call.cancelled || call.destroyed || call.writableEnded) return;
  call.emit('error', Object.assign(new Error(status.details ?? 'request failed'), status));
}

/**
 * The per-partition `Error` message of a Produce or ListOffsets result, logged as
 * `toServiceError` logs a whole call's failure: a refusal at debug, anything else at error
 * with its stack (the client is told to see the broker log).
 */
export function toErrorMessage(error: unknown, logger: Logger, method: string): { reason: string; message: string; retriable: boolean } {
  if (error instanceof BrokerError) {
    logRefused(logger, method, error);
    return { reason: error.reason, message: error.message, retriable: error.retriable };
  }
  logger.error(unexpectedErrorFields(method, error), 'unexpected error in a request');
  return { reason: 'INTERNAL_ERROR', message: 'internal broker error; see the broker log', retriable: false };
}

/**
 * JSON with every non-ASCII character escaped: gRPC metadata values must be printable ASCII,
 * and details carry client input (a topic name like "ünï") that must not break the reply.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The fields of an 'unexpected error in a request' line. `thrownAt` is the stack's first frame:
 * the server's repeat limit keys this line by method and `thrownAt` (server.ts), so two bugs
 * behind one method are each logged, and a rare one is not hidden for good behind a frequent
 * one that always comes first in the minute. Not the message, which may carry a value that
 * differs on every request.
 */
function unexpectedErrorFields(method: string, error: unknown): { method: string; err: string; stack?: string; thrownAt?: string } {
  const stack = error instanceof Error ? error.stack : undefined;
  const thrownAt = stack
    ?.split('\n')
    .find((line) => line.trimStart().startsWith('at '))
    ?.trim();
  return { method, err: String(error), ...(stack === undefined ? {} : { stack }), ...(thrownAt === undefined ? {} : { thrownAt }) };
}

/**
 * A refusal is the client's business (a bad request, an unknown topic, a retry to make):
 * logged at debug, never above, so a client cannot raise the broker's log volume at info.
 */
function logRefused(logger: Logger, method: string, error: BrokerError): void {
  logger.debug({ method, reason: error.reason, topic: error.topic, partition: error.partition, err: error.message }, 'request refused');
}
