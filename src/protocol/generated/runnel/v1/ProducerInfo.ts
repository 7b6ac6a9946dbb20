// Original file: proto/runnel/v1/log.proto

import type { Long } from '@grpc/proto-loader';

/**
 * Idempotence fields for plain records (a prebuilt batch carries them in its header).
 */
export interface ProducerInfo {
  'producerId'?: (number | string | Long);
  'producerEpoch'?: (number);
  'baseSequence'?: (number);
}

/**
 * Idempotence fields for plain records (a prebuilt batch carries them in its header).
 */
export interface ProducerInfo__Output {
  'producerId': (string);
  'producerEpoch': (number);
  'baseSequence': (number);
}
