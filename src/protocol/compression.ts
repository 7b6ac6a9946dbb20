/**
 * Compression of a batch's records section (everything after the 61-byte header), as one
 * stream, selected by attribute bits 0–2. Runnel implements `none` and `gzip` (node:zlib, no
 * extra dependency). `snappy`, `lz4` and `zstd` are recognised by name and id so a batch using
 * them is reported as UNSUPPORTED_COMPRESSION, naming the codec, instead of as damage.
 *
 * Decompression is always bounded by the caller's `decompressedBytesMax`: a few KiB of gzip can
 * inflate to gigabytes, so zlib is told to stop at the limit (its `maxOutputLength`) rather than
 * the result being measured afterwards.
 *
 * The broker stores and serves a producer's batch bytes as they are (it never recompresses),
 * but it does run this code: it inflates a compressed batch to check its records before
 * appending (record-batch.ts `validateBatchRecordsOrThrow`), compresses the plain records a
 * client asks it to encode with gzip (server/validate.ts), and inflates batches to answer a
 * RECORD_FORMAT_RECORDS Fetch or Subscribe and a ListOffsets by timestamp (`visitRecords`).
 */
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzip, gzipSync } from 'node:zlib';
import { BrokerError } from '../errors/index.js';

/** Codec ids as they appear in attribute bits 0–2 (`attributes & COMPRESSION_MASK`). */
export const CompressionCodec = {
  none: 0,
  gzip: 1,
  snappy: 2,
  lz4: 3,
  zstd: 4,
} as const;

export type CompressionName = keyof typeof CompressionCodec;
export type CompressionCodecId = (typeof CompressionCodec)[CompressionName];

const NAMES_BY_ID: readonly CompressionName[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

/**
 * The codec named by attribute bits 0–2. Ids 5–7 are not assigned by Kafka, so a batch carrying
 * one is damaged: CORRUPT_MESSAGE.
 */
export function compressionNameOf(codecId: number): CompressionName {
  const name = NAMES_BY_ID[codecId];
  if (name === undefined) {
    throw new BrokerError('CORRUPT_MESSAGE', `unknown compression codec id ${codecId}`, { details: { codecId } });
  }
  return name;
}

/** Whether this build can compress and decompress with `codec`. */
export function isCompressionSupported(codec: CompressionName): boolean {
  return codec === 'none' || codec === 'gzip';
}

/** Throws UNSUPPORTED_COMPRESSION, naming the codec, unless this build supports `codec`. */
export function ensureCompressionSupportedOrThrow(codec: CompressionName): void {
  if (!isCompressionSupported(codec)) throw unsupportedCompression(codec);
}

export interface DecompressOptions {
  /** Largest decompressed records section accepted, in bytes. */
  decompressedBytesMax: number;
}

/** Compresses a records section. Throws UNSUPPORTED_COMPRESSION for snappy, lz4 and zstd. */
export function compressRecords(codec: CompressionName, bytes: Buffer): Buffer {
  switch (codec) {
    case 'none':
      return bytes;
    case 'gzip':
      return gzipSync(bytes);
    case 'snappy':
    case 'lz4':
    case 'zstd':
      throw unsupportedCompression(codec);
  }
}

/**
 * Decompresses a records section, producing at most `decompressedBytesMax` bytes. Throws
 * RECORD_TOO_LARGE beyond that, CORRUPT_MESSAGE when the stream is not valid for its codec,
 * UNSUPPORTED_COMPRESSION for snappy, lz4 and zstd.
 */
export function decompressRecords(codec: CompressionName, bytes: Buffer, options: DecompressOptions): Buffer {
  switch (codec) {
    case 'none':
      if (bytes.length > options.decompressedBytesMax) throw decompressedTooLarge(codec, options);
      return bytes;
    case 'gzip':
      try {
        return gunzipSync(bytes, { maxOutputLength: options.decompressedBytesMax });
      } catch (error) {
        throw decompressRecordsFailure(codec, error, options);
      }
    case 'snappy':
    case 'lz4':
    case 'zstd':
      throw unsupportedCompression(codec);
  }
}

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** `compressRecords` on the libuv thread pool, for large sections that should not block. */
export async function compressRecordsAsync(codec: CompressionName, bytes: Buffer): Promise<Buffer> {
  if (codec === 'gzip') return gzipAsync(bytes);
  return compressRecords(codec, bytes);
}

/** `decompressRecords` on the libuv thread pool; same limits and errors. */
export async function decompressRecordsAsync(
  codec: CompressionName,
  bytes: Buffer,
  options: DecompressOptions,
): Promise<Buffer> {
  if (codec !== 'gzip') return decompressRecords(codec, bytes, options);
  try {
    return await gunzipAsync(bytes, { maxOutputLength: options.decompressedBytesMax });
  } catch (error) {
    throw decompressRecordsFailure(codec, error, options);
  }
}

function unsupportedCompression(codec: CompressionName): BrokerError {
  return new BrokerError(
    'UNSUPPORTED_COMPRESSION',
    `compression codec ${codec} (id ${CompressionCodec[codec]}) is not supported; use none or gzip`,
    { details: { codec, codecId: CompressionCodec[codec] } },
  );
}

function decompressedTooLarge(codec: CompressionName, options: DecompressOptions): BrokerError {
  return new BrokerError(
    'RECORD_TOO_LARGE',
    `${codec} records section decompresses to more than ${options.decompressedBytesMax} bytes`,
    { details: { codec, decompressedBytesMax: options.decompressedBytesMax } },
  );
}

/** zlib reports hitting `maxOutputLength` as ERR_BUFFER_TOO_LARGE; anything else is bad input. */
function decompressRecordsFailure(codec: CompressionName, error: unknown, options: DecompressOptions): BrokerError {
  if ((error as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') {
    return decompressedTooLarge(codec, options);
  }
  return new BrokerError('CORRUPT_MESSAGE', `${codec} records section cannot be decompressed`, {
    details: { codec },
    cause: error,
  });
}
