/**
 * The whole-broker chaos run: Runnel's central promise checked end to end through real
 * process deaths. No acknowledged record is ever lost, and the idempotent producer writes
 * none twice, while a broker process is SIGKILLed and restarted under a steady produce load.
 * `scripts/chaos.ts` runs it for as long as asked; `test/fault/broker-chaos.test.ts` runs a
 * short bounded version of it in `npm test`.
 *
 * Method:
 * - One `runnel broker` child process (broker-process.ts) on a fresh data directory, with the
 *   flush policy under test as the broker default, and one topic of a few partitions with
 *   small segments (256 KiB by default), so segments roll, and producer snapshots are written,
 *   all through the run and some kills land near a roll.
 * - Idempotent producers (the TypeScript client, acks=all) in this process send keyed records
 *   at a bounded rate. A record's value names its producer run and sequence number and carries
 *   a filler derived from both, so its content can be checked. The ledger keeps, per record,
 *   whether it was acknowledged (with its partition and offset), failed, or is still pending.
 * - After one restart in three (at least one), one producer is replaced by a new one (a new producer
 *   run): the old one is closed once it has delivered what it holds, and the new one asks the
 *   restarted broker for a producer id. An id handed out again after a crash would make the
 *   broker take one producer's batches for the other's duplicates.
 * - A killer: at seeded-random points in the run it SIGKILLs the broker by PID, waits until
 *   the process is gone, and starts a new one on the same data directory. Most kills wait
 *   until the producers have had a record acknowledged by the current broker (so each restart
 *   proves the client found it again), then for a moment with batches in flight, so the kill
 *   leaves outcomes open; one in four (at least one in a run of two or more) comes within
 *   300 ms of a restart instead, while the producers are resending what the last kill left in
 *   flight. One restart in four (at least one) is first interrupted: that broker is SIGKILLed
 *   within 1.5 s of its spawn, and started again. A start takes 0.5-0.9 s here, so the kill
 *   lands either in start-up (the meta store, the lock takeover) or just after it, while
 *   the clients' first requests make the broker recover the partitions they use (a broker
 *   recovers each partition on first use).
 * - A tailing consumer on the producers' client reads every partition from offset 0 through
 *   all of it, reopening its streams after each kill.
 * - At the end: production stops, every record is waited for (acknowledged or failed), the
 *   broker is stopped cleanly (SIGTERM, exit 0) and started again, and a fresh client reads
 *   every partition from offset 0 to its end.
 *
 * The checks (each breach is a violation, named in the report):
 * - every acknowledged record is in the log exactly once, at the partition and offset it was
 *   acknowledged with, with the key and value it was sent with;
 * - no record is in the log twice (the producers resend in-flight batches after each restart,
 *   and the broker must recognise them from the producer state it rebuilt after the crash);
 * - a record that failed (delivery timeout) is there at most once;
 * - nothing is there that was never sent; each partition starts at 0 and is dense;
 * - per producer and partition, records are in the order of their sequence numbers;
 * - what the tailing consumer read is what the log holds at those offsets at the end (a
 *   broker must not show a reader a record that a crash then takes back or moves);
 * - liveness: every restart comes up within its deadline, the client reaches each restarted
 *   broker, no record is left unresolved, the tailing consumer catches up with the end, the
 *   clean stop exits 0, the final read completes.
 *
 * Reaching the restarted broker: a broker on port 0 would get a new port at each restart, and
 * the client's bootstrap list is fixed (it has no way to learn a new address). So the broker
 * listens on one fixed port for the whole run, chosen free beforehand below the kernel's
 * ephemeral range (`pickStablePort`): no port-0 listener and no outgoing connection on the
 * machine can be handed that port while the broker is down between a kill and its restart.
 * Node sets SO_REUSEADDR, so the connections the killed broker left in TIME_WAIT do not block
 * the rebind. The integration tests that restart a broker on its port
 * (`test/integration/client-broker-restart.test.ts` and others) pick it the same way.
 *
 * Durability scope: a SIGKILL ends the process, not the machine. Bytes the broker wrote are
 * in the page cache and survive it whatever the flush policy, so under the default
 * `interval:1000` a process crash loses nothing acknowledged either, and the same oracle
 * applies to both policies. Only a power loss may drop acknowledged records that were not yet
 * fsynced under `interval:<ms>` or `never`; this run does not simulate one (see
 * `test/fault/power-loss.test.ts` for that, at the storage level).
 *
 * Replaying: the seed fixes the kill schedule, which kills are quick or interrupt a start-up,
 * and which restarts replace a producer; the timing of the processes still varies, so a
 * replay is likely rather than certain to hit the same spot.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, isBrokerError, type Consumer, type Producer, type RunnelClient } from '../../src/client/index.js';
import { startBrokerProcess, type BrokerProcess } from './broker-process.js';
import { pickStablePort } from './ports.js';
import { readEachWithin } from './read-within.js';
import { seededRandom } from './seeded-random.js';
import { pause, waitFor } from './wait-for.js';

export interface ChaosOptions {
  /** How long the producers send, in seconds; the kills are spread over it. */
  seconds: number;
  /** How many times the broker is SIGKILLed and restarted. */
  kills: number;
  /** Fixes the kill schedule (see the file header on replaying). */
  seed: number;
  /** The broker's default flush policy: `always`, `interval:<ms>` or `never`. */
  flush: string;
  /** Partitions of the topic. Default 4. */
  partitions?: number;
  /** Idempotent producers sending side by side, each with its own producer id. Default 2. */
  producers?: number;
  /** The topic's `segment.bytes`: small, so segments roll during the run. Default 256 KiB. */
  segmentBytes?: number;
  /** Records per second, all producers together. Default 2,000. */
  rate?: number;
  /** Bytes of each record's value. Default 100 (at least what its name needs). */
  valueBytes?: number;
  /**
   * The producers' `deliveryTimeoutMs`. Default 120 s (the producer's), far longer than a
   * restart, so no record fails. Shorter than a restart, records fail with their outcome
   * unknown, and each such failure makes the producer bump its epoch and restart its
   * sequences, after resolving under the old epoch every batch an earlier attempt may have
   * appended (src/client/producer.ts); a record in the log twice is still a violation.
   */
  deliveryTimeoutMs?: number;
  /** Keep the data directory even when the run found nothing (it is always kept after a violation). */
  keepDataDir?: boolean;
  /** Progress lines (a restart, the final read); nothing is printed when absent. */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  flush: string;
  kills: number;
  /** Kills that came within 300 ms of a restart, before waiting for an acknowledgement. */
  quickKills: number;
  /** Restarts SIGKILLed in the middle of start-up (not counted in `kills`). */
  startupKills: number;
  /** Records the tailing consumer read through the kills. */
  tailed: number;
  /** Producers that sent, the replacements included. */
  producerRuns: number;
  /** Batches in flight (all producers) at each kill: how many outcomes the kill left open. */
  inFlightBatchesAtKills: number[];
  /** Milliseconds each restart took, from its spawn until it said it had started (recovery included). */
  restartMs: number[];
  /** Milliseconds from each restarted broker's start until the producers' first acknowledgement from it (none when killed first). */
  firstAckMs: number[];
  sent: number;
  acked: number;
  failed: number;
  /** Records read back from the log at the end. */
  read: number;
  /** Second (and later) copies of a record found in the log. */
  duplicates: number;
  /** Acknowledged records not found, those in a partition that cannot be read included. */
  lost: number;
  /** Producer counters summed over the producers: retried batch sends and epoch bumps. */
  batchRetries: number;
  epochBumps: number;
  seconds: number;
  /** Every violation found, in the order found (the summary prints the first few). */
  violations: string[];
  /** warn and error lines the brokers logged, the first 50. */
  brokerWarnings: string[];
  /** Kept when there were violations or `keepDataDir`; removed (undefined) otherwise. */
  dataDir: string | undefined;
}

