/**
 * The broker-wide budget of produce request bytes held at once (server/byte-budget.ts, broker
 * setting produceBytesInFlightMax). Goal: past it, a unary Produce is refused with
 * LIMIT_REACHED and writes nothing, and a ProduceStream is no longer read (HTTP/2 flow control
 * holds its client) until requests are answered; then everything goes through, in order.
 * Method: an in-process broker with a 1 MiB budget whose appends are held at a gate (a spy on
 * Broker.produce), plain grpc-js clients, ~700 KiB requests.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it, vi } from 'vitest';
import { startBroker, type TestBroker } from '../support/broker.js';
import { rawClients, reasonOf, unary, type RawClients } from '../support/raw-grpc.js';
import type { LogManager } from '../../src/storage/index.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A broker with a 1 MiB produce budget whose appends wait until `open()`. */
async function gatedBroker(): Promise<{ testBroker: TestBroker; clients: RawClients; produceCalls: () => number; open: () => void }> {
  const testBroker = await startBroker({ config: { produceBytesInFlightMax: 1 << 20 } });
  cleanups.push(() => testBroker.close());
  const clients = rawClients(testBroker.address);
  cleanups.push(() => clients.close());
  await testBroker.broker.createTopic({ name: 'held', partitions: 1, replicationFactor: 1, configs: {} });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const produce = testBroker.broker.produce.bind(testBroker.broker);
  const spy = vi.spyOn(testBroker.broker, 'produce').mockImplementation(async (request) => {
    await gate;
    return produce(request);
  });
  return { testBroker, clients, produceCalls: () => spy.mock.calls.length, open };
}

/**
 * A broker with a 1 MiB produce budget whose partition logs take no append until `open()`:
 * Broker.produce runs (ACKS_NONE answers at once), its append waits in storage.
 */
async function appendGatedBroker(): Promise<{ testBroker: TestBroker; clients: RawClients; appendCalls: () => number; open: () => void }> {
  const testBroker = await startBroker({ config: { produceBytesInFlightMax: 1 << 20 } });
  cleanups.push(() => testBroker.close());
  const clients = rawClients(testBroker.address);
  cleanups.push(() => clients.close());
  await testBroker.broker.createTopic({ name: 'held', partitions: 1, replicationFactor: 1, configs: {} });
  let isOpen = false;
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const logs = (testBroker.broker as unknown as { logs: LogManager }).logs;
  const withPartition = logs.withPartition.bind(logs);
  let appendCalls = 0;
  vi.spyOn(logs, 'withPartition').mockImplementation(async (topic, partition, work) => {
    if (isOpen) return withPartition(topic, partition, work);
    appendCalls++;
    await gate;
    return withPartition(topic, partition, work);
  });
  return {
    testBroker,
    clients,
    appendCalls: () => appendCalls,
    open: () => {
      isOpen = true;
      open();
    },
  };
}

const request = (fill: number) => ({
  acks: 'ACKS_ALL',
  topics: [{ topic: 'held', partitions: [{ partition: 0, records: { records: [{ value: Buffer.alloc(700 * 1024, fill) }] } }] }],
});

async function storedFills(testBroker: TestBroker): Promise<number[]> {
  const fetched = await testBroker.broker.fetch({ topic: 'held', partition: 0, offset: 0, maxBytes: 8 << 20, minBytes: 0, maxWaitMs: 0 });
  const { decodeBatches } = await import('../../src/protocol/index.js');
  return [...decodeBatches(fetched.bytes)].map((record) => record.value![0]!);
}

it('refuses a unary Produce that does not fit with LIMIT_REACHED (retriable), writing nothing, and takes it once bytes are given back', async () => {
  const { testBroker, clients, produceCalls, open } = await gatedBroker();
  const first = unary<Any, Any>(clients.log, 'Produce', request(1));
  await vi.waitFor(() => expect(produceCalls()).toBe(1), { timeout: 10_000 });
  const refused = await unary<Any, Any>(clients.log, 'Produce', request(2)).catch((error: unknown) => error);
  expect(reasonOf(refused)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: 'LIMIT_REACHED' });
  expect(String((refused as Error).message)).toMatch(/produceBytesInFlightMax/);
  expect(produceCalls()).toBe(1); // never reached the broker
  open();
  expect((await first).topics[0].partitions[0]).toMatchObject({ baseOffset: '0', error: null });
  expect((await unary<Any, Any>(clients.log, 'Produce', request(3))).topics[0].partitions[0]).toMatchObject({ baseOffset: '1', error: null });
  expect(await storedFills(testBroker)).toEqual([1, 3]);
});

it('counts what plain records take decoded, not only their wire bytes', async () => {
  const { clients, produceCalls, open } = await gatedBroker();
  // 4,000 one-byte records: ~28 KB on the wire, over 1 MiB once decoded (~320 bytes each).
  const manySmall = {
    acks: 'ACKS_ALL',
    topics: [{ topic: 'held', partitions: [{ partition: 0, records: { records: Array.from({ length: 4_000 }, () => ({ value: Buffer.from('x') })) } }] }],
  };
  const first = unary<Any, Any>(clients.log, 'Produce', manySmall);
  await vi.waitFor(() => expect(produceCalls()).toBe(1), { timeout: 10_000 });
  const refused = await unary<Any, Any>(clients.log, 'Produce', manySmall).catch((error: unknown) => error);
  expect(reasonOf(refused).reason).toBe('LIMIT_REACHED');
  open();
  expect((await first).topics[0].partitions[0]).toMatchObject({ baseOffset: '0', error: null });
});

