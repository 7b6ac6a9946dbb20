// Original file: proto/runnel/v1/log.proto

import type { RecordFormat as _runnel_v1_RecordFormat, RecordFormat__Output as _runnel_v1_RecordFormat__Output } from '../../runnel/v1/RecordFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface SubscribeStart {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Bytes the broker may send before the client grants more.
   */
  'creditBytes'?: (number);
  'format'?: (_runnel_v1_RecordFormat);
  /**
   * Largest single response message; 0 = the broker default.
   */
  'maxMessageBytes'?: (number);
}

export interface SubscribeStart__Output {
  'topic': (string);
  'partition': (number);
  'offset': (string);
  /**
   * Bytes the broker may send before the client grants more.
   */
  'creditBytes': (number);
  'format': (_runnel_v1_RecordFormat__Output);
  /**
   * Largest single response message; 0 = the broker default.
   */
  'maxMessageBytes': (number);
}
