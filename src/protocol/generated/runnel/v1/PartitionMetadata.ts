// Original file: proto/runnel/v1/admin.proto


export interface PartitionMetadata {
  'partition'?: (number);
  'leader'?: (number);
  'leaderEpoch'?: (number);
}

export interface PartitionMetadata__Output {
  'partition': (number);
  'leader': (number);
  'leaderEpoch': (number);
}
