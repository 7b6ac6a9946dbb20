/**
 * What opening a partition directory does with files storage did not write there: editor
 * backups, Kafka's files, unknown names, a partition.state it cannot read. Method: a real log
 * in a temporary directory is written and closed, the files are added or changed by hand, and
 * the log is opened again through `PartitionLog.open`; the records must read back unchanged,
 * every foreign file must still be there, and anything the open cannot use is named, with the
 * path, in its log line or error.
 */
import { appendFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { isBrokerError } from '../errors/index.js';
import { limitRepeats, RepeatLimiter } from '../observability/index.js';
import { decodeBatches } from '../protocol/index.js';
import { recordingLogger } from '../../test/support/recording-logger.js';
import { segmentFileName } from './file-names.js';
import type { PartitionLog } from './partition-log.js';
import { makeBatch, makeTempDir, openTestLog, syncRecordingFileSystem } from './test-helpers.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A closed log of two segments (offsets 0..5) in a fresh directory. */
async function writtenLog(): Promise<string> {
  const temp = makeTempDir();
  cleanups.push(temp.remove);
  const log = await openTestLog({ dir: temp.dir, config: { segmentBytes: 400 } });
  for (let i = 0; i < 3; i++) await log.append(makeBatch({ count: 2, valueBytes: 100, tag: `b${i}` }));
  await log.close();
  return temp.dir;
}

async function reopen(dir: string, logger = recordingLogger()): Promise<PartitionLog> {
  const log = await openTestLog({ dir, config: { segmentBytes: 400 }, logger });
  cleanups.push(() => log.close());
  return log;
}

/** Every record's offset and value, read through the log. */
async function readAll(log: PartitionLog): Promise<string[]> {
  const out: string[] = [];
  for (let offset = log.logStartOffset; offset < log.logEndOffset; ) {
    const read = await log.read({ offset, bytesMax: 8192 });
    for (const record of decodeBatches(read.bytes)) if (record.offset >= offset) out.push(`${record.offset}:${record.value?.toString().slice(0, 5) ?? ''}`);
    offset = read.nextOffset;
  }
  return out;
}

const ALL_RECORDS = ['0:b0-0:', '1:b0-1:', '2:b1-0:', '3:b1-1:', '4:b2-0:', '5:b2-1:'];

describe('opening a partition directory with files storage did not write', () => {
  it('leaves editor backups, Kafka files, unknown files and *.tmp files not its own in place, and serves the log unchanged', async () => {
    const dir = await writtenLog();
    const first = segmentFileName(0, 'log');
    const foreign: Record<string, string> = {
      [`${first}~`]: 'editor backup',
      [`${first}.bak`]: 'backup',
      [`${first}.swap`]: 'kafka swap',
      '00000000000000000000.cleaned': 'kafka cleaned',
      '00000000000000000000.snapshot': 'kafka producer snapshot',
      'leader-epoch-checkpoint': '0\n0\n',
      '0.log': 'not 20 digits',
      '.DS_Store': '',
      'notes.tmp': 'an operator\'s scratch file',
      'copy.log.tmp': 'not a file storage replaces atomically',
    };
    for (const [name, body] of Object.entries(foreign)) writeFileSync(join(dir, name), body);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'partition.state.tmp'), 'torn');
    const log = await reopen(dir);
    expect(log.isOnline).toBe(true);
    expect([log.logStartOffset, log.logEndOffset]).toEqual([0, 6]);
    expect(await readAll(log)).toEqual(ALL_RECORDS);
    await log.close();
    for (const [name, body] of Object.entries(foreign)) expect(readFileSync(join(dir, name), 'utf8'), name).toBe(body);
    expect(readdirSync(dir)).toContain('sub');
    expect(readdirSync(dir)).not.toContain('partition.state.tmp'); // an interrupted replace of storage's own: removed
  });

  it.each([
    ['empty', ''],
    ['garbage', 'garbage{'],
    ['valid JSON of the wrong shape', '{"version":1,"recoveryCheckpoint":-4}'],
  ])('recovers by a full scan when partition.state is %s, naming the file in a warning', async (_what, body) => {
    const dir = await writtenLog();
    writeFileSync(join(dir, 'partition.state'), body);
    const logger = recordingLogger();
    const log = await reopen(dir, logger);
    expect(log.isOnline).toBe(true);
    expect(await readAll(log)).toEqual(ALL_RECORDS);
    expect(logger.calls.some((call) => call.level === 'warn' && call.fields.path === join(dir, 'partition.state'))).toBe(true);
  });

  it('refuses to open a partition whose partition.state a newer version wrote, naming the file and leaving it as it was', async () => {
    const dir = await writtenLog();
    const newer = '{"version":2,"recoveryCheckpoint":0,"logStartOffset":4}\n';
    writeFileSync(join(dir, 'partition.state'), newer);
    const failure = await openTestLog({ dir, config: { segmentBytes: 400 } }).then(
      async (log) => {
        await log.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(isBrokerError(failure, 'STORAGE_ERROR'), String(failure)).toBe(true);
    expect((failure as Error).message).toContain(join(dir, 'partition.state'));
    expect((failure as Error).message).toContain('newer Runnel');
    expect(readFileSync(join(dir, 'partition.state'), 'utf8')).toBe(newer);
  });
});

describe('the first open of a new partition', () => {
  it('costs one fsync (the new segment file\'s directory entry) and writes no partition.state; a crash before its first close loses nothing', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const syncs: string[] = [];
    const fileSystem = syncRecordingFileSystem(syncs);
    const log = await openTestLog({ dir: temp.dir, config: { flush: { kind: 'always' } }, fileSystem });
    // Before, partition.state was written too (a file fdatasync and a second directory fsync):
    // three fsyncs per partition, 30,000 before a first produce to a new topic of 10,000.
    expect(syncs).toEqual([`syncDirectory ${basename(temp.dir)}`]);
    expect(readdirSync(temp.dir)).not.toContain('partition.state');
    for (let i = 0; i < 3; i++) await log.append(makeBatch({ count: 2, tag: `b${i}` }));
    // A crash now (flush=always: every batch acknowledged durable): the directory is opened
    // again as it is, with no close; the open scans from the first segment.
    const logger = recordingLogger();
    const again = await openTestLog({ dir: temp.dir, logger });
    cleanups.push(() => again.close());
    expect(await readAll(again)).toEqual(ALL_RECORDS);
    expect(logger.calls).toContainEqual(expect.objectContaining({ message: 'recovered partition after unclean shutdown' }));
    // The scan wrote the state it found.
    expect(readdirSync(temp.dir)).toContain('partition.state');
    await log.close().catch(() => undefined); // the first handle's writer, never used again
  });

  it('still writes a partition.state that was there (its checkpoint keeps offsets from being handed out again)', async () => {
    const dir = await writtenLog();
    for (const name of readdirSync(dir)) if (name !== 'partition.state') rmSync(join(dir, name));
    writeFileSync(join(dir, 'partition.state'), 'not json\n');
    const logger = recordingLogger();
    const log = await reopen(dir, logger);
    expect(log.logEndOffset).toBe(0);
    // An unreadable file is replaced at this open, so the next one does not warn again.
    expect(JSON.parse(readFileSync(join(dir, 'partition.state'), 'utf8'))).toMatchObject({ recoveryCheckpoint: 0 });
  });
});

