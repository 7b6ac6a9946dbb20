// Original file: proto/runnel/v1/log.proto

import type { Error as _runnel_v1_Error, Error__Output as _runnel_v1_Error__Output } from '../../runnel/v1/Error.js';
import type { Long } from '@grpc/proto-loader';

export interface PartitionOffset {
  'partition'?: (number);
  /**
   * For TIMESTAMP with no record that late: the log end offset (so a consumer starting
   * there sees only new records), and `timestamp_ms` -1.
   */
  'offset'?: (number | string | Long);
  'timestampMs'?: (number | string | Long);
  'error'?: (_runnel_v1_Error | null);
}

export interface PartitionOffset__Output {
  'partition': (number);
  /**
   * For TIMESTAMP with no record that late: the log end offset (so a consumer starting
   * there sees only new records), and `timestamp_ms` -1.
   */
  'offset': (string);
  'timestampMs': (string);
  'error': (_runnel_v1_Error__Output | null);
}
