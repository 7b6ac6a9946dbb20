// Original file: proto/runnel/v1/admin.proto


export interface AlterTopicConfigsRequest {
  'name'?: (string);
  'set'?: ({[key: string]: string});
  'remove'?: (string)[];
}

export interface AlterTopicConfigsRequest__Output {
  'name': (string);
  'set': ({[key: string]: string});
  'remove': (string)[];
}
