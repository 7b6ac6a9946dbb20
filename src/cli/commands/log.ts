/**
 * `runnel log …`: offline tools over one partition directory (`<data-dir>/<topic>-<n>`). They
 * read and write the files directly: stop the broker (or use a copy) before running them on
 * a live data directory. `append` and `repair` refuse while a live broker holds the data
 * directory (its broker.lock); `dump` and `verify` only read.
 */
import { readdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command } from 'commander';
import { ensureDataDirNotInUse } from '../../broker/index.js';
import { CliError } from '../cli-error.js';
import { isBrokerError } from '../../errors/index.js';
import { parseCount } from '../option-parsers.js';
import { readLines } from '../line-reader.js';
import { consumerRecordToJson } from '../record-json.js';
import { writeWithBackpressure } from '../output.js';
import { systemClock } from '../../common/clock.js';
import { defaults } from '../../config/defaults.js';
import { createRootLogger } from '../../observability/index.js';
import { encodeBatch, RecordCursor, type LogRecord } from '../../protocol/index.js';
import {
  FileHandleCache,
  IndexCache,
  PartitionLog,
  forEachStoredBatch,
  isPartitionDirectoryListing,
  nodeFileSystem,
  parseFlushPolicy,
  repairPartitionDirectory,
  segmentFileName,
  tryParsePartitionDirName,
  verifyPartitionDirectory,
} from '../../storage/index.js';

type SetExitCode = (code: number) => void;

/**
 * Runs a check of the command's own input or situation (a flag's value, a broker holding the
 * data directory): its INVALID_REQUEST is the user's to fix, said in one plain line like any
 * other usage error, without the broker-style `[INVALID_REQUEST]` tag.
 */
function asUsageError<T>(check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (isBrokerError(error) && error.reason === 'INVALID_REQUEST') throw new CliError(error.message, { cause: error });
    throw error;
  }
}

/**
 * Throws a CliError unless `dir` looks like a partition directory (a segment file or a
 * partition.state in it, or nothing at all under a `<topic>-<partition>` name: a partition
 * created and never used, whose log its first open makes): a data directory, a topic name or
 * a typo would otherwise read as an empty, "healthy" partition.
 */
function ensurePartitionDirectory(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw new CliError(`cannot read ${dir}: ${(error as Error).message}; pass a partition directory, e.g. ./data/app-logs-0`);
  }
  if (isPartitionDirectoryListing(names)) return;
  if (names.length === 0 && tryParsePartitionDirName(basename(resolve(dir))) !== undefined) return;
  const partitions = names.filter((name) => tryParsePartitionDirName(name) !== undefined).sort();
  const hint = partitions.length > 0 ? ` (it holds ${partitions.slice(0, 3).join(', ')}${partitions.length > 3 ? ', …' : ''}): pass one of those, e.g. ${join(dir, partitions[0] as string)}` : ': pass <data-dir>/<topic>-<partition>, e.g. ./data/app-logs-0';
  throw new CliError(`${dir} is not a partition directory${hint}`);
}

/**
 * Throws a CliError unless `log append` may write to `dir`: missing (it is created), empty,
 * or a partition directory. Any other directory (a data directory, a folder of partitions, a
 * typo for another folder) would get segment files written among what it holds.
 */
function ensureAppendDirectory(dir: string): void {
  try {
    if (readdirSync(dir).length === 0) return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
  }
  ensurePartitionDirectory(dir);
}

function identityOf(dir: string): { topic: string; partition: number } {
  return tryParsePartitionDirName(basename(resolve(dir))) ?? { topic: basename(resolve(dir)), partition: 0 };
}

