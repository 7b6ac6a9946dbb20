// Original file: proto/runnel/v1/log.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Idempotence fields for plain records (a prebuilt batch carries them in its header).
 * `producer_id` must be one InitProducerId handed out: any other id (0 included, so an empty
 * ProducerInfo too) is refused with INVALID_REQUEST, in a prebuilt batch as well.
 */
export interface ProducerInfo {
  'producerId'?: (number | string | Long);
  'producerEpoch'?: (number);
  'baseSequence'?: (number);
}

/**
 * Idempotence fields for plain records (a prebuilt batch carries them in its header).
 * `producer_id` must be one InitProducerId handed out: any other id (0 included, so an empty
 * ProducerInfo too) is refused with INVALID_REQUEST, in a prebuilt batch as well.
 */
export interface ProducerInfo__Output {
  'producerId': (string);
  'producerEpoch': (number);
  'baseSequence': (number);
}
