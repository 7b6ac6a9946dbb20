/**
 * Shared set-up for storage tests (unit, property, fault): a partition log in a fresh temp
 * directory with small, test-friendly settings. Not part of the storage surface.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { systemClock, type Clock } from '../common/clock.js';
import { silentLogger, type Logger } from '../observability/index.js';
import { encodeBatch, type LogRecord } from '../protocol/index.js';
import { FileHandleCache } from './file-handle-cache.js';
import { ForwardingFileHandle, nodeFileSystem, type FileSystem } from './file-system.js';
import { IndexCache } from './index-cache.js';
import { PartitionLog, type PartitionLogConfig, type PartitionLogOptions } from './partition-log.js';

export const testConfig: PartitionLogConfig = {
  segmentBytes: 64 * 1024,
  segmentMs: 7 * 24 * 3_600_000,
  retentionMs: -1,
  retentionBytes: -1,
  indexIntervalBytes: 512,
  maxMessageBytes: 1024 * 1024,
  flush: { kind: 'never' },
};

export function makeTempDir(prefix = 'runnel-test-', parentDir: string = tmpdir()): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(parentDir, prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestLogOptions {
  dir: string;
  config?: Partial<PartitionLogConfig>;
  fileSystem?: FileSystem;
  clock?: Clock;
  logger?: Logger;
  openFilesMax?: number;
  /** A cache shared with other logs or inspected by the test; `openFilesMax` is then unused. */
  handles?: FileHandleCache;
  indexCacheBytesMax?: number;
  /** A cache shared with other logs or inspected by the test; `indexCacheBytesMax` is then unused. */
  indexCache?: IndexCache;
  rollLimits?: PartitionLogOptions['rollLimits'];
  /** The repeat-limited logger a log manager shares among its logs (`PartitionLogOptions.repeatLogger`). */
  repeatLogger?: Logger;
}

export function openTestLog(options: TestLogOptions): Promise<PartitionLog> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  return PartitionLog.open({
    dir: options.dir,
    topic: 'test',
    partition: 0,
    config: { ...testConfig, ...options.config },
    fileSystem,
    handles: options.handles ?? new FileHandleCache(fileSystem, options.openFilesMax ?? 64),
    indexCache: options.indexCache ?? new IndexCache(options.indexCacheBytesMax ?? 1024 * 1024),
    clock: options.clock ?? systemClock,
    logger: options.logger ?? silentLogger,
    ...(options.rollLimits === undefined ? {} : { rollLimits: options.rollLimits }),
    ...(options.repeatLogger === undefined ? {} : { repeatLogger: options.repeatLogger }),
  });
}

/** An idempotent producer's fields for `makeBatch` (encodeBatch's producerId, producerEpoch, baseSequence). */
export interface TestProducer {
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
}

/** A batch of `count` records whose values say where they came from. */
export function makeBatch(options: { count?: number; valueBytes?: number; tag?: string; timestamp?: number; producer?: TestProducer } = {}): Buffer {
  const count = options.count ?? 1;
  const records: LogRecord[] = [];
  for (let i = 0; i < count; i++) {
    const label = Buffer.from(`${options.tag ?? 'r'}-${i}:`);
    const value = Buffer.alloc(Math.max(label.length, options.valueBytes ?? 16), 0x61);
    label.copy(value);
    records.push({ key: null, value, headers: [], timestamp: options.timestamp ?? 1_700_000_000_000 + i });
  }
  return encodeBatch({ records, ...options.producer });
}

/** How a fast-check property test runs: its run count, its vitest timeout, and any replay. */
export interface PropertyRunSettings {
  runs: number;
  /** For vitest; fast-check is told to stop 10 s before it (`interruptAfterMs`). */
  testTimeoutMs: number;
  interruptAfterMs: number;
  /** `seed` and `path` of a failing run to replay, from RUNNEL_PROPERTY_SEED / _PATH. */
  replay: { seed?: number; path?: string };
}

/**
 * Settings shared by the storage property tests: RUNNEL_PROPERTY_RUNS overrides `defaultRuns`,
 * RUNNEL_PROPERTY_SEED and RUNNEL_PROPERTY_PATH replay a failure fast-check printed.
 */
export function propertyRunSettings(defaultRuns: number, msPerRun: number): PropertyRunSettings {
  const runs = Number(process.env.RUNNEL_PROPERTY_RUNS ?? defaultRuns);
  const testTimeoutMs = Math.max(60_000, runs * msPerRun);
  const seed = process.env.RUNNEL_PROPERTY_SEED;
  const path = process.env.RUNNEL_PROPERTY_PATH;
  const replay = seed === undefined ? {} : { seed: Number(seed), ...(path === undefined ? {} : { path }) };
  return { runs, testTimeoutMs, interruptAfterMs: testTimeoutMs - 10_000, replay };
}

/**
 * `base` (the node file system by default) with its durability calls recorded in `calls` as
 * they complete, by file name: `datasync <file>`, `rename <from>`, `syncDirectory <dir>`.
 */
export function syncRecordingFileSystem(calls: string[], base: FileSystem = nodeFileSystem): FileSystem {
  return {
    ...base,
    async open(path, mode) {
      return new (class extends ForwardingFileHandle {
        override async datasync(): Promise<void> {
          await super.datasync();
          calls.push(`datasync ${basename(path)}`);
        }
      })(await base.open(path, mode));
    },
    async rename(from, to) {
      await base.rename(from, to);
      calls.push(`rename ${basename(from)}`);
    },
    async syncDirectory(path) {
      await base.syncDirectory(path);
      calls.push(`syncDirectory ${basename(path)}`);
    },
  };
}
