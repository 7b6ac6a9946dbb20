// Original file: proto/runnel/v1/admin.proto


export interface CreateTopicRequest {
  /**
   * 1–249 characters of [a-zA-Z0-9._-], not "." or ".." (INVALID_TOPIC_NAME otherwise).
   */
  'name'?: (string);
  /**
   * 0: the broker default (1 unless RUNNEL_DEFAULT_PARTITIONS says otherwise). At most 10,000.
   */
  'partitions'?: (number);
  /**
   * 0: the broker default (1 on a single node, and only 1 is accepted there).
   */
  'replicationFactor'?: (number);
  /**
   * Unknown keys and values out of range are INVALID_REQUEST; a value is at most 1,024
   * characters. A broker holds at most 10,000 topics (LIMIT_REACHED beyond).
   */
  'configs'?: ({[key: string]: string});
}

export interface CreateTopicRequest__Output {
  /**
   * 1–249 characters of [a-zA-Z0-9._-], not "." or ".." (INVALID_TOPIC_NAME otherwise).
   */
  'name': (string);
  /**
   * 0: the broker default (1 unless RUNNEL_DEFAULT_PARTITIONS says otherwise). At most 10,000.
   */
  'partitions': (number);
  /**
   * 0: the broker default (1 on a single node, and only 1 is accepted there).
   */
  'replicationFactor': (number);
  /**
   * Unknown keys and values out of range are INVALID_REQUEST; a value is at most 1,024
   * characters. A broker holds at most 10,000 topics (LIMIT_REACHED beyond).
   */
  'configs': ({[key: string]: string});
}
