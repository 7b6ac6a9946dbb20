/**
 * Model-based property test of idempotent appends through PartitionLog.
 *
 * Goal: whatever mix of new batches, retries, sequence gaps, epoch bumps and zombie epochs
 * arrives (alone or queued together in one write group), and whatever rolls, retention runs,
 * clean reopens, crash-reopens and lost snapshots happen in between, the log answers each batch
 * exactly as the rules say over the producer's full history, and never holds two copies of one
 * producer batch.
 *
 * Method: the model keeps every acknowledged batch of every producer and derives the expected
 * answer directly from that history (producer-state.ts states the rules): a repeat of one of
 * the last five batches of the current epoch is a duplicate with the original offsets, an
 * older epoch is fenced, a newer one must start at 0, otherwise the sequence must follow the
 * newest. A retry is the same batch encoded again. A crash abandons the log without closing
 * it (under flush=never the page cache keeps every acknowledged byte; under flush=always
 * they are on disk anyway). Under flush=always a group's write overlaps the filler's
 * fdatasync, so its duplicates are judged against a run not yet committed. Timestamps stay near the
 * manual clock, so no producer expires.
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../common/clock.js';
import { isBrokerError, type Reason } from '../errors/index.js';
import { silentLogger } from '../observability/index.js';
import { tryReadBatchHeader } from '../protocol/index.js';
import { FileHandleCache } from './file-handle-cache.js';
import { nodeFileSystem } from './file-system.js';
import { IndexCache } from './index-cache.js';
import { PartitionLog, type AppendResult, type PartitionLogConfig } from './partition-log.js';
import { makeBatch, makeTempDir, propertyRunSettings, testConfig } from './test-helpers.js';

// ---- Generated input -----------------------------------------------------------------------

type Intent = 'next' | 'retry' | 'gap' | 'newEpoch' | 'oldEpoch';

interface Send {
  producer: number;
  intent: Intent;
  /** retry: how far back; gap: how far ahead; newEpoch: odd = a wrong first sequence. */
  n: number;
  count: number;
}

type Operation =
  | { kind: 'send'; send: Send }
  | { kind: 'group'; sends: Send[] }
  | { kind: 'plain' }
  | { kind: 'roll' }
  | { kind: 'retention' }
  | { kind: 'reopen' }
  | { kind: 'crashReopen' }
  | { kind: 'loseSnapshot' };

const sendArbitrary: fc.Arbitrary<Send> = fc.record({
  producer: fc.integer({ min: 0, max: 2 }),
  intent: fc.oneof(
    { weight: 6, arbitrary: fc.constant('next' as const) },
    { weight: 5, arbitrary: fc.constant('retry' as const) },
    { weight: 1, arbitrary: fc.constant('gap' as const) },
    { weight: 1, arbitrary: fc.constant('newEpoch' as const) },
    { weight: 1, arbitrary: fc.constant('oldEpoch' as const) },
  ),
  n: fc.integer({ min: 0, max: 7 }),
  count: fc.integer({ min: 1, max: 3 }),
});

const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('send' as const), send: sendArbitrary }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('group' as const), sends: fc.array(sendArbitrary, { minLength: 2, maxLength: 5 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'plain' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'roll' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'retention' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'crashReopen' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'loseSnapshot' as const }) },
);

const settingsArbitrary = fc.record({
  segmentBytes: fc.integer({ min: 1024, max: 4096 }),
  retentionBytes: fc.oneof(fc.constant(-1), fc.integer({ min: 1024, max: 8192 })),
  // Under always, a group is written while the filler's fdatasync runs (pipelined group commit).
  flush: fc.constantFrom({ kind: 'never' as const }, { kind: 'always' as const }),
});

// ---- The model -----------------------------------------------------------------------------

interface SentBatch {
  producerId: number;
  epoch: number;
  firstSequence: number;
  count: number;
}

interface AckedBatch extends SentBatch {
  baseOffset: number;
  lastOffset: number;
}

type Expected = { kind: 'appended' } | { kind: 'duplicate'; of: AckedBatch } | { kind: 'rejected'; reason: Reason };

class Model {
  logEndOffset = 0;
  /** Every acknowledged batch of each producer, oldest first. */
  readonly history = new Map<number, AckedBatch[]>();

