// Original file: proto/runnel/v1/log.proto

import type { TopicResult as _runnel_v1_TopicResult, TopicResult__Output as _runnel_v1_TopicResult__Output } from '../../runnel/v1/TopicResult.js';
import type { Long } from '@grpc/proto-loader';

export interface ProduceResponse {
  'sequence'?: (number | string | Long);
  'topics'?: (_runnel_v1_TopicResult)[];
}

export interface ProduceResponse__Output {
  'sequence': (string);
  'topics': (_runnel_v1_TopicResult__Output)[];
}
