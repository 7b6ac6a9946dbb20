/**
 * A broker process starts on a data directory holding things it did not write, serves its own
 * topics, and leaves the rest as it found it. Method: a fresh data directory seeded with what
 * operators and file systems put there (lost+found, a hidden file, a stray file, a directory
 * named like a partition of an unknown topic, one whose name is no valid topic, a directory and
 * a file whose names merely end in ".deleted"), plus a partition directory a crash kept from
 * being removed; a real `runnel broker` child process (127.0.0.1, port 0) must start, create
 * and serve a topic, remove only the leftover it renamed itself, and say which entries it
 * ignored; after it stops, every other entry is still there, unchanged. And partitions it
 * cannot open (a file where the directory was, a partition.state from a newer version) are
 * answered with errors naming the path and the fix while the rest is served.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { createClient, type RunnelClient } from '../../src/client/index.js';
import { startBrokerProcess, tearDownBrokerProcess, type BrokerProcess } from '../support/broker-process.js';
import { waitFor } from '../support/wait-for.js';

const state: { client?: RunnelClient | undefined; broker?: BrokerProcess | undefined; dataDir?: string | undefined } = {};

afterEach(async () => {
  await tearDownBrokerProcess(state);
  state.client = undefined;
  state.broker = undefined;
  state.dataDir = undefined;
});

it('starts beside entries it did not write, serves its topics, and removes only its own leftover deletes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'runnel-hygiene-'));
  state.dataDir = dataDir;
  mkdirSync(join(dataDir, 'lost+found'));
  writeFileSync(join(dataDir, '.DS_Store'), 'finder');
  writeFileSync(join(dataDir, 'notes.txt'), 'operator notes');
  mkdirSync(join(dataDir, 'unknown-0'));
  writeFileSync(join(dataDir, 'unknown-0', '00000000000000000000.log'), 'not ours to serve');
  mkdirSync(join(dataDir, 'bad#name-0'));
  mkdirSync(join(dataDir, 'keep.deleted'));
  writeFileSync(join(dataDir, 'keep.deleted', 'precious'), 'mine');
  writeFileSync(join(dataDir, 'notes.deleted'), 'mine too');
  mkdirSync(join(dataDir, 'gone-0.1700000000000-0.deleted'));
  writeFileSync(join(dataDir, 'gone-0.1700000000000-0.deleted', '00000000000000000000.log'), 'a delete a crash interrupted');

  state.broker = await startBrokerProcess({ dataDir });
  state.client = createClient({ brokers: [state.broker.address] });
  await state.client.admin.createTopic({ name: 'served', partitions: 1 });
  const producer = state.client.producer();
  await producer.send({ topic: 'served', partition: 0, value: 'one' });
  await producer.send({ topic: 'served', partition: 0, value: 'two' });
  const latest = await state.client.admin.listOffsets({ topic: 'served', spec: 'latest' });
  expect(latest.map((entry: { offset: number }) => entry.offset)).toEqual([2]);
  await waitFor(() => !readdirSync(dataDir).includes('gone-0.1700000000000-0.deleted'), { timeoutMs: 10_000, describe: () => readdirSync(dataDir).join(', ') });

  const logLines = state.broker.logs.map((line) => JSON.parse(line) as { msg?: string; names?: string[]; topic?: string; partitions?: number[] });
  const ignored = logLines.find((line) => line.msg?.startsWith('ignoring entries of the data directory') === true);
  expect([...(ignored?.names ?? [])].sort()).toEqual(['.DS_Store', 'bad#name-0', 'keep.deleted', 'notes.deleted', 'notes.txt']);
  expect(logLines.some((line) => line.topic === 'unknown' && line.msg?.startsWith('partition directories without a topic record') === true)).toBe(true);

  await state.client.close({ timeoutMs: 1_000 });
  state.client = undefined;
  expect(await state.broker.stop()).toBe(0);
  expect(readdirSync(dataDir).sort()).toEqual(['.DS_Store', 'bad#name-0', 'keep.deleted', 'lost+found', 'meta', 'notes.deleted', 'notes.txt', 'served-0', 'unknown-0']);
  expect(readFileSync(join(dataDir, 'keep.deleted', 'precious'), 'utf8')).toBe('mine');
  expect(readFileSync(join(dataDir, 'notes.deleted'), 'utf8')).toBe('mine too');
  expect(readFileSync(join(dataDir, 'unknown-0', '00000000000000000000.log'), 'utf8')).toBe('not ours to serve');
});

it('starts with partitions it cannot open, serves the others, and names each unusable path and what to do', async () => {
  // A partition directory replaced by a file, and a partition.state from a newer version: the
  // broker must start, serve the healthy partition, answer the others with STORAGE_ERROR whose
  // message names the path and the fix, and leave both files as they were.
  const dataDir = mkdtempSync(join(tmpdir(), 'runnel-hygiene-'));
  state.dataDir = dataDir;
  state.broker = await startBrokerProcess({ dataDir });
  state.client = createClient({ brokers: [state.broker.address] });
  await state.client.admin.createTopic({ name: 'mixed', partitions: 3 });
  const producer = state.client.producer();
  for (const partition of [0, 1, 2]) await producer.send({ topic: 'mixed', partition, value: `p${partition}` });
  await state.client.close({ timeoutMs: 1_000 });
  state.client = undefined;
  expect(await state.broker.stop()).toBe(0);

  rmSync(join(dataDir, 'mixed-1'), { recursive: true });
  writeFileSync(join(dataDir, 'mixed-1'), 'a file where the partition directory was');
  const newer = '{"version":2,"recoveryCheckpoint":0,"somethingNew":true}\n';
  writeFileSync(join(dataDir, 'mixed-2', 'partition.state'), newer);

  state.broker = await startBrokerProcess({ dataDir });
  state.client = createClient({ brokers: [state.broker.address], retry: { timeoutMs: 500 } });
  const results = await state.client.admin.listOffsetsEach({ topic: 'mixed', spec: 'latest' });
  const byPartition = new Map(results.map((result) => [result.partition, result]));
  expect(byPartition.get(0)).toMatchObject({ partition: 0, offset: 1 });
  const notDirectory = byPartition.get(1)?.error;
  expect(notDirectory?.reason).toBe('STORAGE_ERROR');
  expect(notDirectory?.message).toContain(join(dataDir, 'mixed-1'));
  expect(notDirectory?.message).toMatch(/move that file out of the data directory/);
  const newerState = byPartition.get(2)?.error;
  expect(newerState?.reason).toBe('STORAGE_ERROR');
  expect(newerState?.message).toContain(join(dataDir, 'mixed-2', 'partition.state'));
  expect(newerState?.message).toMatch(/newer Runnel/);

  await state.client.close({ timeoutMs: 1_000 });
  state.client = undefined;
  expect(await state.broker.stop()).toBe(0);
  expect(readFileSync(join(dataDir, 'mixed-1'), 'utf8')).toBe('a file where the partition directory was');
  expect(readFileSync(join(dataDir, 'mixed-2', 'partition.state'), 'utf8')).toBe(newer);
});
