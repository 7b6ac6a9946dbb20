/**
 * A clean stop (SIGTERM) of a broker with long-lived calls open: a tailing consumer
 * (Subscribe), an idle producer (ProduceStream) and a parked long-poll Fetch. The broker
 * ends them itself: the Fetch is answered (empty, not an error), the streams end with
 * BROKER_UNAVAILABLE so clients reconnect, and the shutdown finishes without running into
 * its grace period (no "cutting them" warning). Afterwards a restarted broker serves both
 * clients again.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, it } from 'vitest';
import { createClient, type BrokerError } from '../../src/client/index.js';
import { Broker } from '../../src/broker/index.js';
import { systemClock } from '../../src/common/clock.js';
import { loadBrokerConfig } from '../../src/config/broker-config.js';
import { silentLogger } from '../../src/observability/index.js';
import { startServer } from '../../src/server/index.js';
import { startBroker } from '../support/broker.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';
import { createFaultyFileSystem } from '../support/faulty-file-system.js';
import { pickStablePort } from '../support/ports.js';
import { rawClients, reasonOf, unary } from '../support/raw-grpc.js';
import { recordingLogger } from '../support/recording-logger.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-'));
// A test that fails half-way leaves no broker process running into the next one.
afterEach(async () => {
  await stopAllBrokerProcesses();
  await Promise.all([...heldStartBrokers].map((broker) => killIfRunning(broker)));
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it('ends its streams and parked fetches at a clean stop instead of waiting out the grace period', async () => {
  // Restarted on the same port below: one outside the ephemeral range (pickStablePort), which no
  // connection or port-0 listener on the machine can be handed while the broker is down.
  const broker = await startBrokerProcess({ dataDir, port: await pickStablePort() });
  const client = createClient({ brokers: [broker.address], clientId: 'shutdown-test' });
  const retries: BrokerError[] = [];
  const consumer = client.consumer({ autoOffsetReset: 'earliest', onRetry: (error) => retries.push(error) });
  const producer = client.producer({});
  const raw = rawClients(broker.address);
  try {
    await client.admin.createTopic({ name: 'stop', partitions: 1 });
    await producer.send({ topic: 'stop', value: Buffer.from('before') });
    consumer.assign([{ topic: 'stop', partition: 0 }]);
    await consumer.seek({ topic: 'stop', partition: 0 }, 0);
    const received: string[] = [];
    const reading = (async () => {
      for await (const record of consumer) {
        received.push(String(record.value));
        if (received.length === 2) return;
      }
    })();
    await waitFor(() => received.length === 1, { timeoutMs: 10_000, describe: () => 'the consumer never read the first record' });
    // Parked: nothing past offset 1 yet, and it may wait 60 s. The call after it on the same
    // connection is answered only once the broker has taken the Fetch.
    await unary<Any, Any>(raw.admin, 'ListTopics', {});
    const parked = unary<Any, Any>(raw.log, 'Fetch', { topic: 'stop', partition: 0, offset: 1, maxBytes: 1024, minBytes: 1, maxWaitMs: 60_000 }).then(
      (response): Any | Error => response,
      (error: unknown) => error as Error,
    );
    await unary<Any, Any>(raw.log, 'ListOffsets', { topic: 'stop', spec: 'OFFSET_SPEC_LATEST' });

    const exitCode = await broker.stop();
    expect(exitCode).toBe(0);
    const logs = broker.logs.map((line) => JSON.parse(line) as { msg?: string });
    expect(logs.some((entry) => entry.msg === 'broker stopped cleanly')).toBe(true);
    expect(logs.filter((entry) => entry.msg?.includes('shutdown grace period'))).toEqual([]);
    const answer = await parked;
    if (answer instanceof Error) throw new Error(`the parked Fetch failed instead of answering: ${answer.message}`);
    expect({ batches: answer.recordBatches.length, highWatermark: answer.highWatermark }).toEqual({ batches: 0, highWatermark: '1' });
    await waitFor(() => retries.length > 0, { timeoutMs: 10_000, describe: () => 'the consumer never heard the broker go' });

    // Back on the same port: the producer and the tailing consumer carry on by themselves.
    const again = await startBrokerProcess({ dataDir, port: broker.port });
    await producer.send({ topic: 'stop', value: Buffer.from('after') });
    await reading;
    expect(received).toEqual(['before', 'after']);
    await again.stop();
  } finally {
    raw.close();
    await consumer.close();
    await producer.close({ timeoutMs: 1_000 }).catch(() => undefined);
    await client.close();
  }
}, 60_000);

it('ends a Subscribe whose client half-closed (as grpcurl does after its last message) at a clean stop too', async () => {
  const testBroker = await startBroker();
  const logger = recordingLogger();
  const server = await startServer({ broker: testBroker.broker, host: '127.0.0.1', port: 0, logger, clock: systemClock, produceTimeoutMs: 5_000, inFlightRequestsPerConnectionMax: 100, produceBytesInFlightMax: 1 << 28 });
  const raw = rawClients(server.address);
  try {
    await testBroker.broker.createTopic({ name: 'half', partitions: 1, replicationFactor: 1, configs: {} });
    const subscribe = (raw.log as Any).Subscribe();
    let status: unknown;
    subscribe.on('data', () => undefined);
    subscribe.on('error', (error: unknown) => (status = error));
    subscribe.write({ kind: 'start', start: { topic: 'half', partition: 0, offset: '0', creditBytes: 1024 * 1024 } });
    subscribe.end();
    // The call after it on the same connection is answered only once the broker has taken both.
    await unary<Any, Any>(raw.log, 'ListOffsets', { topic: 'half', spec: 'OFFSET_SPEC_LATEST' });
    await server.close(20_000);
    expect(logger.calls.filter((call) => call.message.includes('shutdown grace period'))).toEqual([]);
    await waitFor(() => status !== undefined, { timeoutMs: 5_000, describe: () => 'the Subscribe never ended' });
    expect(reasonOf(status)).toEqual({ code: 14, reason: 'BROKER_UNAVAILABLE' });
  } finally {
    raw.close();
    await server.close(1_000);
    await testBroker.close();
  }
}, 60_000);

/** A broker process over a disk that hangs every fdatasync from its first stop signal on. */
async function startHungDiskBroker(ownDir: string, args: string[] = []): Promise<BrokerProcess> {
  const fifo = join(ownDir, 'disk.fifo'); // outside the data directory, which storage lists
  execFileSync('mkfifo', [fifo]);
  return startBrokerProcess({ dataDir: join(ownDir, 'data'), entry: { script: join(REPO_ROOT, 'test/support/hung-disk-broker.ts'), args: [fifo] }, args });
}