/** The default flush policy, as named in the summary. */
export const FLUSH_DEFAULT = 'interval:1000';

const PARTITIONS_DEFAULT = 4;
const PRODUCERS_DEFAULT = 2;
const SEGMENT_BYTES_DEFAULT = 256 * 1024;
const RATE_DEFAULT = 2_000;
const VALUE_BYTES_DEFAULT = 100;
const DELIVERY_TIMEOUT_MS_DEFAULT = 120_000;
/** Distinct keys per producer; keyed records spread over every partition (murmur2). */
const KEY_COUNT = 32;
/** The producers send once per tick, what the rate allows since the start. */
const SEND_TICK_MS = 10;
/** A broker start (recovery included) taking longer than this is a broker that did not come back. */
const BROKER_START_TIMEOUT_MS = 60_000;
/** How long the producers may take to get a record acknowledged by a restarted broker. */
const RECONNECT_TIMEOUT_MS = 60_000;
/** How long the records still pending when production stops may take to be acknowledged or fail. */
const SETTLE_TIMEOUT_MS = 60_000;
/** The final read of every partition. */
const READ_TIMEOUT_MS = 120_000;
/** How long a kill waits for batches to be in flight (waitForBatchesInFlight). */
const IN_FLIGHT_WAIT_MS = 2_000;
/** A start-up kill comes this soon after the spawn at most (killDuringStart). */
const STARTUP_KILL_MS_MAX = 1_500;
/** How long the tailing consumer may take to reach the end once production stopped. */
const TAIL_CATCH_UP_TIMEOUT_MS = 60_000;
/** A quick kill comes this soon after a restart at most. */
const QUICK_KILL_MS_MAX = 300;
const BROKER_WARNINGS_MAX = 50;

/** Thrown inside the run for a liveness failure that ends it early; already recorded as a violation. */
class ChaosAbort extends Error {}

/**
 * Runs one chaos run (see the file header) and reports what it found; resolves with the
 * violations in the report rather than throwing for them. Rejects only for a failure of the
 * harness itself. Every broker process it starts is gone when it settles.
 */
export async function runBrokerChaos(options: ChaosOptions): Promise<ChaosReport> {
  const run = new ChaosRun(options);
  try {
    await run.execute();
  } catch (error) {
    if (!(error instanceof ChaosAbort)) run.violation(`the run failed: ${describeError(error)}`);
  } finally {
    await run.cleanUp();
  }
  return run.report();
}

