import { describe, expect, it } from 'vitest';
import { murmur2 } from '../protocol/index.js';
import { Partitioner } from './partitioner.js';

/**
 * Key → partition with 1000 partitions: kafka-python's test_murmur2_java_compatibility, checked
 * there against Kafka's Java partitioner (the same table protocol/murmur2.test.ts uses).
 */
const KAFKA_JAVA_PARTITIONS: [number[], number][] = [
  [[], 681],
  [[0x61], 524],
  [[0x61, 0x62], 434],
  [[0x61, 0x62, 0x63], 107],
  [[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39], 566],
  [[0x00, 0x20], 742],
];

describe('Partitioner', () => {
  it.each(KAFKA_JAVA_PARTITIONS)('puts key %j on partition %i of 1000, as Kafka’s Java client does', (key, expected) => {
    expect(new Partitioner(() => 0).partition('t', Buffer.from(key), undefined, 1000)).toBe(expected);
  });

  it('uses toPositive (not Math.abs) for negative hashes', () => {
    const key = Buffer.from('foobar'); // Kafka's UtilsTest: murmur2 = -790332482
    expect(murmur2(key)).toBe(-790332482);
    expect(new Partitioner(() => 0).partition('t', key, undefined, 7)).toBe((-790332482 & 0x7fffffff) % 7);
  });

  it('returns an explicit partition unchanged, even with a key', () => {
    expect(new Partitioner(() => 0).partition('t', Buffer.from('k'), 3, 4)).toBe(3);
  });

  it('rejects an explicit partition outside the topic with PARTITION_NOT_FOUND', () => {
    const partitioner = new Partitioner(() => 0);
    expect(() => partitioner.partition('t', null, 4, 4)).toThrow(expect.objectContaining({ reason: 'PARTITION_NOT_FOUND' }));
    expect(() => partitioner.partition('t', null, -1, 4)).toThrow(expect.objectContaining({ reason: 'PARTITION_NOT_FOUND' }));
    expect(() => partitioner.partition('t', null, 1.5, 4)).toThrow(expect.objectContaining({ reason: 'PARTITION_NOT_FOUND' }));
  });

  it('sticks to one partition for null keys until that partition’s batch closes', () => {
    const partitioner = new Partitioner(() => 0.5);
    const first = partitioner.partition('t', null, undefined, 4);
    for (let index = 0; index < 10; index++) expect(partitioner.partition('t', null, undefined, 4)).toBe(first);
    partitioner.onBatchClosed('t', (first + 1) % 4); // another partition's batch: no move
    expect(partitioner.partition('t', null, undefined, 4)).toBe(first);
    partitioner.onBatchClosed('t', first);
    const second = partitioner.partition('t', null, undefined, 4);
    expect(second).not.toBe(first);
  });

  it('keeps a separate sticky partition per topic', () => {
    const values = [0.1, 0.9];
    let index = 0;
    const partitioner = new Partitioner(() => values[index++ % values.length]!);
    expect(partitioner.partition('a', null, undefined, 10)).toBe(1);
    expect(partitioner.partition('b', null, undefined, 10)).toBe(9);
    expect(partitioner.partition('a', null, undefined, 10)).toBe(1);
  });

  it('stays on the only partition of a single-partition topic', () => {
    const partitioner = new Partitioner(() => 0.99);
    expect(partitioner.partition('t', null, undefined, 1)).toBe(0);
    partitioner.onBatchClosed('t', 0);
    expect(partitioner.partition('t', null, undefined, 1)).toBe(0);
  });

  it('spreads null-key batches over every partition over time', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const partitioner = new Partitioner(random);
    const seen = new Set<number>();
    for (let batch = 0; batch < 200; batch++) {
      const partition = partitioner.partition('t', null, undefined, 8);
      seen.add(partition);
      partitioner.onBatchClosed('t', partition);
    }
    expect(seen.size).toBe(8);
  });
});
