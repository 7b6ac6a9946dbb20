/**
 * The broker's core, without any network: topics (metadata in lmdb via meta/, logs via
 * storage/), produce, fetch with long-poll, list offsets, producer ids. The gRPC adapters in
 * server/ call it; `runnel broker` (cli/) wires config → Broker → gRPC server.
 *
 * Owns: the MetaStore and the LogManager, the parked-fetch bookkeeping. Single node today:
 * this broker leads every partition, and the high watermark is the log end offset (under
 * flush=always that is also the fsynced end: storage exposes a batch only once acknowledged).
 *
 * Ordering that keeps topics consistent across crashes:
 * - create: topic record first (durable), then partition directories; start-up creates any
 *   partition a crash left out (`reconcileTopics`).
 * - delete: the record is marked `isDeleting` first (durable; from then on nobody is served
 *   the topic), then the partition directories go (each an atomic rename), then the record.
 *   A crash or an I/O error in between leaves the mark, and the delete is finished by the next
 *   delete or create of the name, or at start-up (`reconcileTopics`); it never comes back
 *   with some partitions emptied and the others still full.
 * A partition directory with no topic record is never deleted automatically: it is reported
 * and left for the operator (losing meta/ must never cost data).
 */
import { join } from 'node:path';
import { mkdirSync, statSync } from 'node:fs';
import { systemClock, type Clock } from '../common/clock.js';
import { Slots } from '../common/slots.js';
import type { BrokerConfig } from '../config/broker-config.js';
import { limits } from '../config/limits.js';
import { validateTopicName } from '../config/topic-name.js';
import { BrokerError, isBrokerError } from '../errors/index.js';
import { MetaStore, checkTopicConfigKey, describeEffectiveConfig, effectiveTopicConfig, timestampWindowMs, validateTopicOverrides, type TopicRecord } from '../meta/index.js';
import { errorFields, type Logger } from '../observability/index.js';
import { isBatchCrcValid, stampLogAppendTime, tryReadBatchHeader, visitRecords, type RecordChecks } from '../protocol/index.js';
import { LogManager, parseFlushPolicy, type AppendedBatch, type AppendListener, type FileSystem, type PartitionLog, type PartitionLogConfig, type TopicPartition } from '../storage/index.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { autoOpenSegmentFilesMax, openFilesLimitWarning, parseOpenFilesLimit, readOwnProcLimits } from './open-files-limit.js';

export type Acks = 'none' | 'leader' | 'all';

/** Partitions a DescribeTopic describes at once (`describeTopic`). */
const DESCRIBE_PARTITIONS_IN_FLIGHT = 32;

/**
 * What every record a client produces is checked against before it is appended (storage
 * checks only the header and CRC by itself): the header limit the plain-records path has,
 * and a bound on what a compressed batch may inflate to while it is checked.
 */
/** A single node's partitions keep leader epoch 0 (GetMetadata says so); replication will bump it. */
const SINGLE_NODE_LEADER_EPOCH = 0;

const CLIENT_RECORD_CHECKS: RecordChecks = { headersPerRecordMax: limits.headersPerRecordMax, decompressedBytesMax: limits.decompressedRecordsBytesMax };

export interface ProduceResult {
  baseOffset: number;
  logStartOffset: number;
  /**
   * −1 unless the topic stamps log-append time. For a duplicate (a retried idempotent batch),
   * the time stamped on the original batch, as Kafka answers, not the retry's.
   */
  logAppendTimeMs: number;
  isDuplicate: boolean;
}

export interface ProduceOptions {
  topic: string;
  partition: number;
  batch: Buffer;
  acks: Acks;
  timeoutMs: number;
  /**
   * Called once the append is queued, with a promise that resolves when the batch is written
   * or refused. That can be after `produce` settled (acks 'none' resolves at once, ACK_TIMEOUT
   * rejects while the append still waits its turn), and until then the broker holds `batch`:
   * a caller bounding the bytes it has handed in (server/byte-budget.ts) counts them that long.
   */
  onAppending?: (settled: Promise<void>) => void;
}

export interface FetchOptions {
  topic: string;
  partition: number;
  offset: number;
  maxBytes: number;
  minBytes: number;
  maxWaitMs: number;
  signal?: AbortSignal;
}

export interface FetchResult {
  /** Whole batches as stored (the first may start before `offset`). */
  bytes: Buffer;
  nextOffset: number;
  highWatermark: number;
  logStartOffset: number;
}

export type OffsetQuery = { kind: 'earliest' } | { kind: 'latest' } | { kind: 'timestamp'; timestampMs: number };

export interface PartitionInfo {
  partition: number;
  leader: number;
  replicas: number[];
  isr: number[];
  logStartOffset: number;
  logEndOffset: number;
  highWatermark: number;
  sizeBytes: number;
  status: 'online' | 'offline';
  offlineReason: string;
}

export interface TopicInfo {
  name: string;
  replicationFactor: number;
  partitions: PartitionInfo[];
  configs: Record<string, string>;
  overrides: Record<string, string>;
}

export interface BrokerOpenOptions {
  config: BrokerConfig;
  logger: Logger;
  clock?: Clock;
  /** Storage's file access; node's by default. Tests put a failing or hanging disk here. */
  fileSystem?: FileSystem;
}

/** Where `Broker.close` is: a stop that hangs names it. */
export type BrokerCloseStage = 'finishing admin changes' | 'closing partitions' | 'closing the metadata store' | 'closed';

