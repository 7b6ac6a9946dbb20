// Original file: proto/runnel/v1/log.proto

import type { PartitionOffset as _runnel_v1_PartitionOffset, PartitionOffset__Output as _runnel_v1_PartitionOffset__Output } from '../../runnel/v1/PartitionOffset.js';

export interface ListOffsetsResponse {
  'partitions'?: (_runnel_v1_PartitionOffset)[];
}

export interface ListOffsetsResponse__Output {
  'partitions': (_runnel_v1_PartitionOffset__Output)[];
}
