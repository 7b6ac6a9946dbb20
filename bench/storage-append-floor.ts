/**
 * Bench: what is the most any flush=never append could reach on this machine?
 *
 * An append must do two things whatever the design: check the batch (structure and CRC-32C,
 * before any byte is written) and write it, with one write at a time per file, so what a
 * process crash leaves is a prefix of what was written (bench/RESULTS.md run 7). This bench
 * measures a loop that does only that, the "floor" loop, next to `PartitionLog.append` and
 * the raw 1 MiB write baseline, all in the same run:
 *
 *   floor          each appender calls `validateBatchOrThrow` (what append calls) on its own
 *                  copy of the batch and queues it; one writer writes the queue in groups of
 *                  half the queued bytes (at least 128 KiB, at most 1 MiB: the log's own
 *                  caps), one writev at a time. When a writev completes, the next one starts
 *                  before its appenders are handed back to check their next batches, so the
 *                  checks overlap the writing (the log does the same). No offsets, indexes,
 *                  promises per append or producer state.
 *   floor, no CRC  the same loop without the check: how much of the gap is the CRC.
 *   log            `PartitionLog.append` with the same appenders (as bench/storage-append.ts).
 *
 * If the floor loop stays under a target, no implementation of append meets it on this
 * machine; if the log is far under the floor, the gap is ours.
 *
 * Runs are interleaved and prepared like storage-append.ts (files removed, sync, prewarm).
 *
 * Run: npm run build && node --import tsx bench/storage-append-floor.ts [--total-mib 512]
 *      [--rounds 3] [--in-flight 16,64,256] [--shapes 100x16,1024x16] (record bytes × batch KiB)
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { KiB, MiB } from '../src/common/units.js';
import { validateBatchOrThrow } from '../src/protocol/index.js';
import { nodeFileSystem } from '../src/storage/index.js';
import {
  appendCopies,
  benchLogConfig,
  buildBatch,
  fmt,
  freshDataDir,
  loadLine,
  mbPerSecond,
  median,
  openBenchLog,
  pct,
  prepareWriteRun,
  printHeader,
  rawSequentialWrite,
  removeDir,
  runsText,
  seconds,
} from './common.js';

const { values: args } = parseArgs({
  options: {
    'total-mib': { type: 'string', default: '512' },
    rounds: { type: 'string', default: '3' },
    'in-flight': { type: 'string', default: '16,64,256' },
    shapes: { type: 'string', default: '100x16,1024x16' },
  },
});

const totalBytes = Number(args['total-mib']) * MiB;
const rounds = Number(args.rounds);
const inFlights = args['in-flight'].split(',').map(Number);
const shapes = args.shapes.split(',').map((text) => {
  const [recordBytes, batchKiB] = text.split('x').map(Number) as [number, number];
  const built = buildBatch(recordBytes, batchKiB * KiB);
  return { name: `${recordBytes} B × ${batchKiB} KiB`, batch: built.batch, batches: Math.floor(totalBytes / built.batch.length) };
});

/** The log's group caps for flush=never (partition-log.ts `takeAppendGroup`). */
const GROUP_BYTES_MIN = 128 * KiB;
const GROUP_BYTES_MAX = MiB;
const BATCH_BYTES_MAX = 64 * MiB;

const dataDir = freshDataDir('append-floor');
const rawPath = join(dataDir, 'raw.bin');
const warmPath = join(dataDir, 'warm.bin');
const floorPath = join(dataDir, 'floor.log');
const logDir = join(dataDir, 'log');

/** Not timed: previous files gone, disk idle, and free memory the guest owns. */
function prepare(): Promise<void> {
  return prepareWriteRun({ files: [rawPath, floorPath], dirs: [logDir], warm: { path: warmPath, bytes: totalBytes } });
}

async function measureRaw(): Promise<number> {
  await prepare();
  const elapsed = await rawSequentialWrite(rawPath, totalBytes);
  return mbPerSecond(totalBytes, elapsed);
}