export class Broker {
  readonly brokerId: number;
  readonly clusterId: string;
  private readonly waitersByPartition = new Map<string, number>();
  /**
   * The last admin change queued per topic name: create, delete, alter and add-partitions of
   * one name run one after the other. Each awaits between its record write and its partition
   * directories, and interleaved they left directories with no record (a delete skipping the
   * partitions a create had not made yet, then the create making them) or made one partition
   * twice (two add-partitions). An entry lives while calls on that name are in flight; each
   * waiting call is one admin request a client holds.
   */
  private readonly adminQueueByTopic = new Map<string, Promise<unknown>>();
  private isClosed = false;
  private closeStageNow: BrokerCloseStage | undefined;

  private constructor(
    private readonly config: BrokerConfig,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly meta: MetaStore,
    private readonly logs: LogManager,
    private readonly lock: DataDirLock,
  ) {
    this.brokerId = config.brokerId;
    this.clusterId = meta.clusterId();
  }

  static async open(options: BrokerOpenOptions): Promise<Broker> {
    const { config } = options;
    // The broker's own lines (topic admin, start-up checks) carry component 'broker' like every
    // other line, so an operator can filter by it; meta and storage bind their own.
    const logger = options.logger.child({ component: 'broker' });
    const clock = options.clock ?? systemClock;
    // The broker default must be a value a topic could set, or every topic would inherit a
    // policy nothing can open: refuse it before anything is created.
    try {
      validateTopicOverrides({ flush: config.flush });
    } catch (error) {
      throw new BrokerError('INVALID_REQUEST', `the broker's flush setting (--flush, RUNNEL_FLUSH, or "flush" in the --config file) is invalid: ${(error as Error).message}`);
    }
    makeDataDirOrThrow(config.dataDir);
    // Before anything in the directory is opened: one broker per data directory.
    const lock = lockDataDir(config.dataDir);
    if (lock.takenOverFrom !== undefined) {
      logger.warn(
        { previousPid: lock.takenOverFrom.pid, dataDir: config.dataDir },
        'the previous broker on this data directory did not stop cleanly (its lock was left behind); each partition is recovered when first used',
      );
    }
    const procLimits = readOwnProcLimits();
    const openSegmentFilesMax = config.openSegmentFilesMax ?? autoOpenSegmentFilesMax(procLimits);
    if (config.openSegmentFilesMax === undefined) {
      logger.info({ openSegmentFilesMax, openFilesLimit: procLimits === undefined ? null : (parseOpenFilesLimit(procLimits) ?? null) }, 'segment files open at once: openSegmentFilesMax set from the open-files limit');
    }
    const openFilesWarning = openFilesLimitWarning(openSegmentFilesMax, procLimits);
    if (openFilesWarning !== undefined) {
      const { message, ...figures } = openFilesWarning;
      logger.warn(figures, message);
    }
    const meta = await MetaStore.open({ dir: join(config.dataDir, 'meta'), logger: options.logger }).catch((error: unknown) => {
      lock.release();
      throw error;
    }); // binds component: 'meta' itself
    let broker: Broker | undefined;
    const logs = await LogManager.start({
      dataDir: config.dataDir,
      ...(options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem }),
      clock,
      logger: options.logger.child({ component: 'storage' }),
      configForTopic: (topic) => (broker as Broker).partitionLogConfig(topic),
      openFilesMax: openSegmentFilesMax,
      indexCacheBytesMax: config.indexCacheBytesMax,
      openPartitionsMax: config.openPartitionsMax,
      partitionIdleMs: config.partitionIdleMs,
      retentionCheckIntervalMs: config.retentionCheckIntervalMs,
    }).catch(async (error: unknown) => {
      await meta.close();
      lock.release();
      throw error;
    });
    broker = new Broker(config, logger, clock, meta, logs, lock);
    try {
      await broker.reconcileTopics();
    } catch (error) {
      await broker.close().catch(() => undefined);
      throw error;
    }
    return broker;
  }

  /**
   * Finishes deletes a crash or an error interrupted, creates partitions a crash left out of a
   * create or add-partitions, and reports directories without a topic record.
   */
  private async reconcileTopics(): Promise<void> {
    const known = new Set<string>();
    for (const topic of this.meta.listTopics()) {
      for (let partition = 0; partition < topic.partitionCount; partition++) known.add(`${topic.name}\u0000${partition}`);
      if (topic.isDeleting === true) {
        await this.reconcileInterruptedDelete(topic);
        continue;
      }
      const missing = Array.from({ length: topic.partitionCount }, (_, partition) => partition).filter((partition) => !this.logs.hasPartition(topic.name, partition));
      if (missing.length === 0) continue;
      // One line per topic, not per partition: a topic may have 10,000.
      this.logger.warn(
        { topic: topic.name, partitions: missing },
        'creating empty partitions whose directories are missing: expected after a crash during a topic create or add-partitions; otherwise their directories were removed and their records are gone',
      );
      await this.logs.createPartitions(topic.name, missing);
    }
    const orphansByTopic = new Map<string, number[]>();
    for (const { topic, partition } of this.logs.listPartitions()) {
      if (known.has(`${topic}\u0000${partition}`)) continue;
      const partitions = orphansByTopic.get(topic) ?? [];
      partitions.push(partition);
      orphansByTopic.set(topic, partitions);
    }
    for (const [topic, partitions] of orphansByTopic) {
      this.logger.warn(
        { topic, partitions },
        'partition directories without a topic record: left untouched and not served, and no topic can take them over. If meta/ was lost, stop the broker and restore it from a backup; otherwise move the directories out of the data directory',
      );
    }
  }

  /** At start-up, a topic whose delete had begun: its delete is finished, or left for a retry. */
  private async reconcileInterruptedDelete(topic: TopicRecord): Promise<void> {
    this.logger.warn({ topic: topic.name }, 'finishing the delete of a topic that a crash or an I/O error interrupted');
    try {
      await this.deleteTopicNow(topic.name);
    } catch (error) {
      // The topic stays marked: served to nobody, its remaining directories kept.
      this.logger.error(
        { topic: topic.name, ...errorFields(error) },
        'could not finish deleting the topic; it is not served. Fix the data directory, then run `runnel topic delete <topic>` (or restart)',
      );
    }
  }

  /** The storage settings of a topic (its overrides over the broker defaults); undefined without a live record. */
  private partitionLogConfig(topic: string): PartitionLogConfig | undefined {
    const record = this.meta.getTopic(topic);
    // A topic being deleted is never opened again: its logs are closed or about to be.
    if (record === undefined || record.isDeleting === true) return undefined;
    const effective = effectiveTopicConfig(record.overrides, { flush: this.config.flush });
    return {
      segmentBytes: effective.segmentBytes,
      segmentMs: effective.segmentMs,
      retentionMs: effective.retentionMs,
      retentionBytes: effective.retentionBytes,
      indexIntervalBytes: effective.indexIntervalBytes,
      maxMessageBytes: effective.maxMessageBytes,
      flush: parseFlushPolicy(effective.flush),
    };
  }

  // ---- Topics --------------------------------------------------------------------------------

  /**
   * Creates a topic. Rejects INVALID_TOPIC_NAME, INVALID_REQUEST (partition count, replication
   * factor, configs) or TOPIC_ALREADY_EXISTS; a rejected create leaves nothing behind.
   */
  createTopic(request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string> }): Promise<TopicInfo> {
    return this.serialAdmin(request.name, () => this.createTopicNow(request));
  }

  private async createTopicNow(request: { name: string; partitions: number; replicationFactor: number; configs: Record<string, string> }): Promise<TopicInfo> {
    this.throwIfClosed();
    validateTopicName(request.name);
    const partitionCount = request.partitions === 0 ? this.config.defaultPartitions : request.partitions;
    if (!Number.isInteger(partitionCount) || partitionCount < 1 || partitionCount > limits.partitionsPerTopicMax) {
      throw new BrokerError('INVALID_REQUEST', `partitions must be from 1 to ${limits.partitionsPerTopicMax}`, { topic: request.name });
    }
    const replicationFactor = request.replicationFactor === 0 ? 1 : request.replicationFactor;
    if (replicationFactor !== 1) {
      throw new BrokerError('INVALID_REQUEST', `replication factor ${replicationFactor} needs ${replicationFactor} brokers; this is a single broker, use 1`, { topic: request.name });
    }
    const overrides = validateTopicOverrides(request.configs);
    // The delete of an earlier topic of this name failed part-way (its partitions are served
    // to nobody): the create finishes it first, as another delete would.
    if (this.meta.getTopic(request.name)?.isDeleting === true) await this.deleteTopicNow(request.name);
    if (this.meta.getTopic(request.name) !== undefined) {
      throw new BrokerError('TOPIC_ALREADY_EXISTS', `topic ${request.name} already exists`, { topic: request.name });
    }
    for (let partition = 0; partition < partitionCount; partition++) {
      if (this.logs.hasPartition(request.name, partition)) {
        throw new BrokerError(
          'TOPIC_ALREADY_EXISTS',
          `a directory for ${request.name}-${partition} exists without a topic record; move it out of the data directory first`,
          { topic: request.name, details: { leftoverDirectory: `${request.name}-${partition}` } },
        );
      }
    }
    await this.meta.createTopic({
      name: request.name,
      topicId: crypto.randomUUID(),
      partitionCount,
      replicationFactor,
      overrides,
      createdAtMs: this.clock.nowMs(),
    });
    // A refused partition (a directory put there since start-up) or an I/O error: a rejected
    // create leaves nothing behind, so the record goes again. A crash during the undo leaves
    // the record, and the next start completes the topic as after an interrupted create.
    await this.makePartitionsOrUndo(request.name, 0, partitionCount, () => this.meta.deleteTopic(request.name), 'topic create');
    this.logger.info({ topic: request.name, partitions: partitionCount, overrides }, 'topic created');
    return this.describeTopic(request.name);
  }

  deleteTopic(name: string): Promise<void> {
    return this.serialAdmin(name, () => this.deleteTopicNow(name));
  }

  private async deleteTopicNow(name: string): Promise<void> {
    this.throwIfClosed();
    // A topic already marked is found too: this delete finishes the one that failed.
    const found = this.meta.getTopic(name);
    if (found === undefined) this.topicOrThrow(name);
    // The mark is durable before any directory is touched, so a crash from here on finishes
    // the delete at the next start (reconcileTopics) instead of serving the partitions left.
    const topic = found?.isDeleting === true ? found : await this.meta.markTopicDeleting(name);
    const present = Array.from({ length: topic.partitionCount }, (_, partition) => partition).filter((partition) => this.logs.hasPartition(name, partition));
    try {
      await this.logs.deletePartitions(name, present);
      await this.meta.deleteTopic(name);
    } catch (error) {
      throw deleteTopicUnfinishedError(name, error);
    }
    this.logger.info({ topic: name }, 'topic deleted');
  }

  listTopics(): { name: string; partitions: number; replicationFactor: number }[] {
    return this.liveTopics().map((topic) => ({ name: topic.name, partitions: topic.partitionCount, replicationFactor: topic.replicationFactor }));
  }

  async describeTopic(name: string): Promise<TopicInfo> {
    const topic = this.topicOrThrow(name);
    // Several partitions at a time: one whose log is closed and not known from its last clean
    // close (after a restart) is opened to be described, and opens take turns in storage (at
    // most limits.logOpensClosesInFlightMax at once); one after another, 10,000 of them took ~10 s.
    const slots = new Slots(DESCRIBE_PARTITIONS_IN_FLIGHT);
    const partitions = await Promise.all(Array.from({ length: topic.partitionCount }, (_, partition) => slots.run(() => this.describePartition(name, partition))));
    return {
      name,
      replicationFactor: topic.replicationFactor,
      partitions,
      configs: describeEffectiveConfig(topic.overrides, { flush: this.config.flush }),
      overrides: { ...topic.overrides },
    };
  }

  private async describePartition(topic: string, partition: number): Promise<PartitionInfo> {
    const replicas = { partition, leader: this.brokerId, replicas: [this.brokerId] };
    try {
      const stats = await this.logs.partitionStats(topic, partition);
      return {
        ...replicas,
        isr: stats.status === 'online' ? [this.brokerId] : [],
        logStartOffset: stats.logStartOffset,
        logEndOffset: stats.logEndOffset,
        highWatermark: stats.logEndOffset,
        sizeBytes: stats.sizeBytes,
        status: stats.status === 'online' ? 'online' : 'offline',
        offlineReason: stats.status === 'online' ? '' : (stats.offlineReason ?? 'PARTITION_OFFLINE'),
      };
    } catch (error) {
      // A log that cannot be opened (EIO, EACCES, its directory gone, a full disk): describe
      // is what an operator runs then, so show this partition offline with the reason, and
      // the others.
      if (!isBrokerError(error) || (error.reason !== 'STORAGE_ERROR' && error.reason !== 'DISK_FULL')) throw error;
      // Storage logged the failed open already (once per interval: describe may be repeated).
      return {
        ...replicas,
        isr: [],
        logStartOffset: -1, // unknown: the log is not open
        logEndOffset: -1,
        highWatermark: -1,
        sizeBytes: (await this.logs.segmentBytesOnDisk(topic, partition)) ?? 0,
        status: 'offline',
        offlineReason: error.reason,
      };
    }
  }

  /** Sets and removes overrides; open logs pick the new settings up at once. */
  alterTopicConfigs(name: string, change: { set: Record<string, string>; remove: string[] }): Promise<TopicInfo> {
    return this.serialAdmin(name, () => this.alterTopicConfigsNow(name, change));
  }

  private async alterTopicConfigsNow(name: string, change: { set: Record<string, string>; remove: string[] }): Promise<TopicInfo> {
    this.throwIfClosed();
    this.topicOrThrow(name);
    // A misspelt key to remove is refused like a misspelt key to set, not "removed".
    for (const key of change.remove) checkTopicConfigKey(key);
    // One key both set and removed is a contradiction, not "set wins" (Kafka refuses a key
    // named twice in one alter too).
    const both = change.remove.filter((key) => Object.hasOwn(change.set, key));
    if (both.length > 0) {
      throw new BrokerError('INVALID_REQUEST', `${both.join(', ')} is both set and removed in one alter: set it or remove it`, { topic: name, details: { configKey: both[0] as string } });
    }
    await this.meta.updateTopic(name, (old) => {
      const merged: Record<string, string> = { ...old.overrides };
      for (const key of change.remove) delete merged[key];
      Object.assign(merged, change.set);
      return { ...old, overrides: validateTopicOverrides(merged) };
    });
    const topic = this.topicOrThrow(name);
    const config = this.partitionLogConfig(name) as PartitionLogConfig; // the record exists (just above)
    // Only open logs need telling: a closed one reads the new record when it opens.
    for (let partition = 0; partition < topic.partitionCount; partition++) {
      await this.logs.withOpenPartition(name, partition, (log) => log.updateConfig(config));
    }
    this.logger.info({ topic: name, overrides: topic.overrides }, 'topic configs altered');
    return this.describeTopic(name);
  }

  /** Grows a topic to `partitionCount` partitions; never shrinks. */
  addPartitions(name: string, partitionCount: number): Promise<TopicInfo> {
    return this.serialAdmin(name, () => this.addPartitionsNow(name, partitionCount));
  }

  private async addPartitionsNow(name: string, partitionCount: number): Promise<TopicInfo> {
    this.throwIfClosed();
    const topic = this.topicOrThrow(name);
    if (!Number.isInteger(partitionCount) || partitionCount <= topic.partitionCount || partitionCount > limits.partitionsPerTopicMax) {
      throw new BrokerError(
        'INVALID_REQUEST',
        `topic ${name} has ${topic.partitionCount} partitions; the new count must be larger and at most ${limits.partitionsPerTopicMax}`,
        { topic: name },
      );
    }
    for (let partition = topic.partitionCount; partition < partitionCount; partition++) {
      if (this.logs.hasPartition(name, partition)) {
        // Left by an earlier topic of this name: never serve its data as a new partition.
        throw new BrokerError('TOPIC_ALREADY_EXISTS', `a directory for ${name}-${partition} exists without a topic record; move it out of the data directory first`, {
          topic: name,
          details: { leftoverDirectory: `${name}-${partition}` },
        });
      }
    }
    await this.meta.updateTopic(name, (old) => ({ ...old, partitionCount }));
    // Crash from here: start-up creates the partitions the record names but lacks.
    await this.makePartitionsOrUndo(name, topic.partitionCount, partitionCount, () => this.meta.undoPartitionCount(name, partitionCount, topic.partitionCount), 'add-partitions');
    this.logger.info({ topic: name, partitions: partitionCount }, 'topic partitions added');
    return this.describeTopic(name);
  }

  metadata(topics: readonly string[]): { topics: { name: string; partitions: number[] }[] } {
    const records = topics.length === 0 ? this.liveTopics() : topics.map((name) => this.topicOrThrow(name));
    return { topics: records.map((topic) => ({ name: topic.name, partitions: Array.from({ length: topic.partitionCount }, (_, i) => i) })) };
  }

  // ---- Data ----------------------------------------------------------------------------------

  /**
   * Appends one validated-by-storage batch. Resolves per `acks`: with 'none' the append is
   * started and the promise resolves at once (failures are logged); otherwise when storage
   * acknowledged it (flush-policy.ts says what that means on disk) or rejects with ACK_TIMEOUT.
   */
  async produce(request: ProduceOptions): Promise<ProduceResult> {
    this.throwIfClosed();
    const topic = this.partitionOrThrow(request.topic, request.partition);
    let logAppendTimeMs = -1;
    const isLogAppendTime = topic.overrides['message.timestamp.type'] === 'LogAppendTime';
    if (isLogAppendTime) {
      logAppendTimeMs = this.clock.nowMs();
      // Stamping rewrites the CRC, so it goes only on a batch whose CRC holds: a damaged one
      // is left as it came, for storage to reject (CORRUPT_MESSAGE), never sealed as valid.
      const header = tryReadBatchHeader(request.batch);
      if (header !== undefined && isBatchCrcValid(request.batch, header)) stampLogAppendTime(request.batch, logAppendTimeMs);
    }
    // Create time is checked against the broker's clock now, as Kafka does: a record stamped
    // years ahead would keep its segment from ever expiring (retention.ms) or rolling (segment.ms).
    let createTimestampWindow: RecordChecks['createTimestampWindow'];
    if (!isLogAppendTime) {
      const nowMs = this.clock.nowMs();
      const window = timestampWindowMs(topic.overrides);
      createTimestampWindow = { minMs: nowMs - window.beforeMaxMs, maxMs: nowMs + window.afterMaxMs };
    }
    const appended = this.logs.withPartition(request.topic, request.partition, async (log) => {
      const recordChecks: RecordChecks = { ...CLIENT_RECORD_CHECKS, timestampType: isLogAppendTime ? 'log-append' : 'create', createTimestampWindow };
      // The stored batch carries the leader's epoch, whatever the producer put there (as in
      // Kafka; the field is outside the CRC).
      const result = await log.append(request.batch, {
        recordChecks,
        isProducerIdIssued: (producerId) => this.meta.isProducerIdIssued(producerId),
        leaderEpoch: SINGLE_NODE_LEADER_EPOCH,
      });
      return { ...result, logStartOffset: log.logStartOffset };
    });
    request.onAppending?.(appended.then(noop, noop));
    if (request.acks === 'none') {
      appended.catch((error: unknown) => this.logger.debug({ topic: request.topic, partition: request.partition, ...errorFields(error) }, 'acks=none produce failed'));
      return { baseOffset: -1, logStartOffset: -1, logAppendTimeMs, isDuplicate: false };
    }
    const result = await this.withTimeout(appended, request.timeoutMs, () => new BrokerError('ACK_TIMEOUT', `no acknowledgement from ${request.topic}-${request.partition} within ${request.timeoutMs} ms; the records may still be appended`, { topic: request.topic, partition: request.partition }));
    // The original was stamped when it was appended; its stored maxTimestamp is that time.
    if (result.isDuplicate && logAppendTimeMs !== -1) logAppendTimeMs = result.maxTimestamp;
    return { baseOffset: result.baseOffset, logStartOffset: result.logStartOffset, logAppendTimeMs, isDuplicate: result.isDuplicate };
  }

  /**
   * Reads whole batches from `offset`. When fewer than `minBytes` are there, parks until an
   * append arrives (woken by the append itself, no polling), `maxWaitMs` passes, or `signal`
   * aborts. `minBytes` 0 answers at once, even with nothing to return (as Kafka does). A read
   * that stopped before the log end (at the end of a segment, or at `maxBytes`) is answered at
   * once too, however few bytes it has: no append can make that read longer, so waiting would
   * only delay the reader by `maxWaitMs` at every segment boundary (Kafka's DelayedFetch
   * completes such a fetch at once as well). Rejects OFFSET_OUT_OF_RANGE, TOPIC_NOT_FOUND,
   * PARTITION_NOT_FOUND, LIMIT_REACHED (too many parked readers on one partition).
   */
  async fetch(options: FetchOptions): Promise<FetchResult> {
    this.throwIfClosed();
    this.partitionOrThrow(options.topic, options.partition);
    const deadlineMs = this.clock.nowMs() + Math.min(Math.max(options.maxWaitMs, 0), limits.fetchWaitMsMax);
    const key = `${options.topic}-${options.partition}`;
    let appended: readonly AppendedBatch[] | undefined;
    for (;;) {
      const handedBatches = appended;
      const step =
        (handedBatches === undefined ? this.parkAtClosedLogEnd(options, key, deadlineMs) : undefined) ??
        (await this.logs.withPartition(options.topic, options.partition, async (log) => {
          // A reader parked at the log end takes the batches that woke it straight from the
          // append (the same whole batches a read would return), not back through the disk: one
          // thread-pool hop and a pread fewer per delivery to a tailing consumer.
          const handed = handedBatches?.[0]?.baseOffset === options.offset ? fromAppended(handedBatches, options.maxBytes, log) : undefined;
          const result = handed ?? (await this.readAt(log, options.offset, options.maxBytes));
          const remainingMs = deadlineMs - this.clock.nowMs();
          const isCutBeforeLogEnd = result.nextOffset < result.highWatermark;
          if (result.bytes.length >= options.minBytes || isCutBeforeLogEnd || remainingMs <= 0 || options.signal?.aborted === true || this.isClosed) return { result, isStale: false, parked: undefined };
          // Listens while the log is still in use, so no append lands unseen, and then lets go
          // of it: the wait (up to fetchWaitMsMax) does not keep the log open (LogManager.onAppend).
          const isStale = log.logEndOffset > result.highWatermark || !log.isOnline || log.logStartOffset > options.offset;
          return { result, isStale, parked: this.waitForAppend(key, (listener) => this.logs.onAppend(options.topic, options.partition, listener), isStale, remainingMs, options.signal) };
        }));
      if (step.parked === undefined) return step.result;
      appended = await step.parked;
      // Woken by a broker stop: the reader is answered (with nothing) rather than refused.
      if (this.isClosed) return step.result;
      // Woken by a delete of the topic (it is marked deleting before its partitions go).
      const topic = this.meta.getTopic(options.topic);
      if (topic === undefined || topic.isDeleting === true) {
        throw new BrokerError('TOPIC_NOT_FOUND', `topic ${options.topic} was deleted while this fetch waited`, { topic: options.topic, partition: options.partition });
      }
      // The wait ran out or was given up: answered with what it had, without reading again
      // (which would open a log closed meanwhile, only to find nothing new). Not a read found
      // stale (an append, retention or the log going offline came first): that one reads
      // again, even past the deadline. Before, a deadline passing just then answered the
      // stale read, empty though a record stood at its offset since before the deadline.
      if (appended === undefined && !step.isStale && (this.clock.nowMs() >= deadlineMs || options.signal?.aborted === true)) return step.result;
    }
  }

  /**
   * A fetch at the log end of a closed log parks without opening it (LogManager
   * `onAppendAtClosedLogEnd`), answering the empty read it would have made; undefined when
   * that does not apply (the log is open, the offset is not its known end, nothing to wait
   * for, or the partition has its most waiting readers: the read then refuses with
   * LIMIT_REACHED). Before, a Subscribe whose 30 s wait ran out opened its closed log again:
   * 10,000 idle tailing readers kept about 700 logs a second opening and closing.
   */
  private parkAtClosedLogEnd(options: FetchOptions, key: string, deadlineMs: number): { result: FetchResult; isStale: false; parked: Promise<readonly AppendedBatch[] | undefined> } | undefined {
    const remainingMs = deadlineMs - this.clock.nowMs();
    if (options.minBytes <= 0 || remainingMs <= 0 || options.signal?.aborted === true || this.isClosed) return undefined;
    if ((this.waitersByPartition.get(key) ?? 0) >= limits.waitersPerPartitionMax) return undefined;
    let wake: AppendListener = noop;
    const atEnd = this.logs.onAppendAtClosedLogEnd(options.topic, options.partition, options.offset, (logEndOffset, appended) => wake(logEndOffset, appended));
    if (atEnd === undefined) return undefined;
    const result: FetchResult = { bytes: EMPTY_BYTES, nextOffset: options.offset, highWatermark: atEnd.logEndOffset, logStartOffset: atEnd.logStartOffset };
    const listen = (listener: AppendListener): (() => void) => {
      wake = listener;
      return atEnd.stopListening;
    };
    return { result, isStale: false, parked: this.waitForAppend(key, listen, false, remainingMs, options.signal) };
  }

  private async readAt(log: PartitionLog, offset: number, maxBytes: number): Promise<FetchResult> {
    let read: Awaited<ReturnType<PartitionLog['read']>>;
    try {
      read = await log.read({ offset, bytesMax: maxBytes });
    } catch (error) {
      // Storage refuses files of a log closed under the read (SHUTTING_DOWN, retriable). While
      // the broker runs only a delete closes a log in use (idle closing skips those), so the
      // reader is told the topic is gone, not to retry.
      if (isBrokerError(error) && error.reason === 'SHUTTING_DOWN' && log.isClosed && !this.isClosed) {
        throw new BrokerError('TOPIC_NOT_FOUND', `topic ${log.topic} was deleted while this read ran`, { topic: log.topic, partition: log.partition });
      }
      throw error;
    }
    return { bytes: read.bytes, nextOffset: read.nextOffset, highWatermark: read.logEndOffset, logStartOffset: read.logStartOffset };
  }

  /**
   * Resolves on the next append past `seen.logEndOffset` with the batches it wrote, with no
   * batches when the partition is deleted, the log goes offline, retention deletes segments or
   * the broker stops (not when the log is closed as idle: LogManager.onAppend), or with
   * `undefined` after `timeoutMs`, on abort, or when an append landed, the log went offline,
   * or retention passed `seen.offset` before it listened.
   */
  private waitForAppend(
    key: string,
    listen: (listener: AppendListener) => () => void,
    isStale: boolean,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<readonly AppendedBatch[] | undefined> {
    const waiting = this.waitersByPartition.get(key) ?? 0;
    if (waiting >= limits.waitersPerPartitionMax) {
      return Promise.reject(new BrokerError('LIMIT_REACHED', `too many readers waiting on ${key}; retry later`));
    }
    this.waitersByPartition.set(key, waiting + 1);
    return new Promise<readonly AppendedBatch[] | undefined>((resolve) => {
      let isFinished = false;
      let unsubscribe: () => void = () => undefined;
      let cancelTimer: () => void = () => undefined;
      const finish = (appended?: readonly AppendedBatch[]): void => {
        if (isFinished) return; // a delete or stop may wake a reader its timer or abort woke already
        isFinished = true;
        unsubscribe();
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        const left = (this.waitersByPartition.get(key) ?? 1) - 1;
        if (left <= 0) this.waitersByPartition.delete(key);
        else this.waitersByPartition.set(key, left);
        resolve(appended);
      };
      const onAbort = (): void => finish();
      // An append may have landed between the read and subscribing, the log gone offline or
      // closed, or retention deleted the offset (each told its listeners then): the caller
      // reads again, without listening. A log closed under the read (by a delete) may belong
      // to a partition the log manager no longer knows, on which listening throws.
      if (isStale) {
        finish();
        return;
      }
      try {
        unsubscribe = listen((_end, appended) => finish(appended));
      } catch {
        // The partition went meanwhile (a delete, or the undo of a failed create): woken at
        // once, the caller finds the topic gone or its read fails. Before, the throw rejected
        // this promise without `finish`, so the partition's waiter count stayed one too high
        // for good, and enough such races refused every parked read with LIMIT_REACHED.
        finish();
        return;
      }
      cancelTimer = this.clock.setTimer(timeoutMs, onAbort);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async listOffset(topic: string, partition: number, query: OffsetQuery): Promise<{ offset: number; timestampMs: number }> {
    this.throwIfClosed();
    this.partitionOrThrow(topic, partition);
    if (query.kind !== 'timestamp') {
      // A partition never used, or closed cleanly since its last use, is not opened for this.
      const known = await this.logs.offsetRangeIfClosed(topic, partition);
      if (known !== undefined) return { offset: query.kind === 'earliest' ? known.logStartOffset : known.logEndOffset, timestampMs: -1 };
    }
    return this.logs.withPartition(topic, partition, async (log) => {
      switch (query.kind) {
        // An offline partition answers with its reason, as a fetch or a timestamp query does
        // (and as Kafka answers KAFKA_STORAGE_ERROR), not with offsets nobody can read.
        case 'earliest':
          return { offset: log.offsetRangeOrThrow().logStartOffset, timestampMs: -1 };
        case 'latest':
          return { offset: log.offsetRangeOrThrow().logEndOffset, timestampMs: -1 };
        case 'timestamp': {
          // Retention may delete the batch found between the lookup and the read: look again
          // (from the new log start); a few rounds at most, each after a deletion.
          for (let attempt = 1; ; attempt++) {
            // The search covers the log below its end as it is now (it takes its snapshot before
            // its first await); a batch appended while it runs may be as late as the query, so
            // "none" is answered with this end, never the one after the search.
            const searchedEndOffset = log.logEndOffset;
            const baseOffset = await log.offsetForTimestamp(query.timestampMs);
            if (baseOffset === undefined) return { offset: searchedEndOffset, timestampMs: -1 };
            try {
              return firstRecordAtOrAfter((await log.read({ offset: baseOffset, bytesMax: 1 })).bytes, baseOffset, query.timestampMs);
            } catch (error) {
              if (attempt >= 3 || !isBrokerError(error, 'OFFSET_OUT_OF_RANGE') || baseOffset >= log.logStartOffset) throw error;
            }
          }
        }
      }
    });
  }

  /** A new producer id (epoch 0), or the same id with the next epoch (fencing the old one). */
  async initProducerId(request: { producerId: number; producerEpoch: number }): Promise<{ producerId: number; producerEpoch: number }> {
    this.throwIfClosed();
    if (request.producerId > 0 && !this.meta.isProducerIdIssued(request.producerId)) {
      // A made-up id could later collide with one handed out to another producer.
      throw new BrokerError('INVALID_REQUEST', `producer id ${request.producerId} was never handed out by this broker; send 0 for a new one`);
    }
    if (request.producerId > 0 && request.producerEpoch >= 0 && request.producerEpoch < 32_766) {
      return { producerId: request.producerId, producerEpoch: request.producerEpoch + 1 };
    }
    // Id 0 means "give me a new id" on the wire, so it is never handed out.
    let producerId = await this.meta.allocateProducerId();
    if (producerId === 0) producerId = await this.meta.allocateProducerId();
    return { producerId, producerEpoch: 0 };
  }

  // ---- Lifecycle -----------------------------------------------------------------------------

  /** While `close` runs: the partitions whose clean close has not finished (a hung stop names them). */
  partitionsNotClosed(): TopicPartition[] {
    return this.logs.partitionsNotClosed();
  }

  /** What `close` is waiting on; undefined before it starts (and 'closed' after it, also after a failure). */
  get closeStage(): BrokerCloseStage | undefined {
    return this.closeStageNow;
  }

  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    try {
      // An admin change in flight still writes partition directories and records: let it
      // finish before the logs, the metadata store and the lock go. Those queued behind it
      // now refuse (SHUTTING_DOWN), and the queue's promises never reject.
      this.closeStageNow = 'finishing admin changes';
      await Promise.all([...this.adminQueueByTopic.values()]);
      this.closeStageNow = 'closing partitions';
      // The metadata store closes even when closing the logs failed (its writes are on disk
      // already; closing it releases lmdb's files), and the first failure is the one thrown;
      // a second one is logged (not `finally`, whose own failure would replace the first).
      let logsFailure: { error: unknown } | undefined;
      await this.logs.close().catch((error: unknown) => {
        logsFailure = { error };
      });
      this.closeStageNow = 'closing the metadata store';
      try {
        await this.meta.close();
      } catch (metaError) {
        if (logsFailure === undefined) throw metaError;
        this.logger.error({ ...errorFields(metaError) }, 'closing the metadata store failed too, after closing the logs failed');
      }
      if (logsFailure !== undefined) throw logsFailure.error;
    } finally {
      this.closeStageNow = 'closed';
      this.lock.release();
    }
  }

  /**
   * Makes partitions [from, to) of `topic`, whose record already names them, all or none.
   * When they cannot be made (createPartitions refuses a directory it does not know, or an I/O
   * error), storage leaves none of them and `undoRecord` takes the record back, so a restart
   * never serves the refused directory (left as it was); then the error is thrown. A failed
   * undo is logged, and the topic stays as a crash at that point would leave it.
   */
  private async makePartitionsOrUndo(topic: string, from: number, to: number, undoRecord: () => Promise<unknown>, what: string): Promise<void> {
    try {
      await this.logs.createPartitions(topic, Array.from({ length: to - from }, (_, i) => from + i));
    } catch (error) {
      try {
        await undoRecord();
      } catch (undoError) {
        this.logger.error({ topic, operation: what, ...errorFields(undoError) }, 'could not undo a failed topic change; the topic keeps the partitions its record names');
      }
      throw error;
    }
  }

  /** Runs `work` once every admin change already queued on `topic` has settled. */
  private serialAdmin<T>(topic: string, work: () => Promise<T>): Promise<T> {
    const previous = this.adminQueueByTopic.get(topic) ?? Promise.resolve();
    const result = previous.then(work);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.adminQueueByTopic.set(topic, settled);
    void settled.then(() => {
      if (this.adminQueueByTopic.get(topic) === settled) this.adminQueueByTopic.delete(topic);
    });
    return result;
  }

  /** Every topic record but those being deleted. */
  private liveTopics(): TopicRecord[] {
    return this.meta.listTopics().filter((topic) => topic.isDeleting !== true);
  }

  /** The topic's record; TOPIC_NOT_FOUND when there is none or its delete has begun. */
  private topicOrThrow(name: string): TopicRecord {
    const topic = this.meta.getTopic(name);
    if (topic === undefined || topic.isDeleting === true) {
      throw new BrokerError('TOPIC_NOT_FOUND', `topic ${JSON.stringify(name.slice(0, limits.topicNameLengthMax))} does not exist; create it with \`runnel topic create\``, {
        topic: name.slice(0, limits.topicNameLengthMax),
      });
    }
    return topic;
  }

  private partitionOrThrow(topicName: string, partition: number): TopicRecord {
    const topic = this.topicOrThrow(topicName);
    if (!Number.isInteger(partition) || partition < 0 || partition >= topic.partitionCount) {
      throw new BrokerError('PARTITION_NOT_FOUND', `topic ${topicName} has partitions 0–${topic.partitionCount - 1}; there is no partition ${partition}`, {
        topic: topicName,
        partition,
      });
    }
    return topic;
  }

  private withTimeout<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => BrokerError): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.clock.setTimer(timeoutMs, () => reject(onTimeout()));
      work.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error);
        },
      );
    });
  }

  private throwIfClosed(): void {
    if (this.isClosed) throw new BrokerError('SHUTTING_DOWN', 'the broker is shutting down; retry against it once it is back');
  }
}

