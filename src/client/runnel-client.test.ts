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

describe('RunnelClient signals', () => {
  it('seeks many partitions at once without a listener-leak warning on stderr', async () => {
    // Every seek's ListOffsets (and every call of the client) links to the client's closing
    // signal while it runs; a replay job seeking 100 partitions at once holds 100 such links.
    // Node warned "MaxListenersExceededWarning: Possible EventTarget memory leak" past 10 of
    // them, on the job's stderr, though each is removed when its call ends. Nothing listens
    // on port 1, so the seeks wait in their retries until close.
    const client = createClient({ brokers: ['127.0.0.1:1'], clock: new ManualClock() });
    const warnings = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    try {
      const consumer = client.consumer({ autoOffsetReset: 'none' });
      const partitions = Array.from({ length: 100 }, (_, partition) => ({ topic: 'replay', partition }));
      consumer.assign(partitions);
      const seeks = partitions.map((tp) => consumer.seek(tp, { timestamp: 1_000 }));
      await settle();
      await client.close();
      await Promise.allSettled(seeks);
      const leakWarnings = warnings.mock.calls.filter((call) => String(call[0]).includes('MaxListeners') || (call[0] as Error).name === 'MaxListenersExceededWarning');
      expect(leakWarnings).toEqual([]);
    } finally {
      warnings.mockRestore();
    }
  });
});
