// Original file: proto/runnel/v1/log.proto

import type { PartitionResult as _runnel_v1_PartitionResult, PartitionResult__Output as _runnel_v1_PartitionResult__Output } from '../../runnel/v1/PartitionResult.js';

export interface TopicResult {
  'topic'?: (string);
  'partitions'?: (_runnel_v1_PartitionResult)[];
}

export interface TopicResult__Output {
  'topic': (string);
  'partitions': (_runnel_v1_PartitionResult__Output)[];
}
