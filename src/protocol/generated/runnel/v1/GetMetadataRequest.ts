// Original file: proto/runnel/v1/admin.proto


export interface GetMetadataRequest {
  'topics'?: (string)[];
}

export interface GetMetadataRequest__Output {
  'topics': (string)[];
}
