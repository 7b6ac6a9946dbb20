import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { open } from 'lmdb';
import { afterEach, describe, expect, it } from 'vitest';
import { AssertionError, ManualClock } from '../common/index.js';
import { limits } from '../config/index.js';
import { BrokerError } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { MetaStore, type NewTopic } from './meta-store.js';
import { CHILD_PRODUCER_IDS_MAX, removeTempDirs, tempDir } from './test-helpers.js';

const CHILD_SCRIPT = fileURLToPath(new URL('./test-helpers.ts', import.meta.url));

const openStores: MetaStore[] = [];

async function openStore(dir: string, clock?: ManualClock): Promise<MetaStore> {
  const store = await MetaStore.open({ dir, logger: silentLogger, ...(clock === undefined ? {} : { clock }) });
  openStores.push(store);
  return store;
}

function topic(name: string, fields: Partial<NewTopic> = {}): NewTopic {
  return { name, partitionCount: 3, replicationFactor: 1, ...fields };
}

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BrokerError) return error.reason;
    throw error;
  }
  throw new Error('expected a BrokerError, but the call succeeded');
}

/** Allocator children not yet seen to close; afterEach kills any left (by PID) before their dirs go. */
const allocatorChildren = new Map<ChildProcess, Promise<void>>();
/** How long one allocator child may take to print what the test waits for. */
const ALLOCATOR_DEADLINE_MS = 20_000;

afterEach(async () => {
  for (const [child, closed] of allocatorChildren) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    await closed;
  }
  allocatorChildren.clear();
  for (const store of openStores.splice(0)) await store.close();
  removeTempDirs();
});