it('stops reading a ProduceStream while the budget is spent, and reads on, in order, once requests are answered', async () => {
  const { testBroker, clients, produceCalls, open } = await gatedBroker();
  const { stream, responses, ended } = openProduceStream(clients);
  for (let index = 1; index <= 3; index++) stream.write({ sequence: index, ...request(index) });
  // 700 KiB taken, then 1.4 MiB: spent after the second, so the third is not read.
  await vi.waitFor(() => expect(produceCalls()).toBe(2), { timeout: 10_000 });
  // A unary call on the same connection, sent after the third stream message, is answered
  // (refused: the budget is spent) while that message still waits unread.
  const refused = await unary<Any, Any>(clients.log, 'Produce', request(9)).catch((error: unknown) => error);
  expect(reasonOf(refused).reason).toBe('LIMIT_REACHED');
  expect(produceCalls()).toBe(2);
  open();
  await vi.waitFor(() => expect(responses).toHaveLength(3), { timeout: 10_000 });
  stream.end();
  await ended;
  expect(responses.map((response) => [response.sequence, response.topics[0].partitions[0].baseOffset])).toEqual([
    ['1', '0'],
    ['2', '1'],
    ['3', '2'],
  ]);
  expect(await storedFills(testBroker)).toEqual([1, 2, 3]);
});

it("holds an ACKS_NONE request's bytes until its append is written, though its reply went out at once", async () => {
  // Before, the bytes went back with the reply: a client sending ACKS_NONE could queue appends
  // in broker memory without bound while the budget showed nothing held.
  const { testBroker, clients, appendCalls, open } = await appendGatedBroker();
  const unacknowledged = { ...request(1), acks: 'ACKS_NONE' };
  expect((await unary<Any, Any>(clients.log, 'Produce', unacknowledged)).topics[0].partitions[0]).toMatchObject({ baseOffset: '-1', error: null });
  expect(appendCalls()).toBe(1); // the append waits in storage, holding its 700 KiB
  const refused = await unary<Any, Any>(clients.log, 'Produce', request(2)).catch((error: unknown) => error);
  expect(reasonOf(refused)).toEqual({ code: grpc.status.RESOURCE_EXHAUSTED, reason: 'LIMIT_REACHED' });
  expect(appendCalls()).toBe(1);
  open();
  await vi.waitFor(async () => expect(await storedFills(testBroker)).toEqual([1]), { timeout: 10_000 });
  // Written: its bytes are back, and the next request fits.
  await vi.waitFor(async () => expect((await unary<Any, Any>(clients.log, 'Produce', request(3))).topics[0].partitions[0]).toMatchObject({ baseOffset: '1', error: null }), {
    timeout: 10_000,
  });
  expect(await storedFills(testBroker)).toEqual([1, 3]);
});

it('stops reading a ProduceStream of ACKS_NONE requests while 64 of their appends are unwritten, then takes the rest in order', async () => {
  // Before, an ACKS_NONE request left the stream's in-flight count with its reply, so a log
  // shipper's stream queued appends until storage refused them (dropped in silence).
  const { testBroker, clients, appendCalls, open } = await appendGatedBroker();
  const { stream, responses, ended } = openProduceStream(clients);
  const small = (index: number) => ({
    sequence: index,
    acks: 'ACKS_NONE',
    topics: [{ topic: 'held', partitions: [{ partition: 0, records: { records: [{ value: Buffer.from([index]) }] } }] }],
  });
  for (let index = 1; index <= 100; index++) stream.write(small(index));
  await vi.waitFor(() => expect(responses).toHaveLength(64), { timeout: 10_000 });
  // A call on the same connection, sent after the 100 stream messages, is answered while the
  // 36 after the first 64 still wait unread.
  await unary(clients.log, 'InitProducerId', {}); // (no partition log: not held at the gate)
  expect(appendCalls()).toBe(64);
  expect(responses).toHaveLength(64);
  open();
  await vi.waitFor(() => expect(responses).toHaveLength(100), { timeout: 10_000 });
  stream.end();
  await ended;
  expect(responses.map((response) => Number(response.sequence))).toEqual(Array.from({ length: 100 }, (_, index) => index + 1));
  await vi.waitFor(async () => expect(await storedFills(testBroker)).toEqual(Array.from({ length: 100 }, (_, index) => index + 1)), { timeout: 10_000 });
});

/** A ProduceStream whose replies are collected; `ended` settles with the call. */
function openProduceStream(clients: RawClients): { stream: Any; responses: Any[]; ended: Promise<void> } {
  const stream = (clients.log as Any).ProduceStream();
  const responses: Any[] = [];
  stream.on('data', (response: Any) => responses.push(response));
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  return { stream, responses, ended };
}
