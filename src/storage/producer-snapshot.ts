/**
 * `producer.snapshot`: the idempotent producers' state of one partition (producer-state.ts) as
 * of an offset, so start-up replays only the batches after it instead of the whole log.
 *
 * Byte layout (big-endian):
 *
 * | pos | size | field |
 * |----:|-----:|-------|
 * |   0 |    4 | magic "RPSN" |
 * |   4 |    2 | version = 2 |
 * |   6 |    4 | CRC-32C of bytes 10 … end |
 * |  10 |    8 | offset (int64): the state after every batch below this offset, and none at or after it |
 * |  18 |    4 | producerCount (uint32), then each producer, least recently appended first: |
 * |     |    8 | · producerId (int64, ≥ 0) |
 * |     |    2 | · epoch (int16) |
 * |     |    8 | · lastTimestamp (int64): when last seen (producer-state.ts), what expiry measures |
 * |     |    1 | · batchCount (1 … 5), then each batch, oldest first: |
 * |     |    4 | · · firstSequence (int32) |
 * |     |    4 | · · lastSequence (int32) |
 * |     |    8 | · · baseOffset (int64) |
 * |     |    4 | · · lastOffset − baseOffset (int32) |
 * |     |    8 | · · maxTimestamp (int64): the append time under LogAppendTime |
 *
 * About 160 bytes per producer: 1.6 MB at the 10,000-producer bound.
 *
 * Version 1 had no per-batch maxTimestamp, so a duplicate could not be answered with its
 * original append time. `tryDecodeProducerSnapshot` reads only version 2. A version-1 file is
 * read by `tryReadProducerSnapshot` with `isVersion1` set and each producer's newest batch
 * only, whose maxTimestamp is exact (version-1 brokers stored the newest batch's maxTimestamp
 * as the producer's lastTimestamp); the older ones are dropped rather than given a guessed
 * time. Start-up (recovery.ts) keeps from it only the
 * producers retention already took out of the log (otherwise a retry of their last batch
 * would be appended again) and rebuilds the others from the log, which has the timestamps.
 * The next roll, retention run or close writes version 2.
 *
 * When it is written (partition-log.ts), always after every batch below its offset is durable:
 * at each segment roll (offset = the new segment's base, before partition.state's recovery
 * checkpoint moves), at a clean close (offset = the log end, before the clean mark), and before
 * retention deletes segments the snapshot on disk does not yet cover.
 *
 * After a crash: the file is replaced atomically (writeFileAtomically), so it is the old one or
 * the new one, whole; both describe a prefix of the log that no crash can take back. A missing
 * file, a bad CRC or any field out of range reads as "no snapshot" and start-up rebuilds the
 * state from the first segment, which is correct but reads the whole log. A snapshot whose
 * offset lies outside the log (a repair cut the log below it, or retention went past it) is
 * ignored the same way (recovery.ts).
 */
import { join } from 'node:path';
import { crc32c, tryReadInt64, writeInt64 } from '../protocol/index.js';
import { PRODUCER_SNAPSHOT_FILE_NAME } from './file-names.js';
import { writeFileAtomically, type FileSystem } from './file-system.js';
import { PRODUCER_BATCHES_CACHED_MAX, type ProducerBatchMetadata, type ProducerEntry } from './producer-state.js';

export interface ProducerSnapshot {
  /** The state after every batch below this offset. */
  offset: number;
  /** Least recently appended first. */
  producers: readonly Readonly<ProducerEntry>[];
  /** Read from a version-1 file: each producer holds its newest batch only (see above). */
  isVersion1?: true;
}

const MAGIC = 0x5250_534e; // "RPSN"
const VERSION = 2;
const CRC_START = 10;
const HEADER_BYTES = 22;
const PRODUCER_BYTES = 19;
const BATCH_BYTES = 28;
const VERSION_1 = 1;
const VERSION_1_BATCH_BYTES = 20;

export function encodeProducerSnapshot(snapshot: ProducerSnapshot): Buffer {
  let sizeBytes = HEADER_BYTES;
  for (const entry of snapshot.producers) sizeBytes += PRODUCER_BYTES + entry.batches.length * BATCH_BYTES;
  const bytes = Buffer.alloc(sizeBytes);
  bytes.writeUInt32BE(MAGIC, 0);
  bytes.writeUInt16BE(VERSION, 4);
  writeInt64(bytes, snapshot.offset, 10);
  bytes.writeUInt32BE(snapshot.producers.length, 18);
  let position = HEADER_BYTES;
  for (const entry of snapshot.producers) {
    writeInt64(bytes, entry.producerId, position);
    bytes.writeInt16BE(entry.epoch, position + 8);
    writeInt64(bytes, entry.lastTimestamp, position + 10);
    bytes.writeUInt8(entry.batches.length, position + 18);
    position += PRODUCER_BYTES;
    for (const batch of entry.batches) {
      bytes.writeInt32BE(batch.firstSequence, position);
      bytes.writeInt32BE(batch.lastSequence, position + 4);
      writeInt64(bytes, batch.baseOffset, position + 8);
      bytes.writeInt32BE(batch.lastOffset - batch.baseOffset, position + 16);
      writeInt64(bytes, batch.maxTimestamp, position + 20);
      position += BATCH_BYTES;
    }
  }
  bytes.writeUInt32BE(crc32c(bytes.subarray(CRC_START)), 6);
  return bytes;
}

