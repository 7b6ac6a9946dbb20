/**
 * broker-consume (STYLE H14). Question: how many records/s does one consumer process
 * (compiled JS, `consumer.batches()`) replay from offset 0 out of one compiled broker over
 * loopback, and how much broker CPU does each record cost? 100 B records, page cache hot
 * (the data was just produced), 1 and 4 partitions, default consumer settings and larger
 * Subscribe replies / credit window.
 *
 * Baselines, measured in every round of the same run: (a) bare grpc-js server-streaming of
 * 1 MiB messages, CHANNEL_OPTIONS (transport-baseline.mjs); (b) raw sequential 1 MiB
 * `fs.read`s of a file just written (hot, like the replayed log) (bench/common.ts).
 *
 * The topics are loaded once by broker-produce-client.mjs (1 MiB batches), then each round
 * replays each of them once per consumer setting, each replay a fresh consumer process.
 *
 *   npm run build && node --import tsx bench/broker-consume.ts [--rounds 3] [--records 6000000] [--broker-node-flags 'initial-old-space-size=256'] [--save FILE]
 *
 * Targets (issue): ≥ 2,500,000 records/s; broker CPU ≤ 1 µs per record.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fmt, freshDataDir, loadLine, median, pct, printHeader, removeDir } from './common.js';
import {
  BIN_NODE_FLAGS,
  diskBaseline,
  ensureBuilt,
  MiB,
  otherCores,
  parseFlags,
  runClient,
  startBroker,
  targetVerdict,
  transportBaseline,
  type ClientRun,
  type DiskBaseline,
  type TransportBaseline,
} from './broker-support.js';

/** A replay run, with how long stream setup took and how many replies carried it. */
interface ConsumeResult extends ClientRun {
  bytes: number;
  firstChunkSeconds: number;
  chunks: number;
}

interface Scenario {
  name: string;
  partitions: number;
  consumerArgs: string[];
}

const flags = parseFlags(process.argv.slice(2));
/**
 * `--broker-node-flags "initial-old-space-size=256"`: node/V8 flags for the broker, without
 * their dashes, added after the flags of bin/runnel.js's shebang (experiments; the default runs
 * the broker exactly as `runnel broker` does).
 */
const brokerNodeArgs = flags['broker-node-flags']?.split(' ').filter((arg) => arg.length > 0).map((arg) => `--${arg}`) ?? [];
const rounds = Number(flags.rounds ?? 3);
const recordCount = Number(flags.records ?? 6_000_000);
const RECORD_BYTES = 100;
const BASELINE_BYTES = Number(flags['baseline-mib'] ?? 512) * MiB;
/** Log bytes per 100 B record in 1 MiB batches (broker-produce prints the same figure). */
const LOG_BYTES_PER_RECORD = 110.1;

const SCENARIOS: Scenario[] = [
  { name: '1 partition, default consumer (1 MiB replies, 8 MiB credit)', partitions: 1, consumerArgs: [] },
  { name: '1 partition, 4 MiB replies, 32 MiB credit', partitions: 1, consumerArgs: ['--max-message-bytes', String(4 * MiB), '--partition-buffer-bytes', String(32 * MiB)] },
  { name: '4 partitions, default consumer', partitions: 4, consumerArgs: [] },
];

