// Original file: proto/runnel/v1/log.proto

import type { Long } from '@grpc/proto-loader';

export interface InitProducerIdRequest {
  /**
   * 0 / unset (or negative): a new producer id. Set with its current epoch to bump the epoch;
   * an id this broker never handed out is INVALID_REQUEST. A negative epoch, or one of 32,766
   * or more (nothing left to bump to), gets a new id at epoch 0, as Kafka does.
   */
  'producerId'?: (number | string | Long);
  'producerEpoch'?: (number);
}

export interface InitProducerIdRequest__Output {
  /**
   * 0 / unset (or negative): a new producer id. Set with its current epoch to bump the epoch;
   * an id this broker never handed out is INVALID_REQUEST. A negative epoch, or one of 32,766
   * or more (nothing left to bump to), gets a new id at epoch 0, as Kafka does.
   */
  'producerId': (string);
  'producerEpoch': (number);
}