/** The floor loop: check, queue, one writev at a time. Returns MB/s. */
async function measureFloor(template: Buffer, batchCount: number, inFlight: number, isChecked: boolean): Promise<number> {
  await prepare();
  const handle = await nodeFileSystem.open(floorPath, 'create');
  const copies = Array.from({ length: Math.min(inFlight, batchCount) }, () => Buffer.from(template));
  let queue: Buffer[] = [];
  let queuedBytes = 0;
  let issued = 0;
  let written = 0;
  let position = 0;
  let isWriting = false;
  let failure: unknown;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));

  const append = (batch: Buffer): void => {
    if (issued >= batchCount) return;
    issued++;
    if (isChecked) validateBatchOrThrow(batch, { batchBytesMax: BATCH_BYTES_MAX });
    queue.push(batch);
    queuedBytes += batch.length;
    if (!isWriting) void drain();
  };
  /** Takes the next group off the queue and starts its writev. */
  const startWrite = (): { group: Buffer[]; bytes: number; done: Promise<number> } | undefined => {
    if (queue.length === 0) return undefined;
    const bytesMax = Math.min(GROUP_BYTES_MAX, Math.max(GROUP_BYTES_MIN, Math.ceil(queuedBytes / 2)));
    let count = 0;
    let bytes = 0;
    while (count < queue.length && (count === 0 || bytes + (queue[count] as Buffer).length <= bytesMax)) bytes += (queue[count++] as Buffer).length;
    const group = queue.slice(0, count);
    queue = queue.slice(count);
    queuedBytes -= bytes;
    const done = handle.writev(group, position);
    position += bytes;
    return { group, bytes, done };
  };
  // As the log does: when a write completes, the next one starts before the appenders it
  // hands back check their next batches, so checking overlaps writing.
  const drain = async (): Promise<void> => {
    isWriting = true;
    try {
      for (let write = startWrite(); write !== undefined; ) {
        const done = await write.done;
        if (done !== write.bytes) throw new Error(`short write: ${done} of ${write.bytes} bytes`);
        written += write.group.length;
        const handedBack = write.group;
        write = startWrite();
        for (const batch of handedBack) append(batch);
        write ??= startWrite();
      }
    } catch (error) {
      failure = error;
      finish();
    }
    isWriting = false;
    if (written >= batchCount) finish();
  };

  const start = process.hrtime.bigint();
  for (const copy of copies) append(copy);
  await finished;
  const elapsed = seconds(start);
  await handle.close();
  if (failure !== undefined) throw failure;
  return mbPerSecond(position, elapsed);
}

async function measureLog(template: Buffer, batchCount: number, inFlight: number): Promise<number> {
  await prepare();
  const log = await openBenchLog({ dir: logDir, config: benchLogConfig({ flush: { kind: 'never' } }) });
  const elapsed = await appendCopies(log, template, batchCount, inFlight);
  await log.close();
  return mbPerSecond(batchCount * template.length, elapsed);
}

printHeader(
  'storage-append-floor',
  'What is the most any flush=never append could reach here (check + one write at a time), next to PartitionLog.append and raw writes?',
  dataDir,
  { totalBytesPerRun: totalBytes, rounds, inFlights, shapes: shapes.map(({ name, batch, batches }) => ({ shape: name, batchBytes: batch.length, batches })), groupBytes: [GROUP_BYTES_MIN, GROUP_BYTES_MAX] },
);

const variants = ['floor', 'floor, no CRC', 'log'] as const;
type Variant = (typeof variants)[number];
const raw: number[] = [];
const runs = new Map<string, number[]>();
const key = (shape: string, inFlight: number, variant: Variant): string => `${shape}|${inFlight}|${variant}`;

const benchStart = process.hrtime.bigint();
for (let round = 0; round < rounds; round++) {
  raw.push(await measureRaw());
  for (const shape of shapes) {
    for (const inFlight of inFlights) {
      for (const variant of variants) {
        const figure =
          variant === 'log' ? await measureLog(shape.batch, shape.batches, inFlight) : await measureFloor(shape.batch, shape.batches, inFlight, variant === 'floor');
        const list = runs.get(key(shape.name, inFlight, variant)) ?? [];
        list.push(figure);
        runs.set(key(shape.name, inFlight, variant), list);
      }
    }
  }
  process.stderr.write(`round ${round + 1}/${rounds} done\n`);
}

const rawMedian = median(raw);
console.log(`\nraw baseline (fs.write 1 MiB, sequential): median ${fmt(rawMedian)} MB/s, runs ${runsText(raw)}\n`);
console.log('shape (record × batch)  in flight  variant          MB/s    vs raw  runs MB/s');
for (const shape of shapes) {
  for (const inFlight of inFlights) {
    for (const variant of variants) {
      const list = runs.get(key(shape.name, inFlight, variant)) ?? [];
      const value = median(list);
      console.log(`${shape.name.padEnd(22)}  ${String(inFlight).padStart(9)}  ${variant.padEnd(15)} ${fmt(value).padStart(6)}  ${pct(value / rawMedian).padStart(6)}  ${runsText(list)}`);
    }
  }
}
console.log('\nfloor = validateBatchOrThrow per append + one writev at a time (groups ½ of queued, 128 KiB–1 MiB); no CRC = the same without the check; log = PartitionLog.append, flush=never.');
console.log(loadLine());
console.log(`bench wall time: ${fmt(seconds(benchStart), 1)} s`);
removeDir(dataDir);
