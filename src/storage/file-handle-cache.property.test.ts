/**
 * Property test: the FileHandleCache keeps its header's promises under every interleaving.
 *
 * Goal: random mixes of acquires (read and read-write, over more files than descriptors, some
 * holding their lease a while, sharing it, or discarding their file while they hold it),
 * discards, opens that fail, and closeAll, now and then with a wave of more than a thousand
 * acquires at once (past the waiter queue's compaction size, 1,024), and check:
 *
 * - the descriptor bound: never more descriptors opening, open or closing than `openFilesMax`;
 * - no hang: every acquire settles before a deadline, and so does closeAll;
 * - first come first served: an acquire that waited opens a new descriptor only when no acquire
 *   that came before it has waited in the queue all along (one woken to share a file and back
 *   in the queue since is not "all along"; see `checkOpenIsInTurn`); one that never waited
 *   opens one only while nobody waits;
 * - a lease is never pulled from under its user: its handle is not closed before it lets go;
 * - closeAll: acquires after it fail with SHUTTING_DOWN and open nothing, it resolves once every
 *   descriptor is closed, and every handle opened is closed exactly once;
 * - the bookkeeping (`internalsForTests`) after every step: idle handles are exactly the
 *   current entries with no user, the waiter queue is in ticket order with each waiter counted
 *   once (in its count and in its per-file sets, none left empty), its gone slots stay bounded,
 *   and nothing is left in any of it once everything is released and closeAll ran.
 *
 * Method: an in-memory file system whose opens and closes take a seeded number of microtask and
 * event-loop turns, and whose opens of a file fail when a step arms that. The acquire that
 * asked for each open is known through an AsyncLocalStorage around each acquire, and its ticket
 * from `ticketsIssuedForTests` (a ticket is taken in the synchronous part of the call).
 *
 * fast-check prints the seed and path of a failing run; replay it with
 * RUNNEL_PROPERTY_SEED=<seed> RUNNEL_PROPERTY_PATH=<path>. RUNNEL_PROPERTY_RUNS=<n> runs more.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import { seededRandom, type SeededRandom } from '../../test/support/seeded-random.js';
import { waitFor } from '../../test/support/wait-for.js';
import { FileHandleCache, type HandleLease } from './file-handle-cache.js';
import type { FileHandle, FileSystem, OpenMode } from './file-system.js';
import { propertyRunSettings } from './test-helpers.js';

const settings = propertyRunSettings(100, 100);
/** How long a run's acquires (then its closeAll) may take before it counts as stuck. */
const DEADLINE_MS = 10_000;
/** The waiter queue compacts from this many slots on (file-handle-cache.ts `WaiterQueue`). */
const COMPACTION_SLOTS = 1024;

type Step =
  | { kind: 'acquire'; file: number; mode: OpenMode; holdTurns: number; shares: number; discardWhileHeld: boolean }
  /**
   * `count` acquires at once, each holding its lease for a turn or none: over the run's files,
   * or each of its own file (`isSpread`: none shares, so only slot grants take waiters out).
   */
  | { kind: 'wave'; count: number; readWriteOneIn: number; isSpread: boolean }
  /** The driver lets the event loop turn: acquires settle, leases go back. */
  | { kind: 'turns'; count: number }
  /** The next `count` opens of the file fail. */
  | { kind: 'failOpens'; file: number; count: number }
  | { kind: 'discard'; file: number }
  /**
   * The next open of the file that wakes waiters to share it is discarded right after it
   * starts, before they run: they find their file gone and wait again, in their place.
   */
  | { kind: 'discardAtOpen'; file: number }
  | { kind: 'closeAll' };

const FILES_MAX = 12;
const file = fc.integer({ min: 0, max: FILES_MAX - 1 });
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 16,
    arbitrary: fc.record({
      kind: fc.constant('acquire' as const),
      file,
      mode: fc.constantFrom<OpenMode>('read', 'read', 'read-write'),
      holdTurns: fc.integer({ min: 0, max: 8 }),
      shares: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3 })),
      discardWhileHeld: fc.integer({ min: 0, max: 6 }).map((draw) => draw === 0),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('turns' as const), count: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('failOpens' as const), file, count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('discard' as const), file }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('discardAtOpen' as const), file }) },
);
const waveArbitrary: fc.Arbitrary<Step> = fc.record({
  kind: fc.constant('wave' as const),
  count: fc.integer({ min: COMPACTION_SLOTS + 100, max: 3 * COMPACTION_SLOTS }),
  readWriteOneIn: fc.integer({ min: 2, max: 20 }),
  isSpread: fc.boolean(),
});

