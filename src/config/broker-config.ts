/**
 * Broker configuration: defaults, then a JSON config file, then RUNNEL_* environment
 * variables, then command-line flags (each later source wins). Unknown keys are rejected,
 * every value is checked against its limit, and the result is frozen. Read once at start-up.
 */
import { readFileSync } from 'node:fs';
import { BrokerError } from '../errors/index.js';
import { defaults } from './defaults.js';
import { limits } from './limits.js';

export interface BrokerConfig {
  dataDir: string;
  host: string;
  port: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  brokerId: number;
  /** The address clients are told to use (GetMetadata); defaults to host:port. */
  advertise: string | undefined;
  /** Partitions of a topic created without a count. */
  defaultPartitions: number;
  /** Broker-wide default of the topic config `flush`. */
  flush: string;
  /**
   * Segment files storage holds open at once (a hard bound). Unset: half the process's
   * open-files limit, from 1,024 to 65,536 (`autoOpenSegmentFilesMax`, decided at start).
   */
  openSegmentFilesMax: number | undefined;
  indexCacheBytesMax: number;
  openPartitionsMax: number;
  partitionIdleMs: number;
  retentionCheckIntervalMs: number;
  /** Requests in flight on one connection (unary and stream) before the broker pushes back. */
  inFlightRequestsPerConnectionMax: number;
  /** Longest a produce waits for its acknowledgement before ACK_TIMEOUT. */
  produceTimeoutMs: number;
  /**
   * Produce request bytes held at once over every connection (Kafka's queued.max.request.bytes).
   * Hit: streams stop being read until requests are answered; a unary Produce gets LIMIT_REACHED.
   */
  produceBytesInFlightMax: number;
  /**
   * Longest a stop (SIGTERM, SIGINT) may take: past it the broker logs what it was still
   * waiting on and exits non-zero without the clean-shutdown marks it had not written yet
   * (those partitions are recovered at the next start; nothing acknowledged is lost).
   */
  shutdownTimeoutMs: number;
}

type Key = keyof BrokerConfig;

interface KeySpec {
  kind: 'string' | 'integer' | 'level' | 'address';
  min?: number;
  max?: number;
  env: string;
}

const SPECS: Record<Key, KeySpec> = {
  dataDir: { kind: 'string', env: 'RUNNEL_DATA_DIR' },
  host: { kind: 'string', env: 'RUNNEL_HOST' },
  port: { kind: 'integer', min: 0, max: 65_535, env: 'RUNNEL_PORT' },
  logLevel: { kind: 'level', env: 'RUNNEL_LOG_LEVEL' },
  brokerId: { kind: 'integer', min: 0, max: 2 ** 31 - 1, env: 'RUNNEL_BROKER_ID' },
  advertise: { kind: 'address', env: 'RUNNEL_ADVERTISE' },
  defaultPartitions: { kind: 'integer', min: 1, max: limits.partitionsPerTopicMax, env: 'RUNNEL_DEFAULT_PARTITIONS' },
  flush: { kind: 'string', env: 'RUNNEL_FLUSH' },
  openSegmentFilesMax: { kind: 'integer', min: 16, max: 1_000_000, env: 'RUNNEL_OPEN_SEGMENT_FILES_MAX' },
  indexCacheBytesMax: { kind: 'integer', min: 1 << 20, max: 2 ** 40, env: 'RUNNEL_INDEX_CACHE_BYTES_MAX' },
  openPartitionsMax: { kind: 'integer', min: 16, max: 1_000_000, env: 'RUNNEL_OPEN_PARTITIONS_MAX' },
  partitionIdleMs: { kind: 'integer', min: 1_000, max: 2 ** 31 - 1, env: 'RUNNEL_PARTITION_IDLE_MS' },
  retentionCheckIntervalMs: { kind: 'integer', min: 1_000, max: 2 ** 31 - 1, env: 'RUNNEL_RETENTION_CHECK_INTERVAL_MS' },
  inFlightRequestsPerConnectionMax: { kind: 'integer', min: 1, max: 100_000, env: 'RUNNEL_IN_FLIGHT_REQUESTS_MAX' },
  produceTimeoutMs: { kind: 'integer', min: 100, max: 600_000, env: 'RUNNEL_PRODUCE_TIMEOUT_MS' },
  produceBytesInFlightMax: { kind: 'integer', min: 1 << 20, max: 2 ** 40, env: 'RUNNEL_PRODUCE_BYTES_IN_FLIGHT_MAX' },
  shutdownTimeoutMs: { kind: 'integer', min: 1_000, max: 3_600_000, env: 'RUNNEL_SHUTDOWN_TIMEOUT_MS' },
};

