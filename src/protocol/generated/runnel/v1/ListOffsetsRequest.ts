// Original file: proto/runnel/v1/log.proto

import type { OffsetSpec as _runnel_v1_OffsetSpec, OffsetSpec__Output as _runnel_v1_OffsetSpec__Output } from '../../runnel/v1/OffsetSpec.js';
import type { Long } from '@grpc/proto-loader';

export interface ListOffsetsRequest {
  'topic'?: (string);
  /**
   * Empty: every partition of the topic. At most 10,000 distinct partitions; a repeated one
   * is answered once.
   */
  'partitions'?: (number)[];
  'spec'?: (_runnel_v1_OffsetSpec);
  /**
   * For OFFSET_SPEC_TIMESTAMP: ms since the epoch, at least 0. A negative one fails the call
   * with INVALID_ARGUMENT (reason INVALID_REQUEST): Kafka's -1 (latest) and -2 (earliest) are
   * OFFSET_SPEC_LATEST and OFFSET_SPEC_EARLIEST here.
   */
  'timestampMs'?: (number | string | Long);
}

export interface ListOffsetsRequest__Output {
  'topic': (string);
  /**
   * Empty: every partition of the topic. At most 10,000 distinct partitions; a repeated one
   * is answered once.
   */
  'partitions': (number)[];
  'spec': (_runnel_v1_OffsetSpec__Output);
  /**
   * For OFFSET_SPEC_TIMESTAMP: ms since the epoch, at least 0. A negative one fails the call
   * with INVALID_ARGUMENT (reason INVALID_REQUEST): Kafka's -1 (latest) and -2 (earliest) are
   * OFFSET_SPEC_LATEST and OFFSET_SPEC_EARLIEST here.
   */
  'timestampMs': (string);
}
