// Original file: proto/runnel/v1/log.proto

import type { Records as _runnel_v1_Records, Records__Output as _runnel_v1_Records__Output } from '../../runnel/v1/Records.js';
import type { ProducerInfo as _runnel_v1_ProducerInfo, ProducerInfo__Output as _runnel_v1_ProducerInfo__Output } from '../../runnel/v1/ProducerInfo.js';

export interface PartitionData {
  'partition'?: (number);
  /**
   * Exactly one record batch, magic 2, any base offset (the broker assigns offsets and overwrites it; 0 by convention).
   */
  'recordBatch'?: (Buffer | Uint8Array | string);
  'records'?: (_runnel_v1_Records | null);
  /**
   * Only with `records`: makes the encoded batch idempotent.
   */
  'producer'?: (_runnel_v1_ProducerInfo | null);
  /**
   * Only with `records`: 0 none, 1 gzip.
   */
  'compression'?: (number);
  'data'?: "recordBatch"|"records";
}

export interface PartitionData__Output {
  'partition': (number);
  /**
   * Exactly one record batch, magic 2, any base offset (the broker assigns offsets and overwrites it; 0 by convention).
   */
  'recordBatch'?: (Buffer);
  'records'?: (_runnel_v1_Records__Output | null);
  /**
   * Only with `records`: makes the encoded batch idempotent.
   */
  'producer': (_runnel_v1_ProducerInfo__Output | null);
  /**
   * Only with `records`: 0 none, 1 gzip.
   */
  'compression': (number);
  'data'?: "recordBatch"|"records";
}
