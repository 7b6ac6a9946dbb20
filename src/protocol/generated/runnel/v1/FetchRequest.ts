// Original file: proto/runnel/v1/log.proto

import type { RecordFormat as _runnel_v1_RecordFormat, RecordFormat__Output as _runnel_v1_RecordFormat__Output } from '../../runnel/v1/RecordFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface FetchRequest {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Response size budget; 0 = 1 MiB, and at most 64 MiB (more is cut). At least one whole
   * batch is returned even when larger.
   */
  'maxBytes'?: (number);
  /**
   * Wait until at least this many bytes are available (or max_wait_ms passes); 0 = reply now.
   * Not waited for when the reply ends before the log end (`next_offset` below
   * `high_watermark`): at a segment's end, or at `max_bytes`.
   */
  'minBytes'?: (number);
  /**
   * How long to wait for min_bytes; at most 60,000 (more is cut). 0 = reply now.
   */
  'maxWaitMs'?: (number);
  'format'?: (_runnel_v1_RecordFormat);
}

export interface FetchRequest__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * Response size budget; 0 = 1 MiB, and at most 64 MiB (more is cut). At least one whole
   * batch is returned even when larger.
   */
  'maxBytes': (number);
  /**
   * Wait until at least this many bytes are available (or max_wait_ms passes); 0 = reply now.
   * Not waited for when the reply ends before the log end (`next_offset` below
   * `high_watermark`): at a segment's end, or at `max_bytes`.
   */
  'minBytes': (number);
  /**
   * How long to wait for min_bytes; at most 60,000 (more is cut). 0 = reply now.
   */
  'maxWaitMs': (number);
  'format': (_runnel_v1_RecordFormat__Output);
}