async function main(): Promise<void> {
  ensureBuilt();
  const dataDir = freshDataDir('broker-consume');
  printHeader('broker-consume', 'Replay from offset 0 (hot page cache): records/s and broker CPU per record, one consumer process ← one broker (compiled JS).', dataDir, {
    rounds,
    records: recordCount,
    brokerNodeArgs: [...BIN_NODE_FLAGS, ...brokerNodeArgs],
    recordBytes: RECORD_BYTES,
    baselineMiB: BASELINE_BYTES / MiB,
    scenarios: SCENARIOS.map((s) => s.name),
  });
  const results = new Map<Scenario, ConsumeResult[]>(SCENARIOS.map((s) => [s, []]));
  const disks: DiskBaseline[] = [];
  const transports: TransportBaseline[] = [];
  const broker = await startBroker({ dataDir: join(dataDir, 'broker'), flush: 'never', nodeArgs: brokerNodeArgs, countGc: true });
  try {
    for (const partitions of new Set(SCENARIOS.map((s) => s.partitions))) {
      const load = await runClient<{ records: number; recordsPerSec: number }>('broker-produce-client.mjs', [
        '--broker', broker.address,
        '--broker-pid', String(broker.pid),
        '--topic', `replay-${partitions}`,
        '--create-partitions', String(partitions),
        '--records', String(recordCount),
        '--warmup-seconds', '0',
        '--batch-bytes', String(MiB),
      ]);
      console.log(`loaded replay-${partitions} (${partitions} partition(s)): ${fmt(load.records)} records at ${fmt(load.recordsPerSec)} records/s`);
    }
    for (let round = 1; round <= rounds; round++) {
      console.log(`\n-- round ${round}/${rounds} (${loadLine().trim()})`);
      const disk = await diskBaseline(join(dataDir, 'raw'), BASELINE_BYTES);
      const transport = await transportBaseline({ widenWindow: true, bytes: BASELINE_BYTES });
      disks.push(disk);
      transports.push(transport);
      console.log(`  baselines: disk read (hot) ${fmt(disk.readMBps)} MB/s; grpc-js server-streaming download ${fmt(transport.downloadMBps)} MB/s`);
      for (const scenario of SCENARIOS) {
        const gcBefore = broker.majorGcCount();
        const result = await runClient<ConsumeResult>('broker-consume-client.mjs', [
          '--broker', broker.address,
          '--broker-pid', String(broker.pid),
          '--topic', `replay-${scenario.partitions}`,
          '--partitions', String(scenario.partitions),
          '--records', String(recordCount),
          ...scenario.consumerArgs,
        ]);
        await new Promise((resolve) => setTimeout(resolve, 50)); // the last --trace-gc lines
        result.majorGcs = broker.majorGcCount() - gcBefore;
        if (result.records < recordCount) throw new Error(`only ${result.records} of ${recordCount} records replayed`);
        results.get(scenario)?.push(result);
        console.log(
          `  ${scenario.name}: ${fmt(result.recordsPerSec)} records/s, ${fmt(result.valueMBps, 1)} MB/s values, ${fmt(result.chunks)} chunks, setup ${fmt(result.firstChunkSeconds * 1000, 1)} ms, ` +
            `broker ${fmt((result.brokerCpuSeconds * 1e6) / result.records, 3)} µs/record, consumer CPU ${fmt((result.clientCpuSeconds / result.seconds) * 100)} % of a core, ` +
            `broker ${fmt((result.brokerCpuSeconds / result.seconds) * 100)} %, anything else ${fmt(otherCores(result) * 100)} %; broker major GCs ${result.majorGcs}`,
        );
      }
    }
  } finally {
    await broker.stop();
  }

  const diskRead = median(disks.map((d) => d.readMBps));
  const download = median(transports.map((t) => t.downloadMBps));
  console.log(`\n== Summary (medians of ${rounds} rounds) ${loadLine().trim()}`);
  console.log(`baseline disk read (hot, 1 MiB fs.read): ${fmt(diskRead)} MB/s ${JSON.stringify(disks.map((d) => Math.round(d.readMBps)))}`);
  console.log(
    `baseline grpc-js server-streaming 1 MiB: ${fmt(download)} MB/s ${JSON.stringify(transports.map((t) => Math.round(t.downloadMBps)))}; ` +
      `bare server CPU ${fmt(median(transports.map((t) => t.downloadServerCpuUsPerMB)))} µs/MB`,
  );
  const summary: Record<string, unknown>[] = [];
  let best = 0;
  let cpuWorst = 0;
  for (const scenario of SCENARIOS) {
    const runs = results.get(scenario) ?? [];
    const rate = median(runs.map((r) => r.recordsPerSec));
    const logMBps = (rate * LOG_BYTES_PER_RECORD) / 1e6;
    const cpuUs = median(runs.map((r) => (r.brokerCpuSeconds * 1e6) / r.records));
    const clientCores = median(runs.map((r) => r.clientCpuSeconds / r.seconds));
    best = Math.max(best, rate);
    cpuWorst = Math.max(cpuWorst, cpuUs);
    console.log(
      `${scenario.name}: ${fmt(rate)} records/s ${JSON.stringify(runs.map((r) => Math.round(r.recordsPerSec)))}, ${fmt(median(runs.map((r) => r.valueMBps)), 1)} MB/s values ` +
        `(${fmt(logMBps, 1)} MB/s log bytes) = ${pct(logMBps / download)} of grpc download, ${pct(logMBps / diskRead)} of hot disk read; ` +
        `broker ${fmt(cpuUs, 3)} µs/record ${JSON.stringify(runs.map((r) => Number(((r.brokerCpuSeconds * 1e6) / r.records).toFixed(3))))}; ` +
        `consumer ${pct(clientCores)} of a core, broker ${pct(median(runs.map((r) => r.brokerCpuSeconds / r.seconds)))}, other processes ${pct(median(runs.map(otherCores)))}; broker major GCs per run ${JSON.stringify(runs.map((r) => r.majorGcs))}`,
    );
    summary.push({ name: scenario.name, recordsPerSec: rate, logMBps, brokerCpuUsPerRecord: cpuUs, consumerCores: clientCores, runs });
  }
  const defaultRate = median((results.get(SCENARIOS[0] as Scenario) ?? []).map((r) => r.recordsPerSec));
  console.log(`\n== Targets`);
  console.log(`replay ≥ 2,500,000 records/s: best ${fmt(best)} ${targetVerdict(best, 2_500_000)}; default consumer, 1 partition ${fmt(defaultRate)} ${targetVerdict(defaultRate, 2_500_000)}`);
  console.log(`broker CPU per record, worst scenario median: ${fmt(cpuWorst, 3)} µs ${targetVerdict(cpuWorst, 1, true)}`);
  if (flags.save !== undefined) {
    fs.writeFileSync(flags.save, `${JSON.stringify({ date: new Date().toISOString(), baselines: { diskRead, download, disks, transports }, summary }, null, 1)}\n`);
  }
  removeDir(dataDir);
}

await main();
