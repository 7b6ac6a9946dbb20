// Original file: proto/runnel/v1/common.proto

import type { Header as _runnel_v1_Header, Header__Output as _runnel_v1_Header__Output } from '../../runnel/v1/Header.js';
import type { Long } from '@grpc/proto-loader';

/**
 * One record, for clients that send or read plain records instead of record batch bytes.
 * `key` and `value` unset mean null (a null value is a tombstone under compaction); set to
 * empty bytes they mean empty.
 */
export interface Record {
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (Buffer | Uint8Array | string);
  'headers'?: (_runnel_v1_Header)[];
  /**
   * Milliseconds since the Unix epoch. 0 or unset: the broker uses its receive time.
   */
  'timestampMs'?: (number | string | Long);
  '_key'?: "key";
  '_value'?: "value";
}

/**
 * One record, for clients that send or read plain records instead of record batch bytes.
 * `key` and `value` unset mean null (a null value is a tombstone under compaction); set to
 * empty bytes they mean empty.
 */
export interface Record__Output {
  'key'?: (Buffer);
  'value'?: (Buffer);
  'headers': (_runnel_v1_Header__Output)[];
  /**
   * Milliseconds since the Unix epoch. 0 or unset: the broker uses its receive time.
   */
  'timestampMs': (string);
  '_key'?: "key";
  '_value'?: "value";
}
