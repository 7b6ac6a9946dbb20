/**
 * Which partition a record goes to, as Kafka's Java producer decides it:
 *
 * 1. an explicit partition is used as given (checked against the partition count);
 * 2. a non-null key goes to `toPositive(murmur2(key)) % partitionCount` (protocol's
 *    `partitionForKey`), so a key lands on the same partition number as from a Kafka client;
 * 3. a null key is *sticky*: every null-key record of a topic goes to one partition until the
 *    batch there is closed (full or lingered out), then a different random partition is
 *    picked (KIP-480). Batches fill up instead of many small ones going out half empty.
 *
 * Owns: the sticky choice per topic. The producer tells it when a batch closes
 * (`onBatchClosed`); nothing else writes it.
 */
import { BrokerError } from '../errors/index.js';
import { partitionForKey } from '../protocol/index.js';
import type { RandomSource } from './retry.js';

export class Partitioner {
  private readonly random: RandomSource;
  /** Topic → its current sticky partition; deleted when that partition's batch closes. */
  private readonly sticky = new Map<string, number>();
  /** Topic → the sticky partition just left, so the next pick differs from it. */
  private readonly previous = new Map<string, number>();

  constructor(random: RandomSource) {
    this.random = random;
  }

  /**
   * The partition for one record. Throws PARTITION_NOT_FOUND when an explicit partition is
   * outside `[0, partitionCount)`; the caller may refresh metadata and ask again.
   */
  partition(topic: string, key: Buffer | null, explicit: number | undefined, partitionCount: number): number {
    if (explicit !== undefined) {
      if (!Number.isInteger(explicit) || explicit < 0 || explicit >= partitionCount) {
        throw new BrokerError('PARTITION_NOT_FOUND', `topic ${topic} has ${partitionCount} partitions; there is no partition ${explicit}`, {
          topic,
          partition: explicit,
        });
      }
      return explicit;
    }
    if (key !== null) return partitionForKey(key, partitionCount);
    return this.stickyPartition(topic, partitionCount);
  }

  /** A batch of `topic`/`partition` closed; null-key records move on if it was the sticky one. */
  onBatchClosed(topic: string, partition: number): void {
    if (this.sticky.get(topic) === partition) {
      this.sticky.delete(topic);
      this.previous.set(topic, partition);
    }
  }

  private stickyPartition(topic: string, partitionCount: number): number {
    const current = this.sticky.get(topic);
    if (current !== undefined && current < partitionCount) return current;
    let chosen = Math.floor(this.random() * partitionCount) % partitionCount;
    const left = this.previous.get(topic);
    if (partitionCount > 1 && chosen === left) {
      // Any other partition, uniformly: shift by 1 … count−1.
      chosen = (chosen + 1 + (Math.floor(this.random() * (partitionCount - 1)) % (partitionCount - 1))) % partitionCount;
    }
    this.sticky.set(topic, chosen);
    return chosen;
  }
}
