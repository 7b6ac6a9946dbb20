/**
 * The `runnel` command as users and scripts run it, against a real broker: every command is a
 * child process (`node --import tsx src/cli/run.ts …`) with a deadline after which it is
 * killed by PID; the broker is one `runnel broker` child process on 127.0.0.1:0 with a fresh
 * data dir. Each scenario uses its own topics. Checked: topic administration in text and
 * JSON, a keyed file piped through `produce` and back through `consume` (each line exactly
 * once, in order per partition), starting at a point in time, `--max`, a batch of 200,000
 * records read from inside it, tailing and Ctrl-C, `offsets`, the one-line errors for an
 * unknown topic, an unreachable broker and a broker host name that does not resolve, the exit
 * status of `produce` when a record is refused, and the figures `perf` reports.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { brokerSettingNames } from '../../src/config/index.js';
import { encodeBatch } from '../../src/protocol/index.js';
import { segmentFileName } from '../../src/storage/index.js';
import { startBrokerProcess, stopAllBrokerProcesses, type BrokerProcess } from '../support/broker-process.js';
import { killAllCliProcesses, startCliProcess, type CliProcess, type CliProcessOptions, type CliResult } from '../support/cli-process.js';
import { manyTinyRecordsBatch, produceRawBatch } from '../support/many-records-batch.js';
import { rawClients } from '../support/raw-grpc.js';
import { unusedPort } from '../support/ports.js';
import { waitFor } from '../support/wait-for.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let dataDir: string;
let broker: BrokerProcess;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'runnel-cli-'));
  broker = await startBrokerProcess({ dataDir });
}, 60_000);

afterEach(() => {
  killAllCliProcesses();
});

afterAll(async () => {
  await broker?.stop();
  await stopAllBrokerProcesses();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Starts `runnel …` against the test broker (RUNNEL_BROKER), killed by PID after `timeoutMs`. */
function startCli(args: string[], options: CliProcessOptions = {}): CliProcess {
  return startCliProcess(args, { ...options, env: { RUNNEL_BROKER: broker.address, ...options.env } });
}

/** Runs `runnel …` to completion with `input` on stdin. */
async function runCli(args: string[], options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  const cli = startCli(args, options);
  if (options.input !== undefined) cli.write(options.input);
  cli.endInput();
  return cli.result;
}

/** Runs `runnel …` and expects exit 0 with nothing on stderr; returns stdout. */
async function runOk(args: string[], options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<string> {
  const result = await runCli(args, options);
  expect(result.stderr, `stderr of runnel ${args.join(' ')}`).toBe('');
  expect(result.code, `exit code of runnel ${args.join(' ')}`).toBe(0);
  return result.stdout;
}

/** Expects exit 1 and exactly one line on stderr, which is returned. */
function expectOneLineFailure(result: CliResult): string {
  expect(result.code, `stdout: ${result.stdout}; stderr: ${result.stderr}`).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^runnel: /);
  return lines[0]!;
}

/**
 * Produces `new 0`, `new 1`, … to `topic`, one line per round, until `consumer` (a tailing
 * `runnel consume --max 3`) has printed three lines and exited: it starts at the log end only
 * once it is up, so lines produced before that are not its. Each round gives it up to 100 ms
 * to exit; at most 100 rounds.
 */
async function produceUntilExit(consumer: CliProcess, topic: string): Promise<CliResult> {
  for (let round = 0; round < 100 && consumer.stdout().split('\n').length < 4; round++) {
    await runOk(['produce', topic], { input: `new ${round}\n` });
    const exited = await Promise.race([consumer.result.then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 100))]);
    if (exited === true) break;
  }
  return consumer.result;
}

function jsonLines(text: string): Any[] {
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Any);
}

async function logEndOffsets(topic: string): Promise<number[]> {
  const report = JSON.parse(await runOk(['offsets', topic, '--json'])) as Any;
  return (report.partitions as Any[]).map((partition) => partition.logEndOffset as number);
}

describe('runnel topic', () => {
  it('creates, lists, describes (text and JSON), alters and deletes a topic', async () => {
    expect(await runOk(['topic', 'create', 'cli-admin', '--partitions', '2', '--config', 'retention.ms=60000'])).toMatch(/created topic cli-admin: 2 partition/);
    const again = expectOneLineFailure(await runCli(['topic', 'create', 'cli-admin']));
    expect(again).toContain('topic cli-admin already exists: see it with `runnel topic describe cli-admin`');
    expect(await runOk(['topic', 'create', 'cli-admin', '--if-not-exists'])).toContain('already exists');

    const listed = JSON.parse(await runOk(['topic', 'list', '--json'])) as Any;
    expect(listed.topics).toContainEqual({ name: 'cli-admin', partitions: 2, replicationFactor: 1 });
    expect(await runOk(['topic', 'list'])).toMatch(/cli-admin\s+2\s+1/);

    const described = JSON.parse(await runOk(['topic', 'describe', 'cli-admin', '--json'])) as Any;
    expect(described).toMatchObject({ name: 'cli-admin', replicationFactor: 1, overrides: { 'retention.ms': '60000' } });
    expect(described.configs).toMatchObject({ 'retention.ms': '60000', 'cleanup.policy': 'delete' });
    expect(described.partitions).toHaveLength(2);
    expect(described.partitions[1]).toMatchObject({ partition: 1, leader: 0, replicas: [0], isr: [0], logStartOffset: 0, logEndOffset: 0, sizeBytes: 0, status: 'online' });
    const text = await runOk(['topic', 'describe', 'cli-admin']);
    expect(text).toMatch(/PARTITION\s+LEADER\s+REPLICAS\s+ISR\s+START\s+END/);
    expect(text).toMatch(/\* retention\.ms\s+60000/);

    expect(await runOk(['topic', 'alter', 'cli-admin', '--config', 'retention.ms=120000', '--config', 'flush=always'])).toContain('set retention.ms=120000');
    expect((JSON.parse(await runOk(['topic', 'describe', 'cli-admin', '--json'])) as Any).overrides).toEqual({ 'retention.ms': '120000', flush: 'always' });
    expect(await runOk(['topic', 'alter', 'cli-admin', '--delete-config', 'retention.ms'])).toContain('removed retention.ms');
    expect((JSON.parse(await runOk(['topic', 'describe', 'cli-admin', '--json'])) as Any).overrides).toEqual({ flush: 'always' });
    expect(await runOk(['topic', 'alter', 'cli-admin', '--partitions', '4'])).toContain('partitions 2 → 4');
    expect((JSON.parse(await runOk(['topic', 'describe', 'cli-admin', '--json'])) as Any).partitions).toHaveLength(4);
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin', '--partitions', '3']))).toContain('cannot shrink');
    // A refused count with a config change: neither happens.
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin', '--config', 'retention.ms=5000', '--partitions', '3']))).toContain('cannot shrink');
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin', '--config', 'retention.ms=5000', '--partitions', '10001']))).toContain('limit of 10000');
    expect((JSON.parse(await runOk(['topic', 'describe', 'cli-admin', '--json'])) as Any).overrides).toEqual({ flush: 'always' });
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin']))).toContain('nothing to alter');
    // A key named like an Object member is judged as a key (unknown), not as "both set and deleted".
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin', '--delete-config', 'toString']))).toContain('unknown topic config "toString"');
    expect(expectOneLineFailure(await runCli(['topic', 'alter', 'cli-admin', '--config', 'retention.ms=-5']))).toContain('retention.ms');

    expect(await runOk(['topic', 'delete', 'cli-admin'])).toContain('deleted topic cli-admin');
    expect(expectOneLineFailure(await runCli(['topic', 'describe', 'cli-admin']))).toContain('topic cli-admin does not exist: create it with `runnel topic create cli-admin`');
    expect((JSON.parse(await runOk(['topic', 'list', '--json'])) as Any).topics.map((topic: Any) => topic.name)).not.toContain('cli-admin');
  });

  it('refuses to create a topic over a directory without a topic record, saying to move it, even with --if-not-exists', async () => {
    const leftoverDataDir = mkdtempSync(join(tmpdir(), 'runnel-cli-leftover-'));
    try {
      mkdirSync(join(leftoverDataDir, 'cli-leftover-0')); // data of a topic whose record was lost
      const other = await startBrokerProcess({ dataDir: leftoverDataDir });
      try {
        const env = { RUNNEL_BROKER: other.address };
        for (const args of [['topic', 'create', 'cli-leftover'], ['topic', 'create', 'cli-leftover', '--if-not-exists']]) {
          const line = expectOneLineFailure(await runCli(args, { env }));
          expect(line).toContain('cli-leftover-0 exists without a topic record; move it out of the data directory first');
        }
        expect(JSON.parse(await runOk(['topic', 'list', '--json'].concat(['--broker', other.address]))).topics).toEqual([]);
      } finally {
        await other.stop();
      }
    } finally {
      rmSync(leftoverDataDir, { recursive: true, force: true });
    }
  });
});

