/**
 * `CliError`: a failure whose message is already the one line the user should read — what
 * went wrong and what to do about it. `main()` prints it after `runnel: ` and exits with its
 * `exitCode`; no stack, no reason tag.
 *
 * `toCliError` turns what the client library throws (`BrokerError`s) into such lines, naming
 * the broker addresses and topic involved, so every client command words the common
 * failures (no broker, no topic) the same way.
 */
import { isBrokerError, isBrokerStoppingError, type BrokerError, type Reason } from '../client/index.js';

export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = options.exitCode ?? 1;
  }
}

export interface CliErrorContext {
  /** The bootstrap brokers the command used. */
  brokers: readonly string[];
  /** The topic the command is about, when there is one. */
  topic?: string;
}

/** The one-line, what-to-do version of `error`; a `CliError` passes through unchanged. */
export function toCliError(error: unknown, context: CliErrorContext): CliError {
  if (error instanceof CliError) return error;
  if (!isBrokerError(error)) return new CliError(error instanceof Error ? error.message : String(error), { cause: error });
  const topic = error.topic ?? context.topic ?? '?';
  const brokers = context.brokers.join(',');
  switch (troubleReason(error)) {
    case 'BROKER_UNAVAILABLE': {
      // A host name that does not resolve is a typo or a DNS problem, not a stopped broker.
      const host = unresolvedHost(error.message);
      if (host !== undefined) {
        return new CliError(
          `the broker host name ${host} could not be resolved (brokers ${brokers}): check the host in --broker HOST:PORT or RUNNEL_BROKER`,
          { cause: error },
        );
      }
      return new CliError(
        `cannot reach broker ${brokers} (${shortTransportDetail(error.message)}): is \`runnel broker\` running? ` +
          'Point at another with --broker HOST:PORT or RUNNEL_BROKER',
        { cause: error },
      );
    }
    case 'REQUEST_TIMED_OUT':
      return new CliError(`broker ${brokers} did not answer in time (${error.message}): check that it is healthy, then try again`, { cause: error });
    case 'SHUTTING_DOWN':
      return new CliError(`broker ${brokers} is shutting down: try again once it is back`, { cause: error });
    case 'DISK_FULL': {
      // Not retried by admin changes (client/retry.ts): it needs the operator.
      const path = typeof error.details.path === 'string' ? ` (${error.details.path})` : '';
      return new CliError(
        `the disk of broker ${brokers} is full${path}: free space in its data directory, or shorten retention ` +
          '(retention.ms, retention.bytes) so old segments are deleted, then try again',
        { cause: error },
      );
    }
    case 'TOPIC_NOT_FOUND':
      return new CliError(`topic ${topic} does not exist: create it with \`runnel topic create ${topic}\``, { cause: error });
    case 'TOPIC_ALREADY_EXISTS':
      // A directory left without a topic record (meta lost, say): the topic does not exist, and
      // the broker's message says which directory to move.
      if (isLeftoverDirectory(error)) return new CliError(error.message, { cause: error });
      return new CliError(`topic ${topic} already exists: see it with \`runnel topic describe ${topic}\``, { cause: error });
    case 'PARTITION_NOT_FOUND':
      return new CliError(`${error.message}: list the partitions with \`runnel topic describe ${topic}\``, { cause: error });
    default:
      return new CliError(`${error.message} [${error.reason}]`, { cause: error });
  }
}

/**
 * `error.reason`, except that a stopping broker's BROKER_UNAVAILABLE (`isBrokerStoppingError`)
 * reads as SHUTTING_DOWN: "is shutting down", not "cannot reach … is it running?".
 */
function troubleReason(error: BrokerError): Reason {
  return isBrokerStoppingError(error) ? 'SHUTTING_DOWN' : error.reason;
}

/** Whether a TOPIC_ALREADY_EXISTS is about a partition directory with no topic record, not a topic. */
export function isLeftoverDirectory(error: unknown): boolean {
  return isBrokerError(error, 'TOPIC_ALREADY_EXISTS') && typeof error.details.leftoverDirectory === 'string';
}

/**
 * What is wrong with the broker, for a line saying that a stream is retrying (outage-notice.ts):
 * "cannot reach broker 127.0.0.1:7070 (connection refused)", "broker … is shutting down".
 * `error` is a retriable failure; no advice here, the retrying line says what happens next.
 */
export function describeBrokerTrouble(error: unknown, brokers: readonly string[]): string {
  const addresses = brokers.join(',');
  if (!isBrokerError(error)) return `broker ${addresses} failed (${error instanceof Error ? error.message : String(error)})`;
  switch (troubleReason(error)) {
    case 'BROKER_UNAVAILABLE': {
      const host = unresolvedHost(error.message);
      if (host !== undefined) return `the broker host name ${host} could not be resolved (brokers ${addresses})`;
      return `cannot reach broker ${addresses} (${shortTransportDetail(error.message)})`;
    }
    case 'REQUEST_TIMED_OUT':
      return `broker ${addresses} does not answer in time`;
    case 'SHUTTING_DOWN':
      return `broker ${addresses} is shutting down`;
    default:
      return `broker ${addresses} answers ${error.reason} (${shortTransportDetail(error.message)})`;
  }
}

/**
 * Whether `error` says a broker's host name could not be resolved: a typo or a DNS problem,
 * which a command does not wait out (Kafka's producer refuses unresolvable bootstrap servers
 * at once too), unlike a broker that is down.
 */
export function isUnresolvedHostError(error: unknown): boolean {
  return isBrokerError(error, 'BROKER_UNAVAILABLE') && unresolvedHost(error.message) !== undefined;
}

/**
 * The host name a failure says could not be resolved, if that is what it says: grpc-js reports
 * "Name resolution failed for target dns:HOST:PORT" (for ENOTFOUND and EAI_AGAIN alike); a
 * bare "getaddrinfo ENOTFOUND HOST" is read too.
 */
function unresolvedHost(message: string): string | undefined {
  const target = /Name resolution failed for target (?:dns:(?:\/\/[^/]*\/)?)?(\S+)/.exec(message)?.[1];
  if (target !== undefined) return hostOf(target);
  return /\b(?:ENOTFOUND|EAI_AGAIN) (\S+)/.exec(message)?.[1];
}

/** `HOST` of `HOST:PORT` or `[IPV6]:PORT`; the text itself when it has no port. */
function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed !== null) return bracketed[1]!;
  return /^([^:]+):\d+$/.exec(address)?.[1] ?? address;
}

/** grpc-js says "No connection established. Last error: Error: connect ECONNREFUSED …"; keep the gist. */
function shortTransportDetail(message: string): string {
  if (message.includes('ECONNREFUSED')) return 'connection refused';
  if (message.includes('ENOTFOUND') || message.includes('EAI_AGAIN')) return 'unknown host';
  if (message.includes('ETIMEDOUT') || message.includes('EHOSTUNREACH')) return 'no route or no answer';
  if (message.includes('ECONNRESET') || message.includes('Connection dropped')) return 'connection lost';
  const firstSentence = message.split('. ')[0] ?? message;
  return firstSentence.length > 120 ? `${firstSentence.slice(0, 117)}...` : firstSentence;
}