/** One producer's records: what became of each sequence number. Growable typed arrays, so a long soak stays small. */
class ProducerLedger {
  static readonly PENDING = 1;
  static readonly ACKED = 2;
  static readonly FAILED = 3;
  sent = 0;
  state = new Uint8Array(4096);
  partition = new Int32Array(4096);
  offset = new Float64Array(4096);
  /** Times the record was found in the log (capped at 255). */
  seen = new Uint8Array(4096);
  /** Where it was found first. */
  seenPartition = new Int32Array(4096);
  seenOffset = new Float64Array(4096);

  /** Takes the next sequence number. */
  next(): number {
    const seq = this.sent++;
    if (seq === this.state.length) this.grow();
    this.state[seq] = ProducerLedger.PENDING;
    return seq;
  }

  private grow(): void {
    const size = this.state.length * 2;
    const grown = <T extends Uint8Array | Int32Array | Float64Array>(from: T, make: (n: number) => T): T => {
      const to = make(size);
      to.set(from);
      return to;
    };
    this.state = grown(this.state, (n) => new Uint8Array(n));
    this.partition = grown(this.partition, (n) => new Int32Array(n));
    this.offset = grown(this.offset, (n) => new Float64Array(n));
    this.seen = grown(this.seen, (n) => new Uint8Array(n));
    this.seenPartition = grown(this.seenPartition, (n) => new Int32Array(n));
    this.seenOffset = grown(this.seenOffset, (n) => new Float64Array(n));
  }
}

/** The key and value of record `seq` of producer `producerIndex`: what the log must hold for it. */
export function chaosRecord(producerIndex: number, seq: number, valueBytes: number): { key: string; value: string } {
  const name = `${producerIndex}:${seq}:`;
  const fill = (seq * 7919 + producerIndex).toString(36);
  let value = name;
  while (value.length < valueBytes) value += fill;
  return { key: `k${seq % KEY_COUNT}`, value: value.length > valueBytes ? value.slice(0, Math.max(valueBytes, name.length)) : value };
}

class ChaosRun {
  private readonly options: Required<Omit<ChaosOptions, 'log'>> & Pick<ChaosOptions, 'log'>;
  private readonly random;
  private readonly topic: string;
  private readonly ledgers: ProducerLedger[] = [];
  /** By producer run (the index into `ledgers`), every producer made, the replaced ones included. */
  private readonly producers: Producer[] = [];
  /** The runs sending now: slot → producer run. */
  private readonly active: number[] = [];
  /** Replaced producers delivering what they hold, then closing. */
  private readonly closing: Promise<void>[] = [];
  private readonly violations: string[] = [];
  private readonly brokerWarnings: string[] = [];
  private readonly inFlightBatchesAtKills: number[] = [];
  private readonly restartMs: number[] = [];
  private readonly firstAckMs: number[] = [];
  /** When the current broker said it had started, if it is a restart. */
  private restartedAtMs: number | undefined;
  private readonly startMs = Date.now();
  private dataDir: string | undefined;
  private args: string[] = [];
  private port = 0;
  private broker: BrokerProcess | undefined;
  private client: RunnelClient | undefined;
  private reader: RunnelClient | undefined;
  private sending: Promise<void> | undefined;
  private isStopRequested = false;
  private ackedCount = 0;
  private failedCount = 0;
  /** Acknowledgements since the current broker started. */
  private ackedSinceStart = 0;
  private kills = 0;
  private quickKills = 0;
  private startupKills = 0;
  /** Per partition, what the tailing consumer read at each offset (`recordId`), in offset order. */
  private readonly tailed: number[][] = [];
  private tailing: Promise<void> | undefined;
  private tailConsumer: Consumer | undefined;
  private readCount = 0;
  /** Partitions the final read could not reach (each a violation already). */
  private readonly offlinePartitions = new Set<number>();
  private duplicates = 0;
  private lost = 0;
  private batchRetries = 0;
  private epochBumps = 0;
  private isDataDirKept = false;

  constructor(options: ChaosOptions) {
    this.options = {
      partitions: PARTITIONS_DEFAULT,
      producers: PRODUCERS_DEFAULT,
      segmentBytes: SEGMENT_BYTES_DEFAULT,
      rate: RATE_DEFAULT,
      valueBytes: VALUE_BYTES_DEFAULT,
      deliveryTimeoutMs: DELIVERY_TIMEOUT_MS_DEFAULT,
      keepDataDir: false,
      ...options,
    };
    this.random = seededRandom(options.seed);
    this.topic = `chaos-${options.seed}`;
  }

  violation(text: string): void {
    this.violations.push(text);
  }

  private log(line: string): void {
    this.options.log?.(`[${((Date.now() - this.startMs) / 1000).toFixed(1)} s] ${line}`);
  }

