/**
 * broker-produce (STYLE H14). Question: how many records/s (and MB/s) does one compiled
 * broker take from one producer process over loopback, acks=leader, with flush=never and
 * with flush=always, for 100 B and 1 KiB records, and how much broker CPU does each record
 * cost? Which producer settings (batchBytes, lingerMs, partitions) do best?
 *
 * Baselines, measured in every round of the same run: (a) bare grpc-js client-streaming
 * upload of 1 MiB messages, CHANNEL_OPTIONS, with the broker's widened HTTP/2 window and
 * with grpc-js defaults (transport-baseline.mjs); (b) raw sequential 1 MiB `fs.write`s to
 * the broker's disk, without fsync (flush=never) and with fdatasync every 1 MiB
 * (flush=always) (bench/common.ts).
 *
 * Each round runs every scenario once (interleaved), each in a fresh topic on one broker
 * started with `--flush never` (flush=always scenarios set the topic config `flush=always`):
 * a separate producer process (broker-produce-client.mjs, compiled JS) warms up 1 s, then
 * sends flat out for `--seconds` and flushes. Figures are medians over `--rounds`.
 *
 *   npm run build && node --import tsx bench/broker-produce.ts [--rounds 3] [--seconds 3] [--only 100B,1KiB,always] [--broker-node-flags 'initial-old-space-size=256'] [--save FILE]
 *
 * Targets (issue): 100 B flush=never ≥ 1,000,000 records/s; 1 KiB flush=never ≥ 250 MB/s;
 * 100 B flush=always ≥ 400,000 records/s; broker CPU ≤ 1 µs per record.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { buildBatch, fmt, freshDataDir, loadLine, median, pct, printHeader, removeDir } from './common.js';
import {
  BIN_NODE_FLAGS,
  diskBaseline,
  ensureBuilt,
  KiB,
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

interface Scenario {
  group: '100B' | '1KiB' | 'always';
  name: string;
  recordBytes: number;
  topicFlush: 'never' | 'always';
  partitions: number;
  batchBytes?: number;
  lingerMs?: number;
}


const flags = parseFlags(process.argv.slice(2));
/**
 * `--broker-node-flags "initial-old-space-size=256"`: node/V8 flags for the broker, without
 * their dashes, added after the flags of bin/runnel.js's shebang (experiments; the default runs
 * the broker exactly as `runnel broker` does).
 */
const brokerNodeArgs = flags['broker-node-flags']?.split(' ').filter((arg) => arg.length > 0).map((arg) => `--${arg}`) ?? [];
const rounds = Number(flags.rounds ?? 3);
const measureSeconds = Number(flags.seconds ?? 3);
const only = flags.only?.split(',');

const SCENARIOS: Scenario[] = [
  { group: '100B', name: 'default (256 KiB, linger 5), 1 partition', recordBytes: 100, topicFlush: 'never', partitions: 1 },
  { group: '100B', name: '512 KiB, linger 5, 1 partition', recordBytes: 100, topicFlush: 'never', partitions: 1, batchBytes: 512 * KiB },
  { group: '100B', name: '1 MiB, linger 5, 1 partition', recordBytes: 100, topicFlush: 'never', partitions: 1, batchBytes: MiB },
  { group: '100B', name: '1 MiB, linger 20, 1 partition', recordBytes: 100, topicFlush: 'never', partitions: 1, batchBytes: MiB, lingerMs: 20 },
  { group: '100B', name: 'default (256 KiB, linger 5), 4 partitions', recordBytes: 100, topicFlush: 'never', partitions: 4 },
  { group: '100B', name: '1 MiB, linger 5, 4 partitions', recordBytes: 100, topicFlush: 'never', partitions: 4, batchBytes: MiB },
  { group: '1KiB', name: 'default (256 KiB, linger 5), 1 partition', recordBytes: 1024, topicFlush: 'never', partitions: 1 },
  { group: '1KiB', name: '1 MiB, linger 5, 1 partition', recordBytes: 1024, topicFlush: 'never', partitions: 1, batchBytes: MiB },
  { group: '1KiB', name: '1 MiB, linger 5, 4 partitions', recordBytes: 1024, topicFlush: 'never', partitions: 4, batchBytes: MiB },
  { group: 'always', name: 'default (256 KiB, linger 5), 1 partition', recordBytes: 100, topicFlush: 'always', partitions: 1 },
  { group: 'always', name: '1 MiB, linger 5, 1 partition', recordBytes: 100, topicFlush: 'always', partitions: 1, batchBytes: MiB },
  { group: 'always', name: '1 MiB, linger 5, 4 partitions', recordBytes: 100, topicFlush: 'always', partitions: 4, batchBytes: MiB },
].filter((scenario) => only === undefined || only.includes(scenario.group)) as Scenario[];

const GROUP_TITLES: Record<Scenario['group'], string> = {
  '100B': '100 B records, flush=never, acks=leader',
  '1KiB': '1 KiB records, flush=never, acks=leader',
  always: '100 B records, topic flush=always, acks=leader',
};

