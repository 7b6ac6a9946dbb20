import fc from 'fast-check';
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { loadRunnelProto } from './grpc.js';
import { fetchedRecordFieldSizeBytes, protoVarintSizeBytes, subscribeResponseSizeBytes } from './proto-size.js';
import type { DecodedRecord } from './record-batch.js';

interface Ends {
  highWatermark: number;
  logStartOffset: number;
  nextOffset: number;
}

/**
 * The reference: protobufjs (proto-loader's serializer) encoding the SubscribeResponse with
 * every field that has no presence left out at its default, as a parsed message is counted.
 */
function encodedSizeBytes(records: DecodedRecord[], ends: Ends): number {
  const int64 = (value: number): string | undefined => (value === 0 ? undefined : String(value));
  const message = {
    records: records.map((record) => ({
      offset: int64(record.offset),
      key: record.key ?? undefined,
      value: record.value ?? undefined,
      headers: record.headers.map((header) => ({ key: header.key === '' ? undefined : header.key, value: header.value ?? undefined })),
      timestampMs: int64(record.timestamp),
    })),
    highWatermark: int64(ends.highWatermark),
    logStartOffset: int64(ends.logStartOffset),
    nextOffset: int64(ends.nextOffset),
  };
  const service = loadRunnelProto().definition['runnel.v1.LogService'] as grpc.ServiceDefinition;
  return (service.Subscribe as grpc.MethodDefinition<unknown, unknown>).responseSerialize(message).length;
}

function sizedBytes(records: DecodedRecord[], ends: Ends): number {
  let recordsFieldBytes = 0;
  for (const record of records) recordsFieldBytes += fetchedRecordFieldSizeBytes(record);
  return subscribeResponseSizeBytes({ recordBatchesBytes: 0, recordsFieldBytes, ...ends });
}

describe('proto-size', () => {
  it('sizes varints at every 7-bit boundary up to 2^53, and a negative int64 as ten bytes', () => {
    expect(protoVarintSizeBytes(0)).toBe(1);
    for (let bytes = 1; bytes <= 7; bytes++) {
      expect(protoVarintSizeBytes(2 ** (7 * bytes) - 1)).toBe(bytes);
      expect(protoVarintSizeBytes(2 ** (7 * bytes))).toBe(bytes + 1);
    }
    expect(protoVarintSizeBytes(Number.MAX_SAFE_INTEGER)).toBe(8);
    expect(protoVarintSizeBytes(-1)).toBe(10);
  });

  it('sizes a SubscribeResponse of records exactly as protobuf encodes it: zeros left out, empty optional bytes counted', () => {
    const records: DecodedRecord[] = [
      { offset: 0, key: null, value: null, headers: [], timestamp: 0 },
      { offset: 1, key: Buffer.alloc(0), value: Buffer.alloc(0), headers: [{ key: '', value: null }], timestamp: -1 },
      { offset: 2 ** 40, key: Buffer.alloc(200), value: Buffer.alloc(20_000), headers: [{ key: 'ünï', value: Buffer.alloc(0) }], timestamp: 1_700_000_000_000 },
    ];
    expect(sizedBytes(records, { highWatermark: 0, logStartOffset: 0, nextOffset: 0 })).toBe(encodedSizeBytes(records, { highWatermark: 0, logStartOffset: 0, nextOffset: 0 }));
    const ends = { highWatermark: 2 ** 40 + 1, logStartOffset: 0, nextOffset: 2 ** 40 + 1 };
    expect(sizedBytes(records, ends)).toBe(encodedSizeBytes(records, ends));
    expect(sizedBytes([], ends)).toBe(encodedSizeBytes([], ends));
  });

  it('matches protobuf on any records', () => {
    const bytes = fc.option(fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array)), { nil: null });
    const int64 = fc.oneof(fc.constant(0), fc.integer({ min: -5, max: 5 }), fc.maxSafeInteger(), fc.integer({ min: -1, max: 2 ** 31 }));
    const record = fc.record({
      offset: fc.oneof(fc.constant(0), fc.maxSafeNat()),
      key: bytes,
      value: bytes,
      headers: fc.array(fc.record({ key: fc.string({ maxLength: 20, unit: 'grapheme' }), value: bytes }), { maxLength: 3 }),
      timestamp: int64,
    });
    const ends = fc.record({ highWatermark: fc.maxSafeNat(), logStartOffset: fc.oneof(fc.constant(0), fc.maxSafeNat()), nextOffset: fc.maxSafeNat() });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 20 }), ends, (records, at) => {
        expect(sizedBytes(records, at)).toBe(encodedSizeBytes(records, at));
      }),
    );
  });
});