  async execute(): Promise<void> {
    this.dataDir = mkdtempSync(join(tmpdir(), 'runnel-chaos-'));
    this.port = await pickStablePort();
    this.args = ['--flush', this.options.flush];
    this.log(`seed ${this.options.seed}, flush ${this.options.flush}, data dir ${this.dataDir}, port ${this.port}`);
    await this.startBroker('first start');
    this.client = createClient({ brokers: [`127.0.0.1:${this.port}`], clientId: 'chaos' });
    await this.client.admin.createTopic({ name: this.topic, partitions: this.options.partitions, configs: { 'segment.bytes': String(this.options.segmentBytes) } });
    for (let slot = 0; slot < this.options.producers; slot++) this.active.push(this.newProducer());
    await this.startTailing();
    this.sending = this.sendLoop();
    await this.killAndRestart();
    await this.stopProducing();
    await this.waitForTailCatchUp();
    await this.client?.close({ timeoutMs: 1_000 });
    this.client = undefined;
    await this.restartCleanly();
    await this.readAndCheck();
  }

  // ---- The killer ---------------------------------------------------------------------------

  /** The kills, at seeded-random points spread over the run, then production to its end. */
  private async killAndRestart(): Promise<void> {
    const runMs = this.options.seconds * 1000;
    const kills = this.options.kills;
    const killAtMs = Array.from({ length: kills }, () => this.random.int(Math.floor(runMs * 0.1), Math.floor(runMs * 0.9))).sort((a, b) => a - b);
    // Each kind in its share of the kills, at seeded-random ones, and at least once in a run
    // of a few kills, so that even the short bounded mode meets every kind.
    const quickAt = this.pickKills(kills >= 2 ? Math.max(1, Math.round(kills / 4)) : 0, 1);
    const startUpKillAt = this.pickKills(kills >= 1 ? Math.max(1, Math.round(kills / 4)) : 0, 0);
    const replaceAt = this.pickKills(kills >= 1 ? Math.max(1, Math.round(kills / 3)) : 0, 0);
    for (const [index, atMs] of killAtMs.entries()) {
      const isQuick = quickAt.has(index);
      if (isQuick) {
        this.quickKills++;
        await pause(this.random.int(0, QUICK_KILL_MS_MAX));
      } else {
        await this.waitForAckFromCurrentBroker(`before kill ${index + 1}`);
        await pause(Math.max(0, this.startMs + atMs - Date.now()));
        await this.waitForBatchesInFlight();
      }
      await this.kill(index + 1, isQuick);
      if (startUpKillAt.has(index)) await this.killDuringStart(index + 1, this.random.int(0, STARTUP_KILL_MS_MAX));
      await this.startBroker(`restart ${index + 1}`);
      if (replaceAt.has(index)) this.replaceProducer(this.random.int(0, this.active.length - 1));
    }
    await this.waitForAckFromCurrentBroker(this.options.kills === 0 ? 'from the broker' : `after restart ${this.options.kills}`);
    await pause(Math.max(0, this.startMs + runMs - Date.now()));
  }

  /** `count` distinct kill indexes from `first` on (fewer when there are not that many), seeded-random. */
  private pickKills(count: number, first: number): Set<number> {
    const candidates = Array.from({ length: Math.max(0, this.options.kills - first) }, (_, index) => first + index);
    const picked = new Set<number>();
    while (picked.size < Math.min(count, candidates.length)) {
      const [index] = candidates.splice(this.random.int(0, candidates.length - 1), 1);
      if (index !== undefined) picked.add(index);
    }
    return picked;
  }

  /**
   * Waits (briefly) for a moment when batches are sent and not yet acknowledged, so that the
   * kill leaves outcomes open: the producers must resend them and the restarted broker must
   * tell, from the producer state it rebuilt, which it already has. At a low rate the
   * acknowledgements come within a millisecond or two of the send, so a kill at an arbitrary
   * moment would often find none in flight. Kills anyway when none came.
   */
  private async waitForBatchesInFlight(): Promise<void> {
    await waitFor(() => this.inFlightBatches() > 0, { timeoutMs: IN_FLIGHT_WAIT_MS, intervalMs: 1, describe: () => 'no batch in flight' }).catch(() => undefined);
  }

  private inFlightBatches(): number {
    let inFlight = 0;
    for (const producer of this.producers) inFlight += producer.metrics().inFlightBatches;
    return inFlight;
  }

  private async kill(number: number, isQuick: boolean): Promise<void> {
    const broker = this.broker;
    if (broker === undefined) throw new Error('no broker to kill');
    const inFlight = this.inFlightBatches();
    this.inFlightBatchesAtKills.push(inFlight);
    await broker.kill('SIGKILL');
    this.collectWarnings(broker);
    this.broker = undefined;
    this.kills++;
    this.log(`kill ${number}${isQuick ? ' (quick)' : ''}: SIGKILL pid ${broker.pid} with ${inFlight} batches in flight, ${this.ackedCount} records acknowledged so far`);
  }

