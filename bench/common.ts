/**
 * Shared pieces of the storage benches (STYLE H14): the machine header every bench prints,
 * median and formatting helpers, cold-cache control, the raw-file baselines each figure is
 * compared against, and opening a partition log with broker defaults.
 *
 * Data lives under `<repo>/.bench-data` (gitignored), on the same disk as the repository, so
 * the raw baselines and the log runs share a file system. Not /tmp: it may be tmpfs.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../src/common/clock.js';
import { MiB } from '../src/common/units.js';
import { defaults } from '../src/config/defaults.js';
import { silentLogger, type Logger } from '../src/observability/index.js';
import { encodeBatch, type LogRecord } from '../src/protocol/index.js';
import { FileHandleCache, IndexCache, nodeFileSystem, PartitionLog, type FileSystem, type PartitionLogConfig } from '../src/storage/index.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const benchDataRoot = join(repoRoot, '.bench-data');

// ---- Machine header ------------------------------------------------------------------------

function readTrimmed(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** The device and file system holding `dir`, from /proc/self/mounts (longest matching mount point). */
function mountOf(dir: string): string {
  let best = { point: '', text: '?' };
  for (const line of readTrimmed('/proc/self/mounts').split('\n')) {
    const [device, point, type] = line.split(' ');
    if (device === undefined || point === undefined || type === undefined) continue;
    const isUnder = dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`);
    if (isUnder && point.length > best.point.length) best = { point, text: `${device} on ${point} (${type})` };
  }
  return best.text;
}

export function machineLines(dataDir: string): string[] {
  const cpus = os.cpus();
  return [
    `machine:  ${cpus[0]?.model ?? '?'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, kernel ${os.release()} (${os.platform()}/${os.arch()})`,
    `node:     ${process.version}`,
    `disk:     ${mountOf(dataDir)}; data dir ${dataDir}`,
    `vm:       dirty_ratio=${readTrimmed('/proc/sys/vm/dirty_ratio')} dirty_background_ratio=${readTrimmed('/proc/sys/vm/dirty_background_ratio')}`,
    loadLine(),
  ];
}

/** Other work on the machine skews every figure: print the load next to them. */
export function loadLine(): string {
  return `load:     ${os.loadavg().map((value) => value.toFixed(2)).join(' ')} (1/5/15 min averages)`;
}

export function printHeader(title: string, question: string, dataDir: string, config: Record<string, unknown>): void {
  console.log(`\n=== ${title} ===`);
  console.log(question);
  console.log(`date:     ${new Date().toISOString()}`);
  for (const line of machineLines(dataDir)) console.log(line);
  console.log(`config:   ${JSON.stringify(config)}`);
}

// ---- Numbers -------------------------------------------------------------------------------

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** MB/s in decimal megabytes (10^6 B/s), as disks and `dd` report. */
export function mbPerSecond(bytes: number, seconds: number): number {
  return bytes / 1e6 / seconds;
}

export function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function pct(ratio: number): string {
  return `${(ratio * 100).toFixed(0)} %`;
}

export function runsText(values: readonly number[], digits = 0): string {
  return `[${values.map((value) => fmt(value, digits)).join(', ')}]`;
}

export function verdict(ratio: number, target: number): string {
  return ratio >= target ? `MET (target ≥ ${pct(target)})` : `MISSED (target ≥ ${pct(target)})`;
}

export function seconds(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e9;
}

// ---- Page cache ----------------------------------------------------------------------------

export function syncAll(): void {
  execFileSync('sync');
}

let warnedNoDrop = false;

/** sync + drop the page cache (root only). Returns false, once warning, when it cannot. */
export function dropCaches(): boolean {
  syncAll();
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch (error) {
    if (!warnedNoDrop) console.log(`WARNING: cannot drop caches (${String(error)}): "cold" figures are NOT cold`);
    warnedNoDrop = true;
    return false;
  }
}

// ---- Data directories ----------------------------------------------------------------------

export function freshDataDir(name: string): string {
  const dir = join(benchDataRoot, `${name}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Before a timed write run (not timed): the previous run's files and directories gone, the
 * disk idle (`sync`), and with `warm` a scratch file of `warm.bytes` written and removed.
 * On a VM whose balloon reports free pages to the host, the first touch of returned memory
 * costs a host page fault and buffered writes swing between ~0.5 and ~5 GB/s with it
 * (FINDINGS "Files"); writing into just-freed memory measures the software instead.
 */
export async function prepareWriteRun(options: { files: readonly string[]; dirs: readonly string[]; warm?: { path: string; bytes: number } }): Promise<void> {
  for (const path of options.files) fs.rmSync(path, { force: true });
  for (const dir of options.dirs) removeDir(dir);
  syncAll();
  if (options.warm !== undefined) {
    await rawSequentialWrite(options.warm.path, options.warm.bytes);
    fs.rmSync(options.warm.path, { force: true });
  }
}

export function dirSizeBytes(dir: string, suffix = ''): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) if (name.endsWith(suffix)) total += fs.statSync(join(dir, name)).size;
  return total;
}

// ---- Raw baselines -------------------------------------------------------------------------

function writeAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolvePromise, reject) => fs.write(fd, buffer, 0, buffer.length, position, (error, written) => (error ? reject(error) : resolvePromise(written))));
}

