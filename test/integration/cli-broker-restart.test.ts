/**
 * `runnel produce` and `runnel consume` ride out a broker that dies and comes back, and say
 * so on stderr. Method: a real `runnel broker` child process on 127.0.0.1 (port 0, then the
 * same port again) with a fresh data dir; a `produce` fed through a pipe and a following
 * `consume` run as child processes. The broker is killed (SIGKILL) and a line written while
 * it is down; both commands must report the outage on stderr (a line an operator can grep,
 * saying what is wrong and what happens next), keep going, and report the recovery once the
 * broker is started again on the same data dir and port. Then stdin is closed: produce exits
 * 0, and every line is read back exactly once, in order, by the consume that ran through the
 * outage and by a fresh one. And when the broker stays away past --delivery-timeout-ms,
 * produce gives up at the time its stderr announced, exiting 1 with the line that failed.
 * A produce started while the broker is down says so the same way and waits for it, up to
 * --delivery-timeout-ms, rather than failing after the CLI's 5 s retry budget for admin calls;
 * so does a first line whose topic metadata cannot be loaded because the broker went away.
 * `consume` (following and --no-follow, up to --api-timeout-ms) and `perf produce` (up to
 * --delivery-timeout-ms) started while the broker is down wait for it the same way: nothing
 * listens on the broker's port when they start, and they must say on stderr that they wait,
 * then do their work once the broker is started on that port with the topic on disk; with
 * no broker at all they give up when their budget runs out. `perf consume` (up to
 * --api-timeout-ms) waits the same way, and its clock starts after the wait. And a `perf
 * produce` whose broker is killed while it sends says so on stderr, as `produce` does, and
 * again when the broker is back, then reports every record acknowledged, exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient } from '../../src/client/index.js';
import { killAllCliProcesses, startCliProcess, type CliProcess } from '../support/cli-process.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';
import { pickStablePort, unusedPort } from '../support/ports.js';
import { waitFor } from '../support/wait-for.js';

let dataDir: string | undefined;

afterEach(async () => {
  killAllCliProcesses();
  await stopAllBrokerProcesses();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

/** Waits until `cli`'s stderr matches `pattern`; the deadline's message shows both streams. */
async function waitForStderr(cli: CliProcess, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => pattern.test(cli.stderr()), {
    timeoutMs,
    intervalMs: 50,
    describe: () => `stderr ${JSON.stringify(cli.stderr())} does not match ${pattern}; stdout ${JSON.stringify(cli.stdout().slice(-300))}`,
  });
}

/**
 * A broker on a fresh data dir with `topic` created through the CLI, and the env pointing the
 * CLI at it. The tests restart it on the same port, so the port is outside the ephemeral range
 * (pickStablePort): no connection or port-0 listener is given it while the broker is down.
 */
async function brokerWithTopic(topic: string): Promise<{ broker: BrokerProcess; env: { RUNNEL_BROKER: string }; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-cli-restart-'));
  dataDir = dir;
  const broker = await startBrokerProcess({ dataDir: dir, port: await pickStablePort() });
  const env = { RUNNEL_BROKER: broker.address };
  const created = await startCliProcess(['topic', 'create', topic], { env }).result;
  expect(created, created.stderr).toMatchObject({ code: 0 });
  return { broker, env, dir };
}

/**
 * A broker data dir holding `topic` with `lines` in it, and a port nothing listens on now: the
 * broker that wrote them ran on that port and is stopped. The port is outside the ephemeral
 * range (pickStablePort), so no connection is given it while the broker is down.
 */
async function stoppedBrokerWithTopic(topic: string, lines: string[]): Promise<{ dir: string; port: number; env: { RUNNEL_BROKER: string } }> {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-cli-restart-'));
  dataDir = dir;
  const port = await pickStablePort();
  const broker = await startBrokerProcess({ dataDir: dir, port });
  const env = { RUNNEL_BROKER: broker.address };
  const created = await startCliProcess(['topic', 'create', topic], { env }).result;
  expect(created, created.stderr).toMatchObject({ code: 0 });
  if (lines.length > 0) {
    const producer = startCliProcess(['produce', topic], { env });
    producer.write(lines.map((line) => `${line}\n`).join(''));
    producer.endInput();
    const produced = await producer.result;
    expect(produced, produced.stderr).toMatchObject({ code: 0 });
  }
  expect(await broker.stop()).toBe(0);
  return { dir, port, env };
}

