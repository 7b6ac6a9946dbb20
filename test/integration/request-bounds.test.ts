/**
 * Requests are bounded before grpc-js decodes them. Goal: a request whose repeated fields
 * hold millions of empty elements (2 bytes each on the wire, ~100 bytes each decoded; a few
 * KiB once gRPC-compressed) is refused with INVALID_ARGUMENT without the broker building it,
 * and a message that does not parse gets INVALID_ARGUMENT too, not INTERNAL. Method: one
 * `runnel broker` child process on 127.0.0.1:0 with a fresh data dir, plain grpc-js clients
 * sending hand-built wire bytes, and the broker's peak memory read from /proc.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNEL_OPTIONS } from '../../src/protocol/index.js';
import type { BrokerProcess } from '../support/broker-process.js';
import { reasonOf, startRawBroker, stopRawBroker, unary, type RawClients } from '../support/raw-grpc.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dataDir: string;
let broker: BrokerProcess;
let clients: RawClients;

beforeAll(async () => {
  ({ dataDir, broker, clients } = await startRawBroker('runnel-bounds-'));
  await unary(clients.admin, 'CreateTopic', { name: 'bounds', partitions: 1 });
}, 60_000);

afterAll(() => stopRawBroker({ dataDir, broker, clients }));

function varint(value: number): Buffer {
  const bytes: number[] = [];
  for (; value > 0x7f; value = Math.floor(value / 128)) bytes.push((value & 0x7f) | 0x80);
  bytes.push(value);
  return Buffer.from(bytes);
}

/** A length-delimited field. */
function field(fieldNumber: number, value: Buffer): Buffer {
  return Buffer.concat([varint(fieldNumber * 8 + 2), varint(value.length), value]);
}

/** ProduceRequest{acks: ALL, topics: [{topic: 'bounds', partitions: [{partition: 0, records: {records}}]}]}. */
function produceRequest(records: Buffer): Buffer {
  const partition = Buffer.concat([Buffer.from([0x08, 0x00]), field(3, records)]);
  const topic = Buffer.concat([field(1, Buffer.from('bounds')), field(2, partition)]);
  return Buffer.concat([Buffer.from([0x10, 0x03]), field(4, topic)]);
}

/** Sends `bytes` as the request of `method`, as they are. */
function sendRaw(client: grpc.Client, method: string, bytes: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method,
      (request: Buffer) => request,
      (response: Buffer) => response,
      bytes,
      (error, response) => (error ? reject(error) : resolve(response as Buffer)),
    ),
  );
}

function peakMemoryBytes(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) * 1024;
}

async function logEndOffset(): Promise<number> {
  const response = await unary<Any, Any>(clients.log, 'ListOffsets', { topic: 'bounds', partitions: [0], spec: 'OFFSET_SPEC_LATEST' });
  return Number(response.partitions[0].offset);
}

const isInvalidRequest = (error: unknown): boolean => reasonOf(error).code === grpc.status.INVALID_ARGUMENT && reasonOf(error).reason === 'INVALID_REQUEST';

describe('requests bounded before they are decoded', () => {
  it('refuses a gzip-compressed Produce of 33 million empty headers without building them', async () => {
    // 66 MB of Header{} once inflated, ~64 KiB on the wire. Decoded, it held the event loop
    // for ~20 s and took ~3.7 GB before the handler could count the headers.
    const record = field(1, Buffer.concat([Buffer.from([0x12, 0x01, 0x78]), Buffer.alloc(33_000_000 * 2, Buffer.from([0x1a, 0x00]))]));
    const compressed = new grpc.Client(broker.address, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS, 'grpc.default_compression_algorithm': 2 });
    const peakBefore = peakMemoryBytes(broker.pid);
    try {
      await expect(sendRaw(compressed, '/runnel.v1.LogService/Produce', produceRequest(record))).rejects.toSatisfy(isInvalidRequest);
    } finally {
      compressed.close();
    }
    expect(peakMemoryBytes(broker.pid) - peakBefore).toBeLessThan(512 * 1024 * 1024);
    expect(await logEndOffset()).toBe(0);
  });

  it('counts records and headers across the whole request, one past each limit refused', async () => {
    const emptyRecords = (count: number): Buffer => Buffer.alloc(count * 2, Buffer.from([0x0a, 0x00]));
    const raw = clients.log as unknown as grpc.Client;
    await expect(sendRaw(raw, '/runnel.v1.LogService/Produce', produceRequest(emptyRecords(1_000_001)))).rejects.toSatisfy(isInvalidRequest);
    const withHeaders = (count: number): Buffer => field(1, Buffer.concat([Buffer.from([0x12, 0x01, 0x78]), Buffer.alloc(count * 2, Buffer.from([0x1a, 0x00]))]));
    await expect(sendRaw(raw, '/runnel.v1.LogService/Produce', produceRequest(withHeaders(1_001)))).rejects.toSatisfy(isInvalidRequest);
    // At the limit: decoded, and refused by the handler per partition as before.
    const response = await unary<Any, Any>(clients.log, 'Produce', {
      acks: 'ACKS_ALL',
      topics: [{ topic: 'bounds', partitions: [{ partition: 0, records: { records: [{ value: Buffer.from('x'), headers: Array.from({ length: 1_000 }, (_, i) => ({ key: `h${i}` })) }] } }] }],
    });
    expect(response.topics[0].partitions[0]).toMatchObject({ baseOffset: '0', error: null });
    expect(await logEndOffset()).toBe(1);
  });

  it('caps the request size of every other method', async () => {
    // GetMetadata with 600,000 empty topic names (1.2 MB): over the 1 MiB request limit.
    const names = Buffer.alloc(600_000 * 2, Buffer.from([0x0a, 0x00]));
    await expect(sendRaw(clients.admin as unknown as grpc.Client, '/runnel.v1.AdminService/GetMetadata', names)).rejects.toSatisfy(isInvalidRequest);
  });

  it('answers a message that does not parse with INVALID_ARGUMENT, not INTERNAL, and keeps serving', async () => {
    const truncated = Buffer.from([0x22, 0x10, 0x0a]); // topics: a 16-byte field with 1 byte present
    await expect(sendRaw(clients.log as unknown as grpc.Client, '/runnel.v1.LogService/Produce', truncated)).rejects.toSatisfy(isInvalidRequest);
    await expect(sendRaw(clients.log as unknown as grpc.Client, '/runnel.v1.LogService/Fetch', truncated)).rejects.toSatisfy(isInvalidRequest);
    expect(await logEndOffset()).toBe(1);
  });
});