function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolvePromise, reject) => fs.read(fd, buffer, 0, buffer.length, position, (error, read) => (error ? reject(error) : resolvePromise(read))));
}

function fdatasyncOf(fd: number): Promise<void> {
  return new Promise((resolvePromise, reject) => fs.fdatasync(fd, (error) => (error ? reject(error) : resolvePromise())));
}

/**
 * The append baseline: one `fs.write` of `chunkBytes` at a time at increasing positions, no
 * fsync (as flush=never) unless `syncEveryBytes` > 0 (then fdatasync after each such group and
 * at the end). Returns the seconds spent writing (open and close excluded).
 */
export async function rawSequentialWrite(path: string, totalBytes: number, chunkBytes = MiB, syncEveryBytes = 0): Promise<number> {
  const chunk = Buffer.alloc(chunkBytes, 0x61);
  const fd = fs.openSync(path, 'w');
  try {
    const start = process.hrtime.bigint();
    let unsynced = 0;
    for (let position = 0; position < totalBytes; ) {
      const length = Math.min(chunkBytes, totalBytes - position);
      const written = await writeAt(fd, length === chunkBytes ? chunk : chunk.subarray(0, length), position);
      position += written;
      unsynced += written;
      if (syncEveryBytes > 0 && (unsynced >= syncEveryBytes || position >= totalBytes)) {
        await fdatasyncOf(fd);
        unsynced = 0;
      }
    }
    return seconds(start);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The disk's own ceiling for flush=always when `2 × groupBytes` are in flight: write a group
 * (1 MiB writes), start its fdatasync, write the next group while it runs, wait for it before
 * starting the next one. This is the log's pipelined group commit without the log (no CRC,
 * offsets or promises): with 64 appenders of 16 KiB (1 MiB in flight) its groups are ~512 KiB.
 * Returns the seconds from the first write to the last fdatasync's return.
 */
export async function rawPipelinedSyncWrite(path: string, totalBytes: number, groupBytes: number): Promise<number> {
  const chunk = Buffer.alloc(Math.min(MiB, groupBytes), 0x61);
  const fd = fs.openSync(path, 'w');
  try {
    const start = process.hrtime.bigint();
    let syncing: Promise<void> | undefined;
    for (let position = 0; position < totalBytes; ) {
      const groupEnd = Math.min(totalBytes, position + groupBytes);
      while (position < groupEnd) {
        const length = Math.min(chunk.length, groupEnd - position);
        position += await writeAt(fd, length === chunk.length ? chunk : chunk.subarray(0, length), position);
      }
      // At most one fdatasync in flight, as in the log: the next group's writes overlap it.
      await syncing;
      syncing = fdatasyncOf(fd);
    }
    await syncing;
    return seconds(start);
  } finally {
    fs.closeSync(fd);
  }
}

/** The read baseline: one `fs.read` of `chunkBytes` at a time, start to end. Returns seconds. */
export async function rawSequentialRead(path: string, chunkBytes = MiB): Promise<{ seconds: number; bytes: number }> {
  const fd = fs.openSync(path, 'r');
  try {
    const start = process.hrtime.bigint();
    let position = 0;
    for (;;) {
      // A fresh buffer per read, as the log allocates one per read window.
      const read = await readAt(fd, Buffer.allocUnsafe(chunkBytes), position);
      if (read === 0) break;
      position += read;
    }
    return { seconds: seconds(start), bytes: position };
  } finally {
    fs.closeSync(fd);
  }
}

// ---- Batches and logs ----------------------------------------------------------------------

export interface BenchBatch {
  batch: Buffer;
  recordCount: number;
}

/**
 * One record batch of `recordBytes`-byte values (null keys, no headers) as close to
 * `batchBytes` as fits without exceeding it.
 */
export function buildBatch(recordBytes: number, batchBytes: number): BenchBatch {
  const timestamp = Date.now();
  const value = Buffer.alloc(recordBytes, 0x62);
  const encode = (count: number): Buffer => {
    const records: LogRecord[] = [];
    for (let i = 0; i < count; i++) records.push({ key: null, value, headers: [], timestamp });
    return encodeBatch({ records });
  };
  const perRecord = encode(2).length - encode(1).length;
  let count = Math.max(1, Math.floor(batchBytes / perRecord));
  let batch = encode(count);
  while (batch.length > batchBytes && count > 1) {
    count -= Math.max(1, Math.ceil((batch.length - batchBytes) / perRecord));
    batch = encode(Math.max(1, count));
  }
  return { batch, recordCount: count };
}

export function benchLogConfig(overrides: Partial<PartitionLogConfig>): PartitionLogConfig {
  return {
    segmentBytes: defaults.segmentBytes,
    segmentMs: defaults.segmentMs,
    retentionMs: -1,
    retentionBytes: -1,
    indexIntervalBytes: defaults.indexIntervalBytes,
    maxMessageBytes: defaults.maxMessageBytes,
    flush: { kind: 'never' },
    ...overrides,
  };
}

/** Opens a partition log the way the broker does (broker-default handle and index pools). */
export function openBenchLog(options: { dir: string; config: PartitionLogConfig; fileSystem?: FileSystem; logger?: Logger }): Promise<PartitionLog> {
  const fileSystem = options.fileSystem ?? nodeFileSystem;
  return PartitionLog.open({
    dir: options.dir,
    topic: 'bench',
    partition: 0,
    config: options.config,
    fileSystem,
    handles: new FileHandleCache(fileSystem, defaults.openSegmentFilesMax),
    indexCache: new IndexCache(defaults.indexCacheBytesMax),
    clock: systemClock,
    logger: options.logger ?? silentLogger,
  });
}

/**
 * Appends `batchCount` copies of `template` with `concurrency` appends in flight. Each worker
 * owns one copy and re-appends it once the previous append resolved (append takes ownership
 * and rewrites the base offset in place, so a buffer is never queued twice). Returns seconds.
 */
export async function appendCopies(log: PartitionLog, template: Buffer, batchCount: number, concurrency: number): Promise<number> {
  const buffers = Array.from({ length: Math.min(concurrency, batchCount) }, () => Buffer.from(template));
  let issued = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    buffers.map(async (buffer) => {
      while (issued < batchCount) {
        issued++;
        await log.append(buffer);
      }
    }),
  );
  return seconds(start);
}

