import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { createClient } from './runnel-client.js';
import { settle } from './test-helpers.js';

describe('RunnelClient close', () => {
  it('ends a close still delivering when a later close gives a shorter timeout', async () => {
    // Nothing listens on port 1: the producer's records can only wait, so the first close
    // (30 s by default) would wait for its own timeout; the second one must not.
    const clock = new ManualClock();
    const client = createClient({ brokers: ['127.0.0.1:1'], clock });
    const producer = client.producer();
    const handle = producer.send({ topic: 't', value: 'a' });
    const first = client.close();
    await settle();
    const second = client.close({ timeoutMs: 100 });
    expect(second).toBe(first);
    clock.advance(100);
    await expect(handle).rejects.toMatchObject({ reason: 'REQUEST_TIMED_OUT' });
    await second;
    expect(producer.metrics()).toMatchObject({ bufferUsedBytes: 0, failedRecords: 1 });
  });
});
