/**
 * Closing a consumer or a producer on its own (not the client) ends everything it started:
 * a program that closes the parts it used exits promptly, even when a call of theirs was
 * still retried against a broker out of reach. Method: a client in a child process
 * (test/support/close-child.ts) whose calls go to an address nothing listens on (or to a
 * broker stopped under it), with a 20 s retry budget; it closes the part while the retries
 * run and prints `closed`; the process must exit within a few seconds of that line. Before,
 * the retries ran on for the rest of the budget (a 19 s exit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, type RunnelClient } from '../../src/client/index.js';
import { startBroker, type TestBroker } from '../support/broker.js';
import { startHungServer, type HungServer } from '../support/hung-server.js';
import { waitFor } from '../support/wait-for.js';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEAD_ADDRESS = '127.0.0.1:1';
const RETRY_TIMEOUT_MS = 20_000;
/** Well below the retry budget, well above a process's own exit time. */
const EXIT_AFTER_CLOSE_MS_MAX = 5_000;

const children = new Set<ChildProcess>();
let client: RunnelClient | undefined;
let hung: HungServer | undefined;
let broker: TestBroker | undefined;

afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  await client?.close({ timeoutMs: 0 });
  client = undefined;
  await hung?.close();
  hung = undefined;
  await broker?.close();
  broker = undefined;
});

interface CloseChild {
  child: ChildProcess;
  lines: string[];
  /** Wall-clock ms of each line, by its text (the first time it came). */
  lineAtMs: Map<string, number>;
  exitedAtMs: () => number | undefined;
}

function startCloseChild(args: string[]): CloseChild {
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'test/support/close-child.ts'), ...args], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  const lines: string[] = [];
  const lineAtMs = new Map<string, number>();
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    lines.push(line);
    if (!lineAtMs.has(line)) lineAtMs.set(line, Date.now());
  });
  let exitedAtMs: number | undefined;
  child.once('exit', () => (exitedAtMs = Date.now()));
  return { child, lines, lineAtMs, exitedAtMs: () => exitedAtMs };
}

/** Waits for `closed`, then for the exit, and returns how long after `closed` it came. */
async function exitAfterCloseMs(closeChild: CloseChild): Promise<number> {
  const closedAtMs = await waitFor(() => closeChild.lineAtMs.get('closed'), {
    timeoutMs: 30_000,
    describe: () => `the child never closed; it printed ${JSON.stringify(closeChild.lines)}`,
  });
  const exitedAtMs = await waitFor(closeChild.exitedAtMs, {
    timeoutMs: RETRY_TIMEOUT_MS + 10_000,
    describe: () => `the child did not exit; it printed ${JSON.stringify(closeChild.lines)}`,
  });
  return exitedAtMs - closedAtMs;
}

describe('a part of a client closed on its own', () => {
  it('lets the process exit promptly after consumer.close() while ListOffsets for a seek and an offset reset were retried', async () => {
    const closeChild = startCloseChild(['consumer', DEAD_ADDRESS, String(RETRY_TIMEOUT_MS)]);
    const exitMs = await exitAfterCloseMs(closeChild);
    expect(closeChild.lines).toContain('seek resolved');
    expect(exitMs).toBeLessThan(EXIT_AFTER_CLOSE_MS_MAX);
    expect(closeChild.child.exitCode).toBe(0);
  });

  it('settles a seek at consumer.close() while its ListOffsets waits at a hung broker, without waiting for the call deadline', async () => {
    // The attempt in flight is cancelled: a hung broker accepts the connection and never
    // answers, so it would otherwise end only at its deadline (requestTimeoutMs, 30 s here).
    hung = await startHungServer();
    client = createClient({ brokers: [hung.address], requestTimeoutMs: 30_000, retry: { timeoutMs: RETRY_TIMEOUT_MS } });
    const consumer = client.consumer({ autoOffsetReset: 'none' });
    const tp = { topic: 'hung-seek', partition: 0 };
    consumer.assign([tp]);
    let outcome: unknown = 'pending';
    consumer.seek(tp, 'earliest').then(
      () => (outcome = 'resolved'),
      (error: unknown) => (outcome = error),
    );
    const server = hung;
    await waitFor(() => server.sockets.size > 0, { timeoutMs: 10_000, describe: () => 'ListOffsets never connected to the hung broker' });
    await consumer.close();
    await waitFor(() => outcome !== 'pending', { timeoutMs: 2_000, describe: () => 'the seek was still pending 2 s after close' });
    expect(outcome).toBe('resolved');
  });

  it('lets the process exit promptly after producer.close() while the metadata load its record waits for was retried', async () => {
    const closeChild = startCloseChild(['producer-metadata', DEAD_ADDRESS, String(RETRY_TIMEOUT_MS)]);
    expect(await exitAfterCloseMs(closeChild)).toBeLessThan(EXIT_AFTER_CLOSE_MS_MAX);
    expect(closeChild.child.exitCode).toBe(0);
  });

  it('lets the process exit promptly after producer.close() while InitProducerId was retried against a broker that went away', async () => {
    broker = await startBroker();
    const setup = createClient({ brokers: [broker.address] });
    await setup.admin.createTopic({ name: 'close-id', partitions: 1 });
    await setup.close();
    const closeChild = startCloseChild(['producer-id', broker.address, String(RETRY_TIMEOUT_MS), 'close-id']);
    await waitFor(() => closeChild.lines.includes('cached'), { timeoutMs: 30_000, describe: () => `the child printed ${JSON.stringify(closeChild.lines)}` });
    await broker.close();
    broker = undefined;
    closeChild.child.stdin!.write('go\n');
    expect(await exitAfterCloseMs(closeChild)).toBeLessThan(EXIT_AFTER_CLOSE_MS_MAX);
    expect(closeChild.child.exitCode).toBe(0);
  });
});
