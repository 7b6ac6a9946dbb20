// Original file: proto/runnel/v1/log.proto

import type { Error as _runnel_v1_Error, Error__Output as _runnel_v1_Error__Output } from '../../runnel/v1/Error.js';
import type { Long } from '@grpc/proto-loader';

export interface PartitionResult {
  'partition'?: (number);
  /**
   * Offset of the first record appended; -1 on error or with ACKS_NONE.
   */
  'baseOffset'?: (number | string | Long);
  /**
   * -1 unless the topic stamps log-append time.
   */
  'logAppendTimeMs'?: (number | string | Long);
  'logStartOffset'?: (number | string | Long);
  /**
   * Set when this partition failed; the others may still have succeeded.
   */
  'error'?: (_runnel_v1_Error | null);
}

export interface PartitionResult__Output {
  'partition': (number);
  /**
   * Offset of the first record appended; -1 on error or with ACKS_NONE.
   */
  'baseOffset': (string);
  /**
   * -1 unless the topic stamps log-append time.
   */
  'logAppendTimeMs': (string);
  'logStartOffset': (string);
  /**
   * Set when this partition failed; the others may still have succeeded.
   */
  'error': (_runnel_v1_Error__Output | null);
}