  /** The answer the rules give `batch`, from the producer's whole history. */
  expect(batch: SentBatch): Expected {
    const history = this.history.get(batch.producerId) ?? [];
    const newest = history[history.length - 1];
    if (newest === undefined) return { kind: 'appended' };
    if (batch.epoch < newest.epoch) return { kind: 'rejected', reason: 'PRODUCER_FENCED' };
    if (batch.epoch > newest.epoch) return batch.firstSequence === 0 ? { kind: 'appended' } : { kind: 'rejected', reason: 'OUT_OF_ORDER_SEQUENCE' };
    const lastFive = history.filter((acked) => acked.epoch === batch.epoch).slice(-5);
    const original = lastFive.find((acked) => acked.firstSequence === batch.firstSequence && acked.count === batch.count);
    if (original !== undefined) return { kind: 'duplicate', of: original };
    return batch.firstSequence === newest.firstSequence + newest.count ? { kind: 'appended' } : { kind: 'rejected', reason: 'OUT_OF_ORDER_SEQUENCE' };
  }

  append(batch: SentBatch): AckedBatch {
    const acked = { ...batch, baseOffset: this.logEndOffset, lastOffset: this.logEndOffset + batch.count - 1 };
    this.logEndOffset += batch.count;
    const history = this.history.get(batch.producerId) ?? [];
    history.push(acked);
    this.history.set(batch.producerId, history);
    return acked;
  }

  /** The batch a producer sends for `send`, given what it knows (its own history). */
  batchFor(send: Send): SentBatch {
    const producerId = 100 + send.producer;
    const history = this.history.get(producerId) ?? [];
    const newest = history[history.length - 1];
    const epoch = newest?.epoch ?? 0;
    const nextSequence = newest === undefined ? 0 : newest.firstSequence + newest.count;
    const fresh = { producerId, epoch, firstSequence: nextSequence, count: send.count };
    switch (send.intent) {
      case 'next':
        return fresh;
      case 'retry': {
        const old = history[history.length - 1 - send.n];
        return old === undefined ? fresh : { producerId, epoch: old.epoch, firstSequence: old.firstSequence, count: old.count };
      }
      case 'gap':
        return { ...fresh, firstSequence: nextSequence + 1 + send.n };
      case 'newEpoch':
        return { ...fresh, epoch: epoch + 1, firstSequence: send.n % 2 === 0 ? 0 : 1 + send.n };
      case 'oldEpoch':
        return epoch === 0 ? fresh : { ...fresh, epoch: epoch - 1 };
    }
  }
}

/** The same bytes every time for the same batch, so a retry is a true retry. */
function encode(batch: SentBatch): Buffer {
  return makeBatch({
    count: batch.count,
    valueBytes: 40 + ((batch.firstSequence * 37) % 200),
    tag: `p${batch.producerId}e${batch.epoch}s${batch.firstSequence}`,
    producer: { producerId: batch.producerId, producerEpoch: batch.epoch, baseSequence: batch.firstSequence },
  });
}

// ---- Harness -------------------------------------------------------------------------------

class Harness {
  readonly model = new Model();
  private readonly clock = new ManualClock();
  private handles = new FileHandleCache(nodeFileSystem, 8);
  private log: PartitionLog | undefined;

  constructor(
    private readonly dir: string,
    private readonly config: PartitionLogConfig,
  ) {}

  get current(): PartitionLog {
    if (this.log === undefined) throw new Error('no open log');
    return this.log;
  }

  async open(): Promise<void> {
    this.log = await PartitionLog.open({
      dir: this.dir,
      topic: 'idem',
      partition: 0,
      config: this.config,
      fileSystem: nodeFileSystem,
      handles: this.handles,
      indexCache: new IndexCache(64 * 1024),
      clock: this.clock,
      logger: silentLogger,
    });
  }

  async dispose(): Promise<void> {
    await this.log?.close().catch(() => undefined);
    await this.handles.closeAll();
  }

  async run(step: number, op: Operation): Promise<void> {
    const where = `step ${step} ${JSON.stringify(op)}`;
    switch (op.kind) {
      case 'send': {
        const batch = this.model.batchFor(op.send);
        this.check(where, batch, await settle(this.current.append(encode(batch))));
        break;
      }
      case 'group': {
        // The plain append occupies the writer; the sends queue behind it as one write group.
        // Each one's answer follows the rules applied in queue order.
        const batches: SentBatch[] = [];
        const answers: Promise<Settled>[] = [settle(this.current.append(encode({ producerId: -1, epoch: -1, firstSequence: -1, count: 1 })))];
        this.model.logEndOffset += 1;
        const model = this.model;
        for (const send of op.sends) {
          // Each producer picks its batch knowing only its own earlier sends of this group.
          const batch = model.batchFor(send);
          batches.push(batch);
          answers.push(settle(this.current.append(encode(batch))));
          const expected = model.expect(batch);
          if (expected.kind === 'appended') model.append(batch);
          this.expectations.push(expected);
        }
        const settled = await Promise.all(answers);
        expect((settled[0] as Settled).error, `${where}: the filler`).toBeUndefined();
        for (let i = 0; i < batches.length; i++) this.compare(`${where}: send ${i}`, this.expectations[i] as Expected, settled[i + 1] as Settled, batches[i] as SentBatch);
        this.expectations.length = 0;
        break;
      }
      case 'plain':
        expect(await this.current.append(makeBatch({ tag: 'plain' })), where).toEqual({ baseOffset: this.model.logEndOffset, lastOffset: this.model.logEndOffset, isDuplicate: false });
        this.model.logEndOffset += 1;
        break;
      case 'roll':
        await this.current.roll();
        break;
      case 'retention':
        await this.current.applyRetention();
        break;
      case 'reopen':
        await this.current.close();
        await this.open();
        break;
      case 'crashReopen':
        this.log = undefined;
        await this.handles.closeAll();
        this.handles = new FileHandleCache(nodeFileSystem, 8);
        await this.open();
        break;
      case 'loseSnapshot':
        await this.current.close();
        unlinkSync(join(this.dir, 'producer.snapshot'));
        await this.open();
        break;
    }
    expect(this.current.logEndOffset, `${where}: logEndOffset`).toBe(this.model.logEndOffset);
    expect(this.current.isOnline, `${where}: online`).toBe(true);
  }