export const brokerConfigDefaults: BrokerConfig = {
  dataDir: './data',
  host: '0.0.0.0',
  port: 7070,
  logLevel: 'info',
  brokerId: 0,
  advertise: undefined,
  defaultPartitions: 1,
  flush: defaults.flush,
  openSegmentFilesMax: undefined,
  indexCacheBytesMax: defaults.indexCacheBytesMax,
  openPartitionsMax: defaults.openPartitionsMax,
  partitionIdleMs: defaults.partitionIdleMs,
  retentionCheckIntervalMs: defaults.retentionCheckIntervalMs,
  inFlightRequestsPerConnectionMax: 1_024,
  produceTimeoutMs: 30_000,
  produceBytesInFlightMax: 256 * 1024 * 1024,
  // A clean stop normally takes well under a second (8 logs close at once, one fdatasync
  // each). 60 s stays under systemd's default stop timeout (90 s), so the broker's own lines
  // say what hung before a supervisor's SIGKILL would; under Kubernetes (30 s grace by
  // default) raise terminationGracePeriodSeconds above it or lower this.
  shutdownTimeoutMs: 60_000,
};

/** Every setting with its RUNNEL_* environment variable, in the order `runnel broker --help` lists them. */
export function brokerSettingNames(): { key: keyof BrokerConfig; env: string }[] {
  return (Object.entries(SPECS) as [Key, KeySpec][]).map(([key, spec]) => ({ key, env: spec.env }));
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

export interface BrokerConfigSources {
  /** Path of a JSON file of `{ key: value }` with the keys of BrokerConfig. */
  configFile?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from flags (already keyed like BrokerConfig); undefined entries are ignored. */
  flags?: Partial<Record<Key, string | number | undefined>>;
}

export function loadBrokerConfig(sources: BrokerConfigSources = {}): Readonly<BrokerConfig> {
  const config: Record<string, unknown> = { ...brokerConfigDefaults };
  if (sources.configFile !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(sources.configFile, 'utf8'));
    } catch (error) {
      throw invalid(`cannot read config file ${sources.configFile}: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid(`config file ${sources.configFile} must hold a JSON object`);
    for (const [key, value] of Object.entries(parsed)) config[key] = checkValue(key, value, `config file key "${key}"`);
  }
  const env = sources.env ?? {};
  for (const [key, spec] of Object.entries(SPECS) as [Key, KeySpec][]) {
    const value = env[spec.env];
    if (value !== undefined && value !== '') config[key] = checkValue(key, value, `environment variable ${spec.env}`);
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (value !== undefined) config[key] = checkValue(key, value, flagName(key));
  }
  return Object.freeze(config as unknown as BrokerConfig);
}

/** The command-line flag of a setting, as `runnel broker` spells it: logLevel → --log-level. */
function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function checkValue(key: string, value: unknown, where: string): unknown {
  // Own keys only: "constructor" or "toString" in a config file would otherwise find
  // Object.prototype's member, match no kind, and be taken in silence.
  const spec = Object.hasOwn(SPECS, key) ? SPECS[key as Key] : undefined;
  if (spec === undefined) throw invalid(`unknown setting in ${where}; known settings: ${Object.keys(SPECS).join(', ')}`);
  switch (spec.kind) {
    case 'string':
      if (typeof value !== 'string' || value.length === 0) throw invalid(`${where} must be a non-empty string`);
      return value;
    case 'address': {
      // HOST:PORT, an IPv6 host in brackets ([::1]:7070), as clients will be told to dial it.
      const match = typeof value === 'string' ? /^(\[[0-9A-Fa-f:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(value) : null;
      if (match === null || Number(match[2]) < 1 || Number(match[2]) > 65_535) {
        throw invalid(`${where} must be HOST:PORT with a port from 1 to 65535 (an IPv6 host in brackets, [::1]:7070), got ${JSON.stringify(value)}`);
      }
      return value;
    }
    case 'level':
      if (typeof value !== 'string' || !LEVELS.has(value)) throw invalid(`${where} must be one of ${[...LEVELS].join(', ')}`);
      return value;
    case 'integer': {
      const number = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : Number.NaN;
      if (!Number.isSafeInteger(number) || number < (spec.min ?? 0) || number > (spec.max ?? Number.MAX_SAFE_INTEGER)) {
        throw invalid(`${where} must be an integer from ${spec.min ?? 0} to ${spec.max ?? Number.MAX_SAFE_INTEGER}, got ${JSON.stringify(value)}`);
      }
      return number;
    }
  }
}

function invalid(message: string): BrokerError {
  return new BrokerError('INVALID_REQUEST', message);
}
