/**
 * The consumer against a real broker (in this process, gRPC over 127.0.0.1, fresh data dir per
 * test), in the situations an analytics job or a log tail meets: many partitions at once, and
 * the topic changing under it. Each test starts its own broker (some need a non-default
 * config) and closes its client and broker in afterEach.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type RunnelClient } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait-for.js';

let broker: TestBroker | undefined;
let client: RunnelClient | undefined;

afterEach(async () => {
  await client?.close();
  await broker?.close();
  client = undefined;
  broker = undefined;
});

describe('consumer against a real broker', () => {
  it('reads every partition when it is assigned more partitions than the broker serves calls on one connection', async () => {
    // Goal: one Subscribe stream per partition must not wait forever behind the broker's
    // limit of concurrent calls per connection (HTTP/2 queues the streams past it, unsent).
    // Method: a broker allowing 128 calls per connection, a topic of 300 partitions with one
    // record each, one consumer of all of them from the earliest offset.
    broker = await startBroker({ config: { inFlightRequestsPerConnectionMax: 128 } });
    client = createClient({ brokers: [broker.address] });
    const topic = 'many';
    const partitionCount = 300;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const producer = client.producer({ lingerMs: 5 });
    await Promise.all(Array.from({ length: partitionCount }, (_, partition) => producer.send({ topic, partition, value: `p${partition}` })));

    const consumer = client.consumer({ autoOffsetReset: 'earliest' });
    consumer.assign(Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition })));
    const seen = new Set<number>();
    const reading = (async () => {
      for await (const record of consumer) {
        expect(record.value?.toString()).toBe(`p${record.partition}`);
        seen.add(record.partition);
        if (seen.size === partitionCount) break;
      }
    })();
    await waitFor(() => seen.size === partitionCount, {
      timeoutMs: 20_000,
      describe: () => `${seen.size} of ${partitionCount} partitions delivered; none yet from ${[...Array(partitionCount).keys()].filter((partition) => !seen.has(partition)).slice(0, 10).join(', ')}…`,
    });
    await reading;
    await consumer.close();
  });
});