/** Reads the whole log from `fromOffset` to its end, `bytesMax` per read. */
export async function readToEnd(log: PartitionLog, bytesMax: number, fromOffset = 0): Promise<{ seconds: number; bytes: number; reads: number }> {
  let offset = fromOffset;
  let bytes = 0;
  let reads = 0;
  const start = process.hrtime.bigint();
  for (;;) {
    const result = await log.read({ offset, bytesMax });
    reads++;
    if (result.bytes.length === 0) break;
    bytes += result.bytes.length;
    offset = result.nextOffset;
    if (offset >= result.logEndOffset) break;
  }
  return { seconds: seconds(start), bytes, reads };
}

// ---- Instrumentation -----------------------------------------------------------------------

/** What a log did through its file system during a measurement. */
export interface IoCounts {
  writevCalls: number;
  writevBytes: number;
  /** Wall time inside writev calls, summed (the log has at most one in flight). */
  writevSeconds: number;
  datasyncCalls: number;
  datasyncSeconds: number;
  readCalls: number;
  readBytes: number;
  /** Wall time from issuing each read to its completion, summed (reads are one at a time here). */
  readSeconds: number;
  /** Whole-file reads (index and state files). */
  readFileBytes: number;
}

export function emptyIoCounts(): IoCounts {
  return { writevCalls: 0, writevBytes: 0, writevSeconds: 0, datasyncCalls: 0, datasyncSeconds: 0, readCalls: 0, readBytes: 0, readSeconds: 0, readFileBytes: 0 };
}

/**
 * `nodeFileSystem` with counters: one extra async frame per call, nothing else. The benches
 * use it for every log run (never for the raw baselines, which call node:fs directly).
 */
export function countingFileSystem(counts: IoCounts, inner: FileSystem = nodeFileSystem): FileSystem {
  return {
    ...inner,
    async open(path, mode) {
      const handle = await inner.open(path, mode);
      return {
        path: handle.path,
        async read(buffer, offset, length, position) {
          const start = process.hrtime.bigint();
          const read = await handle.read(buffer, offset, length, position);
          counts.readSeconds += seconds(start);
          counts.readCalls++;
          counts.readBytes += read;
          return read;
        },
        async writev(buffers, position) {
          const start = process.hrtime.bigint();
          const written = await handle.writev(buffers, position);
          counts.writevSeconds += seconds(start);
          counts.writevCalls++;
          counts.writevBytes += written;
          return written;
        },
        async datasync() {
          const start = process.hrtime.bigint();
          await handle.datasync();
          counts.datasyncCalls++;
          counts.datasyncSeconds += seconds(start);
        },
        truncate: (sizeBytes) => handle.truncate(sizeBytes),
        sizeBytes: () => handle.sizeBytes(),
        close: () => handle.close(),
      };
    },
    async tryReadFile(path) {
      const bytes = await inner.tryReadFile(path);
      counts.readFileBytes += bytes?.length ?? 0;
      return bytes;
    },
  };
}

export function resetIoCounts(counts: IoCounts): void {
  Object.assign(counts, emptyIoCounts());
}