/** Encoded log bytes per record in a batch of this shape (what crosses the wire and hits disk). */
function wireBytesPerRecord(recordBytes: number, batchBytes: number): number {
  const { batch, recordCount } = buildBatch(recordBytes, batchBytes);
  return batch.length / recordCount;
}

const BASELINE_BYTES = Number(flags['baseline-mib'] ?? 512) * MiB;

async function main(): Promise<void> {
  ensureBuilt();
  const dataDir = freshDataDir('broker-produce');
  printHeader('broker-produce', 'Records/s, MB/s and broker CPU per record of one producer process → one broker (compiled JS), acks=leader.', dataDir, {
    rounds,
    measureSeconds,
    brokerNodeArgs: [...BIN_NODE_FLAGS, ...brokerNodeArgs],
    warmupSeconds: 1,
    baselineMiB: BASELINE_BYTES / MiB,
    scenarios: SCENARIOS.map((scenario) => `${GROUP_TITLES[scenario.group]}: ${scenario.name}`),
  });
  const results = new Map<Scenario, ClientRun[]>(SCENARIOS.map((scenario) => [scenario, []]));
  const disks: DiskBaseline[] = [];
  const disksSynced: DiskBaseline[] = [];
  const transportsWide: TransportBaseline[] = [];
  const transportsDefault: TransportBaseline[] = [];
  const broker = await startBroker({ dataDir: join(dataDir, 'broker'), flush: 'never', nodeArgs: brokerNodeArgs, countGc: true });
  try {
    for (let round = 1; round <= rounds; round++) {
      console.log(`\n-- round ${round}/${rounds} (${loadLine().trim()})`);
      const disk = await diskBaseline(join(dataDir, 'raw'), BASELINE_BYTES);
      const synced = await diskBaseline(join(dataDir, 'raw'), BASELINE_BYTES / 2, MiB);
      const wide = await transportBaseline({ widenWindow: true, bytes: BASELINE_BYTES });
      const plain = await transportBaseline({ widenWindow: false, bytes: BASELINE_BYTES });
      disks.push(disk);
      disksSynced.push(synced);
      transportsWide.push(wide);
      transportsDefault.push(plain);
      console.log(
        `baselines: disk write ${fmt(disk.writeMBps)} MB/s, write+fdatasync/MiB ${fmt(synced.writeMBps)} MB/s; ` +
          `grpc upload ${fmt(wide.uploadMBps)} MB/s (widened window), ${fmt(plain.uploadMBps)} MB/s (default window)`,
      );
      for (const scenario of SCENARIOS) {
        const topic = `produce-${round}-${SCENARIOS.indexOf(scenario)}`;
        const args = [
          '--broker', broker.address,
          '--broker-pid', String(broker.pid),
          '--topic', topic,
          '--create-partitions', String(scenario.partitions),
          '--topic-flush', scenario.topicFlush,
          '--record-bytes', String(scenario.recordBytes),
          '--seconds', String(measureSeconds),
          '--warmup-seconds', '1',
          '--acks', 'leader',
          '--delete-after',
          ...(scenario.batchBytes === undefined ? [] : ['--batch-bytes', String(scenario.batchBytes)]),
          ...(scenario.lingerMs === undefined ? [] : ['--linger-ms', String(scenario.lingerMs)]),
        ];
        const gcBefore = broker.majorGcCount();
        const result = await runClient<ClientRun>('broker-produce-client.mjs', args);
        await new Promise((resolve) => setTimeout(resolve, 50)); // the last --trace-gc lines
        result.majorGcs = broker.majorGcCount() - gcBefore;
        results.get(scenario)?.push(result);
        console.log(
          `  ${GROUP_TITLES[scenario.group]}, ${scenario.name}: ${fmt(result.recordsPerSec)} records/s, ${fmt(result.valueMBps, 1)} MB/s values, ` +
            `broker ${fmt((result.brokerCpuSeconds * 1e6) / result.records, 3)} µs/record, producer CPU ${fmt((result.clientCpuSeconds / result.seconds) * 100)} % of a core, ` +
            `broker ${fmt((result.brokerCpuSeconds / result.seconds) * 100)} %, anything else ${fmt(otherCores(result) * 100)} %; broker major GCs ${result.majorGcs}`,
        );
      }
    }
  } finally {
    await broker.stop();
  }

  const diskWrite = median(disks.map((d) => d.writeMBps));
  const diskSynced = median(disksSynced.map((d) => d.writeMBps));
  const uploadWide = median(transportsWide.map((t) => t.uploadMBps));
  const uploadDefault = median(transportsDefault.map((t) => t.uploadMBps));
  console.log(`\n== Summary (medians of ${rounds} rounds) ${loadLine().trim()}`);
  console.log(`baseline disk: raw write ${fmt(diskWrite)} MB/s ${JSON.stringify(disks.map((d) => Math.round(d.writeMBps)))}; write + fdatasync every 1 MiB ${fmt(diskSynced)} MB/s ${JSON.stringify(disksSynced.map((d) => Math.round(d.writeMBps)))}`);
  console.log(
    `baseline grpc-js upload (1 MiB client-streaming): ${fmt(uploadWide)} MB/s widened window ${JSON.stringify(transportsWide.map((t) => Math.round(t.uploadMBps)))}, ` +
      `${fmt(uploadDefault)} MB/s default window ${JSON.stringify(transportsDefault.map((t) => Math.round(t.uploadMBps)))}; ` +
      `bare server CPU ${fmt(median(transportsWide.map((t) => t.uploadServerCpuUsPerMB)))} µs/MB`,
  );
  const summary: Record<string, unknown>[] = [];
  for (const scenario of SCENARIOS) {
    const runs = results.get(scenario) ?? [];
    const rate = median(runs.map((r) => r.recordsPerSec));
    const valueMBps = median(runs.map((r) => r.valueMBps));
    const wirePerRecord = wireBytesPerRecord(scenario.recordBytes, scenario.batchBytes ?? 256 * KiB);
    const wireMBps = (rate * wirePerRecord) / 1e6;
    const cpuUs = median(runs.map((r) => (r.brokerCpuSeconds * 1e6) / r.records));
    const clientCore = median(runs.map((r) => r.clientCpuSeconds / r.seconds));
    const diskRef = scenario.topicFlush === 'always' ? diskSynced : diskWrite;
    const line =
      `${GROUP_TITLES[scenario.group]}, ${scenario.name}: ${fmt(rate)} records/s ${JSON.stringify(runs.map((r) => Math.round(r.recordsPerSec)))}, ` +
      `${fmt(valueMBps, 1)} MB/s values (${fmt(wireMBps, 1)} MB/s log bytes, ${fmt(wirePerRecord, 1)} B/record) = ` +
      `${pct(wireMBps / uploadWide)} of grpc upload, ${pct(wireMBps / diskRef)} of ${scenario.topicFlush === 'always' ? 'synced ' : ''}disk write; ` +
      `broker ${fmt(cpuUs, 3)} µs/record ${JSON.stringify(runs.map((r) => Number(((r.brokerCpuSeconds * 1e6) / r.records).toFixed(3))))}; ` +
      `producer ${pct(clientCore)} of a core, broker ${pct(median(runs.map((r) => r.brokerCpuSeconds / r.seconds)))}, other processes ${pct(median(runs.map(otherCores)))}; broker major GCs per run ${JSON.stringify(runs.map((r) => r.majorGcs))}`;
    console.log(line);
    summary.push({ group: scenario.group, name: scenario.name, recordsPerSec: rate, valueMBps, wireMBps, brokerCpuUsPerRecord: cpuUs, producerCores: clientCore, runs });
  }

  console.log('\n== Targets');
  const best = (group: Scenario['group'], key: 'recordsPerSec' | 'valueMBps'): { scenario: Scenario; value: number } | undefined => {
    let top: { scenario: Scenario; value: number } | undefined;
    for (const scenario of SCENARIOS.filter((s) => s.group === group)) {
      const value = median((results.get(scenario) ?? []).map((r) => r[key]));
      if (top === undefined || value > top.value) top = { scenario, value };
    }
    return top;
  };
  const defaultOf = (group: Scenario['group'], key: 'recordsPerSec' | 'valueMBps'): number =>
    median((results.get(SCENARIOS.find((s) => s.group === group) as Scenario) ?? []).map((r) => r[key]));
  const targets: [Scenario['group'], 'recordsPerSec' | 'valueMBps', number, string][] = [
    ['100B', 'recordsPerSec', 1_000_000, 'records/s'],
    ['1KiB', 'valueMBps', 250, 'MB/s'],
    ['always', 'recordsPerSec', 400_000, 'records/s'],
  ];
  for (const [group, key, target, unit] of targets) {
    const top = best(group, key);
    if (top === undefined) continue;
    console.log(`${GROUP_TITLES[group]}: best ${fmt(top.value, 1)} ${unit} (${top.scenario.name}) ${targetVerdict(top.value, target)}; default settings ${fmt(defaultOf(group, key), 1)} ${unit} ${targetVerdict(defaultOf(group, key), target)}`);
  }
  // The targets are for 100 B records unless they say otherwise; 1 KiB records are
  // reported beside it (their per-byte floor: BROKER-RESULTS.md §7.3), not judged.
  const cpuMedian = (s: Scenario): number => median((results.get(s) ?? []).map((r) => (r.brokerCpuSeconds * 1e6) / r.records));
  const cpuWorst = Math.max(...SCENARIOS.filter((s) => s.recordBytes === 100).map(cpuMedian));
  const cpuWorst1KiB = Math.max(...SCENARIOS.filter((s) => s.recordBytes !== 100).map(cpuMedian));
  console.log(`broker CPU per record (100 B records), worst scenario median: ${fmt(cpuWorst, 3)} µs ${targetVerdict(cpuWorst, 1, true)}; 1 KiB records (informational): ${fmt(cpuWorst1KiB, 3)} µs`);

  if (flags.save !== undefined) {
    fs.writeFileSync(flags.save, `${JSON.stringify({ date: new Date().toISOString(), baselines: { diskWrite, diskSynced, uploadWide, uploadDefault, disks, disksSynced, transportsWide, transportsDefault }, summary }, null, 1)}\n`);
  }
  removeDir(dataDir);
}

await main();