interface LogEntry {
  msg?: string;
  stage?: string;
  partitionsNotClosed?: string[];
  partitionsNotClosedCount?: number;
  callsInFlight?: number;
}

function logEntries(broker: BrokerProcess): LogEntry[] {
  return broker.logs.map((line) => JSON.parse(line) as LogEntry);
}

/** Sends `count` records round-robin over the topic's `partitions`; resolves with what was acknowledged. */
async function produceAcknowledged(address: string, topic: string, partitions: number, count: number): Promise<string[]> {
  const client = createClient({ brokers: [address], clientId: 'shutdown-acked' });
  try {
    await client.admin.createTopic({ name: topic, partitions });
    const producer = client.producer({});
    const sent = await Promise.all(Array.from({ length: count }, (_, i) => producer.send({ topic, partition: i % partitions, value: Buffer.from(`r${i}`) }).then((meta) => `${meta.partition}/${meta.offset}/r${i}`)));
    await producer.close();
    return sent.sort();
  } finally {
    await client.close();
  }
}

/**
 * A disk that stops answering while the broker stops: every partition's close hangs in its
 * fdatasync (a real one: a libuv pool thread stays blocked). The stop must still end, at
 * --shutdown-timeout-ms: it logs what it waits on while it waits, then that the clean marks
 * were not all written, and exits non-zero even with pool threads stuck (process.exit would
 * hang there). A call made meanwhile is refused at once with UNAVAILABLE. Every acknowledged
 * record is read back after a restart, which recovers the two partitions.
 */
