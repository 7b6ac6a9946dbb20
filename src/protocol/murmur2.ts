/**
 * Kafka's key partitioner: the Java client's `Utils.murmur2` (32-bit MurmurHash2, seed
 * 0x9747b28c) and `partitionForKey`, which picks `toPositive(murmur2(key)) % partitionCount` as
 * Kafka's DefaultPartitioner and BuiltInPartitioner do for a record with a non-null key. A
 * Runnel producer must put a key on the same partition a Kafka producer would, so the hash has
 * to be bit-identical to Kafka's, including its tail handling and `h = seed ^ length`.
 *
 * Hand-written rather than a dependency because it is about 20 lines and bit-identity is the
 * whole point. The JS murmur code most often copied into npm packages (Gary Court's
 * murmurhash-js) hashes a string read with `charCodeAt(i) & 0xff`, documented as "ASCII only",
 * so a non-ASCII key hashes differently from the UTF-8 bytes a Java producer hashes; it also
 * returns an unsigned value. This version takes bytes only and returns Java's signed `int`.
 * Java's 32-bit arithmetic maps to `Math.imul` for `*` and `>>>` for `>>>`; murmur2.test.ts
 * checks Kafka's own UtilsTest vectors.
 */
import { BrokerError } from '../errors/index.js';

const SEED = 0x9747b28c;
const M = 0x5bd1e995;
const R = 24;

/** Kafka's `Utils.murmur2(byte[])`: a signed 32-bit hash, exactly as the Java client returns it. */
export function murmur2(bytes: Uint8Array): number {
  const length = bytes.length;
  let h = SEED ^ length;
  const tailStart = length - (length & 3);
  for (let i = 0; i < tailStart; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> R;
    k = Math.imul(k, M);
    h = Math.imul(h, M);
    h ^= k;
  }
  // Java's switch falls through from case 3 to case 1; the ifs below do the same.
  const tailLength = length & 3;
  if (tailLength === 3) h ^= bytes[tailStart + 2]! << 16;
  if (tailLength >= 2) h ^= bytes[tailStart + 1]! << 8;
  if (tailLength >= 1) {
    h ^= bytes[tailStart]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition a Kafka producer picks for a non-null key: `(murmur2(key) & 0x7fffffff) %
 * partitionCount` (Kafka's `Utils.toPositive`, which is not `Math.abs`). Throws INVALID_REQUEST
 * when `partitionCount` is not a positive integer.
 */
export function partitionForKey(keyBytes: Uint8Array, partitionCount: number): number {
  if (!Number.isSafeInteger(partitionCount) || partitionCount < 1) {
    throw new BrokerError('INVALID_REQUEST', `partition count must be a positive integer, got ${partitionCount}`);
  }
  return (murmur2(keyBytes) & 0x7fffffff) % partitionCount;
}
