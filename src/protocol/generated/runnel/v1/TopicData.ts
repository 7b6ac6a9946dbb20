// Original file: proto/runnel/v1/log.proto

import type { PartitionData as _runnel_v1_PartitionData, PartitionData__Output as _runnel_v1_PartitionData__Output } from '../../runnel/v1/PartitionData.js';

export interface TopicData {
  'topic'?: (string);
  'partitions'?: (_runnel_v1_PartitionData)[];
}

export interface TopicData__Output {
  'topic': (string);
  'partitions': (_runnel_v1_PartitionData__Output)[];
}
