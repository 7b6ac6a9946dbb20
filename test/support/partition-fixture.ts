/**
 * Writes partition directories straight to disk in Runnel's on-disk format, much faster than
 * appending through a log (no fsync, no rolls): for tests and benches that need 10,000
 * partitions and 100,000 segments. Every segment holds one batch of one record; sealed
 * segments have their index files; partition.state says the log closed cleanly, and an
 * empty producer snapshot sits at the log end.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeBatch, setBatchBaseOffset } from '../../src/protocol/index.js';
import { PRODUCER_SNAPSHOT_FILE_NAME, encodeProducerSnapshot, partitionDirName, segmentFileName } from '../../src/storage/index.js';

export interface FixtureOptions {
  dataDir: string;
  topic: string;
  partitionCount: number;
  segmentsPerPartition: number;
  /** Timestamp of the batch in segment k is `baseTimestamp + k`. */
  baseTimestamp?: number;
}

export function writePartitionFixture(options: FixtureOptions): void {
  const baseTimestamp = options.baseTimestamp ?? 1_700_000_000_000;
  const batches: Buffer[] = [];
  for (let k = 0; k < options.segmentsPerPartition; k++) {
    const batch = encodeBatch({ records: [{ key: null, value: Buffer.from(`value-${k}`), headers: [], timestamp: baseTimestamp + k }] });
    setBatchBaseOffset(batch, k);
    batches.push(batch);
  }
  const offsetIndex = Buffer.alloc(8); // (relative offset 0, position 0)
  for (let p = 0; p < options.partitionCount; p++) {
    const dir = join(options.dataDir, partitionDirName(options.topic, p));
    mkdirSync(dir, { recursive: true });
    for (let k = 0; k < options.segmentsPerPartition; k++) {
      const batch = batches[k] as Buffer;
      const timeIndex = Buffer.alloc(12);
      timeIndex.writeBigInt64BE(BigInt(baseTimestamp + k), 0);
      writeFileSync(join(dir, segmentFileName(k, 'log')), batch);
      writeFileSync(join(dir, segmentFileName(k, 'index')), offsetIndex);
      writeFileSync(join(dir, segmentFileName(k, 'timeindex')), timeIndex);
    }
    const last = options.segmentsPerPartition - 1;
    const state = {
      version: 1,
      recoveryCheckpoint: last,
      clean: { logEndOffset: options.segmentsPerPartition, activeBaseOffset: last, activeSizeBytes: (batches[last] as Buffer).length },
    };
    writeFileSync(join(dir, 'partition.state'), `${JSON.stringify(state)}\n`);
    writeFileSync(join(dir, PRODUCER_SNAPSHOT_FILE_NAME), encodeProducerSnapshot({ offset: options.segmentsPerPartition, producers: [] }));
  }
}
