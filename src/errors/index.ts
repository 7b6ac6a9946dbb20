/**
 * The error catalog shared by broker code and the client: the `BrokerError` base class, every
 * reason string, and whether a reason is retriable. It imports nothing else.
 *
 * Reasons are added and retired, never renamed or reused. A `BrokerError` never carries a
 * numeric `code` property: grpc-js would put that number on the wire as the status code.
 */

/** Every reason, with whether a client may retry the same request unchanged. */
export const REASONS = {
  INVALID_REQUEST: { retriable: false },
  INVALID_TOPIC_NAME: { retriable: false },
  CORRUPT_MESSAGE: { retriable: false },
  INVALID_TIMESTAMP: { retriable: false },
  UNSUPPORTED_COMPRESSION: { retriable: false },
  RECORD_TOO_LARGE: { retriable: false },
  BATCH_TOO_LARGE: { retriable: false },
  TOPIC_NOT_FOUND: { retriable: false },
  PARTITION_NOT_FOUND: { retriable: false },
  TOPIC_ALREADY_EXISTS: { retriable: false },
  OFFSET_OUT_OF_RANGE: { retriable: false },
  PARTITION_OFFLINE: { retriable: true },
  SHUTTING_DOWN: { retriable: true },
  DISK_FULL: { retriable: true },
  STORAGE_ERROR: { retriable: true },
  LIMIT_REACHED: { retriable: true },
  CORRUPT_DATA: { retriable: false },
  PRODUCER_FENCED: { retriable: false },
  OUT_OF_ORDER_SEQUENCE: { retriable: false },
  ACK_TIMEOUT: { retriable: true },
  UNAUTHENTICATED: { retriable: false },
  BROKER_UNAVAILABLE: { retriable: true },
  REQUEST_TIMED_OUT: { retriable: true },
  INTERNAL_ERROR: { retriable: false },
} as const satisfies Record<string, { retriable: boolean }>;

export type Reason = keyof typeof REASONS;

/**
 * The text of the BROKER_UNAVAILABLE a stopping broker answers with (a call that arrives, or is
 * still parked, during its stop). BROKER_UNAVAILABLE, not SHUTTING_DOWN, so a client treats it
 * as a broker it cannot reach now; the text lets a CLI say "is shutting down" instead of
 * "cannot reach" (`isBrokerStoppingError`).
 */
export const BROKER_STOPPING_MESSAGE = 'the broker is shutting down; retry, it or another broker will answer';

/** Whether `error` is a broker's answer during its stop (`BROKER_STOPPING_MESSAGE`). */
export function isBrokerStoppingError(error: unknown): boolean {
  return isBrokerError(error, 'BROKER_UNAVAILABLE') && error.message.startsWith(BROKER_STOPPING_MESSAGE);
}

export interface BrokerErrorFields {
  topic?: string;
  partition?: number;
  /** Further structured detail a caller may act on (offsets, limits, file positions). */
  details?: Record<string, string | number | boolean>;
  cause?: unknown;
}

/** The one base class of every expected domain failure. */
export class BrokerError extends Error {
  readonly reason: Reason;
  readonly retriable: boolean;
  readonly topic: string | undefined;
  readonly partition: number | undefined;
  readonly details: Readonly<Record<string, string | number | boolean>>;

  constructor(reason: Reason, message: string, fields: BrokerErrorFields = {}) {
    super(message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = 'BrokerError';
    this.reason = reason;
    this.retriable = REASONS[reason].retriable;
    this.topic = fields.topic;
    this.partition = fields.partition;
    this.details = Object.freeze({ ...(fields.details ?? {}) });
  }
}

export function isBrokerError(error: unknown, reason?: Reason): error is BrokerError {
  return error instanceof BrokerError && (reason === undefined || error.reason === reason);
}
