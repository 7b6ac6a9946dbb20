// Original file: proto/runnel/v1/log.proto

import type { RecordFormat as _runnel_v1_RecordFormat, RecordFormat__Output as _runnel_v1_RecordFormat__Output } from '../../runnel/v1/RecordFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface SubscribeStart {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Bytes the broker may send before the client grants more. The last reply may overshoot
   * it by up to one message. Later grants raise the credit to at most 256 MiB.
   */
  'creditBytes'?: (number);
  'format'?: (_runnel_v1_RecordFormat);
  /**
   * Largest single response message; 0 = 1 MiB, and at most 64 MiB (more is cut). A batch
   * larger than this still goes whole, in a message of its own.
   */
  'maxMessageBytes'?: (number);
}

export interface SubscribeStart__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * Bytes the broker may send before the client grants more. The last reply may overshoot
   * it by up to one message. Later grants raise the credit to at most 256 MiB.
   */
  'creditBytes': (number);
  'format': (_runnel_v1_RecordFormat__Output);
  /**
   * Largest single response message; 0 = 1 MiB, and at most 64 MiB (more is cut). A batch
   * larger than this still goes whole, in a message of its own.
   */
  'maxMessageBytes': (number);
}