/** Whole appended batches up to `maxBytes` (at least one), as `log.read` would return them. */
function fromAppended(appended: readonly AppendedBatch[], maxBytes: number, log: PartitionLog): FetchResult {
  const first = appended[0] as AppendedBatch;
  const taken = [first];
  let bytes = first.bytes.length;
  for (const batch of appended.slice(1)) {
    if (bytes + batch.bytes.length > maxBytes) break;
    taken.push(batch);
    bytes += batch.bytes.length;
  }
  return {
    bytes: taken.length === 1 ? first.bytes : Buffer.concat(taken.map((batch) => batch.bytes), bytes),
    nextOffset: (taken[taken.length - 1] as AppendedBatch).nextOffset,
    highWatermark: log.logEndOffset,
    logStartOffset: log.logStartOffset,
  };
}

function noop(): void {}

/** The bytes of a fetch that found nothing (shared: never written to). */
const EMPTY_BYTES = Buffer.alloc(0);

/**
 * A delete that failed on the disk after the topic was marked `isDeleting`: the same error,
 * saying also what state the topic is in and how to finish the delete. Storage's message names
 * only the failed operation, and the topic has vanished from every listing meanwhile.
 */
function deleteTopicUnfinishedError(name: string, error: unknown): unknown {
  if (!isBrokerError(error) || (error.reason !== 'STORAGE_ERROR' && error.reason !== 'DISK_FULL')) return error;
  return new BrokerError(
    error.reason,
    `${error.message}. The delete of topic ${name} has begun, so it is served to nobody: once the disk is fixed, run \`runnel topic delete ${name}\` again to finish it (a restart, or a create of the name, finishes it too)`,
    { topic: name, ...(error.partition === undefined ? {} : { partition: error.partition }), details: error.details, cause: error },
  );
}

