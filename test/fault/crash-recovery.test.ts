/**
 * Crash recovery with real process deaths.
 *
 * Goal: no batch a partition log acknowledged is ever lost or changed by a process crash, the
 * log stays online, offsets stay dense, and appends after restart continue from the log end.
 *
 * Method: a child process (test/support/append-child.ts) appends to a log with eight appends
 * in flight and prints one `ack` line per acknowledged batch, with the SHA-256 of the batch as
 * stored. After a seeded random number of acknowledgements the test SIGKILLs it by PID, so the
 * kill lands anywhere: inside a group commit, a segment roll, the write of partition.state.
 * Then it reopens the log itself and checks the acknowledged-set oracle: every batch
 * acknowledged in any round reads back byte for byte at its offset, and the log is a dense run
 * of batches from offset 0 to its end. It closes the log cleanly after even rounds and
 * abandons it open (no clean mark) after odd ones, so the next child starts from both kinds
 * of state. Under flush=always acknowledged means fdatasync'ed; under flush=never it means in
 * the page cache, which survives a process kill, so the same oracle applies.
 *
 * A failing run prints its seed; rerun with RUNNEL_FAULT_SEED=<seed> to replay the same kill
 * points (timing still varies, so a replay is likely rather than certain to hit the same spot).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { tryReadBatchHeader } from '../../src/protocol/index.js';
import { parseFlushPolicy, type PartitionLog } from '../../src/storage/index.js';
import { makeTempDir, openTestLog } from '../../src/storage/test-helpers.js';
import { childBatch, childLogConfig, sha256Hex } from '../support/append-child.js';
import { waitFor } from '../support/wait-for.js';
import { seededRandom } from '../support/seeded-random.js';

const CHILD_SCRIPT = fileURLToPath(new URL('../support/append-child.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SEED = Number(process.env.RUNNEL_FAULT_SEED ?? Date.now() % 2 ** 31);

interface Ack {
  baseOffset: number;
  lastOffset: number;
  sha256: string;
}

/** One running append-child and everything it printed so far. */
interface ChildRun {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly acks: Ack[];
  readyLogEndOffset: number | undefined;
  isDone: boolean;
  stderr: string;
  /** stdout lines that fit no known shape (checked after the child is gone). */
  readonly unexpectedLines: string[];
  /** Resolves once the process exited and its output pipes are drained. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildRun>();
const cleanups: (() => void | Promise<void>)[] = [];

afterEach(async () => {
  for (const run of running) await killChild(run);
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function startChild(options: { dir: string; flush: string; round: number }): ChildRun {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_SCRIPT, options.dir, options.flush, String(options.round)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error('could not start the append child');
  let pending = '';
  const run: ChildRun = {
    process: child,
    pid: child.pid,
    acks: [],
    readyLogEndOffset: undefined,
    isDone: false,
    stderr: '',
    unexpectedLines: [],
    closed: new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) parseChildLine(run, line);
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    run.stderr = (run.stderr + chunk).slice(-4000);
  });
  running.add(run);
  void run.closed.then(() => running.delete(run));
  return run;
}

function parseChildLine(run: ChildRun, line: string): void {
  const [kind, ...fields] = line.split(' ');
  if (kind === 'ack') {
    const [base, last, sha256] = fields;
    run.acks.push({ baseOffset: Number(base), lastOffset: Number(last), sha256: sha256 ?? '' });
  } else if (kind === 'ready') {
    run.readyLogEndOffset = Number(fields[0]);
  } else if (kind === 'done') {
    run.isDone = true;
  } else if (line.length > 0) {
    run.unexpectedLines.push(line);
  }
}

/** SIGKILL by PID (never by name), then wait until the process is gone and its pipes drained. */
async function killChild(run: ChildRun): Promise<void> {
  if (run.process.exitCode === null && run.process.signalCode === null) {
    try {
      process.kill(run.pid, 'SIGKILL');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  await run.closed;
  running.delete(run);
}

/** Waits for `ackCount` acknowledgements; fails early, with the child's stderr, if it dies. */
async function waitForAcks(run: ChildRun, ackCount: number): Promise<void> {
  await waitFor(
    () => {
      if (run.process.exitCode !== null) throw new Error(`append child exited with ${run.process.exitCode}: ${run.stderr}`);
      return run.readyLogEndOffset !== undefined && run.acks.length >= ackCount;
    },
    {
      timeoutMs: 30_000,
      describe: () => `append child acknowledged ${run.acks.length} of ${ackCount} appends (ready: ${String(run.readyLogEndOffset)}); stderr: ${run.stderr}`,
    },
  );
}


interface StoredBatch {
  lastOffset: number;
  sha256: string;
}

/**
 * Reads the whole log and checks it is a dense run of whole batches from its start to its
 * end; returns each batch's last offset and SHA-256 by base offset.
 */
async function readDenseBatches(log: PartitionLog): Promise<Map<number, StoredBatch>> {
  const batches = new Map<number, StoredBatch>();
  let offset = log.logStartOffset;
  while (offset < log.logEndOffset) {
    const read = await log.read({ offset, bytesMax: 1024 * 1024 });
    expect(read.bytes.length, `read at ${offset} returned nothing below the log end ${log.logEndOffset}`).toBeGreaterThan(0);
    let position = 0;
    while (position < read.bytes.length) {
      const header = tryReadBatchHeader(read.bytes, position);
      if (header === undefined) throw new Error(`unreadable batch header at offset ${offset}`);
      expect(header.baseOffset, 'offsets are dense').toBe(offset);
      const lastOffset = header.baseOffset + header.lastOffsetDelta;
      batches.set(header.baseOffset, { lastOffset, sha256: sha256Hex(read.bytes.subarray(position, position + header.sizeBytes)) });
      position += header.sizeBytes;
      offset = lastOffset + 1;
    }
    expect(read.nextOffset).toBe(offset);
  }
  expect(offset).toBe(log.logEndOffset);
  return batches;
}

/** The acknowledged-set oracle: every acknowledged batch is stored, whole and unchanged, at its offset. */
function expectEveryAckStored(stored: ReadonlyMap<number, StoredBatch>, acks: Iterable<Ack>): void {
  for (const ack of acks) {
    const batch = stored.get(ack.baseOffset);
    expect(batch, `acknowledged batch at offset ${ack.baseOffset} is missing`).toBeDefined();
    expect(batch?.lastOffset, `last offset of the batch at ${ack.baseOffset}`).toBe(ack.lastOffset);
    expect(batch?.sha256, `bytes of the batch at ${ack.baseOffset}`).toBe(ack.sha256);
  }
}

/** Runs `body`, prefixing any failure with the seed and round so it can be replayed. */
async function withContext(context: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    if (error instanceof Error) error.message = `[${context}; replay with RUNNEL_FAULT_SEED=${SEED}] ${error.message}`;
    throw error;
  }
}

/**
 * Runs `rounds` crash rounds on one directory (see the file header) and returns how many
 * batches were acknowledged in all.
 */
async function runCrashRounds(options: { flush: 'always' | 'never'; rounds: number; seed: number; ackCountMax: number }): Promise<number> {
  const random = seededRandom(options.seed);
  const temp = makeTempDir('runnel-crash-');
  cleanups.push(temp.remove);
  const acknowledged = new Map<number, Ack>();
  let logEndOffset = 0;
  for (let round = 0; round < options.rounds; round++) {
    // About one round in eight kills the child before it acknowledged anything.
    const ackTarget = random.int(0, 7) === 0 ? 0 : random.int(1, options.ackCountMax);
    await withContext(`flush=${options.flush} seed=${options.seed} round=${round} ackTarget=${ackTarget}`, async () => {
      const run = startChild({ dir: temp.dir, flush: options.flush, round });
      await waitForAcks(run, ackTarget);
      await killChild(run);
      expect(run.unexpectedLines, 'append child output').toEqual([]);
      expect(run.isDone).toBe(false);
      expect(run.readyLogEndOffset, 'the child reopened at the log end the last check saw').toBe(logEndOffset);
      if (run.acks.length > 0) {
        expect(Math.min(...run.acks.map((ack) => ack.baseOffset)), 'appends continue at the log end').toBe(logEndOffset);
      }
      for (const ack of run.acks) {
        expect(acknowledged.has(ack.baseOffset), `offset ${ack.baseOffset} acknowledged twice`).toBe(false);
        acknowledged.set(ack.baseOffset, ack);
      }

      const log = await openTestLog({ dir: temp.dir, config: childLogConfig(parseFlushPolicy(options.flush)) });
      expect(log.isOnline).toBe(true);
      const stored = await readDenseBatches(log);
      expectEveryAckStored(stored, acknowledged.values());
      const ackEnd = Math.max(logEndOffset, ...run.acks.map((ack) => ack.lastOffset + 1));
      expect(log.logEndOffset).toBeGreaterThanOrEqual(ackEnd);
      logEndOffset = log.logEndOffset;
      // Even rounds leave a clean mark; odd rounds abandon the open log, as a crash would.
      if (round % 2 === 0) await log.close();
    });
  }
  return acknowledged.size;
}

describe('crash recovery after SIGKILL', () => {
  it('keeps every batch acknowledged under flush=always, byte for byte, across 24 kills at random points', async () => {
    const acknowledgedCount = await runCrashRounds({ flush: 'always', rounds: 24, seed: SEED, ackCountMax: 600 });
    // Guard against a vacuous pass: the rounds must have acknowledged enough to cross rolls.
    expect(acknowledgedCount).toBeGreaterThan(500);
  });

  // Found by the rounds above: a kill right after a roll leaves an empty active segment; a
  // clean close then writes empty index files, and the first append after the next open
  // grew the adopted zero-length index buffer to zero bytes and crashed the process.
  it('appends after a clean close that left the active segment empty, as a kill right after a roll does', async () => {
    const temp = makeTempDir('runnel-crash-');
    cleanups.push(temp.remove);
    const config = childLogConfig({ kind: 'always' });
    const first = await openTestLog({ dir: temp.dir, config });
    const written = await first.append(childBatch(0, 0));
    await first.roll();
    // Abandoned without close, like the killed child; the next open recovers it.
    const recovered = await openTestLog({ dir: temp.dir, config });
    expect(recovered.logEndOffset).toBe(written.lastOffset + 1);
    await recovered.close();
    const reopened = await openTestLog({ dir: temp.dir, config });
    cleanups.push(() => reopened.close());
    const next = await reopened.append(childBatch(0, 1));
    expect(next.baseOffset).toBe(written.lastOffset + 1);
    const stored = await readDenseBatches(reopened);
    expect([...stored.keys()]).toEqual([written.baseOffset, next.baseOffset]);
  }, 10_000); // the bug left the append pending forever: fail fast instead

  it('loses no batch acknowledged under flush=never when only the process dies', async () => {
    const acknowledgedCount = await runCrashRounds({ flush: 'never', rounds: 4, seed: SEED + 1, ackCountMax: 1500 });
    expect(acknowledgedCount).toBeGreaterThan(100);
  });
});
