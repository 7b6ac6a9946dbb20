/**
 * Parsers for option values shared by the client commands: counts, `key=value` configs, acks,
 * points in time (`2026-11-20T10:00:00Z`, `1763632800000`, `-1h`) and `consume --from`
 * positions. Each throws commander's `InvalidArgumentError`, whose message commander prints
 * after the option's name, so it says what was expected.
 */
import { InvalidArgumentError } from 'commander';
import type { Acks } from '../client/index.js';

/** A whole number ≥ 0. */
export function parseCount(text: string): number {
  // Decimal digits only: Number() alone would also take '1e9', '0x10', '0b1' and ' 7 '.
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`expected a whole number ≥ 0 in decimal digits, got '${text}'`);
  return value;
}

/** A whole number ≥ 1; the message says ≥ 1 for '-1' and 'abc' too, not parseCount's ≥ 0. */
export function parsePositiveCount(text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError('expected a whole number ≥ 1 in decimal digits');
  return value;
}

/** Repeatable `--config key=value`: collects into one object (a later key wins). */
export function collectConfig(text: string, previous: Record<string, string> | undefined): Record<string, string> {
  const equalsAt = text.indexOf('=');
  if (equalsAt <= 0) throw new InvalidArgumentError('expected key=value, e.g. retention.ms=86400000');
  return { ...previous, [text.slice(0, equalsAt).trim()]: text.slice(equalsAt + 1).trim() };
}

/** Repeatable option collecting plain strings. */
export function collectString(text: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), text];
}

const ACKS_BY_FLAG: Readonly<Record<string, Acks>> = { '0': 'none', '1': 'leader', all: 'all', '-1': 'all' };

/** `--acks 0|1|all` as the client's names. */
export function parseAcks(text: string): Acks {
  const acks = ACKS_BY_FLAG[text.toLowerCase()];
  if (acks === undefined) throw new InvalidArgumentError('expected 0 (no ack), 1 (leader) or all (every in-sync replica)');
  return acks;
}

/** A parser accepting exactly one of `values`. */
export function parseChoice<V extends string>(values: readonly V[]): (text: string) => V {
  return (text) => {
    if (!(values as readonly string[]).includes(text)) throw new InvalidArgumentError(`expected one of ${values.join(', ')}`);
    return text as V;
  };
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30s`, `15m`, `1h`, `2d`, `1w`, `500ms`, or combinations such as `1h30m`; undefined if not one. */
export function tryParseDurationMs(text: string): number | undefined {
  if (!/^(\d+(ms|s|m|h|d|w))+$/.test(text)) return undefined;
  let totalMs = 0;
  for (const match of text.matchAll(/(\d+)(ms|s|m|h|d|w)/g)) totalMs += Number(match[1]) * DURATION_UNIT_MS[match[2]!]!;
  return Number.isSafeInteger(totalMs) ? totalMs : undefined;
}

/**
 * A point in time as ms since the epoch: an ISO 8601 date (`2026-11-20T10:00:00Z`; without a
 * zone it is local time), a number of ms since the epoch, or `-DURATION` back from `nowMs`.
 * A leading `@` is allowed, as in `--from @…`. Undefined when `text` is none of these.
 */
export function tryParseTimePoint(text: string, nowMs: number): number | undefined {
  const body = text.startsWith('@') ? text.slice(1) : text;
  if (body.startsWith('-')) {
    const durationMs = tryParseDurationMs(body.slice(1));
    return durationMs === undefined ? undefined : Math.max(0, nowMs - durationMs);
  }
  if (/^\d+$/.test(body)) {
    const ms = Number(body);
    return Number.isSafeInteger(ms) ? ms : undefined;
  }
  return tryParseIsoTimeMs(body);
}

/**
 * `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM`, `HH:MM:SS` or
 * `HH:MM:SS.fraction`, then optionally `Z` or `±HH:MM` (`±HHMM`, `±HH`). Without a zone it is
 * local time (a bare date: local midnight). The fraction counts to the millisecond.
 */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

/**
 * An ISO 8601 time (ISO_TIME) as ms since the epoch; undefined when `text` is not one, or
 * names a day or time that does not exist. Strict on purpose: `Date.parse` also takes
 * "2026-11-20 junk" (as June 2026, from the "jun") and "2026-11-31" (as 1 December), and a
 * replay would silently start at that other time.
 */
export function tryParseIsoTimeMs(text: string): number | undefined {
  const match = ISO_TIME.exec(text);
  if (match === null) return undefined;
  const field = (index: number): number => Number(match[index] ?? 0);
  const [year, month, day, hour, minute, second] = [field(1), field(2), field(3), field(4), field(5), field(6)];
  const ms = Number((match[7] ?? '0').padEnd(3, '0').slice(0, 3));
  // Before 1970 is no time a record can have; it also keeps two-digit years out of Date's 19xx mapping.
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let timeMs: number;
  if (match[8] === undefined && match[9] === undefined) {
    timeMs = new Date(year, month - 1, day, hour, minute, second, ms).getTime(); // local time
  } else {
    const [offsetHours, offsetMinutes] = [field(10), field(11)];
    if (offsetHours > 23 || offsetMinutes > 59) return undefined;
    const offsetMs = (match[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
    timeMs = Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMs;
  }
  return Number.isSafeInteger(timeMs) && timeMs >= 0 ? timeMs : undefined;
}

/** Days in `month` (1-12) of `year`: day 0 of the next month is the last of this one. */
function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** `--time` of `runnel offsets`. */
export function parseTimePoint(text: string): number {
  const ms = tryParseTimePoint(text, Date.now());
  if (ms === undefined) throw new InvalidArgumentError('expected an ISO time (2026-11-20T10:00:00Z), ms since the epoch, or -DURATION (-30s, -15m, -1h, -2d)');
  return ms;
}

/** Where `consume` starts in each partition. */
export type FromSpec =
  | { kind: 'beginning' }
  | { kind: 'end' }
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestampMs: number };

/** `--from beginning|end|OFFSET|@TIMESTAMP|-DURATION`. */
export function parseFromSpec(text: string): FromSpec {
  if (text === 'beginning' || text === 'earliest') return { kind: 'beginning' };
  if (text === 'end' || text === 'latest') return { kind: 'end' };
  if (/^\d+$/.test(text)) return { kind: 'offset', offset: parseCount(text) };
  if (text.startsWith('@') || text.startsWith('-')) {
    const timestampMs = tryParseTimePoint(text, Date.now());
    if (timestampMs !== undefined) return { kind: 'timestamp', timestampMs };
  }
  throw new InvalidArgumentError('expected beginning, end, an offset, @TIME (@2026-11-20T10:00:00Z or @<ms>), or -DURATION (-30s, -15m, -1h, -2d)');
}
