// Original file: proto/runnel/v1/log.proto

import type { RecordFormat as _runnel_v1_RecordFormat, RecordFormat__Output as _runnel_v1_RecordFormat__Output } from '../../runnel/v1/RecordFormat.js';
import type { Long } from '@grpc/proto-loader';

export interface SubscribeStart {
  'topic'?: (string);
  'partition'?: (number);
  'offset'?: (number | string | Long);
  /**
   * Bytes the broker may send before the client grants more. Each reply costs what the
   * client received, so a client that grants back the cost of each reply it processed never
   * stalls:
   * - RECORD_FORMAT_BATCHES: the length of its `record_batches`.
   * - RECORD_FORMAT_RECORDS: the size of the whole SubscribeResponse as the client's protobuf
   * library computes it for the message it parsed (ByteSize() in Python and C++,
   * proto.Size in Go, getSerializedSize() in Java): fields at their default value that
   * have no presence (a 0 offset, an empty header key) count nothing, set `optional`
   * fields count even when empty. Records below `offset` in the first batch, and records
   * after a reply was cut inside a batch, are not sent and cost nothing.
   * The broker sends while the credit is above 0, so the last reply may overshoot it by up
   * to one message (the credit goes below 0, and grants must bring it back above). The
   * credit is at most 256 MiB: more, here or in later grants, is cut to that.
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
   * Bytes the broker may send before the client grants more. Each reply costs what the
   * client received, so a client that grants back the cost of each reply it processed never
   * stalls:
   * - RECORD_FORMAT_BATCHES: the length of its `record_batches`.
   * - RECORD_FORMAT_RECORDS: the size of the whole SubscribeResponse as the client's protobuf
   * library computes it for the message it parsed (ByteSize() in Python and C++,
   * proto.Size in Go, getSerializedSize() in Java): fields at their default value that
   * have no presence (a 0 offset, an empty header key) count nothing, set `optional`
   * fields count even when empty. Records below `offset` in the first batch, and records
   * after a reply was cut inside a batch, are not sent and cost nothing.
   * The broker sends while the credit is above 0, so the last reply may overshoot it by up
   * to one message (the credit goes below 0, and grants must bring it back above). The
   * credit is at most 256 MiB: more, here or in later grants, is cut to that.
   */
  'creditBytes': (number);
  'format': (_runnel_v1_RecordFormat__Output);
  /**
   * Largest single response message; 0 = 1 MiB, and at most 64 MiB (more is cut). A batch
   * larger than this still goes whole, in a message of its own.
   */
  'maxMessageBytes': (number);
}
