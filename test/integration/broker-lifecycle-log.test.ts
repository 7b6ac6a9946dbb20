/**
 * The start and stop lines of `runnel broker`, as an operator reads them. Goal: one line
 * before anything is opened that says what the broker runs with (version, address asked
 * for, data dir, flush policy, retention defaults and every setting changed from its default),
 * one when it serves (the bound address and how long start-up took) and one when it has
 * stopped (how long the stop took). Method: a broker child process on 127.0.0.1:0 with a
 * fresh data dir and two settings changed (a flag and a RUNNEL_* variable), stopped with
 * SIGTERM; its JSON lines are read back.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaults } from '../../src/config/defaults.js';
import { startBrokerProcess, stopAllBrokerProcesses } from '../support/broker-process.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopAllBrokerProcesses();
});

describe('runnel broker start and stop lines', () => {
  it('states the version, address, data dir and effective settings at start, the bound address when ready, and how long the stop took', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'runnel-lifecycle-log-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const broker = await startBrokerProcess({ dataDir, args: ['--flush', 'always'], env: { RUNNEL_OPEN_PARTITIONS_MAX: '100' } });
    expect(await broker.stop()).toBe(0);
    await waitFor(() => broker.logs.some((line) => line.includes('"broker stopped cleanly"')), { timeoutMs: 10_000, describe: () => broker.logs.join('\n') });
    const entries = broker.logs.map((line) => JSON.parse(line) as Any);
    const indexOf = (msg: string): number => entries.findIndex((entry) => entry.msg === msg);
    const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

    expect(indexOf('broker starting')).toBe(0);
    expect(entries[indexOf('broker starting')]).toMatchObject({
      level: 30,
      component: 'broker',
      version,
      host: '127.0.0.1',
      port: 0,
      dataDir,
      flush: 'always',
      retentionMs: defaults.retentionMs,
      retentionBytes: defaults.retentionBytes,
      overridden: { openPartitionsMax: 100 },
    });
    const started = entries[indexOf('broker started')];
    expect(started).toMatchObject({ level: 30, component: 'broker', address: `127.0.0.1:${broker.port}`, port: broker.port });
    expect(started?.startMs).toBeGreaterThanOrEqual(0);
    const stopped = entries[indexOf('broker stopped cleanly')];
    expect(stopped).toMatchObject({ level: 30, component: 'broker' });
    expect(stopped?.stopMs).toBeGreaterThanOrEqual(0);
    expect(indexOf('broker starting')).toBeLessThan(indexOf('broker started'));
    expect(indexOf('broker started')).toBeLessThan(indexOf('shutting down'));
    expect(indexOf('shutting down')).toBeLessThan(indexOf('broker stopped cleanly'));
  });
});