export function registerLogCommands(program: Command, setExitCode: SetExitCode): void {
  const log = program
    .command('log')
    .description('offline tools over one partition directory (stop the broker first)')
    .addHelpText('after', '\nA partition directory is <data-dir>/<topic>-<partition>, e.g. ./data/app-logs-0 (empty until the\nbroker first uses the partition).');

  log
    .command('append')
    .description('append stdin, one record per line, to a partition directory (created if missing; an existing one must be empty or a partition directory)')
    .argument('<dir>', 'partition directory, e.g. ./data/demo-0')
    .option('--key-separator <s>', 'split each line into key and value at the first <s>')
    .option('--batch-records <n>', 'records per batch', parseCount, 500)
    .option('--flush <policy>', 'always | never | interval:<ms>', 'always')
    .addHelpText('after', '\nExample: tail -n 1000 app.log | runnel log append ./data/app-logs-0')
    .action(async (dir: string, options: { keySeparator?: string; batchRecords: number; flush: string }) => {
      ensureAppendDirectory(dir);
      asUsageError(() => ensureDataDirNotInUse(dirname(resolve(dir)), 'append to one of its partitions'));
      const summary = await appendLines(dir, options);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    });

  log
    .command('dump')
    .description('print the batches (or records) stored in a partition directory')
    .argument('<dir>', 'partition directory')
    .option('--from <offset>', 'start at this offset (without --records: at the batch holding it)', parseCount, 0)
    .option('--max <n>', 'stop after this many batches (records with --records)', parseCount)
    .option('--records', 'print records as JSON lines {topic,partition,offset,timestamp,key,value,headers}, as consume --format json does')
    .option('--json', 'print batch headers as JSON lines')
    .action(async (dir: string, options: { from: number; max?: number; records?: boolean; json?: boolean }) => {
      ensurePartitionDirectory(dir);
      setExitCode(await dump(dir, options));
    });

  log
    .command('verify')
    .description('check every batch of every segment (length, magic, CRC-32C, dense offsets); exit 1 when damaged')
    .argument('<dir>', 'partition directory')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExample: runnel log verify ./data/app-logs-0 --json | jq .isHealthy\n\n' +
        'Reports what the broker takes a partition offline for (CORRUPT_DATA): a bad batch, a gap\n' +
        'between segments, a .log named for other offsets, records the clean-shutdown mark says\n' +
        'are missing, and the offline mark itself. It only reads, but on a running broker a batch\n' +
        'still being written at the end of the active segment can show as damage.\n\n' +
        'Exit codes:\n' +
        '  0  healthy\n' +
        '  1  damaged (the report says where, and what `runnel log repair` would do), or the\n' +
        '     directory could not be read (one line on stderr, nothing on stdout)\n',
    )
    .action(async (dir: string, options: { json?: boolean }) => {
      ensurePartitionDirectory(dir);
      const showProgress = process.stderr.isTTY === true && options.json !== true;
      const startedMs = performance.now();
      const report = await verifyPartitionDirectory(nodeFileSystem, dir, (checked, total) => {
        if (!showProgress) return;
        const seconds = (performance.now() - startedMs) / 1000;
        process.stderr.write(`\rchecked ${mebibytes(checked)} of ${mebibytes(total)} MiB (${(checked / 1048576 / Math.max(seconds, 0.001)).toFixed(0)} MiB/s)`);
      });
      if (showProgress) process.stderr.write('\n');
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        printVerifyReport(report);
      }
      setExitCode(report.isHealthy ? 0 : 1);
    });

  log
    .command('repair')
    .description('cut a damaged partition back to its last valid batch (loses every later record)')
    .argument('<dir>', 'partition directory')
    .option('--yes', 'really do it (without --yes, only print what would be lost)')
    .option('--json', 'print the plan as JSON')
    .addHelpText(
      'after',
      '\nKeeps every batch before the first damage, cuts the damaged segment there, deletes later\n' +
        'segments and clears the offline mark. Copy the directory first; with replicas, prefer\n' +
        'restoring the partition from another broker. An empty .log with segments after it (no\n' +
        'roll leaves one; it holds no records) is removed first and never decides the cut.\n\n' +
        'The offsets lost are handed out again: new records take offsets from the new log end,\n' +
        'so a consumer that had read past it reads different records at the same offsets (reset\n' +
        "its position). With --yes it refuses while a live broker holds the data directory's\n" +
        'broker.lock: stop that broker (all its partitions), or repair a copy.\n\n' +
        'Example:\n' +
        '  runnel log repair ./data/app-logs-0            # prints what would be lost\n' +
        '  cp -a ./data/app-logs-0 /backup/ && runnel log repair ./data/app-logs-0 --yes\n\n' +
        'Exit codes:\n' +
        '  0  plan printed (without --yes), or repair done or nothing to repair (with --yes)\n' +
        '  1  not a readable partition directory, or a broker holds it (one line on stderr)\n',
    )
    .action(async (dir: string, options: { yes?: boolean; json?: boolean }) => {
      ensurePartitionDirectory(dir);
      if (options.yes === true) asUsageError(() => ensureDataDirNotInUse(dirname(resolve(dir)), 'repair one of its partitions (or repair a copy)'));
      const plan = await repairPartitionDirectory(nodeFileSystem, dir, { apply: options.yes === true });
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify({ applied: options.yes === true, ...plan })}\n`);
        return;
      }
      const strays = plan.removedEmptySegmentBaseOffsets;
      if (strays.length > 0) {
        const names = strays.map((base) => segmentFileName(base, 'log')).join(', ');
        process.stdout.write(
          `${options.yes === true ? 'removed' : 'would remove'} ${strays.length} empty segment file(s) that segments follow, holding no records: ${names}` +
            `${options.yes === true ? '' : ' (run again with --yes)'}\n`,
        );
      }
      if (plan.cutSegmentBaseOffset === undefined && (plan.offline !== undefined || plan.missing !== undefined)) {
        // The files read clean, but a mark says what was found missing or damaged: clearing
        // it accepts the log as it is, and new records take the offsets from its end on.
        const found = plan.offline ?? (plan.missing as NonNullable<typeof plan.missing>);
        const mark = `${found.detail} (segment ${found.segmentBaseOffset}, position ${found.position})`;
        const markName = plan.offline !== undefined ? 'offline mark' : 'clean-shutdown mark';
        const finding = plan.offline !== undefined ? 'it is marked offline' : 'records are missing, and the broker keeps it offline';
        process.stdout.write(
          options.yes === true
            ? `no damage found in the files of ${dir}; ${markName} cleared (it said: ${mark}); log end offset ${plan.newLogEndOffset}, new records take offsets from there\n`
            : `no damage found in the files of ${dir}, but ${finding}: ${mark}\n` +
                `--yes clears the mark and serves the log as it is: log end offset ${plan.newLogEndOffset}, new records take offsets from there\n`,
        );
        return;
      }
      if (plan.cutSegmentBaseOffset === undefined) {
        process.stdout.write(`no damage found in ${dir}; log end offset ${plan.newLogEndOffset}\n`);
        return;
      }
      const verb = options.yes === true ? 'cut' : 'would cut';
      process.stdout.write(
        `${verb} segment ${plan.cutSegmentBaseOffset} at position ${String(plan.cutPosition)}, ` +
          `delete ${plan.deletedSegmentBaseOffsets.length} later segment(s), losing ${plan.lostBytes} bytes: ` +
          `every record from offset ${plan.newLogEndOffset} on; new log end offset ${plan.newLogEndOffset}\n`,
      );
      if (options.yes !== true) process.stdout.write('copy the directory, then run again with --yes to apply\n');
    });
}

async function appendLines(dir: string, options: { keySeparator?: string; batchRecords: number; flush: string }) {
  const flush = asUsageError(() => parseFlushPolicy(options.flush));
  // The storage engine's own lines (a torn tail cut, damage found), as the broker would log them.
  const logger = createRootLogger({ level: 'warn', destinationFd: 2 }).child({ component: 'storage' });
  const { topic, partition } = identityOf(dir);
  const partitionLog = await PartitionLog.open({
    dir,
    topic,
    partition,
    config: {
      segmentBytes: defaults.segmentBytes,
      segmentMs: defaults.segmentMs,
      retentionMs: -1,
      retentionBytes: -1,
      indexIntervalBytes: defaults.indexIntervalBytes,
      maxMessageBytes: defaults.maxMessageBytes,
      flush,
    },
    fileSystem: nodeFileSystem,
    handles: new FileHandleCache(nodeFileSystem, 64),
    indexCache: new IndexCache(16 * 1024 * 1024),
    clock: systemClock,
    logger,
  });
  let firstOffset: number | undefined;
  let lastOffset: number | undefined;
  let records = 0;
  let pending: LogRecord[] = [];
  let pendingBytes = 0;
  const separator = options.keySeparator === undefined ? undefined : Buffer.from(options.keySeparator, 'utf8');
  const appendPending = async (): Promise<void> => {
    if (pending.length === 0) return;
    const result = await partitionLog.append(encodeBatch({ records: pending }));
    firstOffset ??= result.baseOffset;
    lastOffset = result.lastOffset;
    records += pending.length;
    pending = [];
    pendingBytes = 0;
  };
  try {
    // Lines as raw bytes, as `runnel produce` reads them: input that is not UTF-8 is stored unchanged.
    for await (const lines of readLines(process.stdin)) {
      for (const line of lines) {
        const separatorAt = separator === undefined ? -1 : line.indexOf(separator);
        const key = separatorAt < 0 ? null : line.subarray(0, separatorAt);
        const value = separatorAt < 0 ? line : line.subarray(separatorAt + (separator?.length ?? 0));
        pending.push({ key, value, headers: [], timestamp: systemClock.nowMs() });
        pendingBytes += value.length + (key?.length ?? 0);
        if (pending.length >= options.batchRecords || pendingBytes >= 256 * 1024) await appendPending();
      }
    }
    await appendPending();
  } finally {
    await partitionLog.close();
  }
  return { dir, records, firstOffset: firstOffset ?? null, lastOffset: lastOffset ?? null, logEndOffset: partitionLog.logEndOffset };
}

/** Lines `runnel log dump` holds before it writes them out. */
const DUMP_LINES_MAX = 512;

async function dump(dir: string, options: { from: number; max?: number; records?: boolean; json?: boolean }): Promise<number> {
  const { topic, partition } = identityOf(dir);
  let printed = 0;
  const lines: string[] = [];
  // Waits while stdout holds what it cannot pass on (a slow reader: `| less`, a full pipe),
  // so the dump holds about one stretch of batches, not the whole partition. False once
  // stdout is gone (`| head` exited: EPIPE), which ends the dump quietly.
  const flushLines = async (): Promise<boolean> => {
    if (process.stdout.destroyed) return false;
    if (lines.length > 0) await writeWithBackpressure(process.stdout, `${lines.splice(0).join('\n')}\n`);
    return !process.stdout.destroyed;
  };
  const result = await forEachStoredBatch(nodeFileSystem, dir, {
    fromOffset: options.from,
    onBatch: async (header, bytes) => {
      if (options.records === true) {
        // A slice of records at a time, each printed before the next is decoded: one gzip batch
        // can hold millions of records (64 MiB inflated, `limits.decompressedRecordsBytesMax`),
        // and decoded whole, with its lines held until the batch ended, it took gigabytes.
        // As `consume --format json` prints them: headers that repeat a key or are not UTF-8 kept.
        const cursor = new RecordCursor(bytes, { fromOffset: options.from }, (offset, timestamp, key, value, headers) =>
          consumerRecordToJson({ topic, partition, offset, timestamp, key, value, headers }),
        );
        while (!cursor.isDone) {
          if (options.max !== undefined && printed >= options.max) return false;
          const slice = cursor.take(Math.min(DUMP_LINES_MAX, (options.max ?? Number.POSITIVE_INFINITY) - printed));
          for (const line of slice) lines.push(line);
          printed += slice.length;
          if (lines.length >= DUMP_LINES_MAX && !(await flushLines())) return false;
        }
      } else {
        if (options.max !== undefined && printed >= options.max) return false;
        const fields = {
          baseOffset: header.baseOffset,
          lastOffset: header.baseOffset + header.lastOffsetDelta,
          records: header.recordCount,
          bytes: header.sizeBytes,
          maxTimestamp: header.maxTimestamp,
          leaderEpoch: header.partitionLeaderEpoch,
          compression: header.attributes & 0x07,
          producerId: header.producerId,
          crc: header.crc.toString(16).padStart(8, '0'),
        };
        lines.push(
          options.json === true
            ? JSON.stringify(fields)
            : `offsets ${fields.baseOffset}..${fields.lastOffset}  records ${fields.records}  bytes ${fields.bytes}  maxTimestamp ${new Date(fields.maxTimestamp).toISOString()}  crc ${fields.crc}`,
        );
        printed++;
      }
      return lines.length < DUMP_LINES_MAX || (await flushLines());
    },
  });
  await flushLines();
  if (result.problem !== undefined) {
    process.stderr.write(
      `runnel: damaged batch in segment ${result.problem.segmentBaseOffset} at position ${result.problem.position} (${result.problem.detail}); run \`runnel log verify ${dir}\`\n`,
    );
    return 1;
  }
  return 0;
}