/**
 * ListOffsets by time, exact as in Kafka: the storage finds the first batch whose newest
 * timestamp is ≥ `timestampMs` (`bytes` starts with it); the answer is the first record in
 * it, in offset order, whose own timestamp is ≥ `timestampMs`, with that timestamp. Records
 * inside a batch need not be in time order, so it may follow older ones. If the batch cannot
 * be decoded here (a codec this broker does not read), the answer falls back to the batch:
 * its base offset and newest timestamp, which a consumer starting there still reads through.
 */
function firstRecordAtOrAfter(bytes: Buffer, baseOffset: number, timestampMs: number): { offset: number; timestampMs: number } {
  const header = tryReadBatchHeader(bytes);
  if (header === undefined) return { offset: baseOffset, timestampMs: -1 };
  try {
    // Record by record, keeping none: a batch can hold millions (see `visitRecords`).
    let found: { offset: number; timestampMs: number } | undefined;
    visitRecords(bytes.subarray(0, header.sizeBytes), {}, (record) => {
      if (record.timestamp >= timestampMs) found = { offset: record.offset, timestampMs: record.timestamp };
      return found === undefined;
    });
    if (found !== undefined) return found;
  } catch {
    // Falls through to the batch-level answer.
  }
  return { offset: baseOffset, timestampMs: header.maxTimestamp };
}

/**
 * Creates the data directory if needed. A path that cannot be one (a file, a path through a
 * file, no permission, a read-only file system) is refused with the directory named and
 * what to do, not node's bare "EEXIST: file already exists, mkdir …".
 */
function makeDataDirOrThrow(dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true });
    if (!statSync(dataDir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'EEXIST' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const problem =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'it is not a directory (a file is in the way)'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'no permission to create it (or a read-only file system)'
          : (error as Error).message;
    throw new BrokerError('INVALID_REQUEST', `cannot use data directory ${dataDir}: ${problem}; pass a writable directory with --data-dir (or RUNNEL_DATA_DIR)`, { cause: error });
  }
}
