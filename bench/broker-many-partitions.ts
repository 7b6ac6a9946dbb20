/**
 * Question: what does a producer get from one broker when it writes 10,000 partitions at
 * once, round robin, against the same producer writing 100 partitions in the same round, and
 * what does one consumer reading all of them back get?
 * And how long do the first record to each new partition and the broker's stop take then?
 * No target is set: this is the storage engine's "10,000 partitions per broker" seen from a
 * producer, with the broker's default settings (flush interval:1000, openSegmentFilesMax
 * from the open-files limit).
 *
 * Method: per round, a compiled broker (`bin/runnel.js broker`, as `npm start` runs it) on a
 * fresh data directory; this process is the client (the TypeScript producer, acks=leader,
 * idempotent, default batching). For P partitions: create the topic; send one record to
 * every partition at once and time until all are acknowledged (each partition's first
 * open), then a second record to each; then send round robin for `--seconds` with at most
 * `--in-flight` records unacknowledged, reporting acknowledged records/s per 5 s window and
 * over the last half of the run (steady state); then one consumer (the TypeScript consumer)
 * assigned every partition reads them all from offset 0 (replay records/s, from its assign to
 * the last record); then SIGTERM and the broker's own `stopMs`.
 * The broker's RSS and descriptors are sampled from /proc. Baseline in the same round: the
 * same load to 100 partitions on another fresh broker. Medians of the rounds.
 *
 * Run: npm run build && node --import tsx bench/broker-many-partitions.ts [--partitions 10000]
 *      [--seconds 30] [--in-flight 20000] [--rounds 2] [--flush interval:1000|never|always]
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { createClient } from '../src/client/index.js';
import { ensureBuilt, startBroker, type BrokerHandle } from './broker-support.js';
import { fmt, freshDataDir, loadLine, median, printHeader, removeDir, runsText } from './common.js';

const { values: args } = parseArgs({
  options: {
    partitions: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '30' },
    'in-flight': { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '2' },
    flush: { type: 'string', default: 'interval:1000' },
  },
});
const flushArg = args.flush;
if (flushArg !== 'never' && flushArg !== 'always' && !/^interval:\d+$/.test(flushArg)) throw new Error('--flush must be never, always or interval:<ms>');
const flush = flushArg as 'never' | 'always' | `interval:${number}`;
const partitions = Number(args.partitions);
const runSeconds = Number(args.seconds);
const inFlightMax = Number(args['in-flight']);
const rounds = Number(args.rounds);
const BASELINE_PARTITIONS = 100;
/** The replay gives up (and the bench fails) after this long. */
const REPLAY_MS_MAX = 300_000;
if (![partitions, runSeconds, inFlightMax, rounds].every((n) => Number.isInteger(n) && n >= 1)) {
  throw new Error('--partitions, --seconds, --in-flight and --rounds must be positive integers');
}

ensureBuilt();
const dataRoot = freshDataDir('broker-many-partitions');
printHeader('broker-many-partitions', 'Q: records/s a producer gets writing P partitions round robin vs 100, first record to each new partition, stop time.', dataRoot, {
  partitions,
  baselinePartitions: BASELINE_PARTITIONS,
  seconds: runSeconds,
  inFlightMax,
  rounds,
  recordBytes: '~20 (a timestamp and a counter)',
  producer: 'acks=leader, idempotent, default batching',
  broker: `bin/runnel.js broker, default settings${flush === 'interval:1000' ? ' (flush interval:1000)' : ` but flush ${flush}`}`,
  openFilesLimit: fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((line) => line.startsWith('Max open files'))?.replace(/\s+/g, ' '),
});

interface Run {
  createMs: number;
  firstRecordMs: number;
  secondRecordMs: number;
  windows: number[];
  steadyPerSecond: number;
  acked: number;
  errors: number;
  /** One consumer assigned every partition, from offset 0 to the last record written. */
  replayPerSecond: number;
  stopMs: number;
  rssMaxMb: number;
  fdsMax: number;
}

function sampleProc(pid: number): { rssMb: number; fds: number } {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    return { rssMb: rss, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { rssMb: 0, fds: 0 };
  }
}

