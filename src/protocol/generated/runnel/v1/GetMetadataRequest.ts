// Original file: proto/runnel/v1/admin.proto


export interface GetMetadataRequest {
  /**
   * At most 1,000 distinct names (a repeated one counts once). An unknown one fails the call
   * with NOT_FOUND (TOPIC_NOT_FOUND).
   */
  'topics'?: (string)[];
}

export interface GetMetadataRequest__Output {
  /**
   * At most 1,000 distinct names (a repeated one counts once). An unknown one fails the call
   * with NOT_FOUND (TOPIC_NOT_FOUND).
   */
  'topics': (string)[];
}
