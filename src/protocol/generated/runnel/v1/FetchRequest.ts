// Original file: proto/runnel/v1/log.proto

import type { RecordFormat as _runnel_v1_RecordFormat, RecordFormat__Output as _runnel_v1_RecordFormat__Output } from '../../runnel/v1/RecordFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface FetchRequest {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Response size budget; at least one whole batch is returned even when larger.
   */
  'maxBytes'?: (number);
  /**
   * Wait until at least this many bytes are available (or max_wait_ms passes); 0 = reply now.
   */
  'minBytes'?: (number);
  'maxWaitMs'?: (number);
  'format'?: (_runnel_v1_RecordFormat);
}

export interface FetchRequest__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * Response size budget; at least one whole batch is returned even when larger.
   */
  'maxBytes': (number);
  /**
   * Wait until at least this many bytes are available (or max_wait_ms passes); 0 = reply now.
   */
  'minBytes': (number);
  'maxWaitMs': (number);
  'format': (_runnel_v1_RecordFormat__Output);
}