/** The snapshot in `bytes`, or `undefined` when anything about it is wrong (never throws). */
export function tryDecodeProducerSnapshot(bytes: Buffer): ProducerSnapshot | undefined {
  return tryDecode(bytes, VERSION);
}

/**
 * A version-1 snapshot in `bytes` with each producer's newest batch only, its maxTimestamp
 * the producer's lastTimestamp (exact: version 1 had no per-batch time), or `undefined`.
 */
export function tryDecodeVersion1ProducerSnapshot(bytes: Buffer): ProducerSnapshot | undefined {
  const decoded = tryDecode(bytes, VERSION_1);
  if (decoded === undefined) return undefined;
  const producers = decoded.producers.map((entry) => {
    const newest = entry.batches[entry.batches.length - 1] as ProducerBatchMetadata;
    return { ...entry, batches: [{ ...newest, maxTimestamp: entry.lastTimestamp }] };
  });
  return { offset: decoded.offset, producers, isVersion1: true };
}

function tryDecode(bytes: Buffer, version: number): ProducerSnapshot | undefined {
  const batchBytes = version === VERSION ? BATCH_BYTES : VERSION_1_BATCH_BYTES;
  if (bytes.length < HEADER_BYTES || bytes.readUInt32BE(0) !== MAGIC || bytes.readUInt16BE(4) !== version) return undefined;
  if (bytes.readUInt32BE(6) !== crc32c(bytes.subarray(CRC_START))) return undefined;
  const offset = tryReadInt64(bytes, 10);
  if (offset === undefined || offset < 0) return undefined;
  const producerCount = bytes.readUInt32BE(18);
  const producers: ProducerEntry[] = [];
  let position = HEADER_BYTES;
  for (let i = 0; i < producerCount; i++) {
    if (position + PRODUCER_BYTES > bytes.length) return undefined;
    const producerId = tryReadInt64(bytes, position);
    const epoch = bytes.readInt16BE(position + 8);
    const lastTimestamp = tryReadInt64(bytes, position + 10);
    const batchCount = bytes.readUInt8(position + 18);
    position += PRODUCER_BYTES;
    if (producerId === undefined || producerId < 0 || epoch < 0 || lastTimestamp === undefined) return undefined;
    if (batchCount < 1 || batchCount > PRODUCER_BATCHES_CACHED_MAX || position + batchCount * batchBytes > bytes.length) return undefined;
    const batches: ProducerBatchMetadata[] = [];
    for (let j = 0; j < batchCount; j++) {
      const firstSequence = bytes.readInt32BE(position);
      const lastSequence = bytes.readInt32BE(position + 4);
      const baseOffset = tryReadInt64(bytes, position + 8);
      const lastOffsetDelta = bytes.readInt32BE(position + 16);
      // Version 1 had none: a placeholder that tryDecodeVersion1ProducerSnapshot replaces.
      const maxTimestamp = version === VERSION ? tryReadInt64(bytes, position + 20) : 0;
      position += batchBytes;
      if (firstSequence < 0 || lastSequence < 0 || baseOffset === undefined || baseOffset < 0 || lastOffsetDelta < 0 || maxTimestamp === undefined) return undefined;
      if (baseOffset + lastOffsetDelta >= offset) return undefined; // a batch the snapshot claims not to include
      batches.push({ firstSequence, lastSequence, baseOffset, lastOffset: baseOffset + lastOffsetDelta, maxTimestamp });
    }
    producers.push({ producerId, epoch, batches, lastTimestamp });
  }
  if (position !== bytes.length) return undefined;
  return { offset, producers };
}

/** The partition's snapshot (version 2, or 1 with `isVersion1`), or `undefined` when it is missing or unreadable. I/O errors other than "missing" throw. */
export async function tryReadProducerSnapshot(fileSystem: FileSystem, dir: string): Promise<ProducerSnapshot | undefined> {
  const bytes = await fileSystem.tryReadFile(join(dir, PRODUCER_SNAPSHOT_FILE_NAME));
  return bytes === undefined ? undefined : (tryDecodeProducerSnapshot(bytes) ?? tryDecodeVersion1ProducerSnapshot(bytes));
}

/**
 * Replaces the partition's snapshot atomically. The caller guarantees every batch below
 * `snapshot.offset` is durable, so the file never describes bytes a power loss could take.
 */
export async function writeProducerSnapshot(fileSystem: FileSystem, dir: string, snapshot: ProducerSnapshot): Promise<void> {
  await writeFileAtomically(fileSystem, join(dir, PRODUCER_SNAPSHOT_FILE_NAME), encodeProducerSnapshot(snapshot));
}

/**
 * Removes the partition's snapshot for good (a missing one is fine). For a snapshot recovery
 * found past the log end: it describes batches that are gone, and once appends carry the log
 * end past its offset again it would look usable. Crash before the directory fsync: the file
 * may come back, still past the log end (nothing was appended meanwhile), and is removed again.
 */
export async function removeProducerSnapshot(fileSystem: FileSystem, dir: string): Promise<void> {
  await fileSystem.unlink(join(dir, PRODUCER_SNAPSHOT_FILE_NAME));
  await fileSystem.syncDirectory(dir);
}
