/**
 * `runnel consume` following every partition of a topic picks up partitions added meanwhile
 * (cli/commands/consume.ts `followNewPartitions`). Goal: a new partition whose start cannot be
 * found at the check that first lists it (ListOffsets answers PARTITION_NOT_FOUND while the
 * broker is still creating its log, or the broker is away) is still read, from its start,
 * once a later check can find it. Method: an in-process broker whose ListOffsets for the new
 * partition fails once (a spy on Broker.listOffset), a consumer set up as the command sets it
 * up, checks every 50 ms. The command itself is covered end to end in cli.test.ts.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { createClient, type ConsumerRecord, type RunnelClient } from '../../src/client/index.js';
import { BrokerError } from '../../src/errors/index.js';
import { followNewPartitions, type PartitionPlan } from '../../src/cli/commands/consume.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { waitFor } from '../support/wait-for.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

it('reads a partition added meanwhile whose start could not be found at the first check that listed it', async () => {
  const testBroker: TestBroker = await startBroker();
  cleanups.push(() => testBroker.close());
  const client: RunnelClient = createClient({ brokers: [testBroker.address] });
  cleanups.push(() => client.close());
  const topic = 'grows';
  await client.admin.createTopic({ name: topic, partitions: 1 });

  const consumer = client.consumer({ autoOffsetReset: 'none' });
  const byPartition = new Map<number, PartitionPlan>([[0, { partition: 0, startOffset: 0, endOffset: undefined, skipBeforeMs: undefined }]]);
  consumer.assign([{ topic, partition: 0 }]);
  await consumer.seek({ topic, partition: 0 }, 0);
  const printed: ConsumerRecord[] = [];
  const reading = (async () => {
    for await (const chunk of consumer.batches()) printed.push(...chunk);
  })();
  cleanups.push(async () => {
    await consumer.close();
    await reading;
  });

  const listOffset = testBroker.broker.listOffset.bind(testBroker.broker);
  let refusedCount = 0;
  vi.spyOn(testBroker.broker, 'listOffset').mockImplementation(async (name, partition, query) => {
    if (partition === 1 && refusedCount === 0) {
      refusedCount++;
      throw new BrokerError('PARTITION_NOT_FOUND', `partition ${name}-${partition} is being created`, { topic: name, partition });
    }
    return listOffset(name, partition, query);
  });
  cleanups.push(followNewPartitions(client, consumer, topic, byPartition, 50));

  await client.admin.addPartitions({ name: topic, partitionCount: 2 });
  const producer = client.producer();
  await producer.send({ topic, partition: 1, value: 'in-1' });
  await producer.flush();
  await waitFor(() => refusedCount === 1, { timeoutMs: 10_000, describe: () => 'no check listed partition 1 yet' });
  await waitFor(() => printed.some((record) => record.partition === 1), {
    timeoutMs: 10_000,
    describe: () => `read ${JSON.stringify(printed.map((record) => [record.partition, record.offset]))}; partitions followed ${[...byPartition.keys()].join(', ')}`,
  });
  expect(printed.map((record) => [record.partition, record.offset, record.value?.toString()])).toEqual([[1, 0, 'in-1']]);
});