  private readonly expectations: Expected[] = [];

  /** One batch sent alone: compare, then move the model. */
  private check(where: string, batch: SentBatch, actual: Settled): void {
    const expected = this.model.expect(batch);
    if (expected.kind === 'appended') this.model.append(batch);
    this.compare(where, expected, actual, batch);
  }

  private compare(where: string, expected: Expected, actual: Settled, batch: SentBatch): void {
    const what = `${where}: ${JSON.stringify(batch)} expected ${expected.kind === 'rejected' ? expected.reason : expected.kind}`;
    switch (expected.kind) {
      case 'appended': {
        const acked = this.model.history.get(batch.producerId)?.find((old) => old.epoch === batch.epoch && old.firstSequence === batch.firstSequence);
        expect(actual.error, what).toBeUndefined();
        expect(actual.result, what).toEqual({ baseOffset: acked?.baseOffset, lastOffset: acked?.lastOffset, isDuplicate: false });
        break;
      }
      case 'duplicate':
        expect(actual.error, what).toBeUndefined();
        // makeBatch stamps record i at 1_700_000_000_000 + i; a retry repeats its original's bytes.
        expect(actual.result, what).toEqual({ baseOffset: expected.of.baseOffset, lastOffset: expected.of.lastOffset, isDuplicate: true, maxTimestamp: 1_700_000_000_000 + batch.count - 1 });
        break;
      case 'rejected':
        expect(isBrokerError(actual.error, expected.reason), `${what}, got ${String(actual.error ?? JSON.stringify(actual.result))}`).toBe(true);
        break;
    }
  }

  /** Every retained idempotent batch is in the log once. */
  async checkNoCopies(): Promise<void> {
    const seen = new Set<string>();
    let offset = this.current.logStartOffset;
    while (offset < this.current.logEndOffset) {
      const read = await this.current.read({ offset, bytesMax: 1 << 20 });
      for (let position = 0; position < read.bytes.length; ) {
        const header = tryReadBatchHeader(read.bytes, position);
        if (header === undefined) throw new Error(`unreadable batch at ${offset}`);
        if (header.producerId >= 0) {
          const key = `${header.producerId}/${header.producerEpoch}/${header.baseSequence}`;
          expect(seen.has(key), `batch ${key} is in the log twice`).toBe(false);
          seen.add(key);
        }
        position += header.sizeBytes;
      }
      offset = read.nextOffset;
    }
  }
}

interface Settled {
  result?: AppendResult;
  error?: unknown;
}

function settle(promise: Promise<AppendResult>): Promise<Settled> {
  return promise.then(
    (result) => ({ result }),
    (error: unknown) => ({ error }),
  );
}

const { runs, testTimeoutMs, interruptAfterMs, replay } = propertyRunSettings(50, 2000);

describe('idempotent appends (model-based)', () => {
  it(
    'answer every batch as the rules say over the producer history, through groups, rolls, retention, reopens, crashes and a lost snapshot',
    async () => {
      await fc.assert(
        fc.asyncProperty(settingsArbitrary, fc.array(operationArbitrary, { minLength: 1, maxLength: 50 }), async (settings, operations) => {
          const temp = makeTempDir('runnel-idem-property-');
          const harness = new Harness(temp.dir, { ...testConfig, ...settings });
          try {
            await harness.open();
            for (const [step, op] of operations.entries()) await harness.run(step, op);
            await harness.checkNoCopies();
          } finally {
            await harness.dispose();
            temp.remove();
          }
        }),
        { numRuns: runs, plugins: [fc.interruptAfterTimeLimit(interruptAfterMs, { failOnInterrupt: true })], ...replay },
      );
    },
    testTimeoutMs,
  );
});
