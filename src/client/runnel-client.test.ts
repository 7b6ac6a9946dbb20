import { describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../common/index.js';
import { Consumer } from './consumer.js';
import { Producer } from './producer.js';
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

  it('forgets a consumer or producer closed on its own, so a long-lived client does not keep every one it made', async () => {
    // Observed through close(): the client closes what it still holds. Before, it held every
    // consumer and producer it ever made, with the callbacks each was given.
    const client = createClient({ brokers: ['127.0.0.1:1'], clock: new ManualClock() });
    const consumerCloses = vi.spyOn(Consumer.prototype, 'close');
    const producerCloses = vi.spyOn(Producer.prototype, 'close');
    try {
      for (let index = 0; index < 3; index++) {
        await client.consumer({ onRetry: () => undefined }).close();
        await client.producer().close();
      }
      const kept = client.consumer();
      expect([consumerCloses.mock.calls.length, producerCloses.mock.calls.length]).toEqual([3, 3]);
      await client.close();
      expect(consumerCloses.mock.contexts.slice(3)).toEqual([kept]);
      expect(producerCloses.mock.calls.length).toBe(3);
    } finally {
      consumerCloses.mockRestore();
      producerCloses.mockRestore();
    }
  });
});