interface OpenRecord {
  readonly path: string;
  readonly mode: OpenMode;
  closeCalls: number;
}

class InjectedOpenError extends Error {
  constructor(readonly path: string) {
    super(`injected open failure of ${path}`);
  }
}

/** In-memory files: opens and closes take seeded turns; counts descriptors and closes. */
class FakeFiles {
  /** Opens started whose descriptor is not closed yet (a failed open counts until it fails). */
  descriptors = 0;
  descriptorsMax = 0;
  readonly opened: OpenRecord[] = [];
  readonly failNext = new Map<string, number>();
  readonly fileSystem: FileSystem;
  private readonly handles = new WeakMap<FileHandle, OpenRecord>();

  constructor(
    private readonly random: SeededRandom,
    /** Called as an open is asked for, before anything else: the test's checks at that point. */
    private readonly onOpenCall: (path: string, mode: OpenMode) => void,
  ) {
    const unused = (): never => {
      throw new Error('the cache itself only opens and closes');
    };
    this.fileSystem = {
      open: (path, mode) => this.open(path, mode),
      tryReadFile: unused,
      trySizeBytes: unused,
      readdir: unused,
      mkdir: unused,
      rename: unused,
      unlink: unused,
      removeTree: unused,
      syncDirectory: unused,
    };
  }

  recordOf(handle: FileHandle): OpenRecord {
    return this.handles.get(handle) as OpenRecord;
  }

  private async open(path: string, mode: OpenMode): Promise<FileHandle> {
    this.onOpenCall(path, mode);
    this.descriptors++;
    this.descriptorsMax = Math.max(this.descriptorsMax, this.descriptors);
    await this.turns();
    const failures = this.failNext.get(path) ?? 0;
    if (failures > 0) {
      this.failNext.set(path, failures - 1);
      this.descriptors--;
      throw new InjectedOpenError(path);
    }
    const record: OpenRecord = { path, mode, closeCalls: 0 };
    this.opened.push(record);
    const unused = (): never => {
      throw new Error('the test never does I/O through a lease');
    };
    const handle: FileHandle = {
      path,
      read: unused,
      writev: unused,
      datasync: unused,
      truncate: unused,
      sizeBytes: unused,
      close: async () => {
        record.closeCalls++;
        await this.turns();
        if (record.closeCalls === 1) this.descriptors--;
      },
    };
    this.handles.set(handle, record);
    return handle;
  }

  /** Mostly a few microtask hops, now and then event-loop turns (a slow disk). */
  async turns(): Promise<void> {
    const loopTurns = this.random.int(0, 9) === 0 ? this.random.int(1, 3) : 0;
    for (let i = this.random.int(0, 3); i > 0; i--) await Promise.resolve();
    for (let i = loopTurns; i > 0; i--) await nextTurn();
  }
}

