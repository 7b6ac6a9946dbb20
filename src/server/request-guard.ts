/**
 * What grpc-js decodes before any handler runs, bounded and answered like any other bad input.
 *
 * grpc-js decodes each request message whole (protobufjs) before the handler sees it. An empty
 * element of a repeated field costs 2 bytes on the wire and ~100 bytes of heap, so the limits
 * the handlers check (headers per record, records, partitions) came too late: one 65 MB
 * Produce of empty record headers held the event loop for 23 s and took 3.7 GB, and with gRPC
 * message compression such a request is a few KiB on the wire. A message that did not parse
 * was answered INTERNAL with no reason. So each request deserializer is wrapped:
 *
 * - Produce and ProduceStream: the wire bytes are walked first (tags and lengths only, nothing
 *   built) and the repeated elements counted against their limits, stopping at the first one
 *   over;
 * - every other method: at most `limits.requestBytesMax` bytes (their largest valid request
 *   is far smaller);
 * - a message protobufjs cannot decode: INVALID_REQUEST.
 *
 * A refused message reaches the handler as a stand-in that `requestOrThrow` turns into its
 * BrokerError, so the status goes out through status.ts like any other, and a ProduceStream
 * still answers the requests before the refused one first.
 */
import type * as grpc from '@grpc/grpc-js';
import { limits } from '../config/limits.js';
import { BrokerError } from '../errors/index.js';
import { invalid } from './validate.js';

const REFUSED = Symbol('refused request');
const HELD_BYTES = Symbol('held bytes');

/**
 * Heap a decoded plain record and header take beyond their wire bytes (measured: 1,000,000
 * empty records took ~320 MB decoded; an empty header ~100 bytes). Counted into what a
 * Produce holds, so that a budget of held bytes also bounds requests of many small records.
 */
const DECODED_RECORD_HEAP_BYTES = 320;
const DECODED_HEADER_HEAP_BYTES = 100;

interface RefusedRequest {
  readonly [REFUSED]: BrokerError;
}

/** A request the handler may read, or the error its guard refused it with (thrown). */
export function requestOrThrow<T>(request: T): T {
  const refused = (request as Partial<RefusedRequest> | null)?.[REFUSED];
  if (refused !== undefined) throw refused;
  return request;
}

/**
 * About how much memory a request holds once decoded, as its guarded deserializer estimated
 * it: its wire bytes, plus the heap of its plain records and headers for a Produce. 0 if unknown.
 */
export function heldBytesOf(request: unknown): number {
  return (request as { [HELD_BYTES]?: number } | null)?.[HELD_BYTES] ?? 0;
}

/**
 * Checks one request's wire bytes: returns the error to refuse it with, or the heap its
 * decoded elements will take beyond the wire bytes (0 or undefined when nothing to add).
 */
type WireCheck = (bytes: Buffer) => BrokerError | number | undefined;

/** `service` with every request deserializer guarded (see the top of this file). */
export function guardService(service: grpc.ServiceDefinition, checks: Readonly<Record<string, WireCheck>>): grpc.ServiceDefinition {
  const guarded: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, method] of Object.entries(service as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
    const check = checks[name] ?? checkRequestBytes;
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        const checked = check(bytes);
        if (checked instanceof BrokerError) return { [REFUSED]: checked } satisfies RefusedRequest;
        try {
          const request = method.requestDeserialize(bytes) as Record<symbol, unknown>;
          // For the broker-wide budget of produce bytes held (byte-budget.ts).
          if (typeof request === 'object' && request !== null) request[HELD_BYTES] = bytes.length + (checked ?? 0);
          return request;
        } catch (error) {
          return { [REFUSED]: invalid(`the ${name} request is not a valid protobuf message (${(error as Error).message})`) } satisfies RefusedRequest;
        }
      },
    };
  }
  return guarded as grpc.ServiceDefinition;
}

