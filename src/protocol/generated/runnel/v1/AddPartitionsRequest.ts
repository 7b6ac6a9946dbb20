// Original file: proto/runnel/v1/admin.proto


export interface AddPartitionsRequest {
  'name'?: (string);
  /**
   * The new total: larger than the current count, at most 10,000.
   */
  'partitionCount'?: (number);
}

export interface AddPartitionsRequest__Output {
  'name': (string);
  /**
   * The new total: larger than the current count, at most 10,000.
   */
  'partitionCount': (number);
}