it('exits non-zero at its shutdown timeout when closing partitions hangs on the disk, naming them, and keeps every acknowledged record', async () => {
  const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-hung-'));
  try {
    const broker = await startHungDiskBroker(ownDir, ['--shutdown-timeout-ms', '6000']);
    const acknowledged = await produceAcknowledged(broker.address, 'hung', 2, 40);
    const stopStartedMs = Date.now();
    process.kill(broker.pid, 'SIGTERM');
    // A call made while it stops is refused at once (retriable), not left waiting on the disk.
    await waitFor(() => logEntries(broker).some((entry) => entry.msg === 'shutting down'), { timeoutMs: 5_000, describe: () => 'no "shutting down" line' });
    const raw = rawClients(broker.address);
    const callStartedMs = Date.now();
    const refusal = await unary<Any, Any>(raw.log, 'ListOffsets', { topic: 'hung', spec: 'OFFSET_SPEC_LATEST' }).then(
      () => 'answered',
      (error: unknown) => reasonOf(error).code,
    );
    raw.close();
    expect({ refusal, isPrompt: Date.now() - callStartedMs < 2_000 }).toEqual({ refusal: 14, isPrompt: true });
    const exitCode = await broker.exited;
    const stopMs = Date.now() - stopStartedMs;
    expect({ exitCode, exitSignal: broker.exitSignal }).toEqual({ exitCode: null, exitSignal: 'SIGKILL' });
    expect(stopMs).toBeGreaterThanOrEqual(6_000);
    expect(stopMs).toBeLessThan(6_000 + 10_000);
    const entries = logEntries(broker);
    const progress = entries.filter((entry) => entry.msg === 'shutdown still waiting');
    expect(progress.map((entry) => ({ stage: entry.stage, partitions: entry.partitionsNotClosed?.sort(), calls: entry.callsInFlight }))).toEqual([
      { stage: 'closing partitions', partitions: ['hung-0', 'hung-1'], calls: 0 },
    ]);
    const timedOut = entries.filter((entry) => entry.msg?.startsWith('shutdown timed out') === true);
    expect(timedOut.map((entry) => ({ partitions: entry.partitionsNotClosed?.sort(), count: entry.partitionsNotClosedCount }))).toEqual([{ partitions: ['hung-0', 'hung-1'], count: 2 }]);
    expect(entries.some((entry) => entry.msg === 'broker stopped cleanly')).toBe(false);

    const again = await startBrokerProcess({ dataDir: join(ownDir, 'data') });
    expect(logEntries(again).some((entry) => entry.msg?.includes('did not stop cleanly') === true)).toBe(true);
    expect(await readAll(again.address, 'hung', 2, acknowledged.length)).toEqual(acknowledged);
    expect(await again.stop()).toBe(0);
  } finally {
    rmSync(ownDir, { recursive: true, force: true });
  }
}, 90_000);

/** Every record of the topic's partitions as `partition/offset/value`, sorted; waits for `count`. */
async function readAll(address: string, topic: string, partitions: number, count: number): Promise<string[]> {
  const client = createClient({ brokers: [address], clientId: 'shutdown-read' });
  const consumer = client.consumer({ autoOffsetReset: 'earliest' });
  try {
    consumer.assign(Array.from({ length: partitions }, (_, partition) => ({ topic, partition })));
    const read: string[] = [];
    for await (const record of consumer) {
      read.push(`${record.partition}/${record.offset}/${String(record.value)}`);
      if (read.length === count) break;
    }
    return read.sort();
  } finally {
    await consumer.close();
    await client.close();
  }
}

/**
 * Ctrl-C pressed twice, or a supervisor that repeats SIGTERM: the second signal ends a stop at
 * once, non-zero, with a line saying so, whatever the stop was waiting on (here a hung disk,
 * with the default 60 s bound far away).
 */
it('exits at once, non-zero, when a second SIGINT or SIGTERM arrives during a stop', async () => {
  for (const [first, second] of [['SIGINT', 'SIGINT'], ['SIGTERM', 'SIGTERM']] as const) {
    const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-twice-'));
    try {
      const broker = await startHungDiskBroker(ownDir);
      await produceAcknowledged(broker.address, 'twice', 1, 1);
      process.kill(broker.pid, first);
      await waitFor(() => logEntries(broker).some((entry) => entry.msg === 'shutting down'), { timeoutMs: 10_000, describe: () => `no "shutting down" after ${first}: ${broker.logs.join('\n')}` });
      const secondSentMs = Date.now();
      process.kill(broker.pid, second);
      const exitCode = await broker.exited;
      expect({ exitCode, exitSignal: broker.exitSignal }).toEqual({ exitCode: null, exitSignal: 'SIGKILL' });
      expect(Date.now() - secondSentMs).toBeLessThan(5_000);
      const entries = logEntries(broker);
      expect(entries.filter((entry) => entry.msg?.startsWith('second signal during shutdown') === true).map((entry) => entry.partitionsNotClosed)).toEqual([['twice-0']]);
      expect(entries.some((entry) => entry.msg === 'broker stopped cleanly')).toBe(false);
    } finally {
      rmSync(ownDir, { recursive: true, force: true });
    }
  }
}, 90_000);

/**
 * A Produce in flight when the stop begins (its fdatasync held, flush=always) is answered with
 * its offset, not cut: the server waits for it, the broker closes only after it, and the
 * count of calls in flight the stop logs sees it until its answer goes out.
 */
