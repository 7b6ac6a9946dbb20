/**
 * `runnel perf produce|consume`: throughput and latency against a running broker, in the
 * manner of kafka-producer-perf-test and kafka-consumer-perf-test.
 *
 * produce: sends `--records` values of `--size` random letters (as Kafka's tool; letters
 * so `--compression gzip` has something realistic to work on) as fast as the producer's
 * buffer allows, and times each record from `send` to its acknowledgement, so latency
 * includes time waiting in a batch (linger) and in the buffer, as an application would see
 * it. Throughput counts value bytes; MB is 10^6 bytes.
 *
 * consume: reads from the beginning of every partition until `--records` records arrived
 * and reports the rate (key and value bytes).
 *
 * Both print progress lines every 5 s on stderr when it is a terminal, and the report on
 * stdout (`--json`: one object).
 *
 * Both wait for a broker that cannot be reached when they start (down, still starting), as
 * `runnel produce` and `runnel consume` do, saying so on stderr (wait-for-broker.ts,
 * outage-notice.ts): produce up to --delivery-timeout-ms, consume up to --api-timeout-ms
 * (its --timeout-ms is how long it waits for the next record, once reading). The clock starts
 * after that wait. An unknown topic still fails at once. While produce runs, a broker that
 * goes away is reported the same way as by `runnel produce` (the producer's onRetry), and so
 * is its return. Tested in test/integration/cli-broker-restart.test.ts.
 */
import type { Command } from 'commander';
import { RETRY_DEFAULTS, type Acks, type PartitionOffset, type RunnelClient } from '../../client/index.js';
import { systemClock } from '../../common/index.js';
import { CliError, describeBrokerTrouble, toCliError } from '../cli-error.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { parseAcks, parseChoice, parseCount, parsePositiveCount } from '../option-parsers.js';
import { formatClockTime, formatElapsed, OutageNotice } from '../outage-notice.js';
import { formatCount, ProgressLine, ratePerSec } from '../progress-line.js';
import { ConsumerOutage } from '../consumer-outage.js';
import { ProducerOutage } from '../producer-outage.js';
import { waitForBroker } from '../wait-for-broker.js';

interface PerfProduceFlags extends ClientFlags {
  records: number;
  size: number;
  acks: Acks;
  batchBytes?: number;
  lingerMs?: number;
  compression: 'none' | 'gzip';
  throughput?: number;
  deliveryTimeoutMs: number;
  json?: boolean;
}

interface PerfConsumeFlags extends ClientFlags {
  records: number;
  timeoutMs: number;
  apiTimeoutMs: number;
  json?: boolean;
}

export interface PerfProduceReport {
  topic: string;
  /** Records sent (--records). */
  records: number;
  /** Of those, acknowledged; the rates count only these. */
  acknowledgedRecords: number;
  failedRecords: number;
  recordBytes: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
  latencyMsAvg: number;
  latencyMsP50: number;
  latencyMsP95: number;
  latencyMsP99: number;
  latencyMsP999: number;
  latencyMsMax: number;
}

export interface PerfConsumeReport {
  topic: string;
  records: number;
  bytes: number;
  elapsedMs: number;
  recordsPerSec: number;
  mbPerSec: number;
}

const PROGRESS_INTERVAL_MS = 5_000;
/** Latency samples kept at most (8 bytes each): every record up to this, evenly spaced beyond. */
const LATENCY_SAMPLES_MAX = 1_000_000;
const MB = 1_000_000;
/** Records sent per event-loop turn: enough to fill batches, few enough to keep them flowing. */
const SENDS_PER_TURN = 1_000;
/**
 * Up to this many records every record's latency is measured; beyond, every
 * LATENCY_SAMPLE_STRIDE-th: observing a record's result costs a promise, which at full speed
 * costs as much CPU as the send itself (about halves the rate), and would measure the tool.
 */