/** Every line of `stderr` starts with `prefix` (the notices; no other noise). */
function expectOnlyNotices(stderr: string, prefix: string): void {
  expect(stderr.split('\n').filter((line) => line !== '').every((line) => line.startsWith(prefix)), stderr).toBe(true);
}

/** A fresh `consume --no-follow` of `topic` from the beginning prints exactly `stdout`, and nothing on stderr. */
async function expectTopicReadsBack(topic: string, env: { RUNNEL_BROKER: string }, stdout: string): Promise<void> {
  const replay = await startCliProcess(['consume', topic, '--from', 'beginning', '--no-follow'], { env }).result;
  expect(replay, replay.stderr).toMatchObject({ code: 0, stdout, stderr: '' });
}

async function waitForStdout(cli: CliProcess, expected: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => cli.stdout() === expected, {
    timeoutMs,
    intervalMs: 50,
    describe: () => `stdout ${JSON.stringify(cli.stdout())}, expected ${JSON.stringify(expected)}; stderr ${JSON.stringify(cli.stderr())}`,
  });
}

describe('runnel produce and consume while the broker restarts', () => {
  it('say on stderr that the broker is unreachable and that it is back, lose and duplicate nothing, and produce exits 0', async () => {
    const topic = 'cli-restart';
    const started = await brokerWithTopic(topic);
    let broker = started.broker;
    const { env, dir } = started;

    const consumer = startCliProcess(['consume', topic, '--from', 'beginning'], { env, timeoutMs: 110_000 });
    const producer = startCliProcess(['produce', topic], { env, timeoutMs: 110_000 });
    producer.write('line-1\n');
    await waitForStdout(consumer, 'line-1\n');

    await broker.kill('SIGKILL');
    producer.write('line-2\n');
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(
      producer,
      new RegExp(`^runnel produce: cannot reach broker ${escaped} \\([^)]+\\); 1 line waiting, retrying until \\d\\d:\\d\\d:\\d\\d \\(--delivery-timeout-ms\\), then exits 1$`, 'm'),
    );
    await waitForStderr(consumer, new RegExp(`^runnel consume: cannot reach broker ${escaped} \\([^)]+\\); retrying until Ctrl-C, reading resumes where it stopped$`, 'm'));
    producer.write('line-3\n');

    broker = await startBrokerProcess({ dataDir: dir, port: broker.port });
    await waitForStderr(producer, new RegExp(`^runnel produce: broker ${escaped} is back; lines delivered again after \\d+ s$`, 'm'));
    await waitForStdout(consumer, 'line-1\nline-2\nline-3\n');
    await waitForStderr(consumer, new RegExp(`^runnel consume: broker ${escaped} is back; reading ${topic} again after \\d+ s$`, 'm'));

    producer.write('line-4\n');
    producer.endInput();
    const produced = await producer.result;
    expect(produced.code, produced.stderr).toBe(0);
    expectOnlyNotices(produced.stderr, 'runnel produce: ');
    await waitForStdout(consumer, 'line-1\nline-2\nline-3\nline-4\n');
    consumer.signal('SIGINT');
    expect((await consumer.result).code).toBe(130);

    const replay = await startCliProcess(['consume', topic, '--from', 'beginning', '--no-follow', '--format', 'json'], { env }).result;
    expect(replay, replay.stderr).toMatchObject({ code: 0, stderr: '' });
    const records = replay.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as { offset: number; value: string });
    expect(records.map((record) => [record.offset, record.value])).toEqual([
      [0, 'line-1'],
      [1, 'line-2'],
      [2, 'line-3'],
      [3, 'line-4'],
    ]);
  });

  it('produce gives up when the broker stays away past --delivery-timeout-ms, exiting 1 naming the line', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-cli-restart-'));
    const broker = await startBrokerProcess({ dataDir });
    const env = { RUNNEL_BROKER: broker.address };
    const topic = 'cli-gives-up';
    const client = createClient({ brokers: [broker.address] });
    try {
      await client.admin.createTopic({ name: topic, partitions: 1 });
      const producer = startCliProcess(['produce', topic, '--delivery-timeout-ms', '3000'], { env, timeoutMs: 60_000 });
      producer.write('line-1\n');
      await waitFor(async () => (await client.admin.listOffsets({ topic, spec: 'latest' }))[0]?.offset === 1, {
        timeoutMs: 30_000,
        intervalMs: 100,
        describe: () => `line-1 not acknowledged; produce stderr ${JSON.stringify(producer.stderr())}`,
      });
      await broker.kill('SIGKILL');
      producer.write('line-2\n');
      await waitForStderr(producer, /^runnel produce: cannot reach broker .*retrying until (\d\d:\d\d:\d\d) \(--delivery-timeout-ms\), then exits 1$/m);
      const result = await producer.result;
      expect(result.code, result.stderr).toBe(1);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toMatch(/^runnel: line 2 was not acknowledged: cannot reach broker .*; 1 of 2 lines sent were acknowledged, reading stopped there$/);
      expect(lines.slice(0, -1).every((line) => line.startsWith('runnel produce: cannot reach broker '))).toBe(true);
    } finally {
      await client.close({ timeoutMs: 1_000 });
    }
  });

  it('produce started while the broker is down says it is retrying, waits for the broker, then delivers every line and exits 0', async () => {
    const topic = 'cli-down-at-start';
    const started = await brokerWithTopic(topic);
    let broker = started.broker;
    const { env, dir } = started;
    expect(await broker.stop()).toBe(0); // the topic stays on disk; nothing listens on the port now

    const producer = startCliProcess(['produce', topic], { env, timeoutMs: 110_000 });
    producer.write('line-1\n');
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(
      producer,
      new RegExp(`^runnel produce: cannot reach broker ${escaped} \\([^)]+\\); stdin not read yet, retrying until \\d\\d:\\d\\d:\\d\\d \\(--delivery-timeout-ms\\), then exits 1$`, 'm'),
    );
    producer.write('line-2\n');
    broker = await startBrokerProcess({ dataDir: dir, port: broker.port });
    await waitForStderr(producer, new RegExp(`^runnel produce: broker ${escaped} is reachable after \\d+ s; reading stdin$`, 'm'));
    producer.endInput();
    const produced = await producer.result;
    expect(produced.code, produced.stderr).toBe(0);
    expectOnlyNotices(produced.stderr, 'runnel produce: ');

    await expectTopicReadsBack(topic, env, 'line-1\nline-2\n');
  });

  it('produce whose broker goes away before its first line says the line waits for the topic\'s metadata, then delivers it when the broker is back', async () => {
    // The first line needs the topic's partition count (GetMetadata, through the client's
    // metadata cache): with the broker gone, that load used to give up silently after the
    // CLI's 5 s retry budget and fail the line, instead of retrying within --delivery-timeout-ms.
    const topic = 'cli-first-line-waits';
    const started = await brokerWithTopic(topic);
    let broker = started.broker;
    const { env, dir } = started;
    await broker.kill('SIGKILL');

    // Started while the broker is down, so stderr says when the start-up look-up is done
    // (before any line is sent): then the broker goes away again.
    const producer = startCliProcess(['produce', topic], { env, timeoutMs: 110_000 });
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(producer, /stdin not read yet, retrying until/);
    broker = await startBrokerProcess({ dataDir: dir, port: broker.port });
    await waitForStderr(producer, new RegExp(`^runnel produce: broker ${escaped} is reachable after \\d+ s; reading stdin$`, 'm'));
    await broker.kill('SIGKILL');
    producer.write('line-1\n');
    await waitForStderr(
      producer,
      new RegExp(`^runnel produce: cannot reach broker ${escaped} \\([^)]+\\); 1 line waiting, retrying until \\d\\d:\\d\\d:\\d\\d \\(--delivery-timeout-ms\\), then exits 1$`, 'm'),
    );
    broker = await startBrokerProcess({ dataDir: dir, port: broker.port });
    await waitForStderr(producer, new RegExp(`^runnel produce: broker ${escaped} is back; lines delivered again after \\d+ s$`, 'm'));
    producer.write('line-2\n');
    producer.endInput();
    const produced = await producer.result;
    expect(produced.code, produced.stderr).toBe(0);
    expectOnlyNotices(produced.stderr, 'runnel produce: ');

    await expectTopicReadsBack(topic, env, 'line-1\nline-2\n');
  });

  it('produce started with no broker to reach gives up at --delivery-timeout-ms, not after the 5 s admin retry budget, saying meanwhile that it retries', async () => {
    const address = `127.0.0.1:${await unusedPort()}`;
    const startedMs = Date.now();
    const producer = startCliProcess(['produce', 'cli-never-reached', '--delivery-timeout-ms', '9000'], { env: { RUNNEL_BROKER: address }, timeoutMs: 60_000 });
    producer.write('x\n');
    const result = await producer.result;
    const elapsedMs = Date.now() - startedMs;
    expect(result.code, result.stderr).toBe(1);
    expect(elapsedMs).toBeGreaterThanOrEqual(9_000);
    expect(elapsedMs).toBeLessThan(30_000);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines.length, result.stderr).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(new RegExp(`^runnel: cannot reach broker ${address.replaceAll('.', '\\.')} \\(connection refused\\): is \`runnel broker\` running\\?`));
    expect(lines.slice(0, -1).every((line) => /^runnel produce: cannot reach broker .*; stdin not read yet, retrying until .* then exits 1$/.test(line)), result.stderr).toBe(true);
  });

  it('consume started while the broker is down says it is waiting, then reads the records once the broker starts, following and with --no-follow', async () => {
    const topic = 'cli-consume-down-at-start';
    const { dir, port, env } = await stoppedBrokerWithTopic(topic, ['line-1', 'line-2']);

    const follower = startCliProcess(['consume', topic, '--from', 'beginning'], { env, timeoutMs: 110_000 });
    const once = startCliProcess(['consume', topic, '--no-follow'], { env, timeoutMs: 110_000 });
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    const waiting = new RegExp(
      `^runnel consume: cannot reach broker ${escaped} \\([^)]+\\); nothing read yet, retrying until \\d\\d:\\d\\d:\\d\\d \\(--api-timeout-ms\\), then exits 1$`,
      'm',
    );
    await waitForStderr(follower, waiting);
    await waitForStderr(once, waiting);
    expect(follower.stdout() + once.stdout()).toBe('');

    await startBrokerProcess({ dataDir: dir, port });
    const reachable = new RegExp(`^runnel consume: broker ${escaped} is reachable after \\d+ s; reading ${topic}$`, 'm');
    const read = await once.result;
    expect(read, read.stderr).toMatchObject({ code: 0, stdout: 'line-1\nline-2\n' });
    expect(read.stderr).toMatch(reachable);
    expectOnlyNotices(read.stderr, 'runnel consume: ');

    await waitForStdout(follower, 'line-1\nline-2\n');
    await waitForStderr(follower, reachable);
    const producer = startCliProcess(['produce', topic], { env });
    producer.write('line-3\n');
    producer.endInput();
    expect((await producer.result).code).toBe(0);
    await waitForStdout(follower, 'line-1\nline-2\nline-3\n'); // still following
    follower.signal('SIGINT');
    const followed = await follower.result;
    expect(followed.code, followed.stderr).toBe(130);
    expectOnlyNotices(followed.stderr, 'runnel consume: ');
  });

  it('consume started with no broker to reach gives up at --api-timeout-ms, not after the 5 s admin retry budget, saying meanwhile that it waits', async () => {
    const address = `127.0.0.1:${await unusedPort()}`;
    const escaped = address.replaceAll('.', '\\.');
    const env = { RUNNEL_BROKER: address };
    const startedMs = Date.now();
    const results = await Promise.all(
      [['consume', 'cli-never-reached'], ['consume', 'cli-never-reached', '--no-follow']].map(async (args) => {
        const result = await startCliProcess([...args, '--api-timeout-ms', '7000'], { env, timeoutMs: 60_000 }).result;
        return { result, elapsedMs: Date.now() - startedMs };
      }),
    );
    for (const { result, elapsedMs } of results) {
      expect(result.code, result.stderr).toBe(1);
      expect(elapsedMs).toBeGreaterThanOrEqual(7_000);
      expect(elapsedMs).toBeLessThan(30_000);
      const lines = result.stderr.trimEnd().split('\n');
      expect(lines.length, result.stderr).toBeGreaterThanOrEqual(2);
      expect(lines.at(-1)).toMatch(new RegExp(`^runnel: cannot reach broker ${escaped} \\(connection refused\\): is \`runnel broker\` running\\?`));
      expect(lines.slice(0, -1).every((line) => /^runnel consume: cannot reach broker .*; nothing read yet, retrying until .* \(--api-timeout-ms\), then exits 1$/.test(line)), result.stderr).toBe(true);
      expect(result.stdout).toBe('');
    }
  });

  it('perf produce started while the broker is down says it is waiting, then sends once the broker starts and reports every record acknowledged', async () => {
    const topic = 'cli-perf-down-at-start';
    const { dir, port, env } = await stoppedBrokerWithTopic(topic, []);

    const perf = startCliProcess(['perf', 'produce', topic, '--records', '200', '--size', '10', '--json'], { env, timeoutMs: 110_000 });
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(
      perf,
      new RegExp(
        `^runnel perf produce: cannot reach broker ${escaped} \\([^)]+\\); nothing sent yet, retrying until \\d\\d:\\d\\d:\\d\\d \\(--delivery-timeout-ms\\), then exits 1$`,
        'm',
      ),
    );
    await startBrokerProcess({ dataDir: dir, port });
    const result = await perf.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^runnel perf produce: broker ${escaped} is reachable after \\d+ s; sending$`, 'm'));
    expectOnlyNotices(result.stderr, 'runnel perf produce: ');
    expect(JSON.parse(result.stdout)).toMatchObject({ topic, records: 200, acknowledgedRecords: 200, failedRecords: 0, bytes: 2_000 });

    const client = createClient({ brokers: [env.RUNNEL_BROKER] });
    try {
      expect((await client.admin.listOffsets({ topic, spec: 'latest' })).map((entry) => entry.offset)).toEqual([200]);
    } finally {
      await client.close({ timeoutMs: 1_000 });
    }
  });

  it('perf produce started with no broker to reach gives up at --delivery-timeout-ms, saying meanwhile that it waits', async () => {
    const address = `127.0.0.1:${await unusedPort()}`;
    const startedMs = Date.now();
    const result = await startCliProcess(['perf', 'produce', 'cli-never-reached', '--records', '10', '--size', '10', '--delivery-timeout-ms', '7000'], {
      env: { RUNNEL_BROKER: address },
      timeoutMs: 60_000,
    }).result;
    const elapsedMs = Date.now() - startedMs;
    expect(result.code, result.stderr).toBe(1);
    expect(elapsedMs).toBeGreaterThanOrEqual(7_000);
    expect(elapsedMs).toBeLessThan(30_000);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines.length, result.stderr).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(new RegExp(`^runnel: cannot reach broker ${address.replaceAll('.', '\\.')} \\(connection refused\\): is \`runnel broker\` running\\?`));
    expect(lines.slice(0, -1).every((line) => /^runnel perf produce: cannot reach broker .*; nothing sent yet, retrying until .* \(--delivery-timeout-ms\), then exits 1$/.test(line)), result.stderr).toBe(true);
    expect(result.stdout).toBe('');
  });

  it('perf consume started while the broker is down says it is waiting, then reads the records once the broker starts and reports them', async () => {
    const topic = 'cli-perf-consume-down-at-start';
    const { dir, port, env } = await stoppedBrokerWithTopic(topic, ['line-1', 'line-2', 'line-3']);

    const perf = startCliProcess(['perf', 'consume', topic, '--records', '3', '--json'], { env, timeoutMs: 110_000 });
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(
      perf,
      new RegExp(
        `^runnel perf consume: cannot reach broker ${escaped} \\([^)]+\\); nothing read yet, retrying until \\d\\d:\\d\\d:\\d\\d \\(--api-timeout-ms\\), then exits 1$`,
        'm',
      ),
    );
    // The notice's second line comes 10 s into the outage: the wait is now at least that long.
    await waitForStderr(perf, /^runnel perf consume: cannot reach broker .* for \d+ s; nothing read yet, retrying until /m);
    expect(perf.stdout()).toBe('');
    await startBrokerProcess({ dataDir: dir, port });
    const result = await perf.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^runnel perf consume: broker ${escaped} is reachable after \\d+ s; reading ${topic}$`, 'm'));
    expectOnlyNotices(result.stderr, 'runnel perf consume: ');
    const report = JSON.parse(result.stdout) as { records: number; bytes: number; elapsedMs: number };
    expect(report).toMatchObject({ topic, records: 3, bytes: 18 });
    // The clock starts after the wait (over 10 s), not at the start-up look-up.
    expect(report.elapsedMs).toBeLessThan(10_000);
  });

  it('perf consume whose broker is killed while it reads says so, waits through an outage longer than --timeout-ms, and reports every record once the broker is back', async () => {
    const topic = 'cli-perf-consume-restart';
    const { dir, port, env } = await stoppedBrokerWithTopic(topic, ['line-1', 'line-2', 'line-3']);
    // Started with the broker down, so "reachable … reading" marks the end of its start-up:
    // a failure after that line is one of the reading consumer's.
    const perf = startCliProcess(['perf', 'consume', topic, '--records', '6', '--timeout-ms', '3000', '--json'], { env, timeoutMs: 110_000 });
    const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
    await waitForStderr(perf, /^runnel perf consume: cannot reach broker .*; nothing read yet, retrying until /m);
    let broker = await startBrokerProcess({ dataDir: dir, port });
    await waitForStderr(perf, new RegExp(`^runnel perf consume: broker ${escaped} is reachable after \\d+ s; reading ${topic}$`, 'm'));
    await broker.kill('SIGKILL');
    await waitForStderr(perf, new RegExp(`^runnel perf consume: cannot reach broker ${escaped} \\([^)]+\\); retrying until \\d\\d:\\d\\d:\\d\\d, then exits 1, reading resumes where it stopped$`, 'm'));
    // The notice's second line comes 10 s into the outage, past --timeout-ms (3 s): the stall
    // watch must not have ended the run meanwhile.
    await waitForStderr(perf, /^runnel perf consume: cannot reach broker .* for \d+ s; retrying until /m);
    expect(perf.stdout()).toBe('');
    broker = await startBrokerProcess({ dataDir: dir, port });
    const producer = startCliProcess(['produce', topic], { env });
    producer.write('line-4\nline-5\nline-6\n');
    producer.endInput();
    expect(await producer.result, 'produce after the restart').toMatchObject({ code: 0 });
    const result = await perf.result;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^runnel perf consume: broker ${escaped} is back; reading ${topic} again after \\d+ s$`, 'm'));
    expectOnlyNotices(result.stderr, 'runnel perf consume: ');
    expect(JSON.parse(result.stdout)).toMatchObject({ topic, records: 6, bytes: 36 });
  });

  it('perf produce whose broker is killed while it sends says so on stderr and that it is back, then reports every record acknowledged exactly once', async () => {
    const topic = 'cli-perf-produce-restart';
    dataDir = mkdtempSync(join(tmpdir(), 'runnel-cli-restart-'));
    const dir = dataDir;
    // Outside the ephemeral range, so the port is still free when the broker comes back on it.
    const port = await pickStablePort();
    let broker = await startBrokerProcess({ dataDir: dir, port });
    const env = { RUNNEL_BROKER: broker.address };
    const client = createClient({ brokers: [broker.address] });
    try {
      await client.admin.createTopic({ name: topic, partitions: 1 });
      // Paced to 100 records/s, so 2,000 records keep it sending for 20 s: the kill lands mid-run.
      const records = 2_000;
      const perf = startCliProcess(['perf', 'produce', topic, '--records', String(records), '--size', '10', '--throughput', '100', '--json'], {
        env,
        timeoutMs: 110_000,
      });
      await waitFor(async () => ((await client.admin.listOffsets({ topic, spec: 'latest' }))[0]?.offset ?? 0) > 0, {
        timeoutMs: 30_000,
        intervalMs: 50,
        describe: () => `no record acknowledged yet; perf produce stderr ${JSON.stringify(perf.stderr())}`,
      });
      await broker.kill('SIGKILL');
      const escaped = env.RUNNEL_BROKER.replaceAll('.', '\\.');
      await waitForStderr(
        perf,
        new RegExp(
          `^runnel perf produce: cannot reach broker ${escaped} \\([^)]+\\); [\\d,]+ records? waiting, retrying until \\d\\d:\\d\\d:\\d\\d \\(--delivery-timeout-ms\\), then exits 1$`,
          'm',
        ),
      );
      expect(perf.stdout()).toBe('');

      broker = await startBrokerProcess({ dataDir: dir, port });
      const result = await perf.result;
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(new RegExp(`^runnel perf produce: broker ${escaped} is back; records acknowledged again after \\d+ s$`, 'm'));
      expectOnlyNotices(result.stderr, 'runnel perf produce: ');
      expect(JSON.parse(result.stdout)).toMatchObject({ topic, records, acknowledgedRecords: records, failedRecords: 0, bytes: records * 10 });
      expect((await client.admin.listOffsets({ topic, spec: 'latest' })).map((entry) => entry.offset)).toEqual([records]);
    } finally {
      await client.close({ timeoutMs: 1_000 });
    }
  });
});