it('answers a produce in flight when the stop begins, and counts it in flight until then', async () => {
  const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-inflight-'));
  const { fileSystem, faults } = createFaultyFileSystem();
  const config = { ...loadBrokerConfig({}), dataDir: ownDir, host: '127.0.0.1', port: 0, logLevel: 'silent' as const, flush: 'always' };
  const broker = await Broker.open({ config, logger: silentLogger, fileSystem });
  const logger = recordingLogger();
  const server = await startServer({ broker, host: '127.0.0.1', port: 0, logger, clock: systemClock, produceTimeoutMs: 30_000, inFlightRequestsPerConnectionMax: 100, produceBytesInFlightMax: 1 << 28 });
  const raw = rawClients(server.address);
  try {
    await broker.createTopic({ name: 'inflight', partitions: 1, replicationFactor: 1, configs: {} });
    faults.holdDatasyncs({ path: /\.log$/ });
    const produced = unary<Any, Any>(raw.log, 'Produce', { acks: 'ACKS_LEADER', topics: [{ topic: 'inflight', partitions: [{ partition: 0, records: { records: [{ value: Buffer.from('held') }] } }] }] });
    await waitFor(() => faults.heldDatasyncs === 1, { timeoutMs: 5_000, describe: () => 'the produce never reached its fdatasync' });
    expect(server.callsInFlight).toBe(1);
    const closing = server.close(20_000);
    faults.releaseDatasync();
    const answer = await produced;
    expect(answer.topics[0].partitions[0]).toMatchObject({ baseOffset: '0', error: null });
    await closing;
    expect(server.callsInFlight).toBe(0);
    expect(logger.calls.filter((call) => call.message.includes('shutdown grace period'))).toEqual([]);
  } finally {
    raw.close();
    faults.clear();
    await server.close(1_000);
    await broker.close();
    rmSync(ownDir, { recursive: true, force: true });
  }
}, 60_000);

interface HeldStartBroker {
  readonly pid: number;
  readonly logs: LogEntry[];
  /** The exit code and signal, once it has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Its stdin (test/support/held-exit-broker.ts holds the process until it ends). */
  readonly stdin: NodeJS.WritableStream;
}

/**
 * A broker process whose start-up waits at its listing of the data directory
 * (test/support/held-start-broker.ts): until its first signal, or for good. Spawned here, not
 * with startBrokerProcess, which waits for "broker started"; the caller kills it by PID.
 */
function spawnHeldStartBroker(mode: 'until-signal' | 'forever', dataDir: string, args: string[] = []): HeldStartBroker {
  return spawnEntryBroker(['test/support/held-start-broker.ts', mode], dataDir, args);
}

/** `runnel broker` run by the test entry `entry` (its script, then its arguments); tracked for afterEach. */
function spawnEntryBroker(entry: [string, ...string[]], dataDir: string, args: string[] = []): HeldStartBroker {
  const [script, ...entryArgs] = entry;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, script), ...entryArgs, 'broker', '--data-dir', dataDir, '--host', '127.0.0.1', '--port', '0', ...args],
    { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const logs: LogEntry[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as LogEntry);
    } catch {
      // not a log line
    }
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const broker = { pid: child.pid as number, logs, exited, stdin: child.stdin as NodeJS.WritableStream };
  heldStartBrokers.add(broker);
  void exited.then(() => heldStartBrokers.delete(broker));
  return broker;
}

/** Held-start brokers still running: killed (by PID) after each test, also one that timed out. */
const heldStartBrokers = new Set<HeldStartBroker>();

async function killIfRunning(broker: HeldStartBroker): Promise<void> {
  const ended = await Promise.race([broker.exited, Promise.resolve(undefined)]);
  if (ended !== undefined) return;
  process.kill(broker.pid, 'SIGKILL');
  await broker.exited;
}

/**
 * Ctrl-C while a broker is still opening its data directory (recovering after a crash, say):
 * the signal is kept and the broker stops as soon as it serves, cleanly, exit 0. Before, node's
 * default action killed it mid-start with no line saying why.
 */
