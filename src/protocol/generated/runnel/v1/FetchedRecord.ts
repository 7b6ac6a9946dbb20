// Original file: proto/runnel/v1/log.proto

import type { Header as _runnel_v1_Header, Header__Output as _runnel_v1_Header__Output } from '../../runnel/v1/Header.js';
import type { Long } from '@grpc/proto-loader';

export interface FetchedRecord {
  'offset'?: (number | string | Long);
  'key'?: (Buffer | Uint8Array | string);
  'value'?: (Buffer | Uint8Array | string);
  'headers'?: (_runnel_v1_Header)[];
  'timestampMs'?: (number | string | Long);
  '_key'?: "key";
  '_value'?: "value";
}

export interface FetchedRecord__Output {
  'offset': (string);
  'key'?: (Buffer);
  'value'?: (Buffer);
  'headers': (_runnel_v1_Header__Output)[];
  'timestampMs': (string);
  '_key'?: "key";
  '_value'?: "value";
}