function mebibytes(bytes: number): string {
  return (bytes / 1048576).toFixed(1);
}

/** Offsets [start, end) as the other commands print them: first..last, both included. */
function offsetRange(startOffset: number, endOffset: number): string {
  return endOffset > startOffset ? `offsets ${startOffset}..${endOffset - 1}` : `no records (next offset ${endOffset})`;
}

function printVerifyReport(report: Awaited<ReturnType<typeof verifyPartitionDirectory>>): void {
  for (const segment of report.segments) {
    const status = segment.problem === undefined ? 'ok' : `DAMAGED at position ${segment.problem.position}: ${segment.problem.detail}`;
    process.stdout.write(`segment ${segment.baseOffset}  batches ${segment.batchCount}  bytes ${segment.sizeBytes}  ${status}\n`);
  }
  if (report.offline !== undefined) {
    process.stdout.write(`partition is marked offline: ${report.offline.detail} (segment ${report.offline.segmentBaseOffset}, position ${report.offline.position})\n`);
  }
  if (report.missing !== undefined) {
    const { fromOffset, toOffset, detail } = report.missing;
    process.stdout.write(`records missing: ${offsetRange(fromOffset, toOffset)} are gone from the files (${detail}); the broker keeps this partition offline\n`);
  }
  process.stdout.write(
    `${report.isHealthy ? 'healthy' : 'DAMAGED'}: ${offsetRange(report.logStartOffset, report.logEndOffset)}, ${report.segments.length} segment(s), ${report.sizeBytes} bytes\n`,
  );
  if (report.isHealthy) return;
  const isCut = report.segments.some((segment) => segment.problem !== undefined && segment.problem.kind !== 'stray-empty');
  const hasStrays = report.segments.some((segment) => segment.problem?.kind === 'stray-empty');
  process.stdout.write(
    isCut
      ? `to cut the log back to its last valid batch: runnel log repair ${report.dir}\n`
      : hasStrays
        ? `to remove the empty segment files (nothing is lost): runnel log repair ${report.dir}\n`
      : `to accept the log as it is (new records then take offsets from ${report.logEndOffset}): runnel log repair ${report.dir}\n`,
  );
}
