/**
 * `MetaStore`: the broker's durable local metadata in one lmdb environment at
 * `<data-dir>/meta`: the cluster id, topic definitions and the producer id counter. It is the
 * only code that opens lmdb (STYLE H4).
 *
 * On-disk format, version 1. An lmdb environment (`data.mdb`, `lock.mdb`) with two named
 * databases; keys are strings, values JSON (small, rarely written, readable with any tool):
 *
 * | database | key                  | value                                                      |
 * |----------|----------------------|------------------------------------------------------------|
 * | `broker` | `formatVersion`      | `1`; a newer number makes `open` refuse the directory      |
 * | `broker` | `clusterId`          | UUID string, written once, in the same transaction as 1    |
 * | `broker` | `producerIdBlockEnd` | number: every producer id ever handed out is below it      |
 * | `topics` | topic name           | `TopicRecord` (overrides normalised by topic-config.ts)    |
 *
 * A `TopicRecord` with `isDeleting: true` is a topic whose delete has begun and not finished
 * (`markTopicDeleting`); an older Runnel that ignores the field serves it as a live topic.
 *
 * After a crash: lmdb is copy-on-write and switches a meta page at commit, so the environment
 * always opens at a whole transaction, never a torn one. After a process crash it opens at the
 * last committed transaction; after a power loss, at the last one flushed to disk. Every write
 * here awaits its commit and then `env.flushed` before it resolves (FINDINGS: an awaited put
 * resolves at commit, not on disk), so whatever a caller was told is durable in both cases.
 *
 * Writes use lmdb's async `transaction`: its callback runs inside the write transaction, so a
 * read-check-write there is atomic against every other writer, in this process or another.
 * lmdb does NOT roll back writes made before the callback throws, so each callback decides
 * first, writes last, and returns an outcome that is turned into an error outside it.
 *
 * Deliberately not here: partition logs (storage), consumer offsets and assignments (later,
 * as further named databases in the same environment).
 */
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { open, type Database, type RootDatabase } from 'lmdb';
import { assert, AssertionError, systemClock, type Clock } from '../common/index.js';
import { limits, validateTopicName } from '../config/index.js';
import { BrokerError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { validateTopicOverrides } from './topic-config.js';

const FORMAT_VERSION = 1;

/**
 * Producer ids reserved durably per lmdb write. One flushed commit costs ~0.3–1 ms here, so
 * 1,000 ids per commit makes allocation nearly free; a restart skips the unused rest of a
 * block, wasting ≤ 1,000 ids of 2^53 (9·10^12 restarts before exhaustion).
 */
const PRODUCER_ID_BLOCK_SIZE = 1_000;
/** Producer ids are JS numbers on the broker side; they must stay exact. */
const PRODUCER_ID_MAX = Number.MAX_SAFE_INTEGER;

/** Named databases the environment may hold: two today, room for offsets and assignments. */
const DATABASES_MAX = 8;

type BrokerKey = 'formatVersion' | 'clusterId' | 'producerIdBlockEnd';

interface MetaDatabases {
  broker: Database<unknown, BrokerKey>;
  topics: Database<unknown, string>;
}

/** One topic's durable definition. Records handed out are frozen. */
export interface TopicRecord {
  readonly name: string;
  /** Random UUID given at creation: tells a recreated topic from the one deleted before it. */
  readonly topicId: string;
  readonly partitionCount: number;
  readonly replicationFactor: number;
  /** Topic config overrides, normalised (see `validateTopicOverrides`). */
  readonly overrides: Readonly<Record<string, string>>;
  readonly createdAtMs: number;
  /**
   * Present (and true) once a delete has begun: the topic is gone for every client, and its
   * partition directories are being removed. A crash or a failed removal leaves it so, and the
   * delete is finished by the next delete of the name, a create of it, or the next start.
   */
  readonly isDeleting?: true;
}

/** What `createTopic` needs; the store fills in `topicId` and `createdAtMs` unless given. */
export interface NewTopic {
  name: string;
  partitionCount: number;
  replicationFactor: number;
  overrides?: Record<string, string>;
  /** Given when the id was already chosen elsewhere (a controller); otherwise random. */
  topicId?: string;
  createdAtMs?: number;
}

export interface MetaStoreOptions {
  /** The environment directory; the broker passes `<data-dir>/meta`. Created if missing. */
  dir: string;
  logger: Logger;
  /** For `createdAtMs`; the system clock by default. */
  clock?: Clock;
  /** For the cluster id and topic ids; `crypto.randomUUID` by default. */
  randomUuid?: () => string;
}

type CreateOutcome = 'created' | 'exists' | 'limit';
type UpdateOutcome = { kind: 'updated'; record: TopicRecord } | { kind: 'not-found' } | { kind: 'rejected'; error: unknown };

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class MetaStore {
  private readonly env: RootDatabase;
  private readonly broker: Database<unknown, BrokerKey>;
  private readonly topics: Database<unknown, string>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly randomUuid: () => string;
  private readonly clusterIdValue: string;
  private readonly dir: string;
  /**
   * Producer ids in [next, blockEnd) are reserved durably and not yet handed out. Both start
   * at 0, so the first allocation after open reserves a fresh block. Single writer:
   * `allocateProducerId`, with `refillProducerIdBlock` running at most once at a time.
   */
  private producerIdNext = 0;
  private producerIdBlockEnd = 0;
  private producerIdRefill: Promise<void> | undefined;
  /** Writes not yet settled (writeDurably); `close` waits for them. Bounded by the callers' own queues. */
  private readonly writesInFlight = new Set<Promise<unknown>>();
  private isClosed = false;

  private constructor(env: RootDatabase, databases: MetaDatabases, options: MetaStoreOptions, clusterId: string) {
    this.env = env;
    this.broker = databases.broker;
    this.topics = databases.topics;
    this.logger = options.logger.child({ component: 'meta' });
    this.clock = options.clock ?? systemClock;
    this.randomUuid = options.randomUuid ?? randomUUID;
    this.clusterIdValue = clusterId;
    this.dir = options.dir;
  }

  /**
   * Opens (creating on first use) the environment at `dir`. On first open it writes the
   * format version and a new random cluster id, durably, before resolving.
   */
  static async open(options: MetaStoreOptions): Promise<MetaStore> {
    await mkdir(options.dir, { recursive: true });
    // Explicit about durability (STYLE H8): noSync false means lmdb fsyncs its commits;
    // `env.flushed` below tells when they are on disk. Two lmdb defaults are turned off for
    // what happens when a commit fails (a full disk, test/fault/disk-full-broker.test.ts):
    // event-turn batching leaves a commit promise of its own that nothing observes, so a
    // failed commit became an unhandled rejection that ended the broker; with overlapping
    // sync, a failed commit's flush promise never settles, so `flushed` and `close` hung.
    // Without it each commit includes its fsync: a few commits a second at most here.
    const env = open({
      path: options.dir,
      maxDbs: DATABASES_MAX,
      noSync: false,
      cache: false,
      encoding: 'json',
      eventTurnBatching: false,
      overlappingSync: false,
    });
    try {
      const databases: MetaDatabases = {
        broker: env.openDB<unknown, BrokerKey>({ name: 'broker', encoding: 'json', cache: false }),
        topics: env.openDB<unknown, string>({ name: 'topics', encoding: 'json', cache: false }),
      };
      const clusterId = await openInitialiseBroker(env, databases.broker, options);
      const store = new MetaStore(env, databases, options, clusterId);
      store.logger.info({ dir: options.dir, clusterId, topicCount: store.topics.getKeysCount() }, 'meta store opened');
      return store;
    } catch (error) {
      await env.close();
      throw error;
    }
  }

  /** The cluster id made on first open; the same for the life of the directory. */
  clusterId(): string {
    this.assertOpen();
    return this.clusterIdValue;
  }

  /** Every topic record, sorted by name, those being deleted (`isDeleting`) included. */
  listTopics(): TopicRecord[] {
    this.assertOpen();
    const records: TopicRecord[] = [];
    // lmdb iterates string keys in UTF-8 byte order; topic names are ASCII, so this is name order.
    for (const { key, value } of this.topics.getRange()) records.push(readTopicRecord(key, value));
    return records;
  }

  /** The topic's record, also while it is being deleted (`isDeleting`). */
  getTopic(name: string): TopicRecord | undefined {
    this.assertOpen();
    const stored = this.topics.get(name);
    return stored === undefined ? undefined : readTopicRecord(name, stored);
  }

  /**
   * Creates a topic and resolves with its record once it is on disk.
   * Throws INVALID_TOPIC_NAME or INVALID_REQUEST (bad counts or overrides, nothing written),
   * TOPIC_ALREADY_EXISTS (the existing record is untouched), or LIMIT_REACHED when the broker
   * holds `limits.topicsPerBrokerMax` topics. Not idempotent: a second call with the same name
   * fails with TOPIC_ALREADY_EXISTS.
   */
  async createTopic(topic: NewTopic): Promise<TopicRecord> {
    this.assertOpen();
    const record = this.createTopicRecord(topic);
    const outcome = await this.writeDurably(this.topics, 'create topic ' + record.name, (): CreateOutcome => {
      // Inside the write transaction: the existence check, the count and the put are atomic.
      if (this.topics.doesExist(record.name)) return 'exists';
      if (this.topics.getKeysCount() >= limits.topicsPerBrokerMax) return 'limit';
      this.topics.putSync(record.name, record);
      return 'created';
    });
    // Crash consistency: committed is not on disk. Until writeDurably's flush resolves a power
    // loss may undo the create, and no caller has been told it happened; after it, the topic
    // survives any crash. Flushed on every outcome so "already exists" too is a durable
    // observation.
    switch (outcome) {
      case 'exists':
        throw new BrokerError('TOPIC_ALREADY_EXISTS', `topic ${record.name} already exists: pick another name, or delete it first`, {
          topic: record.name,
        });
      case 'limit':
        throw new BrokerError(
          'LIMIT_REACHED',
          `cannot create topic ${record.name}: this broker already holds ${limits.topicsPerBrokerMax} topics, the most it can; delete unused topics first`,
          { topic: record.name, details: { topicsPerBrokerMax: limits.topicsPerBrokerMax } },
        );
      case 'created':
        this.logger.debug({ topic: record.name, topicId: record.topicId, partitionCount: record.partitionCount }, 'topic record written');
        return record;
    }
  }

  /**
   * Replaces a topic's record with `change(old)` atomically and resolves with the new record
   * once it is on disk. `change` runs inside lmdb's write transaction: it must be synchronous,
   * quick, and must not call the store. It may change partitionCount (up only),
   * replicationFactor and overrides; changing name, topicId or createdAtMs is a bug (assertion).
   * Throws TOPIC_NOT_FOUND (also for a topic being deleted), INVALID_REQUEST (bad values, fewer partitions), or whatever
   * `change` throws; in every failure nothing is written.
   */
  async updateTopic(name: string, change: (old: TopicRecord) => TopicRecord): Promise<TopicRecord> {
    this.assertOpen();
    const outcome = await this.writeDurably(this.topics, 'update topic ' + name, (): UpdateOutcome => {
      // Inside the write transaction: no other writer can change the record between this
      // read and the put, so concurrent updates apply one after the other, never lost.
      const stored = this.topics.get(name);
      if (stored === undefined) return { kind: 'not-found' };
      const old = readTopicRecord(name, stored);
      if (old.isDeleting === true) return { kind: 'not-found' };
      let record: TopicRecord;
      try {
        record = this.updateTopicRecord(old, change(old));
      } catch (error) {
        return { kind: 'rejected', error };
      }
      this.topics.putSync(name, record);
      return { kind: 'updated', record };
    });
    // Crash consistency: as in createTopic, the new record is durable only once flushed (in
    // writeDurably); a crash before leaves the old record whole, never a mix.
    switch (outcome.kind) {
      case 'not-found':
        throw topicNotFound(name);
      case 'rejected':
        throw outcome.error;
      case 'updated':
        this.logger.debug({ topic: name, partitionCount: outcome.record.partitionCount, overrides: outcome.record.overrides }, 'topic record updated');
        return outcome.record;
    }
  }

  /**
   * Undoes an add-partitions whose partitions could not all be made: sets the count back from
   * `from` to `to` (< `from`), only if the record still says `from`. The one way a count goes
   * down; `updateTopic` refuses it. Resolves once durable; false when the record had changed.
   */
  async undoPartitionCount(name: string, from: number, to: number): Promise<boolean> {
    this.assertOpen();
    assert(Number.isInteger(to) && to >= 1 && to < from, `undoPartitionCount goes down from ${from} to ${to}`);
    const isUndone = await this.writeDurably(this.topics, 'update topic ' + name, (): boolean => {
      const stored = this.topics.get(name);
      if (stored === undefined) return false;
      const old = readTopicRecord(name, stored);
      if (old.partitionCount !== from) return false;
      this.topics.putSync(name, freezeTopicRecord({ ...old, partitionCount: to }));
      return true;
    });
    return isUndone;
  }

  /**
   * Marks a topic as being deleted (`isDeleting`), durably, before any of its partition
   * directories are touched; resolves with the marked record. Idempotent. Throws
   * TOPIC_NOT_FOUND. From then on `updateTopic` refuses it as not found, and the broker serves
   * it to nobody; `deleteTopic` removes the record once the directories are gone.
   */
  async markTopicDeleting(name: string): Promise<TopicRecord> {
    this.assertOpen();
    const marked = await this.writeDurably(this.topics, 'delete topic ' + name, (): TopicRecord | undefined => {
      const stored = this.topics.get(name);
      if (stored === undefined) return undefined;
      const record = freezeTopicRecord({ ...readTopicRecord(name, stored), isDeleting: true });
      this.topics.putSync(name, record);
      return record;
    });
    // Crash consistency: until flushed (in writeDurably) a power loss may drop the mark, and
    // then no directory has been touched yet; after it, the next start finishes the delete.
    if (marked === undefined) throw topicNotFound(name);
    return marked;
  }

  /**
   * Deletes a topic's record and resolves with it once the deletion is on disk. Removing its
   * partition logs is the caller's job, before this and after `markTopicDeleting` (the broker's
   * order: mark, remove the directories, then this). Throws TOPIC_NOT_FOUND.
   */
  async deleteTopic(name: string): Promise<TopicRecord> {
    this.assertOpen();
    const deleted = await this.writeDurably(this.topics, 'delete topic ' + name, (): TopicRecord | undefined => {
      const stored = this.topics.get(name);
      if (stored === undefined) return undefined;
      const record = readTopicRecord(name, stored);
      this.topics.removeSync(name);
      return record;
    });
    // Crash consistency: until flushed (in writeDurably), a power loss may bring the record
    // back (marked isDeleting, when the caller marked it first, so the next start finishes the
    // delete); the caller has not been told it is gone yet.
    if (deleted === undefined) throw topicNotFound(name);
    this.logger.debug({ topic: name, topicId: deleted.topicId }, 'topic record deleted');
    return deleted;
  }

  /**
   * A producer id never returned before by this directory, across restarts and crashes.
   * Strictly increasing within one open store. Throws LIMIT_REACHED only after 2^53 ids.
   *
   * Why a crash cannot repeat an id: ids come from a block [start, end) reserved by raising
   * `producerIdBlockEnd` to `end` in lmdb, and no id of the block is returned before that
   * write is flushed. So every id ever returned is below the durable `producerIdBlockEnd`,
   * and the next open starts its first block there. A crash loses only the unused rest of
   * the current block. Proved by meta-store.test.ts ("never repeats a producer id after the
   * process is killed").
   */
  async allocateProducerId(): Promise<number> {
    this.assertOpen();
    for (;;) {
      if (this.producerIdNext < this.producerIdBlockEnd) return this.producerIdNext++;
      this.producerIdRefill ??= this.refillProducerIdBlock().finally(() => {
        this.producerIdRefill = undefined;
      });
      await this.producerIdRefill;
      // The block may have moved during the await: other callers woken by the same refill may
      // have used it up already, so check again.
      this.assertOpen();
    }
  }

  /**
   * Whether `producerId` may have been handed out by this directory: below every id not yet
   * returned. (Ids of a block a crash left unused pass too; they were never returned to anyone.)
   */
  isProducerIdIssued(producerId: number): boolean {
    this.assertOpen();
    const bound = this.producerIdBlockEnd === 0 ? this.broker.get('producerIdBlockEnd') : this.producerIdNext;
    return producerId > 0 && typeof bound === 'number' && producerId < bound;
  }

  /** Waits for writes in flight to reach the disk, then closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.isClosed) return;
    this.isClosed = true;
    await this.producerIdRefill?.catch(() => undefined);
    // Every write goes through writeDurably, which resolves once its commit is flushed, so
    // waiting for those is waiting for the disk. Not lmdb's `committed` and `flushed`: after a
    // commit failed (a full disk) they keep answering with that failure, already reported to
    // its caller, and a broker could not stop cleanly once a metadata write had failed.
    await Promise.allSettled([...this.writesInFlight]);
    await this.env.close();
    this.logger.info({}, 'meta store closed');
  }

  /**
   * lmdb's write transaction `body`, then its flush to disk. A commit that fails (ENOSPC when
   * the file must grow on a full disk, EIO) rejects with lmdb's bare "Commit failed" Error, and
   * lmdb rejects a second promise, `commitError`, holding the cause, that nothing else
   * observes: left alone it is an unhandled rejection, which ends the process. So the cause
   * is taken here and thrown as DISK_FULL or STORAGE_ERROR. lmdb aborted the transaction, so
   * nothing of `body` was written, and the environment stays usable
   * (test/fault/disk-full-broker.test.ts).
   */
  private async writeDurably<T, K extends string>(db: Database<unknown, K>, operation: string, body: () => T): Promise<T> {
    const write = (async () => {
      const outcome = await db.transaction(body);
      await this.env.flushed;
      return outcome;
    })();
    this.writesInFlight.add(write);
    try {
      return await write;
    } catch (error) {
      throw await metaWriteError(this.dir, operation, error);
    } finally {
      this.writesInFlight.delete(write);
    }
  }

  private assertOpen(): void {
    assert(!this.isClosed, 'MetaStore used after close');
  }

  /** Reserves the next block of producer ids durably; the single caller is allocateProducerId. */
  private async refillProducerIdBlock(): Promise<void> {
    const block = await this.writeDurably(this.broker, 'reserve producer ids', (): { start: number; end: number } | undefined => {
      // Read the durable bound inside the write transaction, not the in-memory one: even a
      // second process on the same directory then gets a disjoint block.
      const start = this.broker.get('producerIdBlockEnd');
      assert(typeof start === 'number' && Number.isSafeInteger(start) && start >= this.producerIdBlockEnd, `producerIdBlockEnd is malformed or went backwards: ${String(start)}`);
      if (start > PRODUCER_ID_MAX - PRODUCER_ID_BLOCK_SIZE) return undefined;
      const end = start + PRODUCER_ID_BLOCK_SIZE;
      this.broker.putSync('producerIdBlockEnd', end);
      return { start, end };
    });
    // Crash consistency: no id of the new block is handed out before writeDurably's flush
    // resolves. A crash before it may undo the reservation, but then none of its ids was
    // returned; after it, the next open starts at or above `end`.
    if (block === undefined) {
      throw new BrokerError('LIMIT_REACHED', `producer ids are exhausted (all ids up to ${PRODUCER_ID_MAX} were handed out)`);
    }
    this.producerIdNext = block.start;
    this.producerIdBlockEnd = block.end;
  }

  private createTopicRecord(topic: NewTopic): TopicRecord {
    validateTopicName(topic.name);
    const overrides = validateTopicSettings(topic.name, topic.partitionCount, topic.replicationFactor, topic.overrides ?? {});
    if (topic.topicId !== undefined && !UUID_PATTERN.test(topic.topicId)) {
      throw new BrokerError('INVALID_REQUEST', `topic id ${JSON.stringify(topic.topicId.slice(0, 60))} is not a lower-case UUID`, { topic: topic.name });
    }
    const topicId = topic.topicId ?? this.randomUuid();
    const createdAtMs = topic.createdAtMs ?? this.clock.nowMs();
    assert(Number.isSafeInteger(createdAtMs) && createdAtMs >= 0, `createdAtMs is not a time: ${createdAtMs}`);
    return freezeTopicRecord({
      name: topic.name,
      topicId,
      partitionCount: topic.partitionCount,
      replicationFactor: topic.replicationFactor,
      overrides,
      createdAtMs,
    });
  }

  private updateTopicRecord(old: TopicRecord, proposed: TopicRecord): TopicRecord {
    assert(
      proposed.name === old.name && proposed.topicId === old.topicId && proposed.createdAtMs === old.createdAtMs,
      `updateTopic may not change a topic's name, topicId or createdAtMs (${old.name})`,
    );
    if (proposed.partitionCount < old.partitionCount) {
      throw new BrokerError(
        'INVALID_REQUEST',
        `topic ${old.name} has ${old.partitionCount} partitions; partitions can only be added, so ask for at least ${old.partitionCount}`,
        { topic: old.name },
      );
    }
    const overrides = validateTopicSettings(old.name, proposed.partitionCount, proposed.replicationFactor, proposed.overrides);
    return freezeTopicRecord({ ...old, partitionCount: proposed.partitionCount, replicationFactor: proposed.replicationFactor, overrides });
  }
}

/**
 * First open writes the format version, a new cluster id and the producer id bound in one
 * transaction; every open then checks the version and returns the cluster id.
 */
async function openInitialiseBroker(env: RootDatabase, broker: Database<unknown, BrokerKey>, options: MetaStoreOptions): Promise<string> {
  const candidateClusterId = (options.randomUuid ?? randomUUID)();
  await broker.transaction(() => {
    if (broker.get('formatVersion') !== undefined) return;
    broker.putSync('formatVersion', FORMAT_VERSION);
    broker.putSync('clusterId', candidateClusterId);
    broker.putSync('producerIdBlockEnd', 0);
  });
  // Crash consistency: the three keys commit together, so a crash leaves all or none. With
  // none, the next open makes a new cluster id, which is harmless: open never returned, so
  // nobody saw the lost one. After this flush the id is kept for the life of the directory.
  await env.flushed;
  const version = broker.get('formatVersion');
  assert(typeof version === 'number' && Number.isSafeInteger(version), `meta formatVersion is malformed: ${String(version)}`);
  if (version !== FORMAT_VERSION) {
    throw new Error(
      `the meta store in ${options.dir} has format version ${version}, but this Runnel reads version ${FORMAT_VERSION}: run a Runnel release that reads it`,
    );
  }
  const clusterId = broker.get('clusterId');
  assert(typeof clusterId === 'string' && clusterId.length > 0, 'meta clusterId is malformed');
  return clusterId;
}

/**
 * The typed error of a failed lmdb write. Observes `commitError` (see `writeDurably`) at once,
 * before anything else is awaited, so it never counts as unhandled.
 */
async function metaWriteError(dir: string, operation: string, error: unknown): Promise<unknown> {
  const commitError = (error as { commitError?: unknown } | undefined)?.commitError;
  if (!(commitError instanceof Promise)) return error;
  // lmdb rejects it in the same callback that fails the commit, so it has settled by now; the
  // next turn of the event loop is only a guard against waiting forever on one that has not.
  const cause: unknown = await Promise.race([
    commitError.then(
      () => error,
      (rejection: unknown) => rejection,
    ),
    new Promise<unknown>((resolve) => setImmediate(() => resolve(error))),
  ]);
  const code = (cause as { code?: unknown } | undefined)?.code;
  const what = cause instanceof Error ? cause.message : String(cause);
  // lmdb reports the errno as a number (28 = ENOSPC, 122 = EDQUOT on Linux).
  const isFull = code === 28 || code === 122 || code === 'ENOSPC' || code === 'EDQUOT' || /no space left|quota exceeded/i.test(what);
  return new BrokerError(
    isFull ? 'DISK_FULL' : 'STORAGE_ERROR',
    isFull
      ? `disk full while trying to ${operation} in the broker metadata (${dir}); free space in the data directory and retry`
      : `I/O error while trying to ${operation} in the broker metadata (${dir}): ${what}`,
    { cause, details: { operation, path: dir, code: typeof code === 'number' || typeof code === 'string' ? code : 'UNKNOWN' } },
  );
}

/**
 * Checks partition count, replication factor and overrides (also against each other) and
 * returns the overrides normalised. Throws INVALID_REQUEST saying what is accepted.
 */
function validateTopicSettings(topic: string, partitionCount: number, replicationFactor: number, overrides: Record<string, string>): Record<string, string> {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 1 || partitionCount > limits.partitionsPerTopicMax) {
    throw new BrokerError('INVALID_REQUEST', `invalid partition count ${partitionCount} for topic ${topic}: use 1 to ${limits.partitionsPerTopicMax}`, { topic });
  }
  if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > limits.replicationFactorMax) {
    throw new BrokerError('INVALID_REQUEST', `invalid replication factor ${replicationFactor} for topic ${topic}: use 1 to ${limits.replicationFactorMax}`, {
      topic,
    });
  }
  const normalised = validateTopicOverrides(overrides);
  const minInsyncText = normalised['min.insync.replicas'];
  if (minInsyncText !== undefined && Number(minInsyncText) > replicationFactor) {
    throw new BrokerError(
      'INVALID_REQUEST',
      `min.insync.replicas=${minInsyncText} exceeds the replication factor ${replicationFactor} of topic ${topic}, so acks=all produces could never succeed: lower min.insync.replicas or raise the replication factor`,
      { topic, details: { configKey: 'min.insync.replicas' } },
    );
  }
  return normalised;
}

