// Original file: proto/runnel/v1/log.proto

import type { Acks as _runnel_v1_Acks, Acks__Output as _runnel_v1_Acks__Output } from '../../runnel/v1/Acks.js';
import type { TopicData as _runnel_v1_TopicData, TopicData__Output as _runnel_v1_TopicData__Output } from '../../runnel/v1/TopicData.js';
import type { Long } from '@grpc/proto-loader';

export interface ProduceRequest {
  /**
   * Free for the client's use; echoed in the reply (ProduceStream matches replies by it).
   */
  'sequence'?: (number | string | Long);
  'acks'?: (_runnel_v1_Acks);
  /**
   * How long to wait for acks before failing with ACK_TIMEOUT; 0 = the broker default
   * (RUNNEL_PRODUCE_TIMEOUT_MS, 30 s unless set). At most ten times that default; more is cut.
   */
  'timeoutMs'?: (number);
  'topics'?: (_runnel_v1_TopicData)[];
}

export interface ProduceRequest__Output {
  /**
   * Free for the client's use; echoed in the reply (ProduceStream matches replies by it).
   */
  'sequence': (string);
  'acks': (_runnel_v1_Acks__Output);
  /**
   * How long to wait for acks before failing with ACK_TIMEOUT; 0 = the broker default
   * (RUNNEL_PRODUCE_TIMEOUT_MS, 30 s unless set). At most ten times that default; more is cut.
   */
  'timeoutMs': (number);
  'topics': (_runnel_v1_TopicData__Output)[];
}
