/**
 * broker-latency (STYLE H14). Question: at a steady 10,000 records/s of 100 B records, with
 * flush=always, how long from a producer's `send` until a tailing consumer (another process)
 * has the record? p50 / p99 / p99.9 / max, for producer lingerMs 0 and 1.
 *
 * Baselines, measured in every round of the same run: (a) the same producer/consumer pair
 * through bare grpc-js (transport-baseline.mjs relays each Publish message to a Relay
 * stream, nothing stored): the transport's share; (b) write 4 KiB + fdatasync on the
 * broker's disk: the disk's share of every flush=always acknowledgement.
 *
 * Client layout (`--clients`): `separate` (default) runs the producer and the consumer as two
 * processes, three busy processes on 2 vCPUs with the broker; `one` runs both in one process,
 * as Kafka's EndToEndLatency tool does; `separate,one` measures both in every round.
 *
 * Broker: compiled, `--flush always` (the topic inherits it). Each run: the consumer process
 * creates a fresh topic, seeks to 0 and says ready; then the producer process sends
 * `--rate` records/s for `--seconds`; the first `--warmup-seconds` (4) of records are
 * excluded (JIT warm-up of the fresh processes: p99 is 5–12 ms in the first ~3 s here) and
 * reported apart.
 * Sender and receiver stamp with process.hrtime.bigint() (CLOCK_MONOTONIC, one clock for
 * every process on the machine).
 *
 *   npm run build && node --import tsx bench/broker-latency.ts [--rounds 3] [--seconds 12] [--warmup-seconds 4] [--rate 10000] [--lingers 0,1] [--clients separate|one|separate,one] [--broker-flush always|never] [--probe] [--save FILE]
 *
 * Target (issue): p99 ≤ 2 ms.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, freshDataDir, loadLine, median, printHeader, removeDir, repoRoot } from './common.js';
import { ensureBuilt, fdatasyncLatency, parseFlags, spawnJsonChild, startBroker, targetVerdict } from './broker-support.js';

interface ProducerResult {
  sent: number;
  ratePerSec: number;
  /** send → acknowledgement (after the broker's fdatasync under flush=always), warm-up excluded. */
  ack?: { p50Ms: number; p99Ms: number; p999Ms: number; maxMs: number };
}

interface ProbeReport {
  seconds: number;
  loopDelayMs: { p50: number; p99: number; p999: number; max: number };
  gc: Record<string, { count: number; totalMs: number; maxMs: number; over1ms: number }>;
}

interface LatencySummary {
  /** The warm-up records' latencies (excluded from the rest). */
  warmup?: { p50Ms: number; p99Ms: number; maxMs: number };
  samples: number;
  avgMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  received: number;
  expected: number;
  outOfOrder: number;
}

const flags = parseFlags(process.argv.slice(2));
const rounds = Number(flags.rounds ?? 3);
const seconds = Number(flags.seconds ?? 12);
/**
 * Excluded from the figures (reported apart): fresh client processes (and a fresh broker in
 * round 1) compile their hot paths for the first ~3 s, when p99 runs 5–12 ms on this VM.
 */
const warmupSeconds = Number(flags['warmup-seconds'] ?? 4);
const rate = Number(flags.rate ?? 10_000);
const lingers = (flags.lingers ?? '0,1').split(',').map(Number);
/** Which client layouts to measure each round (runPair): `separate` processes, `one` process, or both. */
const clientLayouts = (flags.clients ?? 'separate').split(',').map((value): Clients => {
  if (value !== 'separate' && value !== 'one') throw new Error(`--clients takes separate, one or both (separate,one), not ${value}`);
  return value;
});
/** `never` isolates the fdatasync's share (not the target's setting). */
const brokerFlush = flags['broker-flush'] === 'never' ? 'never' : 'always';
/** Diagnostic: preload broker-loop-probe.mjs into the broker (event-loop delay, GC pauses). */
const isProbe = flags.probe === 'true';
const records = Math.round(rate * seconds);
const warmupRecords = Math.round(rate * warmupSeconds);

type Clients = 'separate' | 'one';

/**
 * One measured run. `separate`: consumer and producer are two processes (three with the
 * broker on 2 vCPUs). `one`: both in one client process, as Kafka's EndToEndLatency tool runs
 * them (one broker process, one client process).
 */
