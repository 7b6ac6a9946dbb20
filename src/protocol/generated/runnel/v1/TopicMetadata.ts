// Original file: proto/runnel/v1/admin.proto

import type { PartitionMetadata as _runnel_v1_PartitionMetadata, PartitionMetadata__Output as _runnel_v1_PartitionMetadata__Output } from '../../runnel/v1/PartitionMetadata.js';

export interface TopicMetadata {
  'name'?: (string);
  'partitions'?: (_runnel_v1_PartitionMetadata)[];
}

export interface TopicMetadata__Output {
  'name': (string);
  'partitions': (_runnel_v1_PartitionMetadata__Output)[];
}
