// Original file: proto/runnel/v1/log.proto

import type { FetchedRecord as _runnel_v1_FetchedRecord, FetchedRecord__Output as _runnel_v1_FetchedRecord__Output } from '../../runnel/v1/FetchedRecord.js';
import type { Long } from '@grpc/proto-loader';

export interface SubscribeResponse {
  'recordBatches'?: (Buffer | Uint8Array | string);
  'records'?: (_runnel_v1_FetchedRecord)[];
  'highWatermark'?: (number | string | Long);
  'logStartOffset'?: (number | string | Long);
  'nextOffset'?: (number | string | Long);
}

export interface SubscribeResponse__Output {
  'recordBatches': (Buffer);
  'records': (_runnel_v1_FetchedRecord__Output)[];
  'highWatermark': (string);
  'logStartOffset': (string);
  'nextOffset': (string);
}
