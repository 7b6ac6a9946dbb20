/**
 * A child process that appends to a partition log until it is killed: the victim of the crash
 * tests (test/fault/crash-recovery.test.ts).
 *
 *   node --import tsx test/support/append-child.ts <dir> <flush> <round> [appendCountMax]
 *
 * It opens the log in <dir> with the real file system and clock and the settings in
 * `childLogConfig` (small segments, so rounds cross segment rolls), then keeps
 * `APPENDERS_IN_FLIGHT` appends going at once, so kills land in group commits, rolls and
 * recovery writes alike. Batch contents are a pure function of (round, sequence number)
 * (`childBatch`). It prints, one line each, on stdout:
 *
 *   ready <logEndOffset>                         after the log opened (recovery done)
 *   ack <baseOffset> <lastOffset> <sha256>       after an append resolved: the acknowledgement;
 *                                                sha256 of the batch bytes as stored (offsets set)
 *   done                                         after appendCountMax appends and a clean close
 *
 * stdout is a pipe, and node writes to pipes synchronously on Linux, so a line printed before
 * SIGKILL reaches the parent. Any failure goes to stderr and exits with status 1.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { systemClock } from '../../src/common/clock.js';
import { KiB } from '../../src/common/units.js';
import type { Logger } from '../../src/observability/index.js';
import { FileHandleCache, IndexCache, nodeFileSystem, parseFlushPolicy, PartitionLog, type FlushPolicy, type PartitionLogConfig } from '../../src/storage/index.js';
import { makeBatch } from '../../src/storage/test-helpers.js';

export const APPENDERS_IN_FLIGHT = 8;

/** The log settings of the child; the parent reopens the log with the same ones. */
export function childLogConfig(flush: FlushPolicy): PartitionLogConfig {
  return {
    segmentBytes: 256 * KiB,
    segmentMs: 7 * 24 * 3_600_000,
    retentionMs: -1,
    retentionBytes: -1,
    indexIntervalBytes: 4 * KiB,
    maxMessageBytes: 1024 * KiB,
    flush,
  };
}

/** The batch the child appends as number `sequence` of `round`: 1–4 records of 64–1,600 bytes. */
export function childBatch(round: number, sequence: number): Buffer {
  const mix = (Math.imul(round + 1, 0x9e3779b1) ^ Math.imul(sequence + 1, 0x85ebca6b)) >>> 0;
  return makeBatch({
    count: 1 + (mix % 4),
    valueBytes: 64 + ((mix >>> 8) % 1537),
    tag: `round${round}-seq${sequence}`,
    timestamp: 1_700_000_000_000 + round * 1_000_000 + sequence,
  });
}

export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Storage's warnings and errors go to stderr, where the parent shows them on failure. */
const stderrLogger: Logger = {
  error: (fields, message) => process.stderr.write(`error ${message} ${JSON.stringify(fields)}\n`),
  warn: (fields, message) => process.stderr.write(`warn ${message} ${JSON.stringify(fields)}\n`),
  info: () => undefined,
  debug: () => undefined,
  child: () => stderrLogger,
};

async function main(args: string[]): Promise<void> {
  const [dir, flushText, roundText, countText] = args;
  if (dir === undefined || flushText === undefined || roundText === undefined) {
    throw new Error('usage: append-child.ts <dir> <flush> <round> [appendCountMax]');
  }
  const round = Number(roundText);
  const appendCountMax = countText === undefined ? Infinity : Number(countText);
  const log = await PartitionLog.open({
    dir,
    topic: 'crash',
    partition: 0,
    config: childLogConfig(parseFlushPolicy(flushText)),
    fileSystem: nodeFileSystem,
    handles: new FileHandleCache(nodeFileSystem, 64),
    indexCache: new IndexCache(4 * 1024 * KiB),
    clock: systemClock,
    logger: stderrLogger,
  });
  process.stdout.write(`ready ${log.logEndOffset}\n`);

  let nextSequence = 0;
  const appendLoop = async (): Promise<void> => {
    while (nextSequence < appendCountMax) {
      const batch = childBatch(round, nextSequence++);
      const { baseOffset, lastOffset } = await log.append(batch);
      // Acknowledged: durable under flush=always, in the page cache otherwise. The batch
      // buffer now holds its assigned base offset, exactly as stored.
      process.stdout.write(`ack ${baseOffset} ${lastOffset} ${sha256Hex(batch)}\n`);
    }
  };
  await Promise.all(Array.from({ length: APPENDERS_IN_FLIGHT }, appendLoop));
  await log.close();
  process.stdout.write('done\n');
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`append-child failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
