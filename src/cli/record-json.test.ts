import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../client/index.js';
import { consumerRecordToJson, parseJsonInputRecord } from './record-json.js';

function record(fields: Partial<ConsumerRecord>): ConsumerRecord {
  return { topic: 't', partition: 1, offset: 7, timestamp: 1000, key: null, value: null, headers: [], ...fields };
}

describe('records as JSON lines', () => {
  it('prints exactly topic, partition, offset, timestamp, key, value and headers, as UTF-8 text', () => {
    const line = consumerRecordToJson(record({ key: Buffer.from('k'), value: Buffer.from('grüße'), headers: [{ key: 'h', value: Buffer.from('v') }] }));
    expect(line).toBe('{"topic":"t","partition":1,"offset":7,"timestamp":1000,"key":"k","value":"grüße","headers":{"h":"v"}}');
  });

  it('switches key, value and headers to base64 together when any of them is not UTF-8', () => {
    const parsed = JSON.parse(consumerRecordToJson(record({ key: Buffer.from('k'), value: Buffer.from([0xff, 0xfe]), headers: [{ key: 'h', value: null }] })));
    expect(parsed).toMatchObject({ key: 'aw==', value: '//4=', headers: { h: null }, encoding: 'base64' });
  });

  it('keeps every header when a key repeats: an array in order, which produce reads back the same', () => {
    const headers = [
      { key: 'hop', value: Buffer.from('a') },
      { key: 'hop', value: Buffer.from('b') },
      { key: 'other', value: null },
    ];
    const line = consumerRecordToJson(record({ value: Buffer.from('v'), headers }));
    expect(JSON.parse(line).headers).toEqual([
      { key: 'hop', value: 'a' },
      { key: 'hop', value: 'b' },
      { key: 'other', value: null },
    ]);
    expect(parseJsonInputRecord(line).headers).toEqual(headers);
  });

  it('keeps a header named __proto__ and the order of headers named like numbers, as an array', () => {
    const headers = [
      { key: 'b', value: Buffer.from('1') },
      { key: '2', value: Buffer.from('2') },
      { key: '__proto__', value: Buffer.from('3') },
    ];
    const line = consumerRecordToJson(record({ value: Buffer.from('v'), headers }));
    expect(JSON.parse(line).headers).toEqual([
      { key: 'b', value: '1' },
      { key: '2', value: '2' },
      { key: '__proto__', value: '3' },
    ]);
    expect(parseJsonInputRecord(line).headers).toEqual(headers);
  });

  it('refuses a base64 field that is not base64, instead of storing what Buffer.from makes of it', () => {
    expect(parseJsonInputRecord('{"key":"aw==","value":"//4=","encoding":"base64"}')).toMatchObject({ key: Buffer.from('k'), value: Buffer.from([0xff, 0xfe]) });
    expect(parseJsonInputRecord('{"value":"","encoding":"base64"}').value).toEqual(Buffer.alloc(0));
    for (const bad of ['k', 'aw=', 'a w==', 'aw==\n', 'aw-_']) {
      expect(() => parseJsonInputRecord(JSON.stringify({ key: bad, value: null, encoding: 'base64' })), bad).toThrow(/key that is not base64/);
    }
  });

  it('reads input lines, including consume output fed back in, and refuses misspelt fields', () => {
    const input = parseJsonInputRecord('{"key":"k","value":"v","headers":[{"key":"a","value":"1"},{"key":"a","value":null}],"partition":2,"timestamp":"1970-01-01T00:00:01Z"}');
    expect(input).toEqual({ key: Buffer.from('k'), value: Buffer.from('v'), headers: [{ key: 'a', value: Buffer.from('1') }, { key: 'a', value: null }], partition: 2, timestamp: 1000 });
    const fedBack = parseJsonInputRecord(consumerRecordToJson(record({ value: Buffer.from([0xff]) })));
    expect(fedBack).toMatchObject({ key: null, value: Buffer.from([0xff]), partition: 1, timestamp: 1000 }); // the partition is kept
    expect(parseJsonInputRecord('{"value":null}').value).toBeNull();
    expect(() => parseJsonInputRecord('{"vaule":"x"}')).toThrow(/unknown field "vaule"/);
    expect(() => parseJsonInputRecord('{"key":"k"}')).toThrow(/no "value"/);
    expect(() => parseJsonInputRecord('[1]')).toThrow(/not a JSON object/);
    expect(() => parseJsonInputRecord('{"value":"v","partition":-1}')).toThrow(/partition/);
    expect(() => parseJsonInputRecord('{"value":5}')).toThrow(/value that is not a string/);
    // A time Date.parse would move elsewhere (1 December; June, from "jun") is refused, not stored.
    expect(() => parseJsonInputRecord('{"value":"v","timestamp":"2026-11-31T10:00:00Z"}')).toThrow(/timestamp/);
    expect(() => parseJsonInputRecord('{"value":"v","timestamp":"2026-11-20 junk"}')).toThrow(/timestamp/);
  });
});