const LATENCY_ALL_RECORDS_MAX = 100_000;
const LATENCY_SAMPLE_STRIDE = 8;
/** The client producer's default (as `runnel produce`'s): two minutes to ride out a broker restart. */
const DELIVERY_TIMEOUT_MS_DEFAULT = 120_000;
/** As `runnel consume`'s: a minute, as Kafka's default.api.timeout.ms. */
const API_TIMEOUT_MS_DEFAULT = RETRY_DEFAULTS.timeoutMs;

export function registerPerfCommands(program: Command): void {
  const perf = program
    .command('perf')
    .description('measure produce and consume throughput (and produce latency) against a broker')
    .addHelpText(
      'after',
      `
Examples:
  runnel topic create perf --partitions 6
  runnel perf produce perf --records 1000000 --size 100
  runnel perf consume perf --records 1000000`,
    );

  addClientOptions(
    perf
      .command('produce')
      .description('send records as fast as possible; print records/s, MB/s and latency (avg, p50, p95, p99, p99.9, max)')
      .argument('<topic>', 'topic to write to (it must exist)')
      .requiredOption('--records <n>', 'how many records to send', parsePositiveCount)
      .requiredOption('--size <bytes>', 'value size of each record', parseCount)
      .option('--acks <acks>', '0, 1 or all', parseAcks, 'all' as Acks)
      .option('--batch-bytes <n>', 'producer batch size in bytes (default 256 KiB)', parsePositiveCount)
      .option('--linger-ms <ms>', 'how long a batch waits for more records (default 5)', parseCount)
      .option('--compression <codec>', 'none or gzip', parseChoice(['none', 'gzip'] as const), 'none')
      .option('--throughput <n>', 'send at most n records per second (default: as fast as possible)', parsePositiveCount)
      .option(
        '--delivery-timeout-ms <ms>',
        'how long a record may wait for its acknowledgement, and the command for a broker that cannot be reached at start, before it fails',
        parsePositiveCount,
        DELIVERY_TIMEOUT_MS_DEFAULT,
      )
      .option('--json', 'print the report as one JSON object'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel perf produce perf --records 1000000 --size 100
  runnel perf produce perf --records 100000 --size 1000 --throughput 20000 --acks 1
  runnel perf produce perf --records 1000000 --size 100 --compression gzip --json
  runnel perf produce perf --records 1000 --size 100 --delivery-timeout-ms 10000   # fail fast

Latency is from send() to acknowledgement (with --acks all: every in-sync replica has it),
including time spent waiting in a batch and for buffer space; flat out, that is mostly the
time a record waits behind the 32 MiB buffer, so use --throughput to measure latency at a
given load. Every record is timed up to ${formatCount(LATENCY_ALL_RECORDS_MAX)} records, every ${LATENCY_SAMPLE_STRIDE}th beyond (timing
each costs as much CPU as sending it). Prints the report, then exits 1 if any record failed.

A broker unreachable when the command starts (down, still starting) is waited for, up to
--delivery-timeout-ms (default ${DELIVERY_TIMEOUT_MS_DEFAULT} ms), before the first record is sent and the clock
starts; stderr says so (then every 10 s, later every minute), and exits 1 if it stays away:
  runnel perf produce: cannot reach broker 127.0.0.1:7070 (connection refused); nothing sent yet, retrying until 12:34:56 (--delivery-timeout-ms), then exits 1
  runnel perf produce: broker 127.0.0.1:7070 is reachable after 9 s; sending
An unknown topic fails at once. A broker that goes away while records are sent is retried
for --delivery-timeout-ms; stderr says so the same way, and again when it is back (stdout
still holds only the report, whose time and latencies include the outage):
  runnel perf produce: cannot reach broker 127.0.0.1:7070 (connection refused); 1,200 records waiting, retrying until 12:34:56 (--delivery-timeout-ms), then exits 1
  runnel perf produce: broker 127.0.0.1:7070 is back; records acknowledged again after 14 s

--json prints {"topic","records","acknowledgedRecords","failedRecords","recordBytes","bytes",
"elapsedMs","recordsPerSec","mbPerSec","latencyMsAvg","latencyMsP50","latencyMsP95",
"latencyMsP99","latencyMsP999","latencyMsMax"}; bytes and the rates count acknowledged
records only, and their value bytes only (the records have no key or headers; the record
batch framing, 61 bytes per batch plus a few per record, is not counted); elapsedMs runs from
the first send until every record was acknowledged or failed; MB is 10^6 bytes.`,
    )
    .action(async (topic: string, flags: PerfProduceFlags) => {
      await withClient(flags, topic, async ({ client, brokers }) => {
        await perfProduceWaitForBroker(client, topic, flags, brokers);
        const { report, firstError } = await perfProduce(client, topic, flags, brokers);
        process.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : formatProduceReport(report));
        if (firstError !== undefined) {
          throw new CliError(`some records were not acknowledged; the first failure: ${toCliError(firstError, { brokers, topic }).message}`);
        }
      });
    });

  addClientOptions(
    perf
      .command('consume')
      .description('read records from the beginning as fast as possible; print records/s and MB/s')
      .argument('<topic>', 'topic to read')
      .requiredOption('--records <n>', 'how many records to read', parsePositiveCount)
      .option('--timeout-ms <ms>', 'give up when no record arrives for this long', parsePositiveCount, 10_000)
      .option(
        '--api-timeout-ms <ms>',
        'how long to wait at start for a broker that cannot be reached (down, still starting) before exiting 1 (as `runnel consume`)',
        parsePositiveCount,
        API_TIMEOUT_MS_DEFAULT,
      )
      .option('--json', 'print the report as one JSON object'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel perf consume perf --records 1000000
  runnel perf consume perf --records 1000000 --json
  runnel perf consume perf --records 1000000 --api-timeout-ms 300000   # wait up to 5 min for the broker

Reads every partition from its first offset. If fewer than --records records arrive (no new
record for --timeout-ms), prints the report of those (timed to the last one), then exits 1. A broker that goes away mid-run is reported on stderr and
waited for up to 60 s; --timeout-ms does not run meanwhile:
  runnel perf consume: cannot reach broker 127.0.0.1:7070 (connection refused); retrying until 12:35:56, then exits 1, reading resumes where it stopped
  runnel perf consume: broker 127.0.0.1:7070 is back; reading perf again after 4 s

A broker unreachable when the command starts (down, still starting) is waited for, up to
--api-timeout-ms (default ${API_TIMEOUT_MS_DEFAULT} ms), before the first record is read and the clock
starts; stderr says so (then every 10 s, later every minute), and exits 1 if it stays away:
  runnel perf consume: cannot reach broker 127.0.0.1:7070 (connection refused); nothing read yet, retrying until 12:34:56 (--api-timeout-ms), then exits 1
  runnel perf consume: broker 127.0.0.1:7070 is reachable after 9 s; reading perf
An unknown topic fails at once.

--json prints {"topic","records","bytes","elapsedMs","recordsPerSec","mbPerSec"}; bytes are
key plus value bytes of the records counted (not headers, not the batch framing); elapsedMs
runs from the start of reading to the last record counted; MB is 10^6 bytes.`,
    )
    .action(async (topic: string, flags: PerfConsumeFlags) => {
      await withClient(flags, topic, async ({ client, brokers }) => {
        const outage = new ConsumerOutage('perf consume', topic, brokers, (line) => process.stderr.write(`${line}\n`));
        const earliest = await perfConsumeWaitForBroker(client, topic, flags, outage);
        const report = await perfConsume(client, topic, flags, earliest, outage);
        // A short run still reports what it read (as perf produce reports a run with failures).
        process.stdout.write(flags.json === true ? `${JSON.stringify(report)}\n` : formatConsumeReport(report));
        if (report.records < flags.records) {
          throw new CliError(
            `only ${formatCount(report.records)} of ${formatCount(flags.records)} records arrived (none for ${flags.timeoutMs} ms): ` +
              `produce more (\`runnel perf produce ${topic} …\`) or lower --records`,
          );
        }
      });
    });
}

// ---- produce ----------------------------------------------------------------------------------

/**
 * Looks the topic up before anything is sent (an unknown topic fails at once), waiting up to
 * --delivery-timeout-ms for a broker that cannot be reached yet, and saying so on stderr.
 */
async function perfProduceWaitForBroker(client: RunnelClient, topic: string, flags: PerfProduceFlags, brokers: string[]): Promise<void> {
  const notice = new OutageNotice({ command: 'perf produce' });
  await waitForBroker((onRetry) => client.admin.getMetadata([topic], { onRetry }), {
    budgetMs: flags.deliveryTimeoutMs,
    budgetFlag: '--delivery-timeout-ms',
    onRetry: (error, giveUpAtMs) =>
      notice.retrying(({ isFirst, outageMs }) =>
        `${describeBrokerTrouble(error, brokers)}${isFirst ? '' : ` for ${formatElapsed(outageMs)}`}; ` +
          `nothing sent yet, retrying until ${formatClockTime(giveUpAtMs)} (--delivery-timeout-ms), then exits 1`,
      ),
  });
  notice.recovered((outageMs) => `broker ${brokers.join(',')} is reachable after ${formatElapsed(outageMs)}; sending`);
}

async function perfProduce(
  client: RunnelClient,
  topic: string,
  flags: PerfProduceFlags,
  brokers: string[],
): Promise<{ report: PerfProduceReport; firstError: unknown }> {
  const value = randomLetters(flags.size);
  const sampleStride = flags.records <= LATENCY_ALL_RECORDS_MAX ? 1 : LATENCY_SAMPLE_STRIDE;
  const latencies = new PerfLatencies(Math.ceil(flags.records / sampleStride));
  const progress = perfProduceProgress(flags, latencies);
  const outage = new ProducerOutage(brokers, (line) => progress.writeLine(line), { command: 'perf produce', item: 'record', recovered: 'records acknowledged' });
  let sentCount = 0;
  const producer = client.producer({
    acks: flags.acks,
    compression: flags.compression,
    deliveryTimeoutMs: flags.deliveryTimeoutMs,
    // Called from a microtask, so `producer` is assigned by then.
    onRetry: (error, retrying) => {
      const { ackedRecords, failedRecords } = producer.metrics();
      outage.onRetry(error, retrying.deliveryDeadlineMs, sentCount - ackedRecords - failedRecords);
    },
    ...(flags.batchBytes === undefined ? {} : { batchBytes: flags.batchBytes }),
    ...(flags.lingerMs === undefined ? {} : { lingerMs: flags.lingerMs }),
  });
  let firstError: unknown;
  const onFailed = (error: unknown): void => {
    firstError ??= error;
  };
  const startedMs = performance.now();
  let outcome = { ackedRecords: 0, failedRecords: 0 };
  progress.start();
  try {
    for (let index = 0; index < flags.records; index++) {
      if (!producer.hasBufferSpace) await producer.waitForBufferSpace();
      // A send loop that never awaits would fill the whole buffer before one batch leaves
      // (Node runs the producer's I/O only between turns), measuring queueing, not the broker.
      else if (index % SENDS_PER_TURN === SENDS_PER_TURN - 1) await new Promise((resolve) => setImmediate(resolve));
      if (flags.throughput !== undefined) await perfProducePace(startedMs, index, flags.throughput);
      const pending = producer.send({ topic, value });
      sentCount++;
      // The first is awaited: the topic's metadata and the producer id arrive before the rest
      // is sent (records waiting for them hold buffer space, and would fill it meanwhile).
      if (index % sampleStride === 0) {
        const sentMs = performance.now();
        const observed = pending.then(() => {
          latencies.record(performance.now() - sentMs);
          if (outage.isOngoing) outage.onDelivered();
        }, onFailed);
        if (index === 0) await observed;
      }
    }
    await producer.flush().catch(onFailed); // rejects with the first failure of a record not observed
    outcome = producer.metrics(); // every record is settled now: acknowledged or failed
    // Only every LATENCY_SAMPLE_STRIDE-th record is observed beyond LATENCY_ALL_RECORDS_MAX:
    // the acknowledgements after an outage may all have been of records that were not.
    if (outage.isOngoing && outcome.failedRecords === 0) outage.onDelivered();
  } finally {
    progress.stop();
    await producer.close().catch(() => undefined);
  }
  await new Promise((resolve) => setImmediate(resolve)); // let the last handlers run
  const elapsedMs = performance.now() - startedMs;
  const summary = latencies.summary();
  return {
    firstError,
    report: {
      topic,
      records: flags.records,
      // A failed record is not throughput (as Kafka's tool counts only completed sends): a run
      // the broker refused entirely reported its full rate.
      acknowledgedRecords: outcome.ackedRecords,
      failedRecords: outcome.failedRecords,
      recordBytes: flags.size,
      bytes: outcome.ackedRecords * flags.size,
      elapsedMs: round(elapsedMs, 1),
      recordsPerSec: round(ratePerSec(outcome.ackedRecords, elapsedMs), 1),
      mbPerSec: round(ratePerSec(outcome.ackedRecords * flags.size, elapsedMs) / MB, 3),
      latencyMsAvg: round(summary.avgMs, 2),
      latencyMsP50: round(summary.percentileMs(0.5), 2),
      latencyMsP95: round(summary.percentileMs(0.95), 2),
      latencyMsP99: round(summary.percentileMs(0.99), 2),
      latencyMsP999: round(summary.percentileMs(0.999), 2),
      latencyMsMax: round(summary.maxMs, 2),
    },
  };
}

/** Waits while the send loop is ahead of `recordsPerSec`. */
async function perfProducePace(startedMs: number, index: number, recordsPerSec: number): Promise<void> {
  const dueMs = startedMs + (index * 1000) / recordsPerSec;
  const aheadMs = dueMs - performance.now();
  if (aheadMs >= 1) await new Promise((resolve) => setTimeout(resolve, aheadMs));
}

/** Kafka-style lines every few seconds: the last window's rate and latency. */
function perfProduceProgress(flags: PerfProduceFlags, latencies: PerfLatencies): ProgressLine {
  let windowStartedMs = performance.now();
  return new ProgressLine({
    mode: 'append',
    intervalMs: PROGRESS_INTERVAL_MS,
    render: () => {
      const window = latencies.takeWindow();
      const elapsedMs = performance.now() - windowStartedMs;
      windowStartedMs = performance.now();
      const records = window.count * (flags.records <= LATENCY_ALL_RECORDS_MAX ? 1 : LATENCY_SAMPLE_STRIDE);
      return (
        `${formatCount(records)} records acknowledged, ${formatCount(ratePerSec(records, elapsedMs))} records/s ` +
        `(${(ratePerSec(records * flags.size, elapsedMs) / MB).toFixed(2)} MB/s), ` +
        `${window.avgMs.toFixed(1)} ms avg latency, ${window.maxMs.toFixed(1)} ms max latency`
      );
    },
  });
}

/**
 * Latencies of the observed records: exact average and maximum, percentiles from at most
 * LATENCY_SAMPLES_MAX evenly spaced of them (8 MB), as Kafka's tool samples too. Also the
 * count, sum and maximum since the last progress line.
 */
class PerfLatencies {
  private readonly samples: Float64Array;
  private readonly sampleStride: number;
  private sampleCount = 0;
  private count = 0;
  private sumMs = 0;
  private maxMs = 0;
  private window = { count: 0, sumMs: 0, maxMs: 0 };

  constructor(observedCountMax: number) {
    this.sampleStride = Math.max(1, Math.ceil(observedCountMax / LATENCY_SAMPLES_MAX));
    this.samples = new Float64Array(Math.ceil(observedCountMax / this.sampleStride));
  }

  record(latencyMs: number): void {
    if (this.count % this.sampleStride === 0 && this.sampleCount < this.samples.length) this.samples[this.sampleCount++] = latencyMs;
    this.count++;
    this.sumMs += latencyMs;
    if (latencyMs > this.maxMs) this.maxMs = latencyMs;
    this.window.count++;
    this.window.sumMs += latencyMs;
    if (latencyMs > this.window.maxMs) this.window.maxMs = latencyMs;
  }

  /** Count, average and maximum since the previous call. */
  takeWindow(): { count: number; avgMs: number; maxMs: number } {
    const { count, sumMs, maxMs } = this.window;
    this.window = { count: 0, sumMs: 0, maxMs: 0 };
    return { count, avgMs: count === 0 ? 0 : sumMs / count, maxMs };
  }

  summary(): { avgMs: number; maxMs: number; percentileMs: (fraction: number) => number } {
    const sorted = this.samples.subarray(0, this.sampleCount).sort();
    return {
      avgMs: this.count === 0 ? 0 : this.sumMs / this.count,
      maxMs: this.maxMs,
      percentileMs: (fraction) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!),
    };
  }
}