async function oneRun(partitionCount: number, label: string): Promise<Run> {
  const dataDir = `${dataRoot}/${label}`;
  let stopMs = Number.NaN;
  let stopped: () => void = () => undefined;
  const stoppedLine = new Promise<void>((resolve) => (stopped = resolve));
  const broker: BrokerHandle = await startBroker({
    dataDir,
    flush, // interval:1000 unless --flush: the broker's default
    extraArgs: ['--shutdown-timeout-ms', '300000'],
    onLine: (line) => {
      if (!line.includes('"broker stopped cleanly"')) return;
      stopMs = Number((JSON.parse(line) as { stopMs?: number }).stopMs);
      stopped();
    },
  });
  const client = createClient({ brokers: [broker.address] });
  const producer = client.producer({ acks: 'leader' });
  let rssMaxMb = 0;
  let fdsMax = 0;
  const sampler = setInterval(() => {
    const sample = sampleProc(broker.pid);
    rssMaxMb = Math.max(rssMaxMb, sample.rssMb);
    fdsMax = Math.max(fdsMax, sample.fds);
  }, 500);
  try {
    const topic = 'many';
    let start = performance.now();
    await client.admin.createTopic({ name: topic, partitions: partitionCount });
    const createMs = performance.now() - start;
    const everyPartition = async (value: string): Promise<number> => {
      const begin = performance.now();
      await Promise.all(Array.from({ length: partitionCount }, (_, partition) => producer.send({ topic, partition, value })));
      return performance.now() - begin;
    };
    const firstRecordMs = await everyPartition('first');
    const secondRecordMs = await everyPartition('second');

    let acked = 0;
    let errors = 0;
    let inFlight = 0;
    let wake: (() => void) | undefined;
    const windows: number[] = [];
    let windowAcked = 0;
    const windowTimer = setInterval(() => {
      windows.push((acked - windowAcked) / 5);
      windowAcked = acked;
    }, 5000);
    start = performance.now();
    const endAt = start + runSeconds * 1000;
    const halfAt = start + (runSeconds * 1000) / 2;
    let ackedAtHalf: number | undefined;
    let sent = 0;
    while (performance.now() < endAt) {
      if (ackedAtHalf === undefined && performance.now() >= halfAt) ackedAtHalf = acked;
      if (inFlight >= inFlightMax) {
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      const partition = sent % partitionCount;
      sent++;
      inFlight++;
      producer
        .send({ topic, partition, value: `${Date.now()}:${sent}` })
        .then(
          () => void acked++,
          () => void errors++,
        )
        .finally(() => {
          inFlight--;
          if (wake !== undefined && inFlight < inFlightMax / 2) {
            const waiting = wake;
            wake = undefined;
            waiting();
          }
        });
      if (sent % 500 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const ackedAtEnd = acked;
    clearInterval(windowTimer);
    const steadyPerSecond = (ackedAtEnd - (ackedAtHalf ?? 0)) / (runSeconds / 2);
    await producer.flush();
    await producer.close();
    // Replay: one consumer assigned every partition, from offset 0, until it has every record
    // written (the two per partition, and the run's).
    const consumer = client.consumer({ autoOffsetReset: 'none' });
    const assignment = Array.from({ length: partitionCount }, (_, partition) => ({ topic, partition }));
    const recordsWritten = 2 * partitionCount + ackedAtEnd;
    const replayStart = performance.now();
    consumer.assign(assignment);
    await Promise.all(assignment.map((tp) => consumer.seek(tp, 0)));
    let replayed = 0;
    const replayDeadline = replayStart + REPLAY_MS_MAX;
    for await (const chunk of consumer.batches()) {
      replayed += chunk.length;
      if (replayed >= recordsWritten || performance.now() > replayDeadline) break;
    }
    const replayMs = performance.now() - replayStart;
    await consumer.close();
    if (replayed < recordsWritten) throw new Error(`replay read ${replayed} of ${recordsWritten} records in ${Math.round(replayMs)} ms`);
    await client.close();
    process.kill(broker.pid, 'SIGTERM');
    await stoppedLine;
    return { createMs, firstRecordMs, secondRecordMs, windows, steadyPerSecond, acked: ackedAtEnd, errors, replayPerSecond: replayed / (replayMs / 1000), stopMs, rssMaxMb, fdsMax };
  } finally {
    clearInterval(sampler);
    await broker.stop();
    removeDir(dataDir);
  }
}

const many: Run[] = [];
const few: Run[] = [];
for (let round = 0; round < rounds; round++) {
  const manyRun = await oneRun(partitions, `p${partitions}-r${round}`);
  many.push(manyRun);
  console.log(
    `round ${round + 1} ${partitions} partitions: create ${fmt(manyRun.createMs)} ms, first record to each ${fmt(manyRun.firstRecordMs)} ms, second ${fmt(manyRun.secondRecordMs)} ms, records/s per 5 s [${manyRun.windows.map((w) => fmt(w)).join(', ')}], steady ${fmt(manyRun.steadyPerSecond)}/s, errors ${manyRun.errors}, replay ${fmt(manyRun.replayPerSecond)}/s, stop ${fmt(manyRun.stopMs)} ms, RSS max ${fmt(manyRun.rssMaxMb)} MB, fds max ${manyRun.fdsMax}`,
  );
  const fewRun = await oneRun(BASELINE_PARTITIONS, `p${BASELINE_PARTITIONS}-r${round}`);
  few.push(fewRun);
  console.log(`round ${round + 1} ${BASELINE_PARTITIONS} partitions (baseline): records/s per 5 s [${fewRun.windows.map((w) => fmt(w)).join(', ')}], steady ${fmt(fewRun.steadyPerSecond)}/s, errors ${fewRun.errors}, replay ${fmt(fewRun.replayPerSecond)}/s, stop ${fmt(fewRun.stopMs)} ms`);
}

const steadyMany = median(many.map((run) => run.steadyPerSecond));
const steadyFew = median(few.map((run) => run.steadyPerSecond));
console.log(`\n${partitions} partitions, round robin, ${inFlightMax} records in flight, default broker settings`);
console.log(`create topic                   ${fmt(median(many.map((run) => run.createMs)))} ms  runs ${runsText(many.map((run) => run.createMs))}`);
console.log(`first record to each (opens)   ${fmt(median(many.map((run) => run.firstRecordMs)))} ms  runs ${runsText(many.map((run) => run.firstRecordMs))}`);
console.log(`second record to each          ${fmt(median(many.map((run) => run.secondRecordMs)))} ms  runs ${runsText(many.map((run) => run.secondRecordMs))}`);
console.log(`steady records/s (last half)   ${fmt(steadyMany)}  runs ${runsText(many.map((run) => run.steadyPerSecond))}; ${BASELINE_PARTITIONS} partitions ${fmt(steadyFew)} (${fmt((steadyMany / steadyFew) * 100)} %)`);
const replayMany = median(many.map((run) => run.replayPerSecond));
const replayFew = median(few.map((run) => run.replayPerSecond));
console.log(`replay records/s (1 consumer)  ${fmt(replayMany)}  runs ${runsText(many.map((run) => run.replayPerSecond))}; ${BASELINE_PARTITIONS} partitions ${fmt(replayFew)} (${fmt((replayMany / replayFew) * 100)} %)`);
console.log(`stop (broker's stopMs)         ${fmt(median(many.map((run) => run.stopMs)))} ms  runs ${runsText(many.map((run) => run.stopMs))}; ${BASELINE_PARTITIONS} partitions ${fmt(median(few.map((run) => run.stopMs)))} ms`);
console.log(`broker RSS max / fds max       ${fmt(median(many.map((run) => run.rssMaxMb)))} MB / ${fmt(median(many.map((run) => run.fdsMax)))}`);
console.log(`errors                         ${many.reduce((sum, run) => sum + run.errors, 0)} (${BASELINE_PARTITIONS} partitions: ${few.reduce((sum, run) => sum + run.errors, 0)})`);
console.log(loadLine());
removeDir(dataRoot);
