/**
 * Loading the gRPC contract (proto/runnel/v1) and the conventions both ends share: channel
 * options with the declared message limit, the trailing-metadata names that carry an error's
 * reason, and int64 conversion. No I/O beyond reading the .proto files at load.
 *
 * int64 fields arrive as decimal strings (proto-loader `longs: String`) and are converted
 * with a range check, so an offset is never rounded silently.
 */
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { limits } from '../config/limits.js';
import { BrokerError } from '../errors/index.js';
import type { ProtoGrpcType as AdminProto } from './generated/admin.js';
import type { ProtoGrpcType as LogProto } from './generated/log.js';

/** proto/ at the repository (or package) root. */
export const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
export const PROTO_FILES = ['runnel/v1/common.proto', 'runnel/v1/log.proto', 'runnel/v1/admin.proto'];

/** Options every proto load uses; the generated types (scripts/gen-proto-types.sh) match them. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export type RunnelProto = LogProto & AdminProto;

let loaded: { definition: protoLoader.PackageDefinition; proto: RunnelProto } | undefined;

/** The package definition (for reflection) and the typed service constructors. Cached. */
export function loadRunnelProto(): { definition: protoLoader.PackageDefinition; proto: RunnelProto } {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync(PROTO_FILES, PROTO_LOADER_OPTIONS);
    loaded = { definition, proto: grpc.loadPackageDefinition(definition) as unknown as RunnelProto };
  }
  return loaded;
}

/**
 * Channel options for both ends: the message limit in both directions (grpc-js defaults to
 * 4 MiB receive) and a 16 MiB flow-control window, which lifted server-streaming from ~300 to
 * ~750 MB/s here (FINDINGS.md).
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': limits.grpcMessageBytesMax,
  'grpc.max_send_message_length': limits.grpcMessageBytesMax,
  'grpc-node.flow_control_window': 16 * 1024 * 1024,
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
};

/**
 * Most headers one record may carry: the broker refuses a batch holding a record with more
 * (INVALID_REQUEST), so a client checks each record before it joins a batch with others.
 */
export const HEADERS_PER_RECORD_MAX: number = limits.headersPerRecordMax;

/**
 * Most Subscribe credit a broker keeps for a stream: credit granted beyond it is dropped, so a
 * consumer whose window were larger would wait for data the broker never sends.
 */
export const SUBSCRIBE_CREDIT_BYTES_MAX: number = limits.subscribeCreditBytesMax;

/** Trailing-metadata keys that carry a BrokerError across the wire. */
export const ErrorMetadata = {
  reason: 'runnel-reason',
  retriable: 'runnel-retriable',
  /** JSON object: topic, partition and the error's details. */
  details: 'runnel-details',
} as const;

/** A decimal int64 string (or number) as a safe JS integer; INVALID_REQUEST otherwise. */
export function int64ToNumber(value: string | number | undefined | null, what: string): number {
  const number = typeof value === 'number' ? value : Number(value ?? 0);
  if (!Number.isSafeInteger(number)) {
    throw new BrokerError('INVALID_REQUEST', `${what} must be an integer within ±2^53, got ${String(value)}`);
  }
  return number;
}

/** A safe integer as the decimal string proto-loader expects for int64 fields. */
export function numberToInt64(value: number): string {
  return String(value);
}
