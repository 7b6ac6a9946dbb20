// Original file: proto/runnel/v1/admin.proto


export interface CreateTopicRequest {
  'name'?: (string);
  /**
   * 0: the broker default (1).
   */
  'partitions'?: (number);
  /**
   * 0: the broker default (1 on a single node).
   */
  'replicationFactor'?: (number);
  'configs'?: ({[key: string]: string});
}

export interface CreateTopicRequest__Output {
  'name': (string);
  /**
   * 0: the broker default (1).
   */
  'partitions': (number);
  /**
   * 0: the broker default (1 on a single node).
   */
  'replicationFactor': (number);
  'configs': ({[key: string]: string});
}
