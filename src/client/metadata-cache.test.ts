import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { BrokerError } from '../errors/index.js';
import type { ClusterMetadata } from './admin.js';
import { MetadataCache } from './metadata-cache.js';

function metadata(partitions: number, brokers = 1): ClusterMetadata {
  return {
    clusterId: 'c',
    controllerId: 1,
    brokers: Array.from({ length: brokers }, (_, index) => ({ id: index + 1, host: `h${index + 1}`, port: 9000 + index })),
    topics: [{ name: 't', partitions: Array.from({ length: partitions }, (_, partition) => ({ partition, leader: (partition % brokers) + 1, leaderEpoch: 0 })) }],
  };
}

describe('MetadataCache', () => {
  it('loads a topic once for concurrent callers and answers from the cache afterwards', async () => {
    let calls = 0;
    const cache = new MetadataCache(async () => {
      calls++;
      return metadata(3);
    }, new ManualClock());
    expect(cache.partitionCount('t')).toBeUndefined();
    await expect(Promise.all([cache.load('t'), cache.load('t')])).resolves.toEqual([3, 3]);
    expect(cache.partitionCount('t')).toBe(3);
    expect(calls).toBe(1);
  });

  it('tells every caller that joined a load of each retried failure from then on', async () => {
    let reportFailure: ((error: BrokerError) => void) | undefined;
    let answer: (() => void) | undefined;
    const cache = new MetadataCache((_topics, onRetry) => {
      reportFailure = onRetry;
      return new Promise((resolve) => (answer = () => resolve(metadata(1))));
    }, new ManualClock());
    const heard: string[] = [];
    const first = cache.load('t', { onRetry: (error) => heard.push(`first ${error.reason}`) });
    reportFailure!(new BrokerError('BROKER_UNAVAILABLE', 'down'));
    const second = cache.load('t', { onRetry: (error) => heard.push(`second ${error.reason}`) });
    reportFailure!(new BrokerError('SHUTTING_DOWN', 'stopping'));
    answer!();
    await expect(Promise.all([first, second])).resolves.toEqual([1, 1]);
    expect(heard).toEqual(['first BROKER_UNAVAILABLE', 'first SHUTTING_DOWN', 'second SHUTTING_DOWN']);
  });

  it('goes on with a load another caller still waits for when one caller leaves (its signal aborted), and cancels it once every caller has left', async () => {
    // A producer that closes leaves the loads it joined; another producer or consumer of the
    // client may still wait for the same topic. Before, nothing ever cancelled a load: a
    // closed producer's ran on for the retry budget.
    const fetches: { signal: AbortSignal; answer: () => void }[] = [];
    const cache = new MetadataCache(
      (_topics, _onRetry, signal) =>
        new Promise((resolve, reject) => {
          fetches.push({ signal, answer: () => resolve(metadata(2)) });
          signal.addEventListener('abort', () => reject(new BrokerError('BROKER_UNAVAILABLE', 'cancelled')));
        }),
      new ManualClock(),
    );
    const closedProducer = new AbortController();
    const otherProducer = new AbortController();
    const leaving = cache.load('t', { signal: closedProducer.signal });
    const staying = cache.load('t', { signal: otherProducer.signal });
    closedProducer.abort(new BrokerError('INVALID_REQUEST', 'the producer is closed'));
    await expect(leaving).rejects.toMatchObject({ reason: 'INVALID_REQUEST', message: 'the producer is closed' });
    expect(fetches).toHaveLength(1);
    expect(fetches[0]!.signal.aborted).toBe(false);
    fetches[0]!.answer();
    await expect(staying).resolves.toBe(2);

    const first = new AbortController();
    const second = new AbortController();
    const loads = [cache.load('t', { signal: first.signal }), cache.load('t', { signal: second.signal })];
    first.abort(new BrokerError('INVALID_REQUEST', 'the producer is closed'));
    expect(fetches[1]!.signal.aborted).toBe(false);
    second.abort(new BrokerError('INVALID_REQUEST', 'the consumer is closed'));
    expect(fetches[1]!.signal.aborted).toBe(true);
    await expect(Promise.all(loads)).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    // A later load starts a call of its own instead of joining the cancelled one.
    const later = cache.load('t');
    expect(fetches).toHaveLength(3);
    fetches[2]!.answer();
    await expect(later).resolves.toBe(2);
  });

  it('never cancels a load a caller without a signal waits for, and refuses a caller whose signal already aborted', async () => {
    const fetches: { signal: AbortSignal; answer: () => void }[] = [];
    const cache = new MetadataCache(
      (_topics, _onRetry, signal) => new Promise((resolve) => fetches.push({ signal, answer: () => resolve(metadata(1)) })),
      new ManualClock(),
    );
    const closed = new AbortController();
    closed.abort(new BrokerError('INVALID_REQUEST', 'the producer is closed'));
    await expect(cache.load('t', { signal: closed.signal })).rejects.toMatchObject({ message: 'the producer is closed' });
    expect(fetches).toHaveLength(0);
    const leaving = new AbortController();
    const withSignal = cache.load('t', { signal: leaving.signal });
    const withoutSignal = cache.load('t');
    leaving.abort();
    await expect(withSignal).rejects.toMatchObject({ reason: 'INVALID_REQUEST' });
    expect(fetches[0]!.signal.aborted).toBe(false);
    fetches[0]!.answer();
    await expect(withoutSignal).resolves.toBe(1);
  });

  it('rejects TOPIC_NOT_FOUND when the broker does not list the topic, and forgets it', async () => {
    let exists = true;
    const cache = new MetadataCache(async () => (exists ? metadata(2) : { ...metadata(2), topics: [] }), new ManualClock());
    await cache.load('t');
    exists = false;
    await expect(cache.load('t')).rejects.toMatchObject({ reason: 'TOPIC_NOT_FOUND' });
    expect(cache.partitionCount('t')).toBeUndefined();
  });

  it('passes on a TOPIC_NOT_FOUND error from the broker', async () => {
    const cache = new MetadataCache(async () => {
      throw new BrokerError('TOPIC_NOT_FOUND', 'no');
    }, new ManualClock());
    await expect(cache.load('t')).rejects.toBeInstanceOf(BrokerError);
  });

  it('refreshes a stale entry in the background while still answering', async () => {
    const clock = new ManualClock();
    let partitions = 2;
    const cache = new MetadataCache(async () => metadata(partitions), clock, 1_000);
    await cache.load('t');
    partitions = 4;
    clock.advance(1_001);
    expect(cache.partitionCount('t')).toBe(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(cache.partitionCount('t')).toBe(4);
  });

  it('routes to partition leaders only when there are several brokers', async () => {
    const single = new MetadataCache(async () => metadata(2, 1), new ManualClock());
    await single.load('t');
    expect(single.leaderAddress('t', 0)).toBeUndefined();
    const several = new MetadataCache(async () => metadata(2, 2), new ManualClock());
    await several.load('t');
    expect([several.leaderAddress('t', 0), several.leaderAddress('t', 1)]).toEqual(['h1:9000', 'h2:9001']);
  });
});