describe('MetaStore topics', () => {
  it('keeps topics, their ids and overrides across close and reopen', async () => {
    const dir = tempDir();
    const clock = new ManualClock(1_700_000_000_000);
    const first = await openStore(dir, clock);
    const created = await first.createTopic(topic('orders', { partitionCount: 6, overrides: { 'retention.ms': '60000' } }));
    expect(created).toMatchObject({ name: 'orders', partitionCount: 6, replicationFactor: 1, createdAtMs: 1_700_000_000_000 });
    expect(created.topicId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    await first.close();

    const second = await openStore(dir);
    expect(second.getTopic('orders')).toEqual(created);
    expect(second.listTopics()).toEqual([created]);
  });

  it('lists topics sorted by name whatever the creation order', async () => {
    const store = await openStore(tempDir());
    for (const name of ['zeta', 'Alpha', 'beta', 'alpha', 'a.b', 'a_b', 'a-b']) await store.createTopic(topic(name));
    expect(store.listTopics().map((record) => record.name)).toEqual(['Alpha', 'a-b', 'a.b', 'a_b', 'alpha', 'beta', 'zeta']);
  });

  it('rejects a second create of the same name with TOPIC_ALREADY_EXISTS and keeps the first record', async () => {
    const store = await openStore(tempDir());
    const first = await store.createTopic(topic('orders', { partitionCount: 2, overrides: { 'segment.bytes': '1048576' } }));
    expect(await reasonOf(store.createTopic(topic('orders', { partitionCount: 9 })))).toBe('TOPIC_ALREADY_EXISTS');
    expect(store.getTopic('orders')).toEqual(first);
  });

  it('creates exactly one of many concurrent creates of the same name', async () => {
    const store = await openStore(tempDir());
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, index) => store.createTopic(topic('race', { partitionCount: index + 1 }))));
    const created = results.filter((result) => result.status === 'fulfilled');
    const rejected = results.filter((result) => result.status === 'rejected');
    expect(created).toHaveLength(1);
    expect(rejected.every((result) => result.reason instanceof BrokerError && result.reason.reason === 'TOPIC_ALREADY_EXISTS')).toBe(true);
    expect(store.getTopic('race')).toEqual(created[0]?.value);
  });

  it('stores overrides normalised', async () => {
    const store = await openStore(tempDir());
    const record = await store.createTopic(topic('t', { overrides: { 'retention.ms': ' 0100 ', 'message.timestamp.type': 'logappendtime', flush: 'ALWAYS' } }));
    expect(record.overrides).toEqual({ flush: 'always', 'message.timestamp.type': 'LogAppendTime', 'retention.ms': '100' });
  });

  it('rejects bad names, counts and overrides without writing anything', async () => {
    const store = await openStore(tempDir());
    expect(await reasonOf(store.createTopic(topic('../escape')))).toBe('INVALID_TOPIC_NAME');
    expect(await reasonOf(store.createTopic(topic('t', { partitionCount: 0 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { partitionCount: limits.partitionsPerTopicMax + 1 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { partitionCount: 1.5 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { replicationFactor: 0 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { replicationFactor: limits.replicationFactorMax + 1 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { overrides: { 'retention.mss': '1' } })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.createTopic(topic('t', { topicId: 'not-a-uuid' })))).toBe('INVALID_REQUEST');
    expect(store.listTopics()).toEqual([]);
  });

  it('accepts partitions and replication factor at their limits', async () => {
    const store = await openStore(tempDir());
    const record = await store.createTopic(
      topic('big', { partitionCount: limits.partitionsPerTopicMax, replicationFactor: limits.replicationFactorMax }),
    );
    expect(record.partitionCount).toBe(limits.partitionsPerTopicMax);
  });

  it('refuses min.insync.replicas above the replication factor, and accepts it equal', async () => {
    const store = await openStore(tempDir());
    const error = await store.createTopic(topic('t', { replicationFactor: 2, overrides: { 'min.insync.replicas': '3' } })).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(BrokerError);
    expect((error as BrokerError).message).toContain('min.insync.replicas=3 exceeds the replication factor 2');
    await store.createTopic(topic('t', { replicationFactor: 2, overrides: { 'min.insync.replicas': '2' } }));
  });

  it('keeps a given topicId and createdAtMs', async () => {
    const store = await openStore(tempDir());
    const topicId = '0f1e2d3c-4b5a-4678-9a0b-1c2d3e4f5a6b';
    const record = await store.createTopic(topic('t', { topicId, createdAtMs: 42 }));
    expect(record).toMatchObject({ topicId, createdAtMs: 42 });
  });

  it('hands out frozen records, so a caller cannot change the store by accident', async () => {
    const store = await openStore(tempDir());
    const record = await store.createTopic(topic('t', { overrides: { 'retention.ms': '1' } }));
    expect(Object.isFrozen(record)).toBe(true);
    expect(Object.isFrozen(record.overrides)).toBe(true);
    expect(Object.isFrozen(store.getTopic('t'))).toBe(true);
  });

  it(`rejects the topic after ${limits.topicsPerBrokerMax} with LIMIT_REACHED`, async () => {
    const store = await openStore(tempDir());
    const batchSize = 1_000;
    for (let start = 0; start < limits.topicsPerBrokerMax; start += batchSize) {
      // One event turn of creates shares one lmdb transaction and one flush: ~100 ms per 1,000.
      await Promise.all(Array.from({ length: batchSize }, (_, index) => store.createTopic(topic(`t-${start + index}`, { partitionCount: 1 }))));
    }
    expect(store.listTopics()).toHaveLength(limits.topicsPerBrokerMax);
    expect(await reasonOf(store.createTopic(topic('one-too-many')))).toBe('LIMIT_REACHED');
    expect(store.getTopic('one-too-many')).toBeUndefined();
    await store.deleteTopic('t-0');
    await store.createTopic(topic('one-too-many'));
  });

  it('applies concurrent updates one after the other, losing none', async () => {
    const store = await openStore(tempDir());
    await store.createTopic(topic('t', { partitionCount: 1 }));
    const updateCount = 50;
    await Promise.all(
      Array.from({ length: updateCount }, () => store.updateTopic('t', (old) => ({ ...old, partitionCount: old.partitionCount + 1 }))),
    );
    expect(store.getTopic('t')?.partitionCount).toBe(1 + updateCount);
  });

  it('updates overrides normalised, durably, keeping identity fields', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const created = await store.createTopic(topic('t', { overrides: { 'retention.ms': '1000' } }));
    const updated = await store.updateTopic('t', (old) => ({ ...old, replicationFactor: 2, overrides: { ...old.overrides, 'segment.bytes': '002048' } }));
    expect(updated).toEqual({ ...created, replicationFactor: 2, overrides: { 'retention.ms': '1000', 'segment.bytes': '2048' } });
    await store.close();
    expect((await openStore(dir)).getTopic('t')).toEqual(updated);
  });

  it('leaves the record unchanged when the change throws or proposes bad values', async () => {
    const store = await openStore(tempDir());
    const created = await store.createTopic(topic('t', { partitionCount: 4 }));
    await expect(
      store.updateTopic('t', () => {
        throw new Error('caller gave up');
      }),
    ).rejects.toThrow('caller gave up');
    expect(await reasonOf(store.updateTopic('t', (old) => ({ ...old, partitionCount: 3 })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.updateTopic('t', (old) => ({ ...old, overrides: { 'cleanup.policy': 'compact' } })))).toBe('INVALID_REQUEST');
    expect(await reasonOf(store.updateTopic('t', (old) => ({ ...old, replicationFactor: 1, overrides: { 'min.insync.replicas': '2' } })))).toBe(
      'INVALID_REQUEST',
    );
    expect(store.getTopic('t')).toEqual(created);
  });

  it('treats a change of name or topicId as a bug', async () => {
    const store = await openStore(tempDir());
    const created = await store.createTopic(topic('t'));
    await expect(store.updateTopic('t', (old) => ({ ...old, topicId: '0f1e2d3c-4b5a-4678-9a0b-1c2d3e4f5a6b' }))).rejects.toBeInstanceOf(AssertionError);
    expect(store.getTopic('t')).toEqual(created);
  });

  it('fails updateTopic and deleteTopic of a missing topic with TOPIC_NOT_FOUND', async () => {
    const store = await openStore(tempDir());
    expect(await reasonOf(store.updateTopic('nope', (old) => old))).toBe('TOPIC_NOT_FOUND');
    expect(await reasonOf(store.deleteTopic('nope'))).toBe('TOPIC_NOT_FOUND');
  });

  it('deletes a topic durably, and a recreated topic gets a new topicId', async () => {
    const dir = tempDir();
    const store = await openStore(dir);
    const first = await store.createTopic(topic('t'));
    await store.createTopic(topic('u'));
    expect(await store.deleteTopic('t')).toEqual(first);
    expect(store.getTopic('t')).toBeUndefined();
    expect(await reasonOf(store.deleteTopic('t'))).toBe('TOPIC_NOT_FOUND');
    await store.close();

    const reopened = await openStore(dir);
    expect(reopened.listTopics().map((record) => record.name)).toEqual(['u']);
    const second = await reopened.createTopic(topic('t'));
    expect(second.topicId).not.toBe(first.topicId);
  });
});

describe('MetaStore identity', () => {
  it('keeps the cluster id made on first open, and makes a different one per directory', async () => {
    const dir = tempDir();
    const first = await openStore(dir);
    const clusterId = first.clusterId();
    expect(clusterId).toMatch(/^[0-9a-f-]{36}$/);
    await first.close();
    expect((await openStore(dir)).clusterId()).toBe(clusterId);
    expect((await openStore(tempDir())).clusterId()).not.toBe(clusterId);
  });

  it('refuses a directory written in a newer format', async () => {
    const dir = tempDir();
    await (await openStore(dir)).close();
    const env = open({ path: dir, maxDbs: 8 });
    const broker = env.openDB({ name: 'broker', encoding: 'json' });
    await broker.put('formatVersion', 2);
    await env.flushed;
    await env.close();
    await expect(MetaStore.open({ dir, logger: silentLogger })).rejects.toThrow(/format version 2.*reads version 1/);
  });

  it('fails loudly when used after close', async () => {
    const store = await MetaStore.open({ dir: tempDir(), logger: silentLogger });
    await store.close();
    await store.close();
    expect(() => store.listTopics()).toThrow(AssertionError);
  });
});

describe('MetaStore producer ids', () => {
  it('hands out strictly increasing ids across blocks and across close and reopen', async () => {
    const dir = tempDir();
    const ids: number[] = [];
    for (let round = 0; round < 3; round++) {
      const store = await openStore(dir);
      for (let count = 0; count < 1_500; count++) ids.push(await store.allocateProducerId());
      await store.close();
    }
    for (let index = 1; index < ids.length; index++) expect(ids[index]).toBeGreaterThan(ids[index - 1] ?? -1);
  });

  it('hands out distinct ids to concurrent callers', async () => {
    const store = await openStore(tempDir());
    const ids = await Promise.all(Array.from({ length: 3_500 }, () => store.allocateProducerId()));
    expect(new Set(ids).size).toBe(ids.length);
  });

  /**
   * Goal: an id handed out before a crash is never handed out again. Method: a child process
   * opens the store and allocates ids in a loop, printing each as soon as it is returned; the
   * test SIGKILLs it by PID mid-loop (after it crossed a few blocks), then again at rest
   * (never closed), reopening the directory after each kill and checking the next id is above
   * every id the dead process printed.
   */
  it('never repeats a producer id after the process is killed', async () => {
    const dir = tempDir();
    const printed: number[] = [];
    await runAllocatorAndKill(dir, { killAfterIds: 2_500, ids: printed });
    await runAllocatorAndKill(dir, { killAfterIds: 'all', ids: printed });
    const largest = Math.max(...printed);
    expect(printed.length).toBeGreaterThan(2_500);

    const store = await openStore(dir);
    const next = await store.allocateProducerId();
    expect(next).toBeGreaterThan(largest);
  });
});

interface KillOptions {
  /** Kill once this many ids were printed, or only after the child allocated all and went idle. */
  killAfterIds: number | 'all';
  /** Every id printed by the child is appended here. */
  ids: number[];
}

/**
 * Starts the allocator child, kills it with SIGKILL by PID, and resolves once it is gone. A
 * child that has not printed enough within ALLOCATOR_DEADLINE_MS is killed too, and the call
 * fails; one left by a test that failed otherwise is killed in afterEach (it never exits by
 * itself: it idles once it has allocated every id).
 */
function runAllocatorAndKill(dir: string, options: KillOptions): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_SCRIPT, 'allocate-producer-ids', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  allocatorChildren.set(child, new Promise<void>((resolve) => child.once('close', () => resolve())));
  const pid = child.pid;
  if (pid === undefined) throw new Error('the allocator child did not start');
  const startCount = options.ids.length;
  let stderr = '';
  let pending = '';
  let isKillSent = false;
  return new Promise<void>((resolve, reject) => {
    const kill = (): void => {
      if (isKillSent) return;
      isKillSent = true;
      process.kill(pid, 'SIGKILL');
    };
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('id ')) options.ids.push(Number(line.slice(3)));
      }
      const childCount = options.ids.length - startCount;
      if (options.killAfterIds === 'all' ? childCount >= CHILD_PRODUCER_IDS_MAX : childCount >= options.killAfterIds) kill();
    });
    let isPastDeadline = false;
    const deadline = setTimeout(() => {
      if (isKillSent) return; // printed enough; its close is on the way
      isPastDeadline = true;
      kill();
    }, ALLOCATOR_DEADLINE_MS);
    // 'close' fires after exit and after the pipes drained, so every printed line was read.
    child.on('close', (code, signal) => {
      clearTimeout(deadline);
      allocatorChildren.delete(child);
      const printedCount = options.ids.length - startCount;
      if (isPastDeadline) reject(new Error(`the allocator child printed ${printedCount} ids in ${ALLOCATOR_DEADLINE_MS} ms, short of ${String(options.killAfterIds)}; killed: ${stderr}`));
      else if (signal === 'SIGKILL' && isKillSent) resolve();
      else reject(new Error(`the allocator child ended by itself (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
}

describe('MetaStore.markTopicDeleting', () => {
  it('keeps the mark across reopen, refuses updates of a marked topic as not found, and lets deleteTopic remove it', async () => {
    const dir = tempDir();
    const first = await openStore(dir);
    await first.createTopic(topic('going'));
    expect(await first.markTopicDeleting('going')).toMatchObject({ name: 'going', isDeleting: true });
    expect(await first.markTopicDeleting('going')).toMatchObject({ isDeleting: true }); // idempotent
    expect(await reasonOf(first.updateTopic('going', (old) => ({ ...old, partitionCount: 4 })))).toBe('TOPIC_NOT_FOUND');
    expect(await reasonOf(first.markTopicDeleting('never-made'))).toBe('TOPIC_NOT_FOUND');
    await first.close();
    openStores.splice(openStores.indexOf(first), 1);

    const second = await openStore(dir);
    expect(second.getTopic('going')).toMatchObject({ partitionCount: 3, isDeleting: true });
    await second.deleteTopic('going');
    expect(second.listTopics()).toEqual([]);
  });
});