function randomLetters(sizeBytes: number): Buffer {
  const bytes = Buffer.allocUnsafe(sizeBytes);
  for (let index = 0; index < sizeBytes; index++) bytes[index] = 65 + Math.floor(Math.random() * 26);
  return bytes;
}

function formatProduceReport(report: PerfProduceReport): string {
  return (
    `perf produce ${report.topic}: ${formatCount(report.records)} records of ${formatCount(report.recordBytes)} bytes in ${(report.elapsedMs / 1000).toFixed(2)} s` +
    `${report.failedRecords === 0 ? '' : ` (${formatCount(report.acknowledgedRecords)} acknowledged, ${formatCount(report.failedRecords)} failed)`}\n` +
    `throughput  ${formatCount(report.recordsPerSec)} records/s  ${report.mbPerSec.toFixed(2)} MB/s\n` +
    `latency ms  avg ${report.latencyMsAvg.toFixed(2)}  p50 ${report.latencyMsP50.toFixed(2)}  p95 ${report.latencyMsP95.toFixed(2)}  ` +
    `p99 ${report.latencyMsP99.toFixed(2)}  p99.9 ${report.latencyMsP999.toFixed(2)}  max ${report.latencyMsMax.toFixed(2)}\n`
  );
}

// ---- consume ----------------------------------------------------------------------------------