function nextTurn(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * The acquire whose code runs: each is called inside it, so an open knows which asked for it.
 * One for the whole file: each instance adds its cost to every promise while it lives.
 */
const acquireContext = new AsyncLocalStorage<AcquireRecord>();

interface AcquireRecord {
  readonly id: number;
  readonly path: string;
  readonly mode: OpenMode;
  /** Event number of the call (events: calls and opens, counted together). */
  readonly calledAt: number;
  /** Its ticket, when it had to wait. */
  ticket: number | undefined;
  isSettled: boolean;
}

async function runSteps(steps: readonly Step[], openFilesMax: number, fileCount: number, seed: number): Promise<void> {
  const random = seededRandom(seed);
  const paths = Array.from({ length: fileCount }, (_, i) => `/data/file-${i}.log`);
  const pathOf = (index: number): string => paths[index % fileCount] as string;
  const violations: string[] = [];
  const acquires: AcquireRecord[] = [];
  const byTicket = new Map<number, AcquireRecord>();
  /** Per path, the event number of its last open, and of its last read-write open. */
  const lastOpenAt = new Map<string, number>();
  const lastReadWriteOpenAt = new Map<string, number>();
  /** Whether something opened a file `acquire` can share since it was called (which wakes it). */
  const isOpenedSince = (acquire: AcquireRecord): boolean =>
    ((acquire.mode === 'read' ? lastOpenAt : lastReadWriteOpenAt).get(acquire.path) ?? -1) > acquire.calledAt;
  /** Files whose next open is discarded right after it starts. */
  const discardAtOpen = new Set<string>();
  let events = 0;
  let isCloseAllCalled = false;
  let leasesHeld = 0;
  let opensCalled = 0;
  let cache: FileHandleCache | undefined;

  /**
   * First come first served, as the acquire asking for this open sees it. An opener that
   * waited got its slot as the oldest waiter; a waiter with an older ticket queued now that
   * has been queued since its call (nothing opened its file since, so nothing woke it to share
   * and it came back) was there then too, and should have had it.
   */
  const checkOpenIsInTurn = (path: string, mode: OpenMode): void => {
    const opener = acquireContext.getStore();
    if (opener === undefined) {
      violations.push(`an open of ${path} came from outside any acquire`);
      return;
    }
    if (isCloseAllCalled) violations.push(`acquire ${opener.id} opened ${path} after closeAll`);
    if (opener.path !== path || (opener.mode === 'read') !== (mode === 'read')) {
      violations.push(`acquire ${opener.id} of ${opener.path} (${opener.mode}) opened ${path} (${mode})`);
    }
    const waiters = (cache as FileHandleCache).internalsForTests().waiters.queued;
    if (opener.ticket === undefined) {
      // Took the way for when nobody waits, in the same synchronous run as this open.
      if (waiters.length > 0) violations.push(`acquire ${opener.id} opened ${path} without waiting while ${waiters.length} waited`);
    } else {
      for (const waiter of waiters) {
        if (waiter.ticket >= opener.ticket) break;
        const earlier = byTicket.get(waiter.ticket) as AcquireRecord;
        if (!isOpenedSince(earlier)) {
          violations.push(`acquire ${opener.id} (ticket ${opener.ticket}) opened ${path} while acquire ${earlier.id} (ticket ${earlier.ticket}) had waited since before it`);
          break;
        }
      }
    }
    lastOpenAt.set(path, ++events);
    if (mode !== 'read') lastReadWriteOpenAt.set(path, events);
    if (discardAtOpen.has(path) && (cache as FileHandleCache).internalsForTests().waiters.byPath.some((waiters) => waiters.path === path)) {
      discardAtOpen.delete(path);
      coverage.discardsAtOpen++;
      queueMicrotask(() => (cache as FileHandleCache).discard(path));
    }
  };
  const files = new FakeFiles(random, (path, mode) => {
    // Before the open is counted: the waiters it will wake to share it are still queued.
    if (++opensCalled % 8 === 0 || !handles.hasWaiters) checkInternals(`at an open of ${path}`, false);
    checkOpenIsInTurn(path, mode);
    if (files.descriptors + 1 > openFilesMax) violations.push(`an open of ${path} made ${files.descriptors + 1} descriptors`);
  });
  cache = new FileHandleCache(files.fileSystem, openFilesMax);
  const handles: FileHandleCache = cache;

  /** The bookkeeping's invariants; `isQuiet`: no acquire or lease is outstanding. */
  const checkInternals = (where: string, isQuiet: boolean): void => {
    const internals = handles.internalsForTests();
    const fail = (what: string): void => {
      violations.push(`${where}: ${what}`);
    };
    if (internals.slotsHeld > openFilesMax) fail(`${internals.slotsHeld} slots held`);
    if (internals.draining < 0 || internals.closesRunning < 0) fail(`draining ${internals.draining}, closes running ${internals.closesRunning}`);
    for (const entry of internals.idle) {
      if (entry.users !== 0 || entry.isDiscarded || !entry.isCurrent) fail(`idle entry ${JSON.stringify(entry)}`);
    }
    const idlePaths = new Set(internals.idle.map((entry) => entry.path));
    for (const entry of internals.entries) {
      if (entry.isDiscarded || !entry.isCurrent) fail(`entry ${JSON.stringify(entry)}`);
      if (entry.users === 0 && !idlePaths.has(entry.path)) fail(`entry with no user not idle: ${entry.path}`);
    }
    const queue = internals.waiters;
    if (queue.queued.length !== queue.waiting) fail(`${queue.waiting} waiters counted, ${queue.queued.length} queued`);
    if (handles.hasWaiters !== queue.waiting > 0) fail(`hasWaiters ${handles.hasWaiters} with ${queue.waiting} waiting`);
    if (queue.liveBeforeHead !== 0) fail(`${queue.liveBeforeHead} waiters before the head, never to be woken`);
    for (const waiter of queue.queued) {
      if (isOpenedSince(byTicket.get(waiter.ticket) as AcquireRecord)) coverage.returnedWaiters.add(`${seed}:${waiter.ticket}`);
    }
    for (let i = 1; i < queue.queued.length; i++) {
      if ((queue.queued[i - 1] as { ticket: number }).ticket >= (queue.queued[i] as { ticket: number }).ticket) {
        fail(`waiters out of ticket order at ${i}: ${queue.queued.slice(Math.max(0, i - 2), i + 2).map((waiter) => waiter.ticket).join(', ')}`);
        break;
      }
    }
    let inSets = 0;
    for (const ofPath of queue.byPath) {
      inSets += ofPath.count;
      if (ofPath.count === 0 || ofPath.goneCount !== 0) fail(`waiters of ${ofPath.path}: ${JSON.stringify(ofPath)}`);
    }
    if (inSets !== queue.waiting) fail(`${inSets} waiters in the per-file sets, ${queue.waiting} counted`);
    if (queue.slots - queue.waiting >= Math.max(COMPACTION_SLOTS, queue.waiting)) fail(`${queue.slots} queue slots for ${queue.waiting} waiters`);
    if (isQuiet) {
      if (queue.waiting !== 0 || internals.draining !== 0) fail(`quiet, yet ${queue.waiting} waiting, ${internals.draining} draining`);
      if (internals.idle.length !== internals.entries.length) fail(`quiet, yet ${internals.entries.length} entries and ${internals.idle.length} idle`);
    }
  };

  const holdFor = async (turns: number): Promise<void> => {
    for (let i = turns; i > 0; i--) await nextTurn();
  };
  const letGo = (lease: HandleLease, who: string): void => {
    const record = files.recordOf(lease.handle);
    if (record.closeCalls !== 0) violations.push(`${who}: the handle of ${record.path} was closed while leased`);
    leasesHeld--;
    lease.release();
  };

  const pending = new Set<Promise<void>>();
  const startAcquire = (path: string, mode: OpenMode, holdTurns: number, shares: number, discardWhileHeld: boolean): void => {
    const closeAllCalledBefore = isCloseAllCalled;
    const ticketsBefore = handles.ticketsIssuedForTests;
    const record: AcquireRecord = { id: acquires.length, path, mode, calledAt: ++events, ticket: undefined, isSettled: false };
    acquires.push(record);
    const acquiring = acquireContext.run(record, () => handles.acquire(path, mode));
    // A ticket is taken in the call's synchronous part, at its first wait, or never.
    if (handles.ticketsIssuedForTests !== ticketsBefore) {
      record.ticket = ticketsBefore;
      byTicket.set(ticketsBefore, record);
    }
    const who = `acquire ${record.id} of ${path} (${mode})`;
    const running = (async () => {
      let lease: HandleLease;
      try {
        lease = await acquiring;
      } catch (error) {
        const isExpected = (error instanceof InjectedOpenError && error.path === path) || (isBrokerError(error, 'SHUTTING_DOWN') && isCloseAllCalled);
        if (!isExpected) violations.push(`${who} failed: ${String(error)}`);
        return;
      }
      if (closeAllCalledBefore) violations.push(`${who} was served though called after closeAll`);
      leasesHeld++;
      const opened = files.recordOf(lease.handle);
      if (opened.path !== path || (mode === 'read-write' && opened.mode === 'read')) violations.push(`${who} got a handle on ${opened.path} (${opened.mode})`);
      const sharing: Promise<void>[] = [];
      for (let i = 0; i < shares; i++) {
        const shared = lease.share();
        leasesHeld++;
        sharing.push(holdFor(random.int(0, 4)).then(() => letGo(shared, `${who}, share ${i}`)));
      }
      if (discardWhileHeld) handles.discard(path);
      await holdFor(holdTurns);
      letGo(lease, who);
      await Promise.all(sharing);
    })().finally(() => {
      record.isSettled = true;
      pending.delete(running);
    });
    pending.add(running);
  };

  let closing: Promise<void> | undefined;
  const startCloseAll = (): void => {
    isCloseAllCalled = true;
    closing = handles.closeAll().then(() => {
      if (files.descriptors !== 0) violations.push(`closeAll resolved with ${files.descriptors} descriptors open`);
      if (leasesHeld !== 0) violations.push(`closeAll resolved with ${leasesHeld} leases held`);
    });
  };

  for (const [index, step] of steps.entries()) {
    switch (step.kind) {
      case 'acquire':
        startAcquire(pathOf(step.file), step.mode, step.holdTurns, step.shares, step.discardWhileHeld);
        break;
      case 'wave':
        for (let i = 0; i < step.count; i++) {
          const mode = random.int(1, step.readWriteOneIn) === 1 ? 'read-write' : 'read';
          const path = step.isSpread ? `/data/wave-${index}-${i}.log` : pathOf(random.int(0, fileCount - 1));
          startAcquire(path, mode, random.int(0, 1), 0, false);
        }
        break;
      case 'turns':
        await holdFor(step.count);
        break;
      case 'failOpens':
        files.failNext.set(pathOf(step.file), (files.failNext.get(pathOf(step.file)) ?? 0) + step.count);
        break;
      case 'discard':
        handles.discard(pathOf(step.file));
        break;
      case 'discardAtOpen':
        discardAtOpen.add(pathOf(step.file));
        break;
      case 'closeAll':
        startCloseAll();
        break;
    }
    checkInternals(`after step ${index} (${step.kind})`, false);
  }

  const describeState = (): string =>
    `${pending.size} acquires pending (${acquires
      .filter((record) => !record.isSettled)
      .slice(0, 5)
      .map((record) => `${record.id}: ${record.path} ${record.mode} ticket ${record.ticket}`)
      .join('; ')}), ${handles.descriptorCount} of ${openFilesMax} descriptors, waiters: ${handles.hasWaiters}, ${leasesHeld} leases held`;
  await waitFor(() => pending.size === 0, { timeoutMs: DEADLINE_MS, describe: describeState });
  if (!isCloseAllCalled) checkInternals('once every acquire settled', true);
  if (closing === undefined) startCloseAll();
  let isClosed = false;
  void (closing as Promise<void>).then(() => (isClosed = true));
  await waitFor(() => isClosed, { timeoutMs: DEADLINE_MS, describe: () => `closeAll is stuck: ${describeState()}` });

  checkInternals('after closeAll', true);
  const internals = handles.internalsForTests();
  expect(violations).toEqual([]);
  expect(files.descriptorsMax).toBeLessThanOrEqual(openFilesMax);
  expect(files.descriptors).toBe(0);
  expect(files.opened.filter((record) => record.closeCalls !== 1).map((record) => `${record.path}: closed ${record.closeCalls} times`)).toEqual([]);
  expect(internals).toEqual({
    entries: [],
    idle: [],
    slotsHeld: 0,
    closesRunning: 0,
    draining: 0,
    waiters: { waiting: 0, slots: 0, queued: [], byPath: [], liveBeforeHead: 0 },
  });
  coverage.runs++;
  if (acquires.length > COMPACTION_SLOTS) coverage.bigRuns++;
  if (byTicket.size > 0) coverage.runsWithWaiters++;
}

const coverage = { runs: 0, bigRuns: 0, runsWithWaiters: 0, returnedWaiters: new Set<string>(), discardsAtOpen: 0 };

/** `steps` with `step` put in at `at` (modulo their count plus one). */
function insertAt(steps: readonly Step[], at: number, step: Step): Step[] {
  const index = at % (steps.length + 1);
  return [...steps.slice(0, index), step, ...steps.slice(index)];
}

describe('FileHandleCache (property)', () => {
  it(
    'keeps the descriptor bound, serves every acquire first come first served, and closes each handle once',
    async () => {
      const runArbitrary = fc
        .record({
          openFilesMax: fc.integer({ min: 1, max: 4 }),
          extraFiles: fc.integer({ min: 1, max: FILES_MAX - 4 }),
          steps: fc.array(stepArbitrary, { minLength: 1, maxLength: 80, size: 'max' }),
          // One run in five: a wave of thousands of waiters somewhere in it.
          wave: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(waveArbitrary, fc.nat()) }),
          // One run in three: closeAll while the steps still run (otherwise after they settle).
          closeAllAt: fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() }),
          seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        })
        .map(({ wave, closeAllAt, steps, ...rest }) => {
          const withWave = wave === undefined ? steps : insertAt(steps, wave[1], wave[0]);
          return { steps: closeAllAt === undefined ? withWave : insertAt(withWave, closeAllAt, { kind: 'closeAll' }), ...rest };
        });
      await fc.assert(
        fc.asyncProperty(runArbitrary, ({ openFilesMax, extraFiles, steps, seed }) => runSteps(steps, openFilesMax, openFilesMax + extraFiles, seed)),
        { numRuns: settings.runs, plugins: [fc.interruptAfterTimeLimit(settings.interruptAfterMs, { failOnInterrupt: true })], ...settings.replay },
      );
      // That the runs reach what they are for (not checked when replaying one run).
      if (settings.replay.path === undefined) {
        expect(coverage.runsWithWaiters, 'runs where acquires waited for a descriptor').toBeGreaterThan(coverage.runs / 4);
        expect(coverage.bigRuns, 'runs with more than 1,024 acquires').toBeGreaterThan(0);
        expect(coverage.discardsAtOpen, 'files given up as they opened, with waiters woken to share them').toBeGreaterThan(0);
        expect(coverage.returnedWaiters.size, 'waiters woken to share a file, seen back in the queue').toBeGreaterThan(0);
      }
    },
    settings.testTimeoutMs,
  );
});
