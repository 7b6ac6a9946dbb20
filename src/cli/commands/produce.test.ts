import { describe, expect, it } from 'vitest';
import { noteFailure, type ProduceState } from './produce.js';

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
