// Original file: proto/runnel/v1/admin.proto


export interface AddPartitionsRequest {
  'name'?: (string);
  'partitionCount'?: (number);
}

export interface AddPartitionsRequest__Output {
  'name': (string);
  'partitionCount': (number);
}
