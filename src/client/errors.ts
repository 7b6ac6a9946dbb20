/**
 * Turning what comes back over gRPC into the `BrokerError` the broker threw, so client code
 * decides retries from one place: `error.retriable` and `error.reason`.
 *
 * A failed call carries its precise reason in trailing metadata (`runnel-reason`, from
 * `ErrorMetadata` in protocol/) with structured details as flat JSON (`runnel-details`:
 * the error's details plus `topic` and `partition`). A failure that never reached a Runnel
 * handler (connection refused, deadline, a proxy, grpc-js itself) has no reason; then the
 * status code alone decides:
 *
 * | gRPC status        | reason             | retriable |
 * |--------------------|--------------------|-----------|
 * | UNAVAILABLE        | BROKER_UNAVAILABLE | yes       |
 * | DEADLINE_EXCEEDED  | REQUEST_TIMED_OUT  | yes       |
 * | RESOURCE_EXHAUSTED | LIMIT_REACHED      | yes       |
 * | anything else      | INTERNAL_ERROR     | no        |
 *
 * A reason this client does not know (a newer broker) is mapped by status the same way and
 * kept in `details.brokerReason`, so nothing is lost. Per-partition `Error` messages inside
 * Produce and ListOffsets replies map through `errorFromPartitionError` with the same rules.
 */
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { BrokerError, REASONS, type Reason } from '../errors/index.js';
import { ErrorMetadata } from '../protocol/index.js';

type DetailValue = string | number | boolean;

/** Whether `reason` is one this client knows; a newer broker may send others. */
export function isKnownReason(reason: string): reason is Reason {
  return Object.prototype.hasOwnProperty.call(REASONS, reason);
}

/** The reason a gRPC status stands for when the broker sent none. */
export function reasonForStatus(code: GrpcStatus): Reason {
  switch (code) {
    case GrpcStatus.UNAVAILABLE:
      return 'BROKER_UNAVAILABLE';
    case GrpcStatus.DEADLINE_EXCEEDED:
      return 'REQUEST_TIMED_OUT';
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return 'LIMIT_REACHED';
    default:
      return 'INTERNAL_ERROR';
  }
}

/** Whether `error` looks like a grpc-js `ServiceError` (a status code and metadata). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number' && 'metadata' in error;
}

/**
 * The `BrokerError` a failed call stands for. A `BrokerError` passes through unchanged; a
 * value that is neither is wrapped as INTERNAL_ERROR with it as the cause.
 */
export function errorFromGrpc(error: unknown): BrokerError {
  if (error instanceof BrokerError) return error;
  if (!isServiceError(error)) {
    const message = error instanceof Error ? error.message : String(error);
    return new BrokerError('INTERNAL_ERROR', message, { cause: error });
  }
  const reasonText = firstMetadataString(error, ErrorMetadata.reason);
  const parsed = parseDetails(firstMetadataString(error, ErrorMetadata.details));
  const message = error.details !== '' ? error.details : error.message;
  let reason: Reason;
  if (reasonText !== undefined && isKnownReason(reasonText)) {
    reason = reasonText;
  } else {
    reason = reasonForStatus(error.code);
    if (reasonText !== undefined) parsed.details.brokerReason = reasonText;
  }
  parsed.details.grpcCode = error.code;
  return new BrokerError(reason, message, {
    topic: parsed.topic,
    partition: parsed.partition,
    details: parsed.details,
    cause: error,
  });
}

/**
 * Whether a failure carries no Runnel reason: the call broke below the broker's handlers
 * (connection lost, stream reset, broker killed). Streams treat these as transport failures
 * that reconnecting may cure, whatever status grpc-js picked (it reports a reset stream as
 * INTERNAL, for one).
 */
export function isTransportFailure(error: unknown): boolean {
  if (error instanceof BrokerError) {
    const cause = error.cause;
    return isServiceError(cause) && firstMetadataString(cause, ErrorMetadata.reason) === undefined;
  }
  return isServiceError(error) ? firstMetadataString(error, ErrorMetadata.reason) === undefined : false;
}

/** A per-partition `Error` message from a reply, as the same `BrokerError`. */
export function errorFromPartitionError(
  error: { reason: string; message: string; retriable: boolean },
  topic: string,
  partition: number,
): BrokerError {
  if (isKnownReason(error.reason)) return new BrokerError(error.reason, error.message, { topic, partition });
  // An unknown reason: trust the broker's retriable flag for the choice of fallback.
  const reason: Reason = error.retriable ? 'BROKER_UNAVAILABLE' : 'INTERNAL_ERROR';
  return new BrokerError(reason, error.message, { topic, partition, details: { brokerReason: error.reason } });
}

function firstMetadataString(error: ServiceError, key: string): string | undefined {
  const values = error.metadata?.get(key) ?? [];
  const first = values[0];
  if (first === undefined) return undefined;
  return typeof first === 'string' ? first : first.toString('utf8');
}

interface ParsedDetails {
  topic: string | undefined;
  partition: number | undefined;
  details: Record<string, DetailValue>;
}

/** Flat JSON of scalar fields; anything else is ignored rather than failing the mapping. */
function parseDetails(json: string | undefined): ParsedDetails {
  const result: ParsedDetails = { topic: undefined, partition: undefined, details: {} };
  if (json === undefined) return result;
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    result.details.rawDetails = json;
    return result;
  }
  if (typeof parsed !== 'object' || parsed === null) return result;
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (key === 'topic' && typeof value === 'string') result.topic = value;
    else if (key === 'partition' && typeof value === 'number') result.partition = value;
    else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') result.details[key] = value;
  }
  return result;
}
