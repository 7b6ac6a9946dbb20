/**
 * Question: how long do creating, describing and deleting a topic of 10,000 partitions take
 * on one broker (the storage engine's "10,000 partitions per broker", seen from the admin
 * API)? No target is set; `runnel topic create` gives a call 15 s before it reports a timeout.
 *
 * Method: a Broker in this process (meta and storage as `runnel broker` opens them, no gRPC),
 * a fresh data directory; per round: createTopic, describeTopic, ListOffsets (latest) of every
 * partition at once as the service asks it, then produce one record to each of 100 partitions
 * and describe again (opened partitions are described from their logs), then one record to
 * every partition, describe and ListOffsets again (most logs closed by then, past
 * openPartitionsMax: answered from what their clean close left), then reopen the broker and
 * describe (every log closed and unknown: each is opened), then deleteTopic. Baseline in the
 * same round: a bare loop that makes 10,000 directories and fsyncs their parent once, then
 * renames them all away and fsyncs once (the least any create and delete must do), and
 * removes them. Medians of the rounds.
 *
 * Run: node --import tsx bench/broker-topic-admin.ts [--partitions N] [--rounds N]
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Broker } from '../src/broker/index.js';
import { loadBrokerConfig } from '../src/config/broker-config.js';
import { encodeBatch } from '../src/protocol/index.js';
import { silentLogger } from '../src/observability/index.js';
import { fmt, freshDataDir, median, printHeader, removeDir, runsText, seconds } from './common.js';

const { values: args } = parseArgs({
  options: {
    partitions: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
  },
});
const PARTITIONS = Number(args.partitions);
const ROUNDS = Number(args.rounds);
const USED_PARTITIONS = Math.min(100, PARTITIONS);
if (!(PARTITIONS >= 1 && ROUNDS >= 1)) throw new Error('--partitions and --rounds must be ≥ 1');

function syncDirectory(path: string): void {
  const fd = fs.openSync(path, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** The bare minimum: mkdir × N + one fsync, rename × N + one fsync, then removal. */
async function baseline(dataDir: string): Promise<{ createSeconds: number; deleteSeconds: number }> {
  const root = join(dataDir, 'baseline');
  fs.mkdirSync(root);
  let start = process.hrtime.bigint();
  for (let p = 0; p < PARTITIONS; p++) await fs.promises.mkdir(join(root, `t-${p}`));
  syncDirectory(root);
  const createSeconds = seconds(start);
  start = process.hrtime.bigint();
  for (let p = 0; p < PARTITIONS; p++) await fs.promises.rename(join(root, `t-${p}`), join(root, `t-${p}.deleted`));
  syncDirectory(root);
  const deleteSeconds = seconds(start);
  fs.rmSync(root, { recursive: true, force: true });
  return { createSeconds, deleteSeconds };
}

async function round(dataDir: string): Promise<Record<string, number>> {
  const config = { ...loadBrokerConfig({}), dataDir: join(dataDir, 'broker'), logLevel: 'silent' as const };
  let broker = await Broker.open({ config, logger: silentLogger });
  try {
    let start = process.hrtime.bigint();
    await broker.createTopic({ name: 'big', partitions: PARTITIONS, replicationFactor: 1, configs: {} });
    const createSeconds = seconds(start);
    start = process.hrtime.bigint();
    await broker.describeTopic('big');
    const describeNewSeconds = seconds(start);
    // ListOffsets of every partition, as the service runs it (all partitions at once).
    const listLatest = async (): Promise<number> => {
      const begin = process.hrtime.bigint();
      await Promise.all(Array.from({ length: PARTITIONS }, (_, partition) => broker.listOffset('big', partition, { kind: 'latest' })));
      return seconds(begin);
    };
    const listNewSeconds = await listLatest();
    const batch = encodeBatch({ records: [{ key: null, value: Buffer.from('x'), headers: [], timestamp: Date.now() }] });
    for (let p = 0; p < USED_PARTITIONS; p++) await broker.produce({ topic: 'big', partition: p, batch: Buffer.from(batch), acks: 'leader', timeoutMs: 30_000 });
    start = process.hrtime.bigint();
    const described = await broker.describeTopic('big');
    const describeUsedSeconds = seconds(start);
    const records = described.partitions.reduce((sum, partition) => sum + partition.logEndOffset, 0);
    if (records !== USED_PARTITIONS) throw new Error(`described ${records} records, expected ${USED_PARTITIONS}`);
    for (let p = USED_PARTITIONS; p < PARTITIONS; p += 64) {
      const partitions = Array.from({ length: Math.min(64, PARTITIONS - p) }, (_, i) => p + i);
      await Promise.all(partitions.map((partition) => broker.produce({ topic: 'big', partition, batch: Buffer.from(batch), acks: 'leader', timeoutMs: 30_000 })));
    }
    const describeAll = async (): Promise<number> => {
      const begin = process.hrtime.bigint();
      const all = await broker.describeTopic('big');
      const took = seconds(begin);
      const total = all.partitions.reduce((sum, partition) => sum + partition.logEndOffset, 0);
      if (total !== PARTITIONS) throw new Error(`described ${total} records, expected ${PARTITIONS}`);
      return took;
    };
    const describeAllUsedSeconds = await describeAll();
    const listUsedSeconds = await listLatest();
    await broker.close();
    broker = await Broker.open({ config, logger: silentLogger });
    const describeAfterRestartSeconds = await describeAll();
    start = process.hrtime.bigint();
    await broker.deleteTopic('big');
    const deleteSeconds = seconds(start);
    return {
      'broker create': createSeconds,
      'broker describe, all new': describeNewSeconds,
      'broker list offsets (latest), all new': listNewSeconds,
      [`broker describe, ${USED_PARTITIONS} used`]: describeUsedSeconds,
      'broker describe, all used': describeAllUsedSeconds,
      'broker describe, all used, restarted': describeAfterRestartSeconds,
      'broker list offsets (latest), all used': listUsedSeconds,
      'broker delete': deleteSeconds,
    };
  } finally {
    await broker.close();
  }
}

const dataDir = freshDataDir('topic-admin');
printHeader(
  'broker-topic-admin',
  `create, describe and delete a topic of ${fmt(PARTITIONS)} partitions (${USED_PARTITIONS} of them used before the second describe, all before the third and fourth, a restart before the fourth)`,
  dataDir,
  { partitions: PARTITIONS, rounds: ROUNDS, usedPartitions: USED_PARTITIONS },
);
const runs: Record<string, number[]> = {};
const push = (name: string, value: number): void => {
  (runs[name] ??= []).push(value);
};
try {
  for (let r = 0; r < ROUNDS; r++) {
    const raw = await baseline(dataDir);
    push('baseline create (mkdir × N, 1 fsync)', raw.createSeconds);
    push('baseline delete (rename × N, 1 fsync)', raw.deleteSeconds);
    for (const [name, value] of Object.entries(await round(dataDir))) push(name, value);
    fs.rmSync(join(dataDir, 'broker'), { recursive: true, force: true });
  }
  for (const [name, values] of Object.entries(runs)) {
    console.log(`${name.padEnd(40)} ${fmt(median(values), 2).padStart(8)} s   runs ${runsText(values, 2)}`);
  }
} finally {
  removeDir(dataDir);
}
