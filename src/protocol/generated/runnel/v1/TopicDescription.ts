// Original file: proto/runnel/v1/admin.proto

import type { PartitionDescription as _runnel_v1_PartitionDescription, PartitionDescription__Output as _runnel_v1_PartitionDescription__Output } from '../../runnel/v1/PartitionDescription.js';

export interface TopicDescription {
  'name'?: (string);
  'partitions'?: (_runnel_v1_PartitionDescription)[];
  /**
   * Effective configs: broker defaults merged with this topic's overrides.
   */
  'configs'?: ({[key: string]: string});
  /**
   * Only the overrides set on this topic.
   */
  'overrides'?: ({[key: string]: string});
  'replicationFactor'?: (number);
}

export interface TopicDescription__Output {
  'name': (string);
  'partitions': (_runnel_v1_PartitionDescription__Output)[];
  /**
   * Effective configs: broker defaults merged with this topic's overrides.
   */
  'configs': ({[key: string]: string});
  /**
   * Only the overrides set on this topic.
   */
  'overrides': ({[key: string]: string});
  'replicationFactor': (number);
}