describe('runnel produce and consume', () => {
  it('pipes thousands of keyed lines through produce and back through consume, each exactly once and in order per partition', async () => {
    // Keys repeat (so each key's lines share a partition); some lines have no separator (null
    // key), some an empty value, some non-ASCII text.
    const lines = Array.from({ length: 6000 }, (_, index) => {
      if (index % 97 === 0) return `no separator in line ${index}`;
      if (index % 89 === 0) return `key-${index % 40}|`.replace('|', `-${index}|`);
      return `key-${index % 40}|value ${index} ${index % 7 === 0 ? 'grüße, 東京' : 'plain'}`;
    });
    await runOk(['topic', 'create', 'cli-pipe', '--partitions', '3']);
    await runOk(['produce', 'cli-pipe', '--key-separator', '|'], { input: `${lines.join('\n')}\n`, timeoutMs: 60_000 });

    const records = jsonLines(await runOk(['consume', 'cli-pipe', '--from', 'beginning', '--no-follow', '--format', 'json'], { timeoutMs: 60_000 }));
    expect(records).toHaveLength(lines.length);
    for (const record of records.slice(0, 50)) {
      expect(Object.keys(record)).toEqual(['topic', 'partition', 'offset', 'timestamp', 'key', 'value', 'headers']);
      expect(record.topic).toBe('cli-pipe');
    }
    const indexByLine = new Map(lines.map((line, index) => [line, index]));
    const seen = new Set<number>();
    const partitionByKey = new Map<string, number>();
    const lastByPartition = new Map<number, { offset: number; index: number }>();
    for (const record of records) {
      const line = record.key === null ? record.value : `${record.key}|${record.value}`;
      const index = indexByLine.get(line);
      expect(index, `a line that was never produced: ${line}`).toBeDefined();
      expect(seen.has(index!), `line ${index} came back twice`).toBe(false);
      seen.add(index!);
      const last = lastByPartition.get(record.partition) ?? { offset: -1, index: -1 };
      expect(record.offset).toBe(last.offset + 1);
      expect(index!, `partition ${record.partition} out of order at offset ${record.offset}`).toBeGreaterThan(last.index);
      lastByPartition.set(record.partition, { offset: record.offset, index: index! });
      if (record.key !== null) {
        expect(partitionByKey.get(record.key) ?? record.partition).toBe(record.partition);
        partitionByKey.set(record.key, record.partition);
      }
    }
    expect(seen.size).toBe(lines.length);
    expect(lastByPartition.size).toBe(3);

    // --format value prints the values as they are; --max stops after that many.
    const values = await runOk(['consume', 'cli-pipe', '--from', 'beginning', '--partition', '1', '--max', '7']);
    expect(values.split('\n')).toHaveLength(8);
    expect(values.endsWith('\n')).toBe(true);
  });

  it('starts at a point in time with --from @TIME and reaches back with --from -DURATION', async () => {
    await runOk(['topic', 'create', 'cli-time']);
    const before = Array.from({ length: 100 }, (_, index) => `before ${index}`);
    const after = Array.from({ length: 50 }, (_, index) => `after ${index}`);
    await runOk(['produce', 'cli-time'], { input: `${before.join('\n')}\n` });
    // Every "before" record was stamped before its producer exited, so before boundaryMs;
    // every "after" record is stamped after it.
    const boundaryMs = Date.now() + 1;
    await waitFor(() => Date.now() > boundaryMs, { timeoutMs: 1_000, describe: () => 'the clock to pass the boundary' });
    await runOk(['produce', 'cli-time'], { input: `${after.join('\n')}\n` });

    const iso = new Date(boundaryMs).toISOString();
    const fromIso = jsonLines(await runOk(['consume', 'cli-time', '--from', `@${iso}`, '--no-follow', '--format', 'json']));
    expect(fromIso.map((record) => record.value)).toEqual(after);
    expect(fromIso[0]!.offset).toBe(100);
    expect(await runOk(['consume', 'cli-time', '--from', `@${boundaryMs}`, '--no-follow'])).toBe(`${after.join('\n')}\n`);
    expect(await runOk(['consume', 'cli-time', '--from', '-1h', '--no-follow'])).toBe(`${[...before, ...after].join('\n')}\n`);
    expect(await runOk(['consume', 'cli-time', '--from', '98', '--no-follow', '--max', '3'])).toBe('before 98\nbefore 99\nafter 0\n');

    const offsets = JSON.parse(await runOk(['offsets', 'cli-time', '--json'])) as Any;
    expect(offsets).toEqual({ topic: 'cli-time', partitions: [{ partition: 0, logStartOffset: 0, logEndOffset: 150 }] });
    const atTime = JSON.parse(await runOk(['offsets', 'cli-time', '--time', iso, '--json'])) as Any;
    expect(atTime).toMatchObject({ topic: 'cli-time', time: boundaryMs, partitions: [{ partition: 0, offset: 100 }] });
    expect(atTime.partitions[0].timestamp).toBeGreaterThanOrEqual(boundaryMs);
    const future = JSON.parse(await runOk(['offsets', 'cli-time', '--time', String(Date.now() + 3_600_000), '--json'])) as Any;
    expect(future.partitions).toEqual([{ partition: 0, offset: 150, timestamp: null }]);
    expect(await runOk(['offsets', 'cli-time'])).toMatch(/PARTITION\s+START\s+END\n0\s+0\s+150\n/);
  });

  it('offsets lists every partition, shows one that cannot be read as offline with its reason, and exits 1 naming it', async () => {
    await runOk(['topic', 'create', 'cli-offline', '--partitions', '2']);
    await runOk(['produce', 'cli-offline', '--partition', '0'], { input: 'a\n' });
    await runOk(['produce', 'cli-offline', '--partition', '1'], { input: 'b\nc\n' });
    // Damage partition 1 on disk (a byte of its first record), and let a read find it.
    const logPath = join(dataDir, 'cli-offline-1', '00000000000000000000.log');
    const bytes = readFileSync(logPath);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff;
    writeFileSync(logPath, bytes);
    expect((await runCli(['consume', 'cli-offline', '--partition', '1', '--from', 'beginning', '--no-follow'])).code).toBe(1);

    const json = await runCli(['offsets', 'cli-offline', '--json']);
    expect(expectOneLineFailure(json)).toMatch(/^runnel: cli-offline-1 \(CORRUPT_DATA\): no offsets, the partition is offline or unreadable .*runnel topic describe cli-offline/);
    expect((JSON.parse(json.stdout) as Any).partitions).toEqual([
      { partition: 0, logStartOffset: 0, logEndOffset: 1 },
      { partition: 1, error: { reason: 'CORRUPT_DATA', message: expect.any(String) } },
    ]);
    const text = await runCli(['offsets', 'cli-offline']);
    expect(text.stdout).toMatch(/0\s+0\s+1\n1\s+-\s+- offline \(CORRUPT_DATA\)\n/);
    const atTime = await runCli(['offsets', 'cli-offline', '--time', '-1h', '--json']);
    expect((JSON.parse(atTime.stdout) as Any).partitions[1]).toMatchObject({ partition: 1, error: { reason: 'CORRUPT_DATA' } });
    expect(atTime.code).toBe(1);
  });

  it('round-trips JSON records (timestamps, headers, base64) and starts --from @TIME inside a batch', async () => {
    await runOk(['topic', 'create', 'cli-json']);
    const input = [
      { key: 'a', value: 'at 1000', timestamp: 1000 },
      { key: 'b', value: 'at 1500', timestamp: '1970-01-01T00:00:01.500Z', headers: [{ key: 'h', value: 'x' }] },
      { key: null, value: '//4=', encoding: 'base64', timestamp: 3000 },
      { value: null, timestamp: 4000 },
    ];
    // The first record travels alone (produce awaits it); --linger-ms 100 puts the other three
    // in one batch, so --from @2000 lands on a batch whose first record is older than 2000.
    await runOk(['produce', 'cli-json', '--format', 'json', '--linger-ms', '100'], { input: `${input.map((record) => JSON.stringify(record)).join('\n')}\n` });
    const all = jsonLines(await runOk(['consume', 'cli-json', '--from', 'beginning', '--no-follow', '--format', 'json']));
    expect(all.map(({ offset, timestamp, key, value, headers, encoding }) => ({ offset, timestamp, key, value, headers, encoding }))).toEqual([
      { offset: 0, timestamp: 1000, key: 'a', value: 'at 1000', headers: {}, encoding: undefined },
      { offset: 1, timestamp: 1500, key: 'b', value: 'at 1500', headers: { h: 'x' }, encoding: undefined },
      { offset: 2, timestamp: 3000, key: null, value: '//4=', headers: {}, encoding: 'base64' },
      { offset: 3, timestamp: 4000, key: null, value: null, headers: {}, encoding: undefined },
    ]);
    const fromTime = jsonLines(await runOk(['consume', 'cli-json', '--from', '@2000', '--no-follow', '--format', 'json']));
    expect(fromTime.map((record) => record.offset)).toEqual([2, 3]);
    // The broker answers with the record itself, inside the batch, and its own timestamp.
    expect((JSON.parse(await runOk(['offsets', 'cli-json', '--time', '2000', '--json'])) as Any).partitions[0]).toMatchObject({ offset: 2, timestamp: 3000 });
    // Fed back in, consume's own output reproduces the records.
    await runOk(['topic', 'create', 'cli-json-copy']);
    await runOk(['produce', 'cli-json-copy', '--format', 'json'], { input: `${all.map((record) => JSON.stringify(record)).join('\n')}\n` });
    const copied = jsonLines(await runOk(['consume', 'cli-json-copy', '--from', 'beginning', '--no-follow', '--format', 'json']));
    expect(copied.map(({ topic: _topic, ...rest }) => rest)).toEqual(all.map(({ topic: _topic, ...rest }) => rest));
  });

  it('prints a gzip batch of 200,000 records from an offset or a time inside it, or --max of it, every record once and in order', async () => {
    // consume reads through the consumer's batches(), which decodes such a batch a slice at a
    // time: --no-follow must still stop at the end offset, and --from and --max must land
    // inside the batch across slice boundaries.
    await runOk(['topic', 'create', 'cli-many-records']);
    const timestampMs = 1_700_000_000_000;
    const raw = rawClients(broker.address);
    try {
      await produceRawBatch(raw, 'cli-many-records', manyTinyRecordsBatch(200_000, timestampMs));
    } finally {
      raw.close();
    }
    const offsetsOf = (stdout: string): number[] => jsonLines(stdout).map((record) => record.offset as number);
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, index) => from + index);
    const fromOffset = await runOk(['consume', 'cli-many-records', '--partition', '0', '--from', '150001', '--no-follow', '--format', 'json'], { timeoutMs: 60_000 });
    expect(offsetsOf(fromOffset)).toEqual(range(150_001, 200_000));
    const fromTime = await runOk(['consume', 'cli-many-records', '--from', `@${timestampMs + 190_000}`, '--no-follow', '--format', 'json'], { timeoutMs: 60_000 });
    expect(offsetsOf(fromTime)).toEqual(range(190_000, 200_000));
    const values = await runOk(['consume', 'cli-many-records', '--partition', '0', '--from', '1000', '--max', '10000'], { timeoutMs: 60_000 });
    expect(values).toBe(range(1_000, 11_000).map((offset) => `${offset % 10}\n`).join(''));
  });

  it('ends on SIGTERM, and at once on a second Ctrl-C, while the reader of its output has stopped reading', async () => {
    // A reader that stalls (a full pipe) would otherwise hold consume for ever: its loop waits
    // for 'drain', and the output it still holds keeps the process alive after the loop.
    await runOk(['topic', 'create', 'cli-stalled-reader']);
    const raw = rawClients(broker.address);
    try {
      await produceRawBatch(raw, 'cli-stalled-reader', manyTinyRecordsBatch(200_000));
    } finally {
      raw.close();
    }
    const args = ['consume', 'cli-stalled-reader', '--from', 'beginning', '--no-follow', '--format', 'json'];
    const terminated = startCli(args, { stdoutReadCharsMax: 1, timeoutMs: 15_000 });
    await waitFor(() => terminated.stdout() !== '', { timeoutMs: 10_000, describe: () => `output of consume; stderr: ${terminated.stderr()}` });
    terminated.signal('SIGTERM');
    expect(await terminated.result).toMatchObject({ code: 143, stderr: '' });

    const interrupted = startCli(args, { stdoutReadCharsMax: 1, timeoutMs: 15_000 });
    await waitFor(() => interrupted.stdout() !== '', { timeoutMs: 10_000, describe: () => `output of consume; stderr: ${interrupted.stderr()}` });
    interrupted.signal('SIGINT');
    interrupted.signal('SIGINT');
    expect(await interrupted.result).toMatchObject({ code: 130, stderr: '' });
  });

  it('streams: produce sends lines before EOF, a following consume prints them, and Ctrl-C ends both cleanly', async () => {
    await runOk(['topic', 'create', 'cli-stream']);
    const consumer = startCli(['consume', 'cli-stream', '--from', 'beginning']);
    const producer = startCli(['produce', 'cli-stream']);
    producer.write('first\n');
    await waitFor(() => consumer.stdout().includes('first\n'), { timeoutMs: 20_000, describe: () => `consume printed ${JSON.stringify(consumer.stdout())}; produce stderr ${producer.stderr()}` });
    producer.write('second\n');
    await waitFor(() => consumer.stdout() === 'first\nsecond\n', { timeoutMs: 20_000, describe: () => `consume printed ${JSON.stringify(consumer.stdout())}` });
    producer.signal('SIGINT');
    consumer.signal('SIGINT');
    expect(await producer.result).toMatchObject({ code: 130, stderr: '' });
    expect(await consumer.result).toMatchObject({ code: 130, stderr: '' });
    expect(await logEndOffsets('cli-stream')).toEqual([2]);
  });

  it('while following, reads partitions added to the topic meanwhile, from their start', async () => {
    // A log tail must not miss the share of records producers send to new partitions.
    await runOk(['topic', 'create', 'cli-grow']);
    const consumer = startCli(['consume', 'cli-grow', '--from', 'beginning', '--format', 'json']);
    await runOk(['produce', 'cli-grow'], { input: 'in-0\n' });
    await waitFor(() => consumer.stdout().includes('"in-0"'), { timeoutMs: 20_000, describe: () => `consume printed ${JSON.stringify(consumer.stdout())}` });
    await runOk(['topic', 'alter', 'cli-grow', '--partitions', '3']);
    await runOk(['produce', 'cli-grow', '--partition', '2'], { input: 'in-2a\nin-2b\n' });
    await waitFor(() => consumer.stdout().includes('"in-2b"'), { timeoutMs: 20_000, describe: () => `consume printed ${JSON.stringify(consumer.stdout())}; stderr ${consumer.stderr()}` });
    consumer.signal('SIGINT');
    const result = await consumer.result;
    expect(result).toMatchObject({ code: 130, stderr: '' });
    const printed = result.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Any);
    expect(printed.map((record) => [record.partition, record.offset, record.value])).toEqual([
      [0, 0, 'in-0'],
      [2, 0, 'in-2a'],
      [2, 1, 'in-2b'],
    ]);
  });

  it('tails from the end by default and stops after --max records', async () => {
    await runOk(['topic', 'create', 'cli-tail']);
    await runOk(['produce', 'cli-tail'], { input: 'old\n' });
    const consumer = startCli(['consume', 'cli-tail', '--max', '3']);
    // The consumer starts at the end once it is up; keep producing until it has seen three.
    const result = await produceUntilExit(consumer, 'cli-tail');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const printed = result.stdout.trimEnd().split('\n');
    expect(printed).toHaveLength(3);
    expect(printed).not.toContain('old');
    const rounds = printed.map((line) => Number(/^new (\d+)$/.exec(line)?.[1]));
    expect(rounds).toEqual([rounds[0]!, rounds[0]! + 1, rounds[0]! + 2]);
  });

  it('prints every record appended after --from @TIME when no record was that late, whatever its timestamp', async () => {
    await runOk(['topic', 'create', 'cli-time-late']);
    await runOk(['produce', 'cli-time-late'], { input: 'old\n' });
    // No record is an hour ahead: the consumer starts at the log end, and what is appended
    // from then on follows that point in the log, though stamped earlier than the time.
    const consumer = startCli(['consume', 'cli-time-late', '--from', `@${Date.now() + 3_600_000}`, '--max', '3']);
    const result = await produceUntilExit(consumer, 'cli-time-late');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const rounds = result.stdout.trimEnd().split('\n').map((line) => Number(/^new (\d+)$/.exec(line)?.[1]));
    expect(rounds).toEqual([rounds[0]!, rounds[0]! + 1, rounds[0]! + 2]);
  });

  it('sizes its batches below the topic\'s max.message.bytes, so lines far below the limit all go through', async () => {
    await runOk(['topic', 'create', 'cli-small-batches', '--config', 'max.message.bytes=20000']);
    const lines = Array.from({ length: 20_000 }, (_, index) => String(index + 1));
    expect(await runOk(['produce', 'cli-small-batches', '--linger-ms', '50'], { input: `${lines.join('\n')}\n`, timeoutMs: 60_000 })).toBe('');
    expect(await logEndOffsets('cli-small-batches')).toEqual([20_000]);
    // A limit below the batch headroom: one record per batch, each far below the limit.
    await runOk(['topic', 'create', 'cli-tiny-batches', '--config', 'max.message.bytes=100']);
    expect(await runOk(['produce', 'cli-tiny-batches', '--linger-ms', '50'], { input: `${lines.slice(0, 300).join('\n')}\n`, timeoutMs: 60_000 })).toBe('');
    expect(await logEndOffsets('cli-tiny-batches')).toEqual([300]);
  });

  it('exits 0 from produce only when every line was acknowledged: a refused record exits 1 naming its line', async () => {
    await runOk(['topic', 'create', 'cli-refuse', '--config', 'max.message.bytes=1024']);
    // A line that cannot fit is refused before it is sent, so none of the lines after it
    // (read and batched meanwhile) lands behind a gap.
    const after = Array.from({ length: 3_000 }, (_, i) => `after-${i}`).join('\n');
    const refused = expectOneLineFailure(await runCli(['produce', 'cli-refuse'], { input: `fits\n${'x'.repeat(5_000)}\n${after}\n` }));
    expect(refused).toBe(
      'runnel: line 2 is 5,000 bytes, too large for topic cli-refuse (a batch of it alone is 5,070 bytes; max.message.bytes is 1,024): split it, or raise the limit with ' +
        '`runnel topic alter cli-refuse --config max.message.bytes=N`; 1 of 1 lines sent were acknowledged, reading stopped there',
    );
    expect(await logEndOffsets('cli-refuse')).toEqual([1]);
    // Under gzip only the broker can tell: it refuses the batch (this line does not compress
    // below the limit), and the producer, with one record left, fails it as too large.
    const incompressible = randomBytes(4_000).toString('base64');
    const refusedGzip = expectOneLineFailure(await runCli(['produce', 'cli-refuse', '--compression', 'gzip'], { input: `${incompressible}\n` }));
    expect(refusedGzip).toMatch(/^runnel: line 1 was not acknowledged: record too large for topic cli-refuse .*max\.message\.bytes.*RECORD_TOO_LARGE.*; 0 of 1 lines sent were acknowledged, every line was read$/);

    const badJson = expectOneLineFailure(await runCli(['produce', 'cli-refuse', '--format', 'json'], { input: '{"key":"k","value":"v","headers":{"h":"1"}}\n{"value": oops}\n{"value":"never"}\n' }));
    expect(badJson).toContain('line 2 is not JSON');
    const records = jsonLines(await runOk(['consume', 'cli-refuse', '--from', 'beginning', '--no-follow', '--format', 'json']));
    expect(records.map((record) => [record.key, record.value, record.headers])).toEqual([
      [null, 'fits', {}],
      ['k', 'v', { h: '1' }],
    ]);

    expect(await runOk(['produce', 'cli-refuse', '--acks', '1', '--linger-ms', '0'], { input: 'one\ntwo' })).toBe('');
    expect(await logEndOffsets('cli-refuse')).toEqual([4]);
  });

  it('refuses before sending a line whose batch is a byte over max.message.bytes, and sends one that fits exactly', async () => {
    // A record of 1,931 value bytes takes a 2,001-byte batch: 61 header bytes, a 2-byte record
    // length, 3 one-byte fields, a 1-byte key length, a 2-byte value length, a 1-byte header
    // count. Sent, the broker would refuse it, and the lines read after it, sent in later
    // batches meanwhile, would land behind the gap.
    await runOk(['topic', 'create', 'cli-refuse-edge', '--config', 'max.message.bytes=2000']);
    const after = Array.from({ length: 3_000 }, (_, i) => `after-${i}`).join('\n');
    const refused = expectOneLineFailure(await runCli(['produce', 'cli-refuse-edge'], { input: `fits\n${'x'.repeat(1_931)}\n${after}\n` }));
    expect(refused).toMatch(/^runnel: line 2 is 1,931 bytes, too large for topic cli-refuse-edge \(a batch of it alone is 2,001 bytes; max\.message\.bytes is 2,000\): /);
    expect(refused).toMatch(/; 1 of 1 lines sent were acknowledged, reading stopped there$/);
    expect(await logEndOffsets('cli-refuse-edge')).toEqual([1]);
    // One byte less makes a batch of exactly the limit, which the broker takes.
    expect(await runOk(['produce', 'cli-refuse-edge'], { input: `${'x'.repeat(1_930)}\n` })).toBe('');
    expect(await logEndOffsets('cli-refuse-edge')).toEqual([2]);
  });

  it('refuses before sending a --format json line naming a partition the topic does not have, so no line after it lands', async () => {
    await runOk(['topic', 'create', 'cli-json-partition', '--partitions', '2']);
    const after = Array.from({ length: 500 }, (_, i) => JSON.stringify({ value: `after-${i}` })).join('\n');
    const refused = expectOneLineFailure(
      await runCli(['produce', 'cli-json-partition', '--format', 'json'], { input: `{"value":"first","partition":1}\n{"value":"bad","partition":2}\n${after}\n` }),
    );
    expect(refused).toMatch(/^runnel: line 2 names partition 2, but topic cli-json-partition has 2 partition\(s\), 0\.\.1: /);
    expect(refused).toMatch(/; 1 of 1 lines sent were acknowledged, reading stopped there$/);
    expect(await logEndOffsets('cli-json-partition')).toEqual([0, 1]);

    // A partition added while the command runs is looked up, not refused.
    const producer = startCli(['produce', 'cli-json-partition', '--format', 'json']);
    producer.write('{"value":"before","partition":0}\n');
    await waitFor(async () => (await logEndOffsets('cli-json-partition'))[0] === 1, { timeoutMs: 10_000, intervalMs: 100, describe: () => `the first line acknowledged; stderr: ${producer.stderr()}` });
    await runOk(['topic', 'alter', 'cli-json-partition', '--partitions', '3']);
    producer.write('{"value":"added","partition":2}\n');
    producer.endInput();
    expect(await producer.result).toMatchObject({ code: 0, stderr: '' });
    expect(await logEndOffsets('cli-json-partition')).toEqual([1, 1, 1]);
  });
});