export function checkRequestBytes(bytes: Buffer): BrokerError | undefined {
  if (bytes.length <= limits.requestBytesMax) return undefined;
  return invalid(`the request is ${bytes.length} bytes; at most ${limits.requestBytesMax} (only Produce carries more)`);
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Thrown inside a walk when the bytes are not a protobuf message. */
class MalformedMessage extends Error {}

/** Where the walk is: one object reused, so walking allocates nothing per field. */
const cursor = { position: 0 };

function walkVarint(bytes: Buffer, end: number): number {
  let value = 0;
  let scale = 1;
  for (let index = 0; index < 10; index++) {
    if (cursor.position >= end) throw new MalformedMessage('truncated varint');
    const byte = bytes[cursor.position++] as number;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return value;
    scale *= 128;
  }
  throw new MalformedMessage('varint longer than 10 bytes');
}

/**
 * Calls `visit` with each length-delimited field of the message in bytes [start, end), with
 * the field's number and where its value lies; other fields are stepped over.
 */
function forEachLengthDelimited(bytes: Buffer, start: number, end: number, visit: (fieldNumber: number, valueStart: number, valueEnd: number) => void): void {
  cursor.position = start;
  while (cursor.position < end) {
    const tag = walkVarint(bytes, end);
    const fieldNumber = Math.floor(tag / 8);
    switch (tag % 8) {
      case WIRE_VARINT:
        walkVarint(bytes, end);
        break;
      case WIRE_FIXED64:
        cursor.position += 8;
        break;
      case WIRE_FIXED32:
        cursor.position += 4;
        break;
      case WIRE_LENGTH_DELIMITED: {
        const length = walkVarint(bytes, end);
        const valueStart = cursor.position;
        const valueEnd = valueStart + length;
        if (valueEnd > end) throw new MalformedMessage(`field ${fieldNumber} runs past its message`);
        visit(fieldNumber, valueStart, valueEnd);
        cursor.position = valueEnd;
        break;
      }
      default:
        throw new MalformedMessage(`wire type ${tag % 8} (field ${fieldNumber}) is not used by proto3`);
    }
    if (cursor.position > end) throw new MalformedMessage(`field ${fieldNumber} runs past its message`);
  }
}

/**
 * ProduceRequest (log.proto): topics (4) → partitions (2) → records (3) → records (1) →
 * headers (3). Counts each level against its limit before protobufjs builds any of it, and
 * returns the heap its plain records and headers will take decoded.
 */
export function checkProduceRequest(bytes: Buffer): BrokerError | number {
  const counts = { topics: 0, partitions: 0, records: 0, headers: 0 };
  const countOrThrow = (what: keyof typeof counts, max: number): void => {
    if (++counts[what] > max) throw invalid(`a produce request carries more than ${max} ${what}`);
  };
  const walkRecord = (start: number, end: number): void => {
    let headers = 0;
    forEachLengthDelimited(bytes, start, end, (field) => {
      if (field !== 3) return;
      if (++headers > limits.headersPerRecordMax) throw invalid(`a record has more than ${limits.headersPerRecordMax} headers`);
      countOrThrow('headers', limits.headersPerProduceRequestMax);
    });
  };
  try {
    forEachLengthDelimited(bytes, 0, bytes.length, (field, topicStart, topicEnd) => {
      if (field !== 4) return;
      countOrThrow('topics', limits.partitionsPerRequestMax);
      forEachLengthDelimited(bytes, topicStart, topicEnd, (field, partitionStart, partitionEnd) => {
        if (field !== 2) return;
        countOrThrow('partitions', limits.partitionsPerRequestMax);
        forEachLengthDelimited(bytes, partitionStart, partitionEnd, (field, recordsStart, recordsEnd) => {
          if (field !== 3) return;
          forEachLengthDelimited(bytes, recordsStart, recordsEnd, (field, recordStart, recordEnd) => {
            if (field !== 1) return;
            countOrThrow('records', limits.recordsPerProduceRequestMax);
            walkRecord(recordStart, recordEnd);
          });
        });
      });
    });
    return counts.records * DECODED_RECORD_HEAP_BYTES + counts.headers * DECODED_HEADER_HEAP_BYTES;
  } catch (error) {
    if (error instanceof MalformedMessage) return invalid(`the Produce request is not a valid protobuf message (${error.message})`);
    if (error instanceof BrokerError) return error;
    throw error;
  }
}
