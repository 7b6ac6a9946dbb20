/**
 * Model-based property test of the idempotent producer against the fake broker's idempotence
 * rules (test-helpers.ts: FakePartitionLog).
 *
 * Goal: whatever mix of sends, refusals before the write (LIMIT_REACHED), failures after it
 * (ACK_TIMEOUT), failures of unknown outcome (DISK_FULL), broken streams that appended some of
 * their requests, batches too large for the topic (split), backoffs and delivery deadlines
 * (epoch bumps) happens, every record settles once; each partition's log holds no record
 * twice and holds its records in send order; an acknowledged record is at the offset it was
 * acknowledged with. Without idempotence and with one batch in flight per partition, the
 * order holds too (duplicates are allowed there).
 *
 * Method: a generated list of operations drives a `Producer` with a manual clock and a fake
 * channel; the test answers each request from one FakePartitionLog per partition, then stops
 * the faults and answers everything until every record settled. fast-check prints the seed and
 * path of a failing run.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ManualClock } from '../common/index.js';
import { Producer, type ProducerOptions } from './producer.js';
import { FakePartitionLog, FakeProducerTransport, settle, type PartitionAnswer, type SentPartition } from './test-helpers.js';

type Fault = 'none' | 'LIMIT_REACHED' | 'ACK_TIMEOUT' | 'DISK_FULL';

type Operation =
  | { kind: 'send'; partition: number; paddingBytes: number }
  | { kind: 'reply'; fault: Fault }
  | { kind: 'break'; appendedRequestCount: number }
  | { kind: 'advance'; ms: number };

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('send' as const), partition: fc.integer({ min: 0, max: 1 }), paddingBytes: fc.integer({ min: 0, max: 30 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('reply' as const), fault: fc.constantFrom<Fault>('none', 'none', 'LIMIT_REACHED', 'ACK_TIMEOUT', 'DISK_FULL') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('break' as const), appendedRequestCount: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3_000 }) }) },
);

const settingsArbitrary = fc.record({
  lingerMs: fc.constantFrom(0, 5, 10_000),
  /** The topic's max.message.bytes: a few records per batch, or no limit. */
  maxMessageBytes: fc.constantFrom(Number.POSITIVE_INFINITY, 141, 221, 301),
  /**
   * The default, or a buffer of one or four records (each observed): records wait for space,
   * and open batches close early meanwhile, whatever their linger.
   */
  bufferBytes: fc.constantFrom(undefined, 2_000, 4_000),
});

type Settings = { lingerMs: number; maxMessageBytes: number; bufferBytes: number | undefined };

interface SentRecord {
  partition: number;
  value: string;
  outcome: { kind: 'acked'; offset: number } | { kind: 'failed' } | undefined;
  settleCount: number;
}

async function runProducer(
  producerOptions: ProducerOptions,
  settings: Settings,
  operations: Operation[],
): Promise<{ sent: SentRecord[]; logs: FakePartitionLog[] }> {
  const clock = new ManualClock();
  const transport = new FakeProducerTransport({ t: 2 });
  const channel = transport.channel;
  const bufferOptions: ProducerOptions = settings.bufferBytes === undefined ? {} : { bufferBytes: settings.bufferBytes, batchBytes: 1_000 };
  const producer = new Producer(transport, { clock, random: () => 0.5, lingerMs: settings.lingerMs, deliveryTimeoutMs: 15_000, ...bufferOptions, ...producerOptions });
  const logs = [new FakePartitionLog(), new FakePartitionLog()];
  for (const log of logs) log.maxMessageBytes = settings.maxMessageBytes;
  const append = (sent: SentPartition): PartitionAnswer => logs[sent.partition]!.append(sent.bytes);
  const sent: SentRecord[] = [];
  for (const operation of operations) {
    switch (operation.kind) {
      case 'send': {
        const record: SentRecord = { partition: operation.partition, value: `v${sent.length}${'x'.repeat(operation.paddingBytes)}`, outcome: undefined, settleCount: 0 };
        sent.push(record);
        producer.send({ topic: 't', partition: record.partition, value: record.value }).then(
          (metadata) => {
            record.settleCount++;
            record.outcome = { kind: 'acked', offset: metadata.offset };
          },
          () => {
            record.settleCount++;
            record.outcome = { kind: 'failed' };
          },
        );
        break;
      }
      case 'reply':
        if (channel.pending.length === 0) break;
        channel.replyNext((partition) => {
          if (operation.fault === 'LIMIT_REACHED' || operation.fault === 'DISK_FULL') return { error: operation.fault };
          const answer = append(partition);
          return operation.fault === 'ACK_TIMEOUT' && !('error' in answer) ? { error: 'ACK_TIMEOUT' } : answer;
        });
        break;
      case 'break':
        // The broker appended the first requests (in order), then the stream broke.
        for (const request of channel.pending.slice(0, operation.appendedRequestCount)) for (const partition of request.partitions) append(partition);
        channel.failAll();
        break;
      case 'advance':
        clock.advance(operation.ms);
        break;
    }
    await settle(3);
  }
  for (let round = 0; round < 200 && sent.some((record) => record.outcome === undefined); round++) {
    while (channel.pending.length > 0) channel.replyNext(append);
    await settle(3);
    clock.advance(1_000);
    await settle(3);
  }
  return { sent, logs };
}

function checkRun({ sent, logs }: { sent: SentRecord[]; logs: FakePartitionLog[] }, { isExactlyOnce }: { isExactlyOnce: boolean }): void {
  expect(sent.filter((record) => record.settleCount !== 1)).toEqual([]);
  for (const [partition, log] of logs.entries()) {
    const stored = log.records.map((record) => record.value!.toString());
    const sendIndex = new Map(sent.filter((record) => record.partition === partition).map((record, index) => [record.value, index]));
    if (isExactlyOnce) expect(new Set(stored).size, `partition ${partition}: ${stored.join(',')}`).toBe(stored.length);
    // In send order: each record's first copy comes after the first copy of every record sent before it.
    const firstCopies = stored.filter((value, index) => stored.indexOf(value) === index).map((value) => sendIndex.get(value)!);
    expect(firstCopies, `partition ${partition}: ${stored.join(',')}`).toEqual([...firstCopies].sort((a, b) => a - b));
  }
  for (const record of sent) {
    if (record.outcome?.kind === 'acked') expect(logs[record.partition]!.records[record.outcome.offset]?.value?.toString()).toBe(record.value);
  }
}

describe('Producer (model-based)', () => {
  it('idempotent: every record settles once; each partition holds its records once, in send order, at their acknowledged offsets', async () => {
    await fc.assert(
      fc.asyncProperty(settingsArbitrary, fc.array(operationArbitrary, { minLength: 1, maxLength: 120 }), async (settings, operations) => {
        checkRun(await runProducer({}, settings, operations), { isExactlyOnce: true });
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('without idempotence and one batch in flight per partition: every record settles once and each partition keeps send order', async () => {
    await fc.assert(
      fc.asyncProperty(settingsArbitrary, fc.array(operationArbitrary, { minLength: 1, maxLength: 120 }), async (settings, operations) => {
        checkRun(await runProducer({ acks: 'leader', inFlightBatchesPerPartitionMax: 1 }, settings, operations), { isExactlyOnce: false });
      }),
      { numRuns: 300 },
    );
  }, 60_000);
});
