/**
 * The client survives broker restarts. Method: a real `runnel broker` child process on a
 * fixed port (so the restarted broker has the same address) and a fresh data dir; a producer
 * and a consumer keep running while the broker is stopped cleanly (SIGTERM) and later killed
 * (SIGKILL) and started again each time. The acknowledged-set oracle: every record the
 * producer saw acknowledged must be read back exactly once, in offset order per partition,
 * both by the consumer that ran through the restarts and by a fresh one.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type ConsumerRecord, type RecordMetadata, type RunnelClient } from '../../src/client/index.js';
import { BackgroundTask } from '../support/background-task.js';
import { startBrokerProcess, tearDownBrokerProcess, type BrokerProcess } from '../support/broker-process.js';
import { readRecordsWithin } from '../support/read-within.js';
import { waitFor } from '../support/wait-for.js';

let dataDir: string | undefined;
let broker: BrokerProcess | undefined;
let client: RunnelClient | undefined;

afterEach(async () => {
  await tearDownBrokerProcess({ client, broker, dataDir });
  [client, broker, dataDir] = [undefined, undefined, undefined];
});

/** Every record once, dense offsets from 0 and in order per partition; returns the values. */
function checkReplay(records: ConsumerRecord[], partitionCount: number): Set<string> {
  const nextOffset = new Array<number>(partitionCount).fill(0);
  const values = new Set<string>();
  for (const record of records) {
    expect(record.offset).toBe(nextOffset[record.partition]);
    nextOffset[record.partition]!++;
    const value = record.value!.toString();
    expect(values.has(value)).toBe(false);
    values.add(value);
  }
  return values;
}

describe('client across broker restarts', () => {
  it('keeps producing and consuming through a clean restart and a SIGKILL, losing and duplicating nothing', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-restart-'));
    broker = await startBrokerProcess({ dataDir });
    const port = broker.port;
    client = createClient({ brokers: [broker.address], clientId: 'restart-test' });
    const topic = `restart-${process.pid}`;
    const partitionCount = 3;
    await client.admin.createTopic({ name: topic, partitions: partitionCount });

    // The consumer reads from the start, through every restart, until closed.
    const consumer = client.consumer();
    const partitions = Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition }));
    consumer.assign(partitions);
    for (const tp of partitions) await consumer.seek(tp, 'earliest');
    const throughRestarts: ConsumerRecord[] = [];
    const consuming = new BackgroundTask('the consumer reading through the restarts', async () => {
      for await (const record of consumer) throughRestarts.push(record);
    });

    // The producer sends windows of 200 records (awaited) with a 5 ms pause between them (a
    // throttle that keeps the test's volume moderate, not a wait for a condition), so batches
    // are in flight whenever the broker goes away, until told to stop.
    const producer = client.producer({ lingerMs: 2 });
    const acknowledged = new Map<number, RecordMetadata>();
    let sent = 0;
    let isStopRequested = false;
    const producing = new BackgroundTask('the producer loop', async () => {
      while (!isStopRequested) {
        const window: Promise<void>[] = [];
        for (let count = 0; count < 200; count++) {
          const index = sent++;
          window.push(
            producer.send({ topic, key: `key-${index % 50}`, value: String(index) }).then((metadata) => {
              acknowledged.set(index, metadata);
            }),
          );
        }
        await Promise.all(window);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await producer.flush();
    });
    // A failed send ends the loop: the wait fails at once with that error, not at its deadline.
    const ackedAtLeast = async (count: number, what: string) =>
      waitFor(
        () => {
          producing.throwIfFailed();
          return acknowledged.size >= count;
        },
        { timeoutMs: 90_000, describe: () => `${acknowledged.size} of ${count} acknowledged ${what}` },
      );

    try {
      await ackedAtLeast(3_000, 'before the clean stop');
      expect(await broker.stop()).toBe(0);
      broker = await startBrokerProcess({ dataDir, port });
      await ackedAtLeast(acknowledged.size + 3_000, 'after the clean restart');
      await broker.kill('SIGKILL');
      broker = await startBrokerProcess({ dataDir, port });
      await ackedAtLeast(acknowledged.size + 3_000, 'after the SIGKILL');
      isStopRequested = true;
      await producing.finish();

      const total = sent;
      const metrics = producer.metrics();
      if (process.env.RUNNEL_TEST_VERBOSE === '1') console.log('producer metrics after restarts', metrics, 'records', total);
      expect(acknowledged.size).toBe(total);
      const offsets = new Set([...acknowledged.values()].map((metadata) => `${metadata.partition}:${metadata.offset}`));
      expect(offsets.size).toBe(total);

      await waitFor(
        () => {
          consuming.throwIfFailed();
          return throughRestarts.length >= total;
        },
        { timeoutMs: 60_000, describe: () => `${throughRestarts.length} of ${total} consumed` },
      );
      await consumer.close();
      await consuming.finish();
      expect(checkReplay(throughRestarts, partitionCount).size).toBe(total);

      const fresh = client.consumer();
      fresh.assign(partitions);
      for (const tp of partitions) await fresh.seek(tp, 'earliest');
      const replayed = await readRecordsWithin(fresh, total, { timeoutMs: 60_000, expected: `all ${total} acknowledged records, offsets 0 on in each of ${partitionCount} partitions` });
      expect(checkReplay(replayed, partitionCount).size).toBe(total);
      for (const record of replayed) {
        const metadata = acknowledged.get(Number(record.value!.toString()))!;
        expect([record.partition, record.offset]).toEqual([metadata.partition, metadata.offset]);
      }
      const latest = await client.admin.listOffsets({ topic, spec: 'latest' });
      expect(latest.reduce((sum, offset) => sum + offset.offset, 0)).toBe(total); // nothing appended twice
    } finally {
      // After a failure above both loops may still be running, the producer's perhaps waiting
      // for a window a stopped broker will never acknowledge: stop them (closing the producer
      // fails what it still holds after a second) and wait for them to end, so nothing runs
      // on, or rejects, after the test. Their own failures are not what this test reports then.
      isStopRequested = true;
      await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
      await consumer.close();
      await producing.settled();
      await consuming.settled();
    }
  });

  it('retries an admin call made while the broker is down until it is back', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-client-restart-'));
    broker = await startBrokerProcess({ dataDir });
    const port = broker.port;
    client = createClient({ brokers: [broker.address] });
    await client.admin.createTopic({ name: 'while-down', partitions: 1 });
    await broker.stop();
    broker = undefined;
    const listed = client.admin.listTopics();
    broker = await startBrokerProcess({ dataDir, port });
    expect((await listed).map((topic) => topic.name)).toContain('while-down');
  });
});
