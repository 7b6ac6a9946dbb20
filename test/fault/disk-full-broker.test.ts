/**
 * A full disk under a whole broker: the metadata store (lmdb) as well as the partition logs.
 *
 * Goal: a metadata write that the disk refuses (a topic create, a config change, a producer
 * id block) fails that request with DISK_FULL, saying to free space, and nothing else: the
 * broker keeps running and serving, the store stays usable, it closes, a clean stop exits 0,
 * and once space is freed the same request succeeds without a restart. The client does not
 * retry such an admin change (it needs an operator), and `runnel topic create` says so at once.
 *
 * Method: a real tmpfs of a few MiB (mounting needs root; without it these tests are skipped,
 * since neither lmdb nor a broker child process can be given the faulty file system). A filler
 * file takes every free byte; deleting it gives the space back. lmdb must grow its file for a
 * new topic record on a fresh store, so a create on the full disk is refused by the kernel.
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, isBrokerError, type RunnelClient } from '../../src/client/index.js';
import { lockDataDir } from '../../src/broker/data-dir-lock.js';
import { BrokerError } from '../../src/errors/index.js';
import { MetaStore } from '../../src/meta/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { killAllCliProcesses, startCliProcess } from '../support/cli-process.js';
import { fillDisk, mountSmallTmpfs, type SmallTmpfs } from '../support/small-tmpfs.js';

const DISK_BYTES = 2 * 1024 * 1024;

const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  // Every cleanup runs even when one fails (a store that cannot close), so no tmpfs stays mounted.
  const failures: unknown[] = [];
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch (error) {
      failures.push(error);
    }
  }
  if (failures.length > 0) throw failures[0];
});

function smallDisk(): SmallTmpfs | undefined {
  const disk = mountSmallTmpfs('runnel-disk-full-broker-', DISK_BYTES);
  if (disk !== undefined) cleanups.push(() => disk.unmount());
  return disk;
}

async function errorOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected the call to fail, but it succeeded'),
    (error: unknown) => error,
  );
}

function expectDiskFull(error: unknown): void {
  expect(isBrokerError(error) ? `${error.reason}: ${error.message}` : String(error)).toMatch(/^DISK_FULL: .*free space in the data directory/);
}

/** Fails (rather than hanging the test) when `promise` does not settle within `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const probe = mountSmallTmpfs('runnel-disk-full-broker-', DISK_BYTES);
probe?.unmount();
const hasTmpfs = probe !== undefined;

describe.skipIf(!hasTmpfs)('the metadata store on a full disk', () => {
  it('fails each write with DISK_FULL, writes nothing of it, and works again once space is freed', async () => {
    const disk = smallDisk() as SmallTmpfs;
    const dir = join(disk.root, 'meta');
    const store = await MetaStore.open({ dir, logger: silentLogger });
    cleanups.push(() => store.close());
    await store.createTopic({ name: 'before', partitionCount: 1, replicationFactor: 1 });
    const freeSpace = fillDisk(disk.root);

    expectDiskFull(await errorOf(store.createTopic({ name: 'refused', partitionCount: 1, replicationFactor: 1 })));
    expectDiskFull(await errorOf(store.allocateProducerId()));
    expectDiskFull(await errorOf(store.createTopic({ name: 'refused-again', partitionCount: 1, replicationFactor: 1 })));
    expect(store.listTopics().map((topic) => topic.name)).toEqual(['before']);

    freeSpace();
    await store.createTopic({ name: 'after', partitionCount: 1, replicationFactor: 1 });
    await store.updateTopic('before', (old) => ({ ...old, partitionCount: 2 }));
    expect(await store.allocateProducerId()).toBeGreaterThanOrEqual(0);
    await within(store.close(), 10_000, 'close');

    const reopened = await MetaStore.open({ dir, logger: silentLogger });
    cleanups.push(() => reopened.close());
    expect(reopened.listTopics().map((topic) => [topic.name, topic.partitionCount])).toEqual([
      ['after', 1],
      ['before', 2],
    ]);
  });

  it('closes after a write the disk refused, keeping every write before it', async () => {
    const disk = smallDisk() as SmallTmpfs;
    const dir = join(disk.root, 'meta');
    const store = await MetaStore.open({ dir, logger: silentLogger });
    cleanups.push(() => store.close());
    await store.createTopic({ name: 'before', partitionCount: 1, replicationFactor: 1 });
    fillDisk(disk.root);
    expectDiskFull(await errorOf(store.createTopic({ name: 'refused', partitionCount: 1, replicationFactor: 1 })));

    await within(store.close(), 10_000, 'close after a refused write');
    const reopened = await MetaStore.open({ dir, logger: silentLogger });
    cleanups.push(() => reopened.close());
    expect(reopened.listTopics().map((topic) => topic.name)).toEqual(['before']);
  });
});

describe.skipIf(!hasTmpfs)('a broker whose disk is full', () => {
  it('refuses a topic create with DISK_FULL and keeps running; the create succeeds once space is freed, and a clean stop exits 0', async () => {
    const disk = smallDisk() as SmallTmpfs;
    const dataDir = join(disk.root, 'data');
    const broker = await startBrokerProcess({ dataDir });
    cleanups.push(() => stopAllBrokerProcesses());
    cleanups.push(() => killAllCliProcesses());
    // The default retry budget (60 s): an admin change must not spend it on a full disk.
    const client: RunnelClient = createClient({ brokers: [broker.address] });
    cleanups.push(() => client.close({ timeoutMs: 1_000 }));
    await client.admin.createTopic({ name: 'kept', partitions: 1 });
    const acked = await client.producer().send({ topic: 'kept', value: Buffer.from('acknowledged before the disk filled') });

    const freeSpace = fillDisk(disk.root);
    // At once, not after the retry budget: DISK_FULL stays retriable for producers only.
    const refused = await within(errorOf(client.admin.createTopic({ name: 'refused', partitions: 1 })), 10_000, 'the refused create');
    expectDiskFull(refused);
    expect(refused).toBeInstanceOf(BrokerError);
    expect((refused as BrokerError).retriable).toBe(true);
    const cli = await startCliProcess(['topic', 'create', 'refused-cli', '--broker', broker.address]).result;
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stderr).toMatch(/^runnel: the disk of broker \S+ is full \(.*\): free space in its data directory, or shorten retention/);
    // Still running and serving: the refused topic left nothing, the acknowledged record reads back.
    expect((await client.admin.listTopics()).map((topic) => topic.name)).toEqual(['kept']);
    const [latest] = await client.admin.listOffsets({ topic: 'kept', spec: 'latest' });
    expect(latest?.offset).toBe(acked.offset + 1);

    freeSpace();
    await client.admin.createTopic({ name: 'after', partitions: 1 });
    expect(await broker.stop()).toBe(0);

    const restarted = await startBrokerProcess({ dataDir });
    const again = createClient({ brokers: [restarted.address] });
    cleanups.push(() => again.close({ timeoutMs: 1_000 }));
    expect((await again.admin.listTopics()).map((topic) => topic.name).sort()).toEqual(['after', 'kept']);
    expect(await restarted.stop()).toBe(0);
  });
});

describe.skipIf(!hasTmpfs)('a broker started on a full disk', () => {
  it('says the disk is full and what to do, and leaves no lock file behind', async () => {
    const disk = smallDisk() as SmallTmpfs;
    const dataDir = join(disk.root, 'data');
    mkdirSync(dataDir);
    cleanups.push(fillDisk(disk.root));
    const refused = (() => {
      try {
        lockDataDir(dataDir).release();
        return new Error('expected the lock to be refused');
      } catch (error) {
        return error;
      }
    })();
    expectDiskFull(refused);
    expect((refused as BrokerError).message).toMatch(/the disk holding .* is full .*pass another --data-dir/);
    expect(readdirSync(dataDir)).toEqual([]);
  });
});
