/**
 * Records as JSON lines, both ways.
 *
 * Out (`consume --format json`): exactly
 * `{"topic","partition","offset","timestamp","key","value","headers"}`, key, value and header
 * values as UTF-8 strings (null stays null); when any of them is not valid UTF-8, all of them
 * are base64 and the object gains `"encoding":"base64"`, so one flag says how to read the
 * line. Headers are an object (`{"trace-id":"abc"}`), as `runnel log dump --records` prints
 * them, unless a key repeats, or is one an object cannot hold as it is (`__proto__`, which
 * would set the prototype, or an array index such as "2", which JavaScript moves ahead of the
 * other keys): then they are a `[{"key","value"}]` array, in order, so that no header is
 * lost or reordered (produce --format json takes either).
 *
 * In (`produce --format json`): `{"key","value","headers","partition","timestamp"}`, every
 * field optional but `value`; headers as an object or a `[{"key","value"}]` array; timestamp
 * in ms or ISO 8601; `"encoding":"base64"` as above. `topic` and `offset` are accepted and
 * ignored, so the output of `consume --format json` can be fed back in; any other field is
 * refused (a misspelt `"vaule"` should not turn into a null record).
 */
import { isUtf8 } from 'node:buffer';
import type { ConsumerRecord, ProducerRecordHeader } from '../client/index.js';
import { tryParseIsoTimeMs } from './option-parsers.js';

export function consumerRecordToJson(record: ConsumerRecord): string {
  const isText = isTextOrNull(record.key) && isTextOrNull(record.value) && record.headers.every((header) => isTextOrNull(header.value));
  const encoding: BufferEncoding = isText ? 'utf8' : 'base64';
  const hasRepeatedKey = new Set(record.headers.map((header) => header.key)).size < record.headers.length;
  let headers: Record<string, string | null> | { key: string; value: string | null }[];
  if (hasRepeatedKey || record.headers.some((header) => isKeyAnObjectChanges(header.key))) {
    headers = record.headers.map((header) => ({ key: header.key, value: header.value?.toString(encoding) ?? null }));
  } else {
    const byKey: Record<string, string | null> = {};
    for (const header of record.headers) byKey[header.key] = header.value?.toString(encoding) ?? null;
    headers = byKey;
  }
  return JSON.stringify({
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString(encoding) ?? null,
    value: record.value?.toString(encoding) ?? null,
    headers,
    ...(isText ? {} : { encoding: 'base64' }),
  });
}

/** `__proto__` sets the prototype instead of a property; array-index keys are listed first, in numeric order. */
function isKeyAnObjectChanges(key: string): boolean {
  return key === '__proto__' || /^(?:0|[1-9]\d{0,9})$/.test(key);
}

function isTextOrNull(bytes: Buffer | null): boolean {
  return bytes === null || isUtf8(bytes);
}

/** One parsed input line of `produce --format json`. */
export interface JsonInputRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers: ProducerRecordHeader[];
  partition: number | undefined;
  timestamp: number | undefined;
}

/** Standard base64 as `Buffer#toString('base64')` writes it: padded, no whitespace. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const INPUT_FIELDS = new Set(['key', 'value', 'headers', 'partition', 'timestamp', 'encoding', 'topic', 'offset']);

/** Parses one line; throws an `Error` whose message says what is wrong with it (no line number). */
export function parseJsonInputRecord(line: string): JsonInputRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    throw new Error(`is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('is not a JSON object');
  const fields = parsed as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!INPUT_FIELDS.has(name)) throw new Error(`has an unknown field "${name}" (expected key, value, headers, partition, timestamp, encoding)`);
  }
  if (!('value' in fields)) throw new Error('has no "value" (use null for a tombstone)');
  const encoding = fields.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw new Error('has "encoding" other than "base64"');
  const bytesOf = (value: unknown, what: string): Buffer | null => {
    if (value === null || value === undefined) return null;
    if (typeof value !== 'string') throw new Error(`has a ${what} that is not a string or null`);
    // Buffer.from skips characters that are not base64: check, or "k" would become no bytes.
    if (encoding === 'base64' && !BASE64.test(value)) throw new Error(`has a ${what} that is not base64 (A–Z, a–z, 0–9, +, /, padded with = to a multiple of 4)`);
    return Buffer.from(value, encoding);
  };
  return {
    key: bytesOf(fields.key, 'key'),
    value: bytesOf(fields.value, 'value'),
    headers: parseHeaders(fields.headers, bytesOf),
    partition: parsePartition(fields.partition),
    timestamp: parseTimestamp(fields.timestamp),
  };
}

function parseHeaders(headers: unknown, bytesOf: (value: unknown, what: string) => Buffer | null): ProducerRecordHeader[] {
  if (headers === undefined || headers === null) return [];
  if (Array.isArray(headers)) {
    return headers.map((header: unknown) => {
      if (typeof header !== 'object' || header === null || typeof (header as { key?: unknown }).key !== 'string') {
        throw new Error('has a header that is not {"key": string, "value": string|null}');
      }
      const { key, value } = header as { key: string; value?: unknown };
      return { key, value: bytesOf(value, `header ${key}`) };
    });
  }
  if (typeof headers !== 'object') throw new Error('has "headers" that is neither an object nor an array');
  return Object.entries(headers as Record<string, unknown>).map(([key, value]) => ({ key, value: bytesOf(value, `header ${key}`) }));
}

function parsePartition(partition: unknown): number | undefined {
  if (partition === undefined || partition === null) return undefined;
  if (typeof partition !== 'number' || !Number.isSafeInteger(partition) || partition < 0) throw new Error('has a "partition" that is not a whole number ≥ 0');
  return partition;
}

function parseTimestamp(timestamp: unknown): number | undefined {
  if (timestamp === undefined || timestamp === null) return undefined;
  if (typeof timestamp === 'number' && Number.isSafeInteger(timestamp) && timestamp >= 0) return timestamp;
  if (typeof timestamp === 'string') {
    const ms = tryParseIsoTimeMs(timestamp);
    if (ms !== undefined) return ms;
  }
  throw new Error('has a "timestamp" that is neither ms since the epoch nor an ISO 8601 time');
}