/**
 * Finds where every partition starts (an unknown topic fails at once), waiting up to
 * --api-timeout-ms for a broker that cannot be reached yet, and saying so on stderr.
 */
async function perfConsumeWaitForBroker(client: RunnelClient, topic: string, flags: PerfConsumeFlags, outage: ConsumerOutage): Promise<PartitionOffset[]> {
  const earliest = await waitForBroker((onRetry) => client.admin.listOffsets({ topic, spec: 'earliest', onRetry }), {
    budgetMs: flags.apiTimeoutMs,
    budgetFlag: '--api-timeout-ms',
    onRetry: (error, giveUpAtMs) => outage.onStartRetry(error, giveUpAtMs),
  });
  outage.onStarted();
  return earliest;
}

/** Reads from `earliest` on; the clock (and the --timeout-ms stall watch) starts here, after any wait for the broker. */
async function perfConsume(client: RunnelClient, topic: string, flags: PerfConsumeFlags, earliest: PartitionOffset[], outage: ConsumerOutage): Promise<PerfConsumeReport> {
  const counts = { records: 0, bytes: 0, lastProgressMs: Date.now() };
  // A broker that goes away mid-run is reported on stderr, as by `runnel consume`; the
  // consumer retries for its 60 s, then the run fails with its error. The stall clock
  // (--timeout-ms) starts again when the broker is back.
  const consumer = client.consumer({
    autoOffsetReset: 'none',
    onRetry: (error, retrying) => outage.onRetry(error, retrying.partition, retrying.giveUpAtMs),
    onRecovered: (recovered) => {
      outage.onRecovered(recovered.partition);
      counts.lastProgressMs = Date.now();
    },
  });
  const window = { records: 0, bytes: 0, startedMs: performance.now() };
  const progress = new ProgressLine({
    mode: 'append',
    intervalMs: PROGRESS_INTERVAL_MS,
    render: () => {
      const elapsedMs = performance.now() - window.startedMs;
      const line = `${formatCount(counts.records)} records read, ${formatCount(ratePerSec(window.records, elapsedMs))} records/s (${(ratePerSec(window.bytes, elapsedMs) / MB).toFixed(2)} MB/s)`;
      Object.assign(window, { records: 0, bytes: 0, startedMs: performance.now() });
      return line;
    },
  });
  // Gives up when nothing arrived for timeoutMs: closing the consumer ends the loop below.
  // Not during an outage, which the consumer's own retry deadline bounds: a broker restart
  // longer than timeoutMs would otherwise end the run with "only N of M records arrived".
  let cancelStallTimer: (() => void) | undefined;
  const watchForStall = (): void => {
    const idleMs = Date.now() - counts.lastProgressMs;
    cancelStallTimer = systemClock.setTimer(Math.max(flags.timeoutMs - idleMs, 1), () => {
      if (outage.isOngoing) counts.lastProgressMs = Date.now(); // paused while the broker is away
      if (Date.now() - counts.lastProgressMs >= flags.timeoutMs) void consumer.close();
      else watchForStall();
    });
  };
  const startedMs = performance.now();
  let finishedMs = startedMs;
  progress.start();
  watchForStall();
  try {
    consumer.assign(earliest.map((entry) => ({ topic, partition: entry.partition })));
    for (const entry of earliest) await consumer.seek({ topic, partition: entry.partition }, entry.offset);
    for await (const chunk of consumer.batches()) {
      const takeCount = Math.min(chunk.length, flags.records - counts.records);
      let chunkBytes = 0;
      for (let index = 0; index < takeCount; index++) {
        const record = chunk[index]!;
        chunkBytes += (record.key?.length ?? 0) + (record.value?.length ?? 0);
      }
      counts.records += takeCount;
      counts.bytes += chunkBytes;
      window.records += takeCount;
      window.bytes += chunkBytes;
      counts.lastProgressMs = Date.now();
      // A short run (no record for --timeout-ms) is timed to its last record: the wait for
      // records that never came is not reading, and would dilute the rate.
      finishedMs = performance.now();
      if (counts.records >= flags.records) break;
    }
  } finally {
    cancelStallTimer?.();
    progress.stop();
    await consumer.close();
  }
  const elapsedMs = finishedMs - startedMs;
  return {
    topic,
    records: counts.records,
    bytes: counts.bytes,
    elapsedMs: round(elapsedMs, 1),
    recordsPerSec: round(ratePerSec(counts.records, elapsedMs), 1),
    mbPerSec: round(ratePerSec(counts.bytes, elapsedMs) / MB, 3),
  };
}

function formatConsumeReport(report: PerfConsumeReport): string {
  return (
    `perf consume ${report.topic}: ${formatCount(report.records)} records, ${formatCount(report.bytes)} bytes in ${(report.elapsedMs / 1000).toFixed(2)} s\n` +
    `throughput  ${formatCount(report.recordsPerSec)} records/s  ${report.mbPerSec.toFixed(2)} MB/s\n`
  );
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