  /**
   * Starts a broker and SIGKILLs it `afterMs` after the spawn: in the middle of start-up
   * (meta store, lock takeover), or once it has started, while the clients' first requests
   * make it recover their partitions (logs, indexes, producer state). The next start must
   * cope with what either leaves.
   */
  private async killDuringStart(number: number, afterMs: number): Promise<void> {
    if (this.dataDir === undefined) throw new Error('no data directory');
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), afterMs);
    try {
      const started = await startBrokerProcess({ dataDir: this.dataDir, port: this.port, args: this.args, startTimeoutMs: BROKER_START_TIMEOUT_MS, signal: abort.signal });
      // It started before the kill was due: the kill still comes when due.
      if (!abort.signal.aborted) await new Promise((resolve) => abort.signal.addEventListener('abort', resolve, { once: true }));
      await started.kill('SIGKILL');
      this.collectWarnings(started);
      this.log(`restart ${number}: killed ${afterMs} ms after its spawn, once it had started (pid ${started.pid})`);
    } catch (error) {
      if (!abort.signal.aborted || !/start aborted/.test(describeError(error))) {
        this.violation(`the broker did not come back (restart ${number}, before the start-up kill): ${describeError(error)}`);
        throw new ChaosAbort();
      }
      this.log(`restart ${number}: SIGKILLed ${afterMs} ms after its spawn, during start-up`);
    } finally {
      clearTimeout(timer);
    }
    this.startupKills++;
  }

  private async startBroker(what: string): Promise<void> {
    if (this.dataDir === undefined) throw new Error('no data directory');
    const startedMs = Date.now();
    try {
      this.broker = await startBrokerProcess({ dataDir: this.dataDir, port: this.port, args: this.args, startTimeoutMs: BROKER_START_TIMEOUT_MS });
    } catch (error) {
      this.violation(`the broker did not come back (${what}): ${describeError(error)}`);
      throw new ChaosAbort();
    }
    this.ackedSinceStart = 0;
    this.restartedAtMs = undefined;
    if (what.startsWith('restart')) {
      this.restartMs.push(Date.now() - startedMs);
      this.restartedAtMs = Date.now();
    }
    this.log(`${what}: pid ${this.broker.pid} started in ${Date.now() - startedMs} ms`);
  }

  private async waitForAckFromCurrentBroker(when: string): Promise<void> {
    try {
      await waitFor(() => this.ackedSinceStart > 0, {
        timeoutMs: RECONNECT_TIMEOUT_MS,
        describe: () => `no record acknowledged by the broker started last (${when}); ${this.pendingCount()} records pending`,
      });
    } catch (error) {
      this.violation(`the client never reached the broker ${when}: ${describeError(error)}`);
      throw new ChaosAbort();
    }
  }

  // ---- The producers ------------------------------------------------------------------------

  /** A new producer run: its ledger and producer; returns its index. */
  private newProducer(): number {
    if (this.client === undefined) throw new Error('no client');
    this.ledgers.push(new ProducerLedger());
    // The producer's defaults otherwise (lingerMs 5). With the default delivery timeout
    // (120 s) against a restart of a second or two, a failed record means a broker that
    // stayed unreachable.
    this.producers.push(this.client.producer({ acks: 'all', idempotent: true, deliveryTimeoutMs: this.options.deliveryTimeoutMs }));
    return this.producers.length - 1;
  }

  /** Slot `slot` sends through a new producer from now on; the old one delivers what it holds, then closes. */
  private replaceProducer(slot: number): void {
    const old = this.active[slot]!;
    this.active[slot] = this.newProducer();
    this.closing.push(this.producers[old]!.close().catch(() => undefined)); // failures are counted per record
    this.log(`producer run ${old} replaced by run ${this.active[slot]}`);
  }

  /** Sends, every tick, what the rate allows since the start, round-robin over the producers. */
  private async sendLoop(): Promise<void> {
    let total = 0;
    while (!this.isStopRequested) {
      const due = Math.floor(((Date.now() - this.startMs) * this.options.rate) / 1000);
      while (total < due && !this.isStopRequested) {
        const index = this.active[total % this.active.length]!;
        const producer = this.producers[index]!;
        // Back-pressure while the broker is down: the buffer fills, and sending waits. The
        // producer may be replaced meanwhile (a closed one would refuse the record): look again.
        if (!producer.hasBufferSpace) {
          await producer.waitForBufferSpace();
          continue;
        }
        this.sendOne(index);
        total++;
      }
      await pause(SEND_TICK_MS);
    }
  }

  private sendOne(index: number): void {
    const ledger = this.ledgers[index]!;
    const seq = ledger.next();
    const { key, value } = chaosRecord(index, seq, this.options.valueBytes);
    this.producers[index]!.send({ topic: this.topic, key, value }).then(
      (metadata) => {
        if (ledger.state[seq] !== ProducerLedger.PENDING) this.violation(`record ${index}:${seq} was settled twice (acknowledged after ${describeState(ledger.state[seq])})`);
        ledger.state[seq] = ProducerLedger.ACKED;
        ledger.partition[seq] = metadata.partition;
        ledger.offset[seq] = metadata.offset;
        this.ackedCount++;
        if (this.ackedSinceStart++ === 0 && this.restartedAtMs !== undefined) this.firstAckMs.push(Date.now() - this.restartedAtMs);
      },
      (error: unknown) => {
        if (ledger.state[seq] !== ProducerLedger.PENDING) this.violation(`record ${index}:${seq} was settled twice (failed after ${describeState(ledger.state[seq])})`);
        ledger.state[seq] = ProducerLedger.FAILED;
        if (this.failedCount === 0) this.log(`first failed record ${index}:${seq}: ${describeError(error)}`);
        this.failedCount++;
      },
    );
  }

  private pendingCount(): number {
    let sent = 0;
    for (const ledger of this.ledgers) sent += ledger.sent;
    return sent - this.ackedCount - this.failedCount;
  }

  /** Stops sending and waits until every record sent is acknowledged or failed. */
  private async stopProducing(): Promise<void> {
    this.isStopRequested = true;
    await this.sending;
    this.sending = undefined;
    this.log(`production stopped: ${this.ledgers.reduce((sum, ledger) => sum + ledger.sent, 0)} records sent, waiting for ${this.pendingCount()} pending`);
    for (const index of this.active) void this.producers[index]!.flush().catch(() => undefined); // failures are counted per record
    try {
      await waitFor(() => this.pendingCount() === 0, {
        timeoutMs: SETTLE_TIMEOUT_MS,
        describe: () => `${this.pendingCount()} records neither acknowledged nor failed`,
      });
    } catch (error) {
      this.violation(`records stayed unresolved with the broker up: ${describeError(error)}`);
      throw new ChaosAbort();
    }
    await Promise.all(this.closing);
    for (const producer of this.producers) {
      const metrics = producer.metrics();
      this.batchRetries += metrics.batchRetries;
      this.epochBumps += metrics.epochBumps;
    }
  }

  /** SIGTERM (a clean stop must exit 0), then a fresh start for the final read. */
  private async restartCleanly(): Promise<void> {
    const broker = this.broker;
    if (broker === undefined) throw new Error('no broker to stop');
    const code = await broker.stop();
    this.collectWarnings(broker);
    this.broker = undefined;
    if (code !== 0) this.violation(`the clean stop (SIGTERM) exited with ${String(code)}, not 0`);
    await this.startBroker('start for the final read');
  }

  // ---- The tailing consumer -----------------------------------------------------------------

  /** Reads every partition from offset 0, through the kills, until closed; keeps what it read. */
  private async startTailing(): Promise<void> {
    if (this.client === undefined) throw new Error('no client');
    const consumer = this.client.consumer({ autoOffsetReset: 'none' });
    this.tailConsumer = consumer;
    const partitions = Array.from({ length: this.options.partitions }, (_, partition) => ({ topic: this.topic, partition }));
    consumer.assign(partitions);
    for (const partition of partitions) {
      this.tailed.push([]);
      await consumer.seek(partition, 0);
    }
    this.tailing = (async () => {
      for await (const record of consumer) {
        const tailed = this.tailed[record.partition]!;
        if (record.offset !== tailed.length) {
          this.violation(`the tailing consumer read partition ${record.partition} offset ${record.offset} where ${tailed.length} was next`);
          return;
        }
        tailed.push(recordId(record.value));
      }
    })().catch((error: unknown) => {
      this.violation(`the tailing consumer failed: ${describeError(error)}`);
    });
  }

  /** Once production stopped: the tailing consumer reaches every partition's end. */
  private async waitForTailCatchUp(): Promise<void> {
    if (this.client === undefined) throw new Error('no client');
    const latest = await this.client.admin.listOffsets({ topic: this.topic, spec: 'latest' });
    const tailedCount = (): number => this.tailed.reduce((sum, tailed) => sum + tailed.length, 0);
    const endCount = latest.reduce((sum, { offset }) => sum + offset, 0);
    try {
      await waitFor(() => tailedCount() >= endCount, {
        timeoutMs: TAIL_CATCH_UP_TIMEOUT_MS,
        describe: () => `the tailing consumer read ${tailedCount()} of ${endCount} records (${this.tailed.map((tailed, partition) => `partition ${partition}: ${tailed.length} of ${latest.find((offset) => offset.partition === partition)?.offset}`).join(', ')})`,
      });
    } catch (error) {
      this.violation(`the tailing consumer did not catch up: ${describeError(error)}`);
    }
    await this.tailConsumer?.close();
    await this.tailing;
    this.log(`the tailing consumer read ${tailedCount()} records`);
  }

  // ---- The final read and the checks --------------------------------------------------------

  private async readAndCheck(): Promise<void> {
    this.reader = createClient({ brokers: [`127.0.0.1:${this.port}`], clientId: 'chaos-reader' });
    // Each partition on its own: an offline one (CORRUPT_DATA after recovery found damage) is
    // a violation, and the others are still read and checked.
    const earliest = await this.reader.admin.listOffsetsEach({ topic: this.topic, spec: 'earliest' });
    const latest = await this.reader.admin.listOffsetsEach({ topic: this.topic, spec: 'latest' });
    const endOffsets = new Array<number>(this.options.partitions).fill(0);
    for (const result of [...earliest, ...latest]) {
      if (result.error === undefined || this.offlinePartitions.has(result.partition)) continue;
      this.offlinePartitions.add(result.partition);
      this.violation(`partition ${result.partition} cannot be read: ${describeError(result.error)}`);
    }
    for (const result of latest) if (result.error === undefined) endOffsets[result.partition] = result.offset;
    for (const result of earliest) {
      if (result.error === undefined && result.offset !== 0) this.violation(`partition ${result.partition} starts at offset ${result.offset}, not 0 (nothing was deleted)`);
    }
    const readable = endOffsets.map((_, partition) => partition).filter((partition) => !this.offlinePartitions.has(partition));
    const total = readable.reduce((sum, partition) => sum + endOffsets[partition]!, 0);
    this.log(`reading ${total} records (end offsets ${endOffsets.join(', ')})`);
    const nextOffsets = new Array<number>(this.options.partitions).fill(0);
    /** Per producer and partition, the last sequence number read. */
    const lastSeqs = this.ledgers.map(() => new Array<number>(this.options.partitions).fill(-1));
    if (total > 0) {
      const consumer = this.reader.consumer({ autoOffsetReset: 'none' });
      const partitions = readable.map((partition) => ({ topic: this.topic, partition }));
      consumer.assign(partitions);
      for (const partition of partitions) await consumer.seek(partition, 0);
      try {
        await readEachWithin(consumer, { timeoutMs: READ_TIMEOUT_MS, describe: () => `read ${this.readCount} of ${total} records` }, (record) => {
          this.readCount++;
          const expected = nextOffsets[record.partition];
          if (record.offset !== expected) this.violation(`partition ${record.partition}: offset ${record.offset} read where ${String(expected)} was next (offsets are not dense)`);
          nextOffsets[record.partition] = record.offset + 1;
          this.checkRecord(record.partition, record.offset, record.key, record.value, lastSeqs);
          return this.readCount >= total;
        });
      } catch (error) {
        this.violation(`the final read did not complete: ${describeError(error)}`);
      } finally {
        await consumer.close();
      }
    }
    this.checkLedgers();
  }

  /** One record read back: known, unchanged, not seen before, in sequence order. */
  private checkRecord(partition: number, offset: number, key: Buffer | null, value: Buffer | null, lastSeqs: number[][]): void {
    const where = `partition ${partition} offset ${offset}`;
    const text = value?.toString('utf8') ?? '';
    const match = /^(\d+):(\d+):/.exec(text);
    const index = match === null ? -1 : Number(match[1]);
    const seq = match === null ? -1 : Number(match[2]);
    const ledger = this.ledgers[index];
    if (ledger === undefined || seq >= ledger.sent) {
      this.violation(`${where}: unknown record ${JSON.stringify(text.slice(0, 40))} (never sent)`);
      return;
    }
    const expected = chaosRecord(index, seq, this.options.valueBytes);
    if (text !== expected.value || key?.toString('utf8') !== expected.key) {
      this.violation(`${where}: record ${index}:${seq} has the wrong content (key ${JSON.stringify(key?.toString('utf8') ?? null)})`);
    }
    const tailed = this.tailed[partition]?.[offset];
    if (tailed !== undefined && tailed !== recordId(value)) {
      this.violation(`${where}: holds record ${index}:${seq}, but the tailing consumer read ${describeRecordId(tailed)} there`);
    }
    if (ledger.seen[seq]! > 0) {
      this.duplicates++;
      this.violation(`${where}: record ${index}:${seq} (${describeState(ledger.state[seq])}) is there again; first at partition ${ledger.seenPartition[seq]} offset ${ledger.seenOffset[seq]}`);
      if (ledger.seen[seq]! < 255) ledger.seen[seq]!++;
      return; // a second copy is out of sequence order too: one violation is enough
    }
    ledger.seenPartition[seq] = partition;
    ledger.seenOffset[seq] = offset;
    ledger.seen[seq] = 1;
    const lastSeq = lastSeqs[index]![partition]!;
    if (seq <= lastSeq) this.violation(`${where}: record ${index}:${seq} comes after ${index}:${lastSeq} in the partition (out of sequence order)`);
    lastSeqs[index]![partition] = Math.max(lastSeq, seq);
  }

  /** Every acknowledged record was found once at its place; no record unresolved. */
  private checkLedgers(): void {
    for (const [index, ledger] of this.ledgers.entries()) {
      for (let seq = 0; seq < ledger.sent; seq++) {
        const state = ledger.state[seq];
        if (state === ProducerLedger.PENDING) this.violation(`record ${index}:${seq} was neither acknowledged nor failed`);
        if (state !== ProducerLedger.ACKED) continue;
        const acked = `partition ${ledger.partition[seq]} offset ${ledger.offset[seq]}`;
        if (this.offlinePartitions.has(ledger.partition[seq]!)) {
          this.lost++; // one violation for the partition already says why
        } else if (ledger.seen[seq] === 0) {
          this.lost++;
          this.violation(`record ${index}:${seq}, acknowledged at ${acked}, is lost`);
        } else if (ledger.seenPartition[seq] !== ledger.partition[seq] || ledger.seenOffset[seq] !== ledger.offset[seq]) {
          this.violation(`record ${index}:${seq}, acknowledged at ${acked}, is at partition ${ledger.seenPartition[seq]} offset ${ledger.seenOffset[seq]}`);
        }
      }
    }
  }

  // ---- Ending -------------------------------------------------------------------------------

  /** Stops the sender, closes the clients (bounded) and stops the broker this run started, by PID. */
  async cleanUp(): Promise<void> {
    this.isStopRequested = true;
    await this.sending;
    await this.client?.close({ timeoutMs: 1_000 });
    await this.tailing;
    await this.reader?.close({ timeoutMs: 1_000 });
    const broker = this.broker;
    this.broker = undefined;
    if (broker !== undefined) {
      const code = await stopWithin(broker, 10_000);
      this.collectWarnings(broker);
      if (code !== 0 && this.violations.length === 0) this.violation(`the last clean stop (SIGTERM) exited with ${String(code)}, not 0`);
    }
    if (this.dataDir !== undefined) {
      this.isDataDirKept = this.violations.length > 0 || this.options.keepDataDir;
      if (!this.isDataDirKept) rmSync(this.dataDir, { recursive: true, force: true });
    }
  }

  private collectWarnings(broker: BrokerProcess): void {
    for (const line of broker.logs) {
      if (this.brokerWarnings.length >= BROKER_WARNINGS_MAX) return;
      try {
        const entry = JSON.parse(line) as { level?: number };
        if ((entry.level ?? 0) >= 40) this.brokerWarnings.push(`pid ${broker.pid}: ${line}`);
      } catch {
        // not a log line
      }
    }
  }

  report(): ChaosReport {
    return {
      seed: this.options.seed,
      flush: this.options.flush,
      kills: this.kills,
      quickKills: this.quickKills,
      startupKills: this.startupKills,
      tailed: this.tailed.reduce((sum, tailed) => sum + tailed.length, 0),
      producerRuns: this.producers.length,
      inFlightBatchesAtKills: this.inFlightBatchesAtKills,
      restartMs: this.restartMs,
      firstAckMs: this.firstAckMs,
      sent: this.ledgers.reduce((sum, ledger) => sum + ledger.sent, 0),
      acked: this.ackedCount,
      failed: this.failedCount,
      read: this.readCount,
      duplicates: this.duplicates,
      lost: this.lost,
      batchRetries: this.batchRetries,
      epochBumps: this.epochBumps,
      seconds: (Date.now() - this.startMs) / 1000,
      violations: this.violations,
      brokerWarnings: this.brokerWarnings,
      dataDir: this.isDataDirKept ? this.dataDir : undefined,
    };
  }
}