/** Checks a record read back from lmdb (STYLE H7: assert after reading back) and freezes it. */
function readTopicRecord(key: unknown, value: unknown): TopicRecord {
  if (!(typeof key === 'string' && isTopicRecord(value) && value.name === key)) throw new AssertionError(`meta topics entry ${String(key)} is malformed`);
  return freezeTopicRecord(value);
}

function isTopicRecord(value: unknown): value is TopicRecord {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const overrides = record.overrides;
  return (
    typeof record.name === 'string' &&
    typeof record.topicId === 'string' &&
    Number.isSafeInteger(record.partitionCount) &&
    Number.isSafeInteger(record.replicationFactor) &&
    Number.isSafeInteger(record.createdAtMs) &&
    (record.isDeleting === undefined || record.isDeleting === true) &&
    typeof overrides === 'object' &&
    overrides !== null &&
    Object.values(overrides).every((entry) => typeof entry === 'string')
  );
}

function freezeTopicRecord(record: TopicRecord): TopicRecord {
  return Object.freeze({
    name: record.name,
    topicId: record.topicId,
    partitionCount: record.partitionCount,
    replicationFactor: record.replicationFactor,
    overrides: Object.freeze({ ...record.overrides }),
    createdAtMs: record.createdAtMs,
    ...(record.isDeleting === true ? { isDeleting: true as const } : {}),
  });
}

function topicNotFound(name: string): BrokerError {
  return new BrokerError('TOPIC_NOT_FOUND', `topic ${name} does not exist: check the name with \`runnel topic list\``, { topic: name });
}
