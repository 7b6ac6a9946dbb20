// Original file: proto/runnel/v1/admin.proto


export interface TopicSummary {
  'name'?: (string);
  'partitions'?: (number);
  'replicationFactor'?: (number);
}

export interface TopicSummary__Output {
  'name': (string);
  'partitions': (number);
  'replicationFactor': (number);
}
