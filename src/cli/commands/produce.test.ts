import { describe, expect, it } from 'vitest';
import { encodeBatch } from '../../protocol/index.js';
import { noteFailure, singleRecordBatchBytesOf, type ProduceState } from './produce.js';

describe('noteFailure', () => {
  it('names the earliest failed line, also when a later line failed first', () => {
    const state: Pick<ProduceState, 'firstFailure'> = { firstFailure: undefined };
    noteFailure(state, 155, new Error('topic deleted'));
    noteFailure(state, 154, new Error('retried, then topic deleted'));
    noteFailure(state, 156, new Error('later'));
    expect(state.firstFailure?.lineNumber).toBe(154);
    expect((state.firstFailure?.error as Error).message).toBe('retried, then topic deleted');
  });
});

describe('singleRecordBatchBytesOf', () => {
  it('is the size of the batch holding the record alone, on both sides of every varint length step', () => {
    const sizes = [0, 1, 56, 57, 63, 64, 120, 121, 127, 128, 8_191, 8_192, 16_300, 16_383, 16_384, 1_048_576];
    for (const valueBytes of sizes) {
      for (const keyBytes of [undefined, 0, 5, 200]) {
        for (const headers of [[], [{ key: 'h', value: Buffer.alloc(valueBytes % 300) }, { key: 'é'.repeat(70), value: null }]]) {
          const key = keyBytes === undefined ? null : Buffer.alloc(keyBytes, 0x6b);
          const value = Buffer.alloc(valueBytes, 0x78);
          const encoded = encodeBatch({ records: [{ key, value, headers, timestamp: 1_763_632_800_000 }] });
          expect(singleRecordBatchBytesOf({ topic: 't', key, value, headers }), `value ${valueBytes}, key ${String(keyBytes)}, ${headers.length} headers`).toBe(encoded.length);
        }
      }
    }
  });

  it('counts a string value, and headers given as an object, as their UTF-8 bytes', () => {
    const encoded = encodeBatch({ records: [{ key: null, value: Buffer.from('héllo'), headers: [{ key: 'a', value: Buffer.from('ü') }], timestamp: 0 }] });
    expect(singleRecordBatchBytesOf({ topic: 't', value: 'héllo', headers: { a: 'ü' } })).toBe(encoded.length);
  });
});
