// Original file: proto/runnel/v1/log.proto

import type { Long } from '@grpc/proto-loader';

export interface InitProducerIdRequest {
  /**
   * 0 / unset: a new producer id. Set with its current epoch to bump the epoch.
   */
  'producerId'?: (number | string | Long);
  'producerEpoch'?: (number);
}

export interface InitProducerIdRequest__Output {
  /**
   * 0 / unset: a new producer id. Set with its current epoch to bump the epoch.
   */
  'producerId': (string);
  'producerEpoch': (number);
}