/** The report in a few lines: the figures, then the first `violationsShown` violations. */
export function formatChaosReport(report: ChaosReport, violationsShown = 10): string {
  const lines = [
    `flush=${report.flush} seed=${report.seed}: ${report.violations.length === 0 ? 'OK' : `${report.violations.length} VIOLATIONS`} in ${report.seconds.toFixed(1)} s`,
    `  kills ${report.kills} (${report.quickKills} within ${QUICK_KILL_MS_MAX} ms of a restart), batches in flight at each: ${report.inFlightBatchesAtKills.join(', ') || '-'}`,
    `  start-ups SIGKILLed ${report.startupKills}; the tailing consumer read ${report.tailed} records through the kills`,
    `  restarts took ${report.restartMs.map((ms) => `${ms} ms`).join(', ') || '-'}`,
    `  first acknowledgement after a restart took ${report.firstAckMs.map((ms) => `${ms} ms`).join(', ') || '-'}`,
    `  producer runs ${report.producerRuns}; records sent ${report.sent}, acknowledged ${report.acked}, failed ${report.failed}, read back ${report.read}`,
    `  duplicates ${report.duplicates}, lost ${report.lost}; producer batch retries ${report.batchRetries}, epoch bumps ${report.epochBumps}`,
  ];
  for (const violation of report.violations.slice(0, violationsShown)) lines.push(`  VIOLATION ${violation}`);
  if (report.violations.length > violationsShown) lines.push(`  … and ${report.violations.length - violationsShown} more`);
  if (report.violations.length > 0 && report.brokerWarnings.length > 0) {
    lines.push('  broker warnings:');
    for (const warning of report.brokerWarnings.slice(0, 10)) lines.push(`    ${warning.slice(0, 400)}`);
  }
  if (report.dataDir !== undefined) lines.push(`  data directory kept: ${report.dataDir}`);
  return lines.join('\n');
}

/** SIGTERM, then SIGKILL (both by PID) when it has not exited within `timeoutMs`. */
async function stopWithin(broker: BrokerProcess, timeoutMs: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), timeoutMs);
  });
  try {
    const outcome = await Promise.race([broker.stop(), late]);
    if (outcome !== 'late') return outcome;
    await broker.kill('SIGKILL');
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** A record's producer run and sequence number as one number (run · 2^32 + seq); -1 for a value not of the run's shape. */
function recordId(value: Buffer | null): number {
  const match = /^(\d+):(\d+):/.exec(value?.toString('latin1', 0, 32) ?? '');
  return match === null ? -1 : Number(match[1]) * 2 ** 32 + Number(match[2]);
}

function describeRecordId(id: number): string {
  return id < 0 ? 'a record not of this run' : `record ${Math.floor(id / 2 ** 32)}:${id % 2 ** 32}`;
}

function describeState(state: number | undefined): string {
  if (state === ProducerLedger.ACKED) return 'acknowledged';
  if (state === ProducerLedger.FAILED) return 'failed';
  return 'pending';
}

function describeError(error: unknown): string {
  if (isBrokerError(error)) return `${error.reason}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