async function runPair(clients: Clients, consumerArgs: string[], producerArgs: string[]): Promise<LatencySummary & { producer: ProducerResult }> {
  const consumeArgs = ['--records', String(records), '--warmup-records', String(warmupRecords)];
  const produceArgs = ['--rate', String(rate), '--seconds', String(seconds)];
  if (clients === 'one') {
    const pair = spawnJsonChild<{ ready: boolean }, LatencySummary & { producer: ProducerResult }>('broker-latency-client.mjs', [
      'pair',
      ...producerArgs,
      ...consumeArgs,
      ...produceArgs,
    ]);
    try {
      await pair.ready;
      const result = await pair.done;
      if (result.received !== result.producer.sent || result.outOfOrder !== 0) console.log(`  WARNING: sent ${result.producer.sent}, received ${result.received}, out of order ${result.outOfOrder}`);
      return result;
    } finally {
      await pair.stop();
    }
  }
  const consumer = spawnJsonChild<{ ready: boolean }, LatencySummary>('broker-latency-client.mjs', ['consume', ...consumerArgs, ...consumeArgs]);
  try {
    await consumer.ready;
    const producer = spawnJsonChild<ProducerResult>('broker-latency-client.mjs', ['produce', ...producerArgs, ...produceArgs]);
    const sent = await producer.done;
    const result = await consumer.done;
    if (result.received !== sent.sent || result.outOfOrder !== 0) console.log(`  WARNING: sent ${sent.sent}, received ${result.received}, out of order ${result.outOfOrder}`);
    return { ...result, producer: sent };
  } finally {
    await consumer.stop();
  }
}

function describe(result: LatencySummary & { producer: ProducerResult }): string {
  const ack = result.producer.ack;
  return (
    `p50 ${fmt(result.p50Ms, 2)} ms, p90 ${fmt(result.p90Ms, 2)}, p99 ${fmt(result.p99Ms, 2)}, p99.9 ${fmt(result.p999Ms, 2)}, max ${fmt(result.maxMs, 2)} (${fmt(result.samples)} samples)` +
    (ack === undefined ? '' : `; producer send→ack p50 ${fmt(ack.p50Ms, 2)} ms, p99 ${fmt(ack.p99Ms, 2)}, max ${fmt(ack.maxMs, 2)}`) +
    (result.warmup === undefined ? '' : `; warm-up (first ${warmupSeconds} s, excluded) p50 ${fmt(result.warmup.p50Ms, 2)} ms, p99 ${fmt(result.warmup.p99Ms, 2)}, max ${fmt(result.warmup.maxMs, 2)}`)
  );
}

