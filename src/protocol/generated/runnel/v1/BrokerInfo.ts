// Original file: proto/runnel/v1/admin.proto


export interface BrokerInfo {
  'id'?: (number);
  'host'?: (string);
  'port'?: (number);
}

export interface BrokerInfo__Output {
  'id': (number);
  'host': (string);
  'port': (number);
}