it('stops cleanly when SIGINT arrives while it is still starting', async () => {
  const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-starting-'));
  const broker = spawnHeldStartBroker('until-signal', join(ownDir, 'data'));
  try {
    await waitFor(() => broker.logs.some((entry) => entry.msg === 'broker starting'), { timeoutMs: 20_000, describe: () => 'no "broker starting" line' });
    process.kill(broker.pid, 'SIGINT');
    expect(await broker.exited).toEqual({ code: 0, signal: null });
    const milestones = new Set(['broker starting', 'broker started', 'shutting down', 'broker stopped cleanly']);
    expect(broker.logs.map((entry) => entry.msg).filter((msg) => msg !== undefined && (milestones.has(msg) || msg.startsWith('stop requested')))).toEqual([
      'broker starting',
      'stop requested while starting: stopping as soon as start-up has finished',
      'broker started',
      'shutting down',
      'broker stopped cleanly',
    ]);
  } finally {
    await killIfRunning(broker);
    rmSync(ownDir, { recursive: true, force: true });
  }
}, 60_000);

/**
 * A start-up stuck on a slow disk: a second signal ends it at once, and without one the bound
 * counted from the first signal ends it, each non-zero with a line saying so.
 */
it('exits at a second signal, or at its shutdown timeout, when start-up does not finish', async () => {
  for (const ending of ['second signal', 'timeout'] as const) {
    const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-stuck-start-'));
    const broker = spawnHeldStartBroker('forever', join(ownDir, 'data'), ['--shutdown-timeout-ms', ending === 'timeout' ? '2000' : '60000']);
    try {
      await waitFor(() => broker.logs.some((entry) => entry.msg === 'broker starting'), { timeoutMs: 20_000, describe: () => 'no "broker starting" line' });
      const firstSentMs = Date.now();
      process.kill(broker.pid, 'SIGTERM');
      await waitFor(() => broker.logs.some((entry) => entry.msg?.startsWith('stop requested while starting') === true), { timeoutMs: 5_000, describe: () => 'the signal was not taken' });
      if (ending === 'second signal') process.kill(broker.pid, 'SIGTERM');
      expect(await broker.exited).toEqual({ code: null, signal: 'SIGKILL' });
      const last = broker.logs.at(-1);
      if (ending === 'second signal') {
        expect(last?.msg).toMatch(/^second signal during start-up/);
        expect(Date.now() - firstSentMs).toBeLessThan(5_000);
      } else {
        expect({ msg: last?.msg?.split(':')[0], stage: last?.stage }).toEqual({ msg: 'shutdown timed out (shutdownTimeoutMs)', stage: 'starting' });
        expect(Date.now() - firstSentMs).toBeGreaterThanOrEqual(2_000);
      }
      expect(broker.logs.some((entry) => entry.msg === 'broker started')).toBe(false);
    } finally {
      await killIfRunning(broker);
      rmSync(ownDir, { recursive: true, force: true });
    }
  }
}, 60_000);

/**
 * A supervisor that repeats SIGTERM, or Ctrl-C pressed again, after the stop has finished
 * while the process is still on its way out (test/support/held-exit-broker.ts holds it there):
 * the signal is ignored, with a line saying so, and the clean stop's exit status 0 stays.
 * Neither the forced exit of a second signal during the stop (137) nor node's default action
 * (143, were the handlers gone by then).
 */
it('keeps a clean exit, status 0, when a signal arrives after the stop has finished', async () => {
  for (const [first, late] of [['SIGTERM', 'SIGTERM'], ['SIGINT', 'SIGINT']] as const) {
    const ownDir = mkdtempSync(join(tmpdir(), 'runnel-shutdown-late-'));
    const broker = spawnEntryBroker(['test/support/held-exit-broker.ts'], join(ownDir, 'data'));
    try {
      const seen = (msg: string) => (): boolean => broker.logs.some((entry) => entry.msg === msg);
      await waitFor(seen('broker started'), { timeoutMs: 20_000, describe: () => 'no "broker started" line' });
      process.kill(broker.pid, first);
      await waitFor(seen('held after the stop'), { timeoutMs: 20_000, describe: () => `the stop did not finish: ${JSON.stringify(broker.logs)}` });
      let hasExited = false;
      void broker.exited.then(() => (hasExited = true));
      process.kill(broker.pid, late);
      // Its line, or the process gone (killed by it): the exit status below says which.
      await waitFor(() => seen('signal after the stop had finished: ignored, the process is exiting')() || hasExited, {
        timeoutMs: 10_000,
        describe: () => `the late ${late} was not taken: ${JSON.stringify(broker.logs.slice(-3))}`,
      });
      broker.stdin.end();
      expect(await broker.exited).toEqual({ code: 0, signal: null });
      expect(broker.logs.map((entry) => entry.msg).filter((msg) => msg === 'broker stopped cleanly' || msg?.startsWith('second signal') === true)).toEqual(['broker stopped cleanly']);
    } finally {
      await killIfRunning(broker);
      rmSync(ownDir, { recursive: true, force: true });
    }
  }
}, 90_000);
