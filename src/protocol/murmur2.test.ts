import { describe, expect, it } from 'vitest';
import { isBrokerError } from '../errors/index.js';
import { murmur2, partitionForKey } from './murmur2.js';

/**
 * Kafka's own vectors: UtilsTest.testMurmur2 in apache/kafka,
 * clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java (Java `int` results of
 * `Utils.murmur2(key.getBytes())`; every key is ASCII, so the bytes do not depend on charset).
 */
const KAFKA_UTILS_TEST_MURMUR2: [string, number][] = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

/**
 * Key → partition with 1000 partitions, from kafka-python's test_murmur2_java_compatibility
 * (dpkp/kafka-python, test/test_partitioner.py), whose comment says they were compared with the
 * output of Kafka's Java partitioner. Kafka's own partitioner tests only check that a key is
 * stable, so these are the closest published key → partition vectors. Keys are raw bytes.
 */
const KAFKA_PYTHON_JAVA_PARTITIONS: [number[], number][] = [
  [[], 681],
  [[0x61], 524], // "a"
  [[0x61, 0x62], 434], // "ab"
  [[0x61, 0x62, 0x63], 107], // "abc"
  [[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39], 566], // "123456789"
  [[0x00, 0x20], 742], // "\x00 "
];

describe('murmur2', () => {
  it.each(KAFKA_UTILS_TEST_MURMUR2)('hashes %j to %d as Kafka Utils.murmur2 does', (key, expected) => {
    expect(murmur2(Buffer.from(key, 'ascii'))).toBe(expected);
  });

  it('is checked on every tail length (0 to 3 leftover bytes) by the two vector tables together', () => {
    // Kafka's table has no key with one leftover byte; "a" and "123456789" below supply it.
    const keyLengths = [
      ...KAFKA_UTILS_TEST_MURMUR2.map(([key]) => key.length),
      ...KAFKA_PYTHON_JAVA_PARTITIONS.map(([key]) => key.length),
    ];
    expect(new Set(keyLengths.map((length) => length % 4))).toEqual(new Set([0, 1, 2, 3]));
  });

  it('returns a signed 32-bit integer, like a Java int', () => {
    for (const [key] of KAFKA_UTILS_TEST_MURMUR2) {
      const hash = murmur2(Buffer.from(key, 'ascii'));
      expect(hash | 0).toBe(hash);
    }
  });

  it('hashes the UTF-8 bytes it is given, not string code units', () => {
    const utf8 = Buffer.from('ключ', 'utf8');
    const codeUnitsLowByte = Buffer.from([...'ключ'].map((char) => char.charCodeAt(0) & 0xff));
    expect(murmur2(utf8)).not.toBe(murmur2(codeUnitsLowByte));
  });

  it('accepts a plain Uint8Array as well as a Buffer', () => {
    expect(murmur2(new Uint8Array([0x61, 0x62, 0x63]))).toBe(479470107);
  });
});

describe('partitionForKey', () => {
  it.each(KAFKA_PYTHON_JAVA_PARTITIONS)('puts key bytes %j on partition %d of 1000', (key, expected) => {
    expect(partitionForKey(Uint8Array.from(key), 1000)).toBe(expected);
  });

  it('masks the sign bit (Kafka toPositive) rather than taking Math.abs', () => {
    // murmur2("21") = -973932308; & 0x7fffffff = 1173551340, while Math.abs gives 973932308.
    const key = Buffer.from('21', 'ascii');
    expect(partitionForKey(key, 0x7fffffff)).toBe(1173551340);
    expect(partitionForKey(key, 7)).toBe(1173551340 % 7);
  });

  it('always picks partition 0 of 1', () => {
    for (const [key] of KAFKA_UTILS_TEST_MURMUR2) expect(partitionForKey(Buffer.from(key), 1)).toBe(0);
  });

  it('rejects a partition count that is not a positive integer', () => {
    for (const partitionCount of [0, -1, 1.5, Number.NaN]) {
      try {
        partitionForKey(Buffer.from('k'), partitionCount);
        throw new Error('expected INVALID_REQUEST');
      } catch (error) {
        expect(isBrokerError(error, 'INVALID_REQUEST')).toBe(true);
      }
    }
  });
});