/** With --probe: asks the broker's loop probe for what it saw since the last call (SIGUSR2). */
async function takeProbe(pid: number, path: string): Promise<ProbeReport | undefined> {
  fs.rmSync(path, { force: true });
  process.kill(pid, 'SIGUSR2');
  for (let attempt = 0; attempt < 50 && !fs.existsSync(path); attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
  return fs.existsSync(path) ? (JSON.parse(fs.readFileSync(path, 'utf8')) as ProbeReport) : undefined;
}

function describeProbe(report: ProbeReport): string {
  const gc = Object.entries(report.gc)
    .map(([kind, g]) => `${kind} ×${g.count} total ${fmt(g.totalMs, 1)} ms max ${fmt(g.maxMs, 2)} ms (${g.over1ms} > 1 ms)`)
    .join('; ');
  return `broker loop delay p50 ${fmt(report.loopDelayMs.p50, 2)} ms, p99 ${fmt(report.loopDelayMs.p99, 2)}, p99.9 ${fmt(report.loopDelayMs.p999, 2)}, max ${fmt(report.loopDelayMs.max, 2)} (incl. the 1 ms sampler); GC: ${gc}`;
}

async function main(): Promise<void> {
  ensureBuilt();
  const dataDir = freshDataDir('broker-latency');
  printHeader('broker-latency', `send → consume latency at ${fmt(rate)} records/s of 100 B, flush=always; client layouts: ${clientLayouts.join(', ')}.`, dataDir, {
    rounds,
    seconds,
    warmupSeconds,
    rate,
    warmupRecords,
    lingers,
    clients: clientLayouts,
    brokerFlush,
    probe: isProbe,
    acks: 'leader',
  });
  const series = clientLayouts.flatMap((clients) => lingers.map((linger) => ({ clients, linger, runs: [] as LatencySummary[] })));
  const bare = new Map<Clients, LatencySummary[]>(clientLayouts.map((clients) => [clients, []]));
  const disk: { p50Ms: number; p99Ms: number; maxMs: number }[] = [];
  const probePath = join(dataDir, 'probe.json');
  const broker = await startBroker({
    dataDir: join(dataDir, 'broker'),
    flush: brokerFlush,
    ...(isProbe ? { nodeArgs: ['--import', pathToFileURL(join(repoRoot, 'bench/broker-loop-probe.mjs')).href], env: { RUNNEL_BENCH_PROBE_OUT: probePath } } : {}),
  });
  try {
    for (let round = 1; round <= rounds; round++) {
      console.log(`\n-- round ${round}/${rounds} (${loadLine().trim()})`);
      const fsync = await fdatasyncLatency(join(dataDir, 'raw'), 1000);
      disk.push(fsync);
      console.log(`  baseline disk: write 4 KiB + fdatasync p50 ${fmt(fsync.p50Ms, 2)} ms, p99 ${fmt(fsync.p99Ms, 2)} ms, max ${fmt(fsync.maxMs, 2)} ms`);
      for (const clients of clientLayouts) {
        const server = spawnJsonChild<{ port: number }>('transport-baseline.mjs', ['server', '--widen-window']);
        try {
          const address = `127.0.0.1:${(await server.ready).port}`;
          const result = await runPair(clients, ['--bare', address], ['--bare', address]);
          bare.get(clients)?.push(result);
          console.log(`  baseline bare grpc-js relay, ${clients} client process${clients === 'one' ? '' : 'es'}: ${describe(result)}`);
        } finally {
          await server.stop();
        }
      }
      for (const entry of series) {
        const { clients, linger } = entry;
        const topic = `latency-${round}-${clients}-linger${linger}`;
        if (isProbe) await takeProbe(broker.pid, probePath);
        const result = await runPair(clients, ['--broker', broker.address, '--topic', topic], ['--broker', broker.address, '--topic', topic, '--linger-ms', String(linger)]);
        entry.runs.push(result);
        console.log(`  runnel, ${clients} client process${clients === 'one' ? '' : 'es'}, lingerMs ${linger}: ${describe(result)}`);
        if (isProbe) {
          const report = await takeProbe(broker.pid, probePath);
          if (report !== undefined) console.log(`    ${describeProbe(report)}`);
        }
      }
    }
  } finally {
    await broker.stop();
  }

  console.log(`\n== Summary (medians of ${rounds} rounds of each percentile) ${loadLine().trim()}`);
  const med = (list: LatencySummary[], key: keyof LatencySummary): number => median(list.map((r) => r[key] as number));
  const diskP50 = median(disk.map((d) => d.p50Ms));
  const diskP99 = median(disk.map((d) => d.p99Ms));
  console.log(`baseline disk (write 4 KiB + fdatasync): p50 ${fmt(diskP50, 2)} ms, p99 ${fmt(diskP99, 2)} ms ${JSON.stringify(disk.map((d) => Number(d.p99Ms.toFixed(2))))}`);
  const bareP99 = new Map<Clients, number>();
  for (const [clients, list] of bare) {
    bareP99.set(clients, med(list, 'p99Ms'));
    console.log(
      `baseline bare grpc-js relay, ${clients}: p50 ${fmt(med(list, 'p50Ms'), 2)} ms, p99 ${fmt(med(list, 'p99Ms'), 2)} ms ${JSON.stringify(list.map((r) => Number(r.p99Ms.toFixed(2))))}, ` +
        `p99.9 ${fmt(med(list, 'p999Ms'), 2)} ms, max ${fmt(med(list, 'maxMs'), 2)} ms`,
    );
  }
  const summary: Record<string, unknown>[] = [];
  let best = Number.POSITIVE_INFINITY;
  for (const { clients, linger, runs: list } of series) {
    const p99 = med(list, 'p99Ms');
    best = Math.min(best, p99);
    console.log(
      `runnel ${clients}, lingerMs ${linger}: p50 ${fmt(med(list, 'p50Ms'), 2)} ms, p90 ${fmt(med(list, 'p90Ms'), 2)} ms, p99 ${fmt(p99, 2)} ms ${JSON.stringify(list.map((r) => Number(r.p99Ms.toFixed(2))))}, ` +
        `p99.9 ${fmt(med(list, 'p999Ms'), 2)} ms, max ${fmt(med(list, 'maxMs'), 2)} ms; p99 = bare relay p99 + ${fmt(p99 - (bareP99.get(clients) ?? Number.NaN), 2)} ms ` +
        `(disk fdatasync p50 ${fmt(diskP50, 2)} ms) — ${targetVerdict(p99, 2, true)} ms`,
    );
    const warmups = list.map((r) => r.warmup?.p99Ms ?? Number.NaN);
    console.log(`  warm-up (first ${warmupSeconds} s of each run, excluded above): p99 ${fmt(median(warmups), 2)} ms ${JSON.stringify(warmups.map((v) => Number(v.toFixed(2))))}`);
    summary.push({ clients, lingerMs: linger, warmupP99Ms: median(warmups), p50Ms: med(list, 'p50Ms'), p99Ms: p99, p999Ms: med(list, 'p999Ms'), maxMs: med(list, 'maxMs'), runs: list });
  }
  console.log(`\n== Target: p99 ≤ 2 ms at ${fmt(rate)} records/s, flush=always: best ${fmt(best, 2)} ms ${targetVerdict(best, 2, true)}`);
  if (flags.save !== undefined) {
    fs.writeFileSync(flags.save, `${JSON.stringify({ date: new Date().toISOString(), baselines: { disk, bare: Object.fromEntries(bare) }, summary }, null, 1)}\n`);
  }
  removeDir(dataDir);
}

await main();