describe('runnel errors', () => {
  it('says how to create a topic that does not exist, with exit 1', async () => {
    const hint = 'topic cli-missing does not exist: create it with `runnel topic create cli-missing`';
    const results = await Promise.all([
      runCli(['produce', 'cli-missing'], { input: 'x\n' }),
      runCli(['consume', 'cli-missing', '--no-follow']),
      runCli(['consume', 'cli-missing']),
      runCli(['offsets', 'cli-missing', '--json']),
      runCli(['perf', 'produce', 'cli-missing', '--records', '5', '--size', '10']),
      runCli(['perf', 'consume', 'cli-missing', '--records', '5']),
    ]);
    for (const result of results) expect(expectOneLineFailure(result)).toBe(`runnel: ${hint}`);
  });

  it('says which broker it cannot reach and what to do, with exit 1', async () => {
    const port = await unusedPort();
    const address = `127.0.0.1:${port}`;
    const [viaFlag, viaEnv, producing] = await Promise.all([
      runCli(['topic', 'list', '--broker', address]),
      // consume and produce wait for a broker down at start (cli-broker-restart.test.ts), saying so first.
      runCli(['consume', 'anything', '--no-follow', '--api-timeout-ms', '1000'], { env: { RUNNEL_BROKER: address } }),
      runCli(['produce', 'anything', '--broker', address, '--delivery-timeout-ms', '1000'], { input: 'x\n' }),
    ]);
    expect(expectOneLineFailure(viaFlag)).toContain(`cannot reach broker ${address}`);
    expect(expectOneLineFailure(viaFlag)).toContain('`runnel broker`');
    for (const [waiting, command] of [
      [viaEnv, 'consume'],
      [producing, 'produce'],
    ] as const) {
      expect(waiting.code, waiting.stderr).toBe(1);
      const lines = waiting.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toContain(`runnel: cannot reach broker ${address}`);
      expect(lines.slice(0, -1).every((line) => line.startsWith(`runnel ${command}: cannot reach broker ${address}`)), waiting.stderr).toBe(true);
    }
  });

  it('says which broker host name cannot be resolved and where it came from, not that the broker may be down', async () => {
    // .invalid never resolves (RFC 2606), so no DNS server is needed for the answer.
    const address = 'no-such-broker.invalid:7070';
    const [viaFlag, viaEnv, producing] = await Promise.all([
      runCli(['topic', 'list', '--broker', address]),
      runCli(['consume', 'anything', '--no-follow'], { env: { RUNNEL_BROKER: address } }),
      runCli(['produce', 'anything', '--broker', address], { input: 'x\n' }),
    ]);
    for (const result of [viaFlag, viaEnv, producing]) {
      const line = expectOneLineFailure(result);
      expect(line).toContain('the broker host name no-such-broker.invalid could not be resolved');
      expect(line).toContain('--broker HOST:PORT or RUNNEL_BROKER');
      expect(line).not.toContain('running');
    }
  });

  it('refuses log repair --yes and log append on a data directory a live broker holds, changing nothing', async () => {
    await runOk(['topic', 'create', 'cli-live']);
    await runOk(['produce', 'cli-live'], { input: 'kept\n' });
    const partitionDir = join(dataDir, 'cli-live-0');
    const before = readdirSync(partitionDir).sort();
    const repair = expectOneLineFailure(await runCli(['log', 'repair', partitionDir, '--yes']));
    expect(repair).toMatch(new RegExp(`in use by process ${broker.pid}.*stop that broker`));
    // A plain usage line, as the broker's own start says it, without a reason tag.
    expect(repair).not.toMatch(/\[INVALID_REQUEST\]/);
    expect(expectOneLineFailure(await runCli(['log', 'append', partitionDir], { input: 'sneaked in\n' }))).toMatch(/in use by process.*[^\]]$/);
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-flush-'));
    try {
      expect(expectOneLineFailure(await runCli(['log', 'append', join(scratch, 'lines-0'), '--flush', 'junk'], { input: '' }))).toBe(
        'runnel: invalid flush policy "junk": use "always", "never" or "interval:<ms>" with 1 ≤ ms ≤ 3600000',
      );
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    expect(readdirSync(partitionDir).sort()).toEqual(before);
    expect(await logEndOffsets('cli-live')).toEqual([1]);
    expect((await runCli(['log', 'repair', partitionDir])).code).toBe(0); // without --yes it only reads
    const verified = await runCli(['log', 'verify', partitionDir]); // reads only, too
    expect(verified.code).toBe(0);
    expect(verified.stdout).toContain('healthy: offsets 0..0, 1 segment(s)'); // first..last, as consume and dump print them
  });

  it('says when a directory given to log verify is not a partition directory, with exit 1', async () => {
    await runOk(['topic', 'create', 'cli-notdir']);
    const failure = expectOneLineFailure(await runCli(['log', 'verify', dataDir]));
    expect(failure).toContain(`${dataDir} is not a partition directory (it holds `);
    expect(failure).toMatch(/pass one of those, e\.g\. /);
  });

  it('verifies a partition created and never used (an empty directory until its first use) as healthy and empty, and still refuses an empty directory of any other name', async () => {
    await runOk(['topic', 'create', 'cli-unused', '--partitions', '2']);
    expect(readdirSync(join(dataDir, 'cli-unused-1'))).toEqual([]);
    const verified = await runCli(['log', 'verify', join(dataDir, 'cli-unused-1')]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('healthy: no records (next offset 0)');
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-empty-'));
    try {
      mkdirSync(join(scratch, 'notes'));
      expect(expectOneLineFailure(await runCli(['log', 'verify', join(scratch, 'notes')]))).toContain('is not a partition directory');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('says which port is in use when a broker cannot listen, and leaves its data directory free', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'runnel-cli-port-'));
    try {
      const result = await runCli(['broker', '--port', String(broker.port), '--data-dir', otherDir, '--log-level', 'silent'], { timeoutMs: 30_000 });
      // Only ours: grpc-js's own "E No address added …" goes to the JSON log, not stderr.
      expect(expectOneLineFailure(result)).toBe(`runnel: port ${broker.port} on 0.0.0.0 is in use: stop what uses it, or pick another with --port <n> (--port 0 takes a free one)`);
      expect(readdirSync(otherDir)).not.toContain('broker.lock');
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('says what to do when --host is not an address of this machine or does not resolve', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'runnel-cli-host-'));
    try {
      // 192.0.2.1 is TEST-NET-1 (RFC 5737): never an address of a real machine.
      const foreign = await runCli(['broker', '--host', '192.0.2.1', '--port', '0', '--data-dir', otherDir, '--log-level', 'silent'], { timeoutMs: 30_000 });
      expect(expectOneLineFailure(foreign)).toBe('runnel: --host 192.0.2.1 is not an address of this machine: pass one it has (0.0.0.0 listens on all, 127.0.0.1 on this machine only)');
      const unknown = await runCli(['broker', '--host', 'no-such-host.invalid', '--port', '0', '--data-dir', otherDir, '--log-level', 'silent'], { timeoutMs: 30_000 });
      expect(expectOneLineFailure(unknown)).toMatch(/^runnel: --host no-such-host\.invalid does not resolve to an address/);
      expect(readdirSync(otherDir)).not.toContain('broker.lock');
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('says which data directory it cannot use and what to do when --data-dir is a file or lies under one', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-datadir-'));
    try {
      const file = join(scratch, 'a-file');
      writeFileSync(file, 'not a directory\n');
      for (const dataDir of [file, join(file, 'data')]) {
        const result = await runCli(['broker', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], { timeoutMs: 30_000 });
        expect(expectOneLineFailure(result)).toContain(`cannot use data directory ${dataDir}: it is not a directory (a file is in the way); pass a writable directory with --data-dir`);
      }
      expect(readFileSync(file, 'utf8')).toBe('not a directory\n');
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('refuses a bad broker setting in one line naming the flag, variable or file key, with no wire reason tag', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-settings-'));
    try {
      const file = join(scratch, 'runnel.json');
      writeFileSync(file, JSON.stringify({ dataDir: join(scratch, 'data'), bogus: 1 }));
      const [viaFlag, viaEnv, viaFile] = await Promise.all([
        runCli(['broker', '--data-dir', join(scratch, 'data'), '--port', '0', '--log-level', 'verbose']),
        runCli(['broker', '--data-dir', join(scratch, 'data')], { env: { RUNNEL_PORT: '70000' } }),
        runCli(['broker', '--config', file, '--port', '0']),
      ]);
      expect(expectOneLineFailure(viaFlag)).toBe('runnel: --log-level must be one of fatal, error, warn, info, debug, trace, silent');
      expect(expectOneLineFailure(viaEnv)).toBe('runnel: environment variable RUNNEL_PORT must be an integer from 0 to 65535, got "70000"');
      expect(expectOneLineFailure(viaFile)).toMatch(/^runnel: unknown setting in config file key "bogus"; known settings: dataDir, .*produceTimeoutMs\b/);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('answers commands of later capabilities, and a delete of a missing topic, with what to do', async () => {
    expect(expectOneLineFailure(await runCli(['group', 'list']))).toMatch(/consumer groups .* not available yet.*runnel consume TOPIC --partition N/);
    expect(expectOneLineFailure(await runCli(['cluster', 'describe', '--json']))).toMatch(/clusters .* not available yet/);
    expect(expectOneLineFailure(await runCli(['topic', 'delete', 'cli-never-made']))).toContain('add --if-exists');
    expect(await runOk(['topic', 'delete', 'cli-never-made', '--if-exists'])).toContain('nothing deleted');
  });

  it('refuses flags it cannot honour with a clear line', async () => {
    expect(expectOneLineFailure(await runCli(['consume', 'cli-any', '--group', 'g']))).toContain('consumer groups are not supported yet');
    expect(expectOneLineFailure(await runCli(['topic', 'list', '--broker', 'no-port']))).toContain('is not HOST:PORT');
    expect(expectOneLineFailure(await runCli(['broker', '--cluster', 'etcd://127.0.0.1:2379', '--broker-id', '1', '--port', '0']))).toMatch(/clusters \(--cluster\) are not available yet.*without --cluster/);
    const badFrom = await runCli(['consume', 'cli-any', '--from', 'yesterday']);
    expect(badFrom.code).toBe(1);
    expect(badFrom.stderr).toContain("option '--from <position>' argument 'yesterday' is invalid");
  });
});

/**
 * Runs `runnel …` with stderr on a terminal (a pseudo-terminal from util-linux's `script`) and
 * stdout into a file, as a person at a prompt redirecting the output; killed (its process
 * group, by PID) after `timeoutMs`. Returns what the terminal showed and what stdout got.
 */
async function runCliOnTerminal(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; terminal: string; stdout: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-cli-tty-'));
  try {
    const stdoutPath = join(dir, 'stdout');
    const quote = (text: string): string => `'${text.replaceAll("'", "'\\''")}'`;
    const command = [process.execPath, '--import', 'tsx', 'src/cli/run.ts', ...args].map(quote).join(' ');
    const child = spawn('script', ['-qec', `${command} > ${quote(stdoutPath)}`, '/dev/null'], {
      cwd: join(import.meta.dirname, '..', '..'),
      env: { ...process.env, RUNNEL_DEBUG: '', RUNNEL_BROKER: broker.address },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let terminal = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (terminal += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (terminal += text));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));
    clearTimeout(timer);
    return { code, terminal, stdout: readFileSync(stdoutPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasScript = spawnSync('script', ['--version']).status === 0;

describe('runnel progress on a terminal', () => {
  it.skipIf(!hasScript)('shows topic create of many partitions, and offsets partition by partition, on a terminal, and nothing on a pipe', async () => {
    const created = await runCliOnTerminal(['topic', 'create', 'cli-tty-many', '--partitions', '2500']);
    expect(created.code, created.terminal).toBe(0);
    expect(created.stdout).toContain('created topic cli-tty-many: 2500 partition(s)');
    expect(created.terminal).toContain('creating topic cli-tty-many: 2,500 partitions');

    const offsets = await runCliOnTerminal(['offsets', 'cli-tty-many']);
    expect(offsets.code, offsets.terminal).toBe(0);
    expect(offsets.stdout.trimEnd().split('\n')).toHaveLength(2501);
    expect(offsets.terminal).toContain('offsets of cli-tty-many: 1,000 of 2,500 partitions');
    expect(offsets.terminal).toContain('offsets of cli-tty-many: 2,500 of 2,500 partitions');

    // On a pipe: no progress, and one JSON document with every partition once, in order.
    const report = JSON.parse(await runOk(['offsets', 'cli-tty-many', '--json'])) as Any;
    expect((report.partitions as Any[]).map((partition) => partition.partition)).toEqual([...Array(2500).keys()]);
    await runOk(['topic', 'delete', 'cli-tty-many']);
  });
});

describe('runnel usage errors', () => {
  it('refuses a bad flag value, a missing argument or an unknown option in one line that names the command\'s --help', async () => {
    for (const args of [
      ['topic', 'create', 'cli-bad-flag', '--partitions', '0'],
      ['topic', 'create', 'cli-bad-flag', '--partitions', '-1'],
      ['topic', 'create', 'cli-bad-flag', '--partitions', 'abc'],
      ['topic', 'alter', 'cli-bad-flag', '--partitions', '-3'],
    ]) {
      const line = expectOneLineFailure(await runCli(args));
      // A count that must be positive says so whatever was wrong with it.
      expect(line, args.join(' ')).toMatch(/^runnel: option '--partitions <n>' argument '[^']+' is invalid: expected a whole number ≥ 1/);
      expect(line, args.join(' ')).toContain(`see \`runnel topic ${args[1]} --help\``);
    }
    expect(expectOneLineFailure(await runCli(['perf', 'produce', 'cli-bad-flag', '--size', '10']))).toMatch(
      /^runnel: required option '--records <n>' not specified \(see `runnel perf produce --help`\)$/,
    );
    expect(expectOneLineFailure(await runCli(['topic', 'create']))).toMatch(/^runnel: missing required argument 'name' \(see `runnel topic create --help`\)$/);
    expect(expectOneLineFailure(await runCli(['offsets', 't', '--bogus']))).toMatch(/^runnel: unknown option '--bogus' \(see `runnel offsets --help`\)$/);
    expect(expectOneLineFailure(await runCli(['topic', 'frobnicate']))).toMatch(/^runnel: unknown command 'frobnicate' \(see `runnel topic --help`\)$/);
    expect(expectOneLineFailure(await runCli(['perf', 'consume', 't', '--records', '1e3']))).toContain("argument '1e3' is invalid: expected a whole number ≥ 1 in decimal digits");
  });
});

describe('runnel --version', () => {
  it('prints the version of the package and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) expect(await runOk([flag])).toBe(`${version}\n`);
  });
});

describe('runnel --help of topic and perf commands', () => {
  it('prints the same for `runnel help CMD SUB` as for `runnel CMD SUB --help`', async () => {
    for (const command of [['topic'], ['topic', 'create'], ['topic', 'describe'], ['perf', 'produce'], ['perf', 'consume'], ['offsets'], ['log', 'dump']]) {
      const viaHelp = await runOk(['help', ...command]);
      expect(viaHelp, command.join(' ')).toContain(`Usage: runnel ${command.join(' ')} `);
      expect(viaHelp, command.join(' ')).toBe(await runOk([...command, '--help']));
    }
    for (const words of [['frobnicate'], ['topic', 'frobnicate']]) {
      const result = await runCli(['help', ...words]);
      expect(result.code, words.join(' ')).toBe(1);
      expect(result.stdout, words.join(' ')).toBe('');
    }
  });

  it('teaches each command with examples that name the command itself', async () => {
    const commands = [['topic', 'create'], ['topic', 'list'], ['topic', 'describe'], ['topic', 'alter'], ['topic', 'delete'], ['perf', 'produce'], ['perf', 'consume'], ['broker']];
    const helps = await Promise.all(commands.map((command) => runOk([...command, '--help'])));
    commands.forEach((command, index) => {
      expect(helps[index], command.join(' ')).toMatch(new RegExp(`\\nExamples:\\n  runnel ${command.join(' ')}\\b`));
    });
  });
});

describe('runnel broker --help', () => {
  it('names every setting with its config file key, RUNNEL_* variable and default, as CLI.md promises each can be set', async () => {
    const help = await runOk(['broker', '--help']);
    for (const { key, env } of brokerSettingNames()) {
      expect(help).toMatch(new RegExp(`^\\s+${key}\\s+${env}\\s`, 'm'));
    }
    expect(help).toMatch(/^\s+inFlightRequestsPerConnectionMax\s+RUNNEL_IN_FLIGHT_REQUESTS_MAX\s+1024$/m);
    expect(help).toContain('--config /etc/runnel.json');
  });
});

describe('runnel broker logs', () => {
  it('writes every line as one JSON object with a component, from start through topic admin to a clean stop', async () => {
    const ownDir = mkdtempSync(join(tmpdir(), 'runnel-cli-logs-'));
    const own = await startBrokerProcess({ dataDir: ownDir });
    try {
      const onOwn = { env: { RUNNEL_BROKER: own.address } };
      for (const args of [['topic', 'create', 'cli-logged', '--partitions', '2'], ['topic', 'alter', 'cli-logged', '--config', 'retention.ms=60000'], ['topic', 'delete', 'cli-logged']]) {
        const result = await runCli(args, onOwn);
        expect(result.code, result.stderr).toBe(0);
      }
      expect(await own.stop()).toBe(0);
      const entries = own.logs.map((line) => JSON.parse(line) as Any);
      expect(entries.filter((entry) => typeof entry.component !== 'string').map((entry) => entry.msg)).toEqual([]);
      const byMessage = (msg: string): Any | undefined => entries.find((entry) => entry.msg === msg);
      expect(byMessage('topic created')).toMatchObject({ component: 'broker', topic: 'cli-logged' });
      expect(byMessage('topic deleted')).toMatchObject({ component: 'broker', topic: 'cli-logged' });
      expect(byMessage('broker started')).toMatchObject({ component: 'broker' });
      expect(byMessage('broker stopped cleanly')).toMatchObject({ component: 'broker' });
    } finally {
      await own.kill();
      rmSync(ownDir, { recursive: true, force: true });
    }
  });
});

describe('runnel log', () => {
  it('appends lines that are not UTF-8 byte for byte, keys split at the separator, as produce does', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dir = join(scratch, 'bin-0');
      const input = Buffer.concat([Buffer.from('k\xff:v\xfe\x00', 'latin1'), Buffer.from('\r\nplain\n\n', 'latin1')]);
      expect(JSON.parse(await runOk(['log', 'append', dir, '--key-separator', ':'], { input }))).toMatchObject({ records: 3, firstOffset: 0, lastOffset: 2 });
      const records = jsonLines(await runOk(['log', 'dump', dir, '--records']));
      const bytesOf = (record: Any, field: 'key' | 'value'): Buffer | null => (record[field] === null ? null : Buffer.from(record[field], record.encoding === 'base64' ? 'base64' : 'utf8'));
      expect(records.map((record) => [bytesOf(record, 'key'), bytesOf(record, 'value')])).toEqual([
        [Buffer.from([0x6b, 0xff]), Buffer.from([0x76, 0xfe, 0x00])],
        [null, Buffer.from('plain')],
        [null, Buffer.alloc(0)],
      ]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel log dump', () => {
  it('prints records as consume --format json does: a repeated header key and a header value that is not UTF-8 kept', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dir = join(scratch, 'headers-0');
      mkdirSync(dir);
      const headers = [
        { key: 'trace', value: Buffer.from([0xff, 0x00]) },
        { key: 'trace', value: Buffer.from('second') },
        { key: 'empty', value: null },
      ];
      const batch = encodeBatch({ records: [{ key: Buffer.from('k'), value: Buffer.from('v'), headers, timestamp: 1_763_632_800_000 }] });
      writeFileSync(join(dir, segmentFileName(0, 'log')), batch);
      expect(jsonLines(await runOk(['log', 'dump', dir, '--records']))).toEqual([
        {
          topic: 'headers',
          partition: 0,
          offset: 0,
          timestamp: 1_763_632_800_000,
          key: 'aw==',
          value: 'dg==',
          headers: [
            { key: 'trace', value: '/wA=' },
            { key: 'trace', value: Buffer.from('second').toString('base64') },
            { key: 'empty', value: null },
          ],
          encoding: 'base64',
        },
      ]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel log dump --records on a batch of a million records', () => {
  /**
   * One gzip batch of 1,000,000 tiny records (a few MiB inflated; the decompressed bound allows
   * 64 MiB, some 9 million such records). Decoded whole, as the dump did, it takes a few hundred
   * MiB of record objects before the first line is printed; a slice at a time it fits a 96 MiB
   * heap, so the command is run with that heap.
   */
  it('prints records from the start or the middle of the batch within a small heap', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dir = join(scratch, 'many-0');
      mkdirSync(dir);
      writeFileSync(join(dir, segmentFileName(0, 'log')), manyTinyRecordsBatch(1_000_000, 1_763_632_800_000));
      const env = { NODE_OPTIONS: '--max-old-space-size=96' };
      const first = await runCli(['log', 'dump', dir, '--records', '--max', '3'], { env, timeoutMs: 60_000 });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(jsonLines(first.stdout).map((record) => [record.offset, record.value])).toEqual([[0, '0'], [1, '1'], [2, '2']]);
      const last = await runCli(['log', 'dump', dir, '--records', '--from', '999998'], { env, timeoutMs: 60_000 });
      expect(last.stderr).toBe('');
      expect(last.code).toBe(0);
      expect(jsonLines(last.stdout).map((record) => [record.offset, record.value])).toEqual([[999_998, '8'], [999_999, '9']]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel with an output that cannot be written', () => {
  it.skipIf(!existsSync('/dev/full'))('exits 1, saying why, when stdout fails (ENOSPC on /dev/full), not 0', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-full-'));
    try {
      const dir = join(scratch, 'full-0');
      mkdirSync(dir);
      writeFileSync(join(dir, segmentFileName(0, 'log')), encodeBatch({ records: [{ key: null, value: Buffer.from('v'), headers: [], timestamp: 1_763_632_800_000 }] }));
      const full = openSync('/dev/full', 'w');
      try {
        const result = await startCliProcess(['log', 'dump', dir, '--records'], { stdout: full }).result;
        expect(result.stderr).toMatch(/^runnel: cannot write to stdout: ENOSPC/m);
        expect(result.code).toBe(1);
      } finally {
        closeSync(full);
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel log append', () => {
  it('refuses a directory that holds other things than a partition (a data directory), writing nothing there', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dataDirCopy = join(scratch, 'data');
      await runOk(['log', 'append', join(dataDirCopy, 'app-logs-0')], { input: 'one\n' });
      writeFileSync(join(dataDirCopy, 'notes.txt'), 'not a segment\n');
      const refused = expectOneLineFailure(await runCli(['log', 'append', dataDirCopy], { input: 'stray\n' }));
      expect(refused).toBe(`runnel: ${dataDirCopy} is not a partition directory (it holds app-logs-0): pass one of those, e.g. ${join(dataDirCopy, 'app-logs-0')}`);
      expect(readdirSync(dataDirCopy).sort()).toEqual(['app-logs-0', 'notes.txt']);
      // An existing empty directory is a partition directory to be.
      const empty = join(scratch, 'empty-0');
      mkdirSync(empty);
      expect(JSON.parse(await runOk(['log', 'append', empty], { input: 'one\ntwo\n' }))).toMatchObject({ records: 2, logEndOffset: 2 });
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('says on stderr, as the broker logs it (a JSON line with its component), what opening the log changed: a torn tail cut', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dir = join(scratch, 'torn-0');
      await runOk(['log', 'append', dir], { input: 'one\ntwo\n' });
      // What a crash mid-write leaves: a dirty state and half a batch after the last whole one.
      const statePath = join(dir, 'partition.state');
      const { clean: _clean, ...dirty } = JSON.parse(readFileSync(statePath, 'utf8')) as Any;
      writeFileSync(statePath, `${JSON.stringify(dirty)}\n`);
      const logPath = join(dir, segmentFileName(0, 'log'));
      writeFileSync(logPath, Buffer.concat([readFileSync(logPath), encodeBatch({ records: [{ key: null, value: Buffer.from('torn'), headers: [], timestamp: 1 }] }).subarray(0, 30)]));
      const result = await runCli(['log', 'append', dir], { input: 'three\n' });
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ records: 1, firstOffset: 2, logEndOffset: 3 });
      const lines = result.stderr.trimEnd().split('\n').map((line) => JSON.parse(line) as Any);
      expect(lines).toEqual([expect.objectContaining({ component: 'storage', msg: 'truncated torn tail after unclean shutdown', truncatedBytes: 30 })]);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel log repair', () => {
  it('on a partition marked offline whose files read clean, shows what the mark says before clearing it', async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'runnel-cli-log-'));
    try {
      const dir = join(scratch, 'lost-0');
      await runOk(['log', 'append', dir], { input: 'one\ntwo\nthree\n' });
      // What start-up writes when a cleanly closed segment's file is gone: the files left are
      // whole, so the mark is the only record of the offsets lost.
      const statePath = join(dir, 'partition.state');
      const state = JSON.parse(readFileSync(statePath, 'utf8')) as Any;
      const detail = 'segment file is missing; it held offsets 3..9 at the last clean close';
      const { clean: _clean, ...rest } = state;
      writeFileSync(statePath, `${JSON.stringify({ ...rest, offline: { reason: 'CORRUPT_DATA', segmentBaseOffset: 3, position: 0, detail, detectedAtMs: 1 } })}\n`);

      const dryRun = await runOk(['log', 'repair', dir]);
      expect(dryRun).toContain(detail);
      expect(dryRun).toMatch(/--yes clears the mark.*log end offset 3/);
      expect(JSON.parse(readFileSync(statePath, 'utf8')).offline).toBeDefined();
      expect(await runOk(['log', 'repair', dir, '--yes'])).toMatch(new RegExp(`offline mark cleared \\(it said: ${detail}.*log end offset 3`));
      expect(JSON.parse(readFileSync(statePath, 'utf8')).offline).toBeUndefined();
      expect(await runOk(['log', 'verify', dir])).toMatch(/^healthy: offsets 0\.\.2/m);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('runnel perf', () => {
  it('reports produce throughput and latency, and consume throughput, as JSON', async () => {
    await runOk(['topic', 'create', 'cli-perf', '--partitions', '2']);
    const produced = JSON.parse(await runOk(['perf', 'produce', 'cli-perf', '--records', '3000', '--size', '64', '--json'], { timeoutMs: 60_000 })) as Any;
    expect(produced).toMatchObject({ topic: 'cli-perf', records: 3000, recordBytes: 64, bytes: 192_000 });
    for (const field of ['elapsedMs', 'recordsPerSec', 'mbPerSec', 'latencyMsAvg', 'latencyMsP50', 'latencyMsP95', 'latencyMsP99', 'latencyMsP999', 'latencyMsMax']) {
      expect(typeof produced[field], field).toBe('number');
    }
    expect(produced.recordsPerSec).toBeGreaterThan(0);
    expect(produced.latencyMsP50).toBeLessThanOrEqual(produced.latencyMsP99);
    expect(produced.latencyMsP99).toBeLessThanOrEqual(produced.latencyMsMax);
    expect((await logEndOffsets('cli-perf')).reduce((sum, offset) => sum + offset, 0)).toBe(3000);

    const consumed = JSON.parse(await runOk(['perf', 'consume', 'cli-perf', '--records', '3000', '--json'], { timeoutMs: 60_000 })) as Any;
    expect(consumed).toMatchObject({ topic: 'cli-perf', records: 3000, bytes: 192_000 });
    expect(consumed.recordsPerSec).toBeGreaterThan(0);
    expect(consumed.mbPerSec).toBeGreaterThan(0);

    expect(await runOk(['perf', 'produce', 'cli-perf', '--records', '500', '--size', '10'])).toMatch(/records\/s[\s\S]*latency ms\s+avg/);
    const short = expectOneLineFailure(await runCli(['perf', 'consume', 'cli-perf', '--records', '5000', '--timeout-ms', '500']));
    expect(short).toContain('only 3,500 of 5,000 records arrived');
  });

  it('reports what a short consume run read, timed to its last record, before exiting 1', async () => {
    await runOk(['topic', 'create', 'cli-perf-short', '--partitions', '2']);
    await runOk(['perf', 'produce', 'cli-perf-short', '--records', '1000', '--size', '10', '--json']);
    const short = await runCli(['perf', 'consume', 'cli-perf-short', '--records', '1500', '--timeout-ms', '3000', '--json']);
    expect(expectOneLineFailure(short)).toContain('only 1,000 of 1,500 records arrived (none for 3000 ms)');
    const report = JSON.parse(short.stdout) as Any;
    expect(report).toMatchObject({ topic: 'cli-perf-short', records: 1000, bytes: 10_000 });
    // The wait for records that never came is not reading time: it would dilute the rate.
    expect(report.elapsedMs).toBeLessThan(3000);
    const expectedRate = (1000 * 1000) / report.elapsedMs; // elapsedMs is rounded to 0.1 ms
    expect(Math.abs(report.recordsPerSec - expectedRate) / expectedRate).toBeLessThan(0.01);
    const text = await runCli(['perf', 'consume', 'cli-perf-short', '--records', '1500', '--timeout-ms', '1000']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^perf consume cli-perf-short: 1,000 records, 10,000 bytes in [\d.]+ s\nthroughput /);
  });

  it('counts only acknowledged records in the produce rates: a run the broker refuses reports no throughput and exits 1', async () => {
    await runOk(['topic', 'create', 'cli-perf-refused', '--config', 'max.message.bytes=1024']);
    const refused = await runCli(['perf', 'produce', 'cli-perf-refused', '--records', '20', '--size', '5000', '--json'], { timeoutMs: 60_000 });
    expect(expectOneLineFailure(refused)).toContain('some records were not acknowledged; the first failure: record too large');
    expect(JSON.parse(refused.stdout)).toMatchObject({ records: 20, acknowledgedRecords: 0, failedRecords: 20, bytes: 0, recordsPerSec: 0, mbPerSec: 0 });
    const text = await runCli(['perf', 'produce', 'cli-perf-refused', '--records', '20', '--size', '5000']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^perf produce cli-perf-refused: 20 records of 5,000 bytes in [\d.]+ s \(0 acknowledged, 20 failed\)\nthroughput  0 records\/s  0\.00 MB\/s\n/);
    const produced = JSON.parse(await runOk(['perf', 'produce', 'cli-perf-refused', '--records', '20', '--size', '100', '--json'])) as Any;
    expect(produced).toMatchObject({ records: 20, acknowledgedRecords: 20, failedRecords: 0, bytes: 2000 });
  });
});