describe('opening a partition whose directory is not a directory', () => {
  it('fails with STORAGE_ERROR naming the path and saying to move the file away, and leaves the file', async () => {
    const temp = makeTempDir();
    cleanups.push(temp.remove);
    const path = join(temp.dir, 'orders-0');
    writeFileSync(path, 'an operator\'s file');
    const failure = await openTestLog({ dir: path }).then(
      async (log) => {
        await log.close();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(isBrokerError(failure, 'STORAGE_ERROR'), String(failure)).toBe(true);
    expect((failure as Error).message).toContain(path);
    expect((failure as Error).message).toMatch(/move that file out of the data directory/);
    expect(readFileSync(path, 'utf8')).toBe('an operator\'s file');
  });
});

describe('opening a partition whose producer.snapshot is garbage', () => {
  it('names the file in a warning, rebuilds the producer state from the log, and serves the log unchanged', async () => {
    const dir = await writtenLog();
    writeFileSync(join(dir, 'producer.snapshot'), Buffer.from('RPSN garbage, not a snapshot'));
    const logger = recordingLogger();
    const log = await reopen(dir, logger);
    expect(log.isOnline).toBe(true);
    expect(await readAll(log)).toEqual(ALL_RECORDS);
    expect(logger.calls.some((call) => call.level === 'warn' && call.fields.path === join(dir, 'producer.snapshot'))).toBe(true);
  });
});

describe('opening a partition with index files whose .log is gone', () => {
  it('removes them, naming them in a log line, and serves the log unchanged', async () => {
    const dir = await writtenLog();
    const { copyFileSync } = await import('node:fs');
    copyFileSync(join(dir, segmentFileName(0, 'index')), join(dir, segmentFileName(500, 'index')));
    copyFileSync(join(dir, segmentFileName(0, 'timeindex')), join(dir, segmentFileName(500, 'timeindex')));
    const logger = recordingLogger();
    const log = await reopen(dir, logger);
    expect(await readAll(log)).toEqual(ALL_RECORDS);
    expect(readdirSync(dir)).not.toContain(segmentFileName(500, 'index'));
    expect(readdirSync(dir)).not.toContain(segmentFileName(500, 'timeindex'));
    expect(logger.calls.some((call) => call.fields.indexPath === join(dir, segmentFileName(500, 'index')))).toBe(true);
  });
});

describe('opening a partition with an empty .log among its segments', () => {
  it('goes offline with a log line that names the partition directory to check and repair', async () => {
    const dir = await writtenLog();
    const bases = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
    expect(bases.length).toBeGreaterThan(1);
    writeFileSync(join(dir, segmentFileName(1, 'log')), ''); // between the first segment and the next
    writeFileSync(join(dir, 'partition.state'), '{"version":1,"recoveryCheckpoint":0}\n'); // unclean: scan everything
    const logger = recordingLogger();
    const log = await reopen(dir, logger);
    expect(log.isOnline).toBe(false);
    const offline = logger.calls.find((call) => call.level === 'error');
    expect(offline?.fields.dir).toBe(dir);
    expect(offline?.message).toMatch(/runnel log verify/);
  });
});

describe('the lines of an open that changed the disk or took the partition offline', () => {
  // The log manager shares one repeat-limited logger among its logs (log-manager.ts); with
  // more partitions opened in a minute than it has keys (a start after a crash, thousands of
  // partitions), new keys share one overflow key. These lines must each be logged anyway.
  const crowdedRepeatLogger = (sink: ReturnType<typeof recordingLogger>) =>
    limitRepeats(sink, new RepeatLimiter({ clock: new ManualClock(), keysMax: 1 }), ['topic', 'partition', 'path', 'segmentBaseOffset']);

  it('logs every torn tail it cut and every orphan index it removed, however many partitions share the repeat logger', async () => {
    const sink = recordingLogger();
    const repeatLogger = crowdedRepeatLogger(sink);
    const dirs: string[] = [];
    for (let partition = 0; partition < 3; partition++) {
      const dir = await writtenLog();
      const active = readdirSync(dir).filter((name) => name.endsWith('.log')).sort().at(-1) as string;
      appendFileSync(join(dir, active), Buffer.alloc(30, 7)); // a torn tail: part of a batch header
      writeFileSync(join(dir, 'partition.state'), '{"version":1,"recoveryCheckpoint":0}\n'); // unclean
      writeFileSync(join(dir, segmentFileName(500, 'index')), '');
      const log = await openTestLog({ dir, config: { segmentBytes: 400 }, logger: sink.child({ partition }), repeatLogger: repeatLogger.child({ topic: 'test', partition }) });
      cleanups.push(() => log.close());
      expect(await readAll(log)).toEqual(ALL_RECORDS);
      dirs.push(dir);
    }
    expect(sink.calls.filter((call) => call.message === 'truncated torn tail after unclean shutdown').map((call) => call.fields.truncatedBytes)).toEqual([30, 30, 30]);
    // The segment under the field name every other line uses (README, Logs).
    const tornTail = sink.calls.find((call) => call.message === 'truncated torn tail after unclean shutdown');
    expect(typeof tornTail?.fields.segmentBaseOffset).toBe('number');
    expect(sink.calls.filter((call) => String(call.message).startsWith('removing index files whose .log is gone')).map((call) => call.fields.indexPath)).toEqual(dirs.map((dir) => join(dir, segmentFileName(500, 'index'))));
  });

  it('logs every partition found offline at open, however many partitions share the repeat logger', async () => {
    const sink = recordingLogger();
    const repeatLogger = crowdedRepeatLogger(sink);
    const dirs: string[] = [];
    for (let partition = 0; partition < 3; partition++) {
      const dir = await writtenLog();
      writeFileSync(join(dir, segmentFileName(1, 'log')), ''); // a gap: damage, not a torn tail
      writeFileSync(join(dir, 'partition.state'), '{"version":1,"recoveryCheckpoint":0}\n');
      const log = await openTestLog({ dir, config: { segmentBytes: 400 }, logger: sink.child({ partition }), repeatLogger: repeatLogger.child({ topic: 'test', partition }) });
      cleanups.push(() => log.close());
      expect(log.isOnline).toBe(false);
      dirs.push(dir);
    }
    expect(sink.calls.filter((call) => String(call.message).startsWith('partition is offline')).map((call) => call.fields.dir)).toEqual(dirs);
  });
});
