import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { collectConfig, parseAcks, parseCount, parseFromSpec, tryParseDurationMs, tryParseIsoTimeMs, tryParseTimePoint } from './option-parsers.js';

const NOW_MS = Date.parse('2026-11-20T12:00:00Z');

describe('option parsers', () => {
  it('reads durations with units, alone or combined, and refuses bare or negative numbers', () => {
    expect(tryParseDurationMs('30s')).toBe(30_000);
    expect(tryParseDurationMs('15m')).toBe(900_000);
    expect(tryParseDurationMs('2d')).toBe(172_800_000);
    expect(tryParseDurationMs('1h30m')).toBe(5_400_000);
    expect(tryParseDurationMs('250ms')).toBe(250);
    expect(tryParseDurationMs('30')).toBeUndefined();
    expect(tryParseDurationMs('-1h')).toBeUndefined();
    expect(tryParseDurationMs('1y')).toBeUndefined();
  });

  it('reads points in time as ISO 8601, ms since the epoch, or a duration back from now', () => {
    expect(tryParseTimePoint('2026-11-20T10:00:00Z', NOW_MS)).toBe(Date.parse('2026-11-20T10:00:00Z'));
    expect(tryParseTimePoint('@2026-11-20T10:00:00.250Z', NOW_MS)).toBe(Date.parse('2026-11-20T10:00:00.250Z'));
    expect(tryParseTimePoint('1763632800000', NOW_MS)).toBe(1_763_632_800_000);
    expect(tryParseTimePoint('-1h', NOW_MS)).toBe(NOW_MS - 3_600_000);
    expect(tryParseTimePoint('@-30s', NOW_MS)).toBe(NOW_MS - 30_000);
    expect(tryParseTimePoint('yesterday', NOW_MS)).toBeUndefined();
    expect(tryParseTimePoint('2026-13-45', NOW_MS)).toBeUndefined();
  });

  it('reads ISO 8601 times with or without seconds, fraction and zone, and refuses junk and days that do not exist', () => {
    const utc = (text: string): number => Date.parse(text);
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00Z')).toBe(utc('2026-11-20T10:00:00Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00Z')).toBe(utc('2026-11-20T10:00:00Z'));
    expect(tryParseIsoTimeMs('2026-11-20 10:00:00z')).toBe(utc('2026-11-20T10:00:00Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00.123456789Z')).toBe(utc('2026-11-20T10:00:00.123Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00.5Z')).toBe(utc('2026-11-20T10:00:00.500Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00+02:00')).toBe(utc('2026-11-20T08:00:00Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00+0200')).toBe(utc('2026-11-20T08:00:00Z'));
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00-05')).toBe(utc('2026-11-20T15:00:00Z'));
    expect(tryParseIsoTimeMs('2024-02-29T00:00:00Z')).toBe(utc('2024-02-29T00:00:00Z'));
    // Without a zone: local time, a bare date included (Date.parse takes a bare date as UTC).
    expect(tryParseIsoTimeMs('2026-11-20T10:00:00')).toBe(new Date(2026, 10, 20, 10, 0, 0).getTime());
    expect(tryParseIsoTimeMs('2026-11-20')).toBe(new Date(2026, 10, 20).getTime());
    for (const text of [
      '2026-11-20 junk', // Date.parse: June 2026, from "jun"
      '2026-11-20jun',
      '2026-11-20 dec',
      '2026-11-31', // Date.parse: 1 December
      '2026-02-29',
      '2026-02-30T10:00:00Z',
      '2026-13-01',
      '2026-11-20T24:00:00Z',
      '2026-11-20T10:60Z',
      '2026-11-20T10:00:60Z',
      '2026-11-20T10:00:00+24:00',
      '2026-11-20T10:00:00 UTC',
      '2026-11-20 10:00 PST',
      '2026-11-20Z',
      '2026-11-20T10',
      '1969-12-31T23:59:59Z',
      '0099-01-01T00:00:00Z',
      '20261120T100000Z',
    ]) {
      expect(tryParseIsoTimeMs(text), text).toBeUndefined();
      expect(tryParseTimePoint(`@${text}`, NOW_MS), text).toBeUndefined();
    }
  });

  it('reads --from positions and refuses anything else', () => {
    expect(parseFromSpec('beginning')).toEqual({ kind: 'beginning' });
    expect(parseFromSpec('end')).toEqual({ kind: 'end' });
    expect(parseFromSpec('42')).toEqual({ kind: 'offset', offset: 42 });
    expect(parseFromSpec('@1000')).toEqual({ kind: 'timestamp', timestampMs: 1000 });
    expect(parseFromSpec('-1h').kind).toBe('timestamp');
    expect(() => parseFromSpec('-42')).toThrow(InvalidArgumentError);
    expect(() => parseFromSpec('2026-11-20T10:00:00Z')).toThrow(InvalidArgumentError); // a time needs its @
    expect(() => parseFromSpec('start')).toThrow(InvalidArgumentError);
  });

  it('reads counts, acks and key=value configs', () => {
    expect(parseCount('0')).toBe(0);
    expect(() => parseCount('1.5')).toThrow(InvalidArgumentError);
    expect(() => parseCount('')).toThrow(InvalidArgumentError);
    for (const text of ['1e9', '0x10', '0b1', '0o7', ' 7', '7 ', '-1', '+1', '9007199254740993']) {
      expect(() => parseCount(text), text).toThrow(InvalidArgumentError);
    }
    expect(parseCount('007')).toBe(7);
    expect([parseAcks('0'), parseAcks('1'), parseAcks('all'), parseAcks('-1')]).toEqual(['none', 'leader', 'all', 'all']);
    expect(() => parseAcks('2')).toThrow(InvalidArgumentError);
    expect(collectConfig('flush=interval:100', collectConfig('retention.ms=5', undefined))).toEqual({ 'retention.ms': '5', flush: 'interval:100' });
    expect(collectConfig('a=b=c', undefined)).toEqual({ a: 'b=c' });
    expect(() => collectConfig('retention.ms', undefined)).toThrow(InvalidArgumentError);
  });
});
