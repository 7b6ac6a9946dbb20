/**
 * Plain grpc-js clients of the Runnel services, with no Runnel client library in between:
 * what any gRPC user gets from proto/. For tests of the wire contract itself.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHANNEL_OPTIONS, ErrorMetadata, loadRunnelProto } from '../../src/protocol/index.js';
import type { AdminServiceClient } from '../../src/protocol/generated/runnel/v1/AdminService.js';
import type { LogServiceClient } from '../../src/protocol/generated/runnel/v1/LogService.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess, type BrokerProcessOptions } from './broker-process.js';

export interface RawClients {
  log: LogServiceClient;
  admin: AdminServiceClient;
  close(): void;
}

export function rawClients(address: string): RawClients {
  const { proto } = loadRunnelProto();
  const log = new proto.runnel.v1.LogService(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const admin = new proto.runnel.v1.AdminService(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  return {
    log,
    admin,
    close() {
      log.close();
      admin.close();
    },
  };
}

/** Calls a unary method and resolves with its response (rejects with the ServiceError). */
export function unary<Req, Res>(client: object, method: string, request: Req): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    (client as Record<string, (r: Req, cb: (e: grpc.ServiceError | null, v?: Res) => void) => void>)[method]?.call(client, request, (error, value) =>
      error ? reject(error) : resolve(value as Res),
    );
  });
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The size of a SubscribeResponse as received by a plain grpc-js client, as Python's ByteSize()
 * or Go's proto.Size counts it for the message it parsed: protobufjs (proto-loader's serializer)
 * encodes it with the fields that have no presence left out at their default, since
 * proto-loader's `defaults` fills them in and protobufjs would write them. What a records-format
 * subscriber grants back (log.proto, SubscribeStart.credit_bytes).
 */
export function subscribeResponseSizeBytes(message: Any): number {
  const int64 = (value: string): string | undefined => (value === '0' ? undefined : value);
  const canonical = {
    recordBatches: message.recordBatches.length > 0 ? message.recordBatches : undefined,
    records: message.records.map((record: Any) => ({
      offset: int64(record.offset),
      key: record.key,
      value: record.value,
      headers: record.headers.map((header: Any) => ({ key: header.key === '' ? undefined : header.key, value: header.value })),
      timestampMs: int64(record.timestampMs),
    })),
    highWatermark: int64(message.highWatermark),
    logStartOffset: int64(message.logStartOffset),
    nextOffset: int64(message.nextOffset),
  };
  const service = loadRunnelProto().definition['runnel.v1.LogService'] as grpc.ServiceDefinition;
  return (service.Subscribe as grpc.MethodDefinition<unknown, Any>).responseSerialize(canonical).length;
}

/** The gRPC status and Runnel reason of a failed call. */
export function reasonOf(error: unknown): { code: grpc.status; reason: string | undefined } {
  const serviceError = error as grpc.ServiceError;
  const reason = serviceError.metadata?.get(ErrorMetadata.reason)[0];
  return { code: serviceError.code, reason: reason === undefined ? undefined : String(reason) };
}

/** One broker process on a fresh temp dir, with plain grpc-js clients to it. */
export interface RawBroker {
  dataDir: string;
  broker: BrokerProcess;
  clients: RawClients;
}

/** Starts a `RawBroker` (for a beforeAll); `dirPrefix` names its temp dir. */
export async function startRawBroker(dirPrefix: string, options: Omit<BrokerProcessOptions, 'dataDir'> = {}): Promise<RawBroker> {
  const dataDir = mkdtempSync(join(tmpdir(), dirPrefix));
  const broker = await startBrokerProcess({ ...options, dataDir });
  return { dataDir, broker, clients: rawClients(broker.address) };
}

/** Closes the clients, stops the broker (and any other left running, by PID) and removes the dir; for an afterAll. */
export async function stopRawBroker(raw: Partial<RawBroker>): Promise<void> {
  raw.clients?.close();
  await raw.broker?.stop();
  await stopAllBrokerProcesses();
  if (raw.dataDir !== undefined) rmSync(raw.dataDir, { recursive: true, force: true });
}
