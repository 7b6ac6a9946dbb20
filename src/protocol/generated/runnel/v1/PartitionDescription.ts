// Original file: proto/runnel/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionDescription {
  'partition'?: (number);
  'leader'?: (number);
  'replicas'?: (number)[];
  'isr'?: (number)[];
  'logStartOffset'?: (number | string | Long);
  'logEndOffset'?: (number | string | Long);
  'highWatermark'?: (number | string | Long);
  'sizeBytes'?: (number | string | Long);
  /**
   * "online" or "offline" (then `offline_reason` says why, e.g. CORRUPT_DATA).
   */
  'status'?: (string);
  'offlineReason'?: (string);
}

export interface PartitionDescription__Output {
  'partition': (number);
  'leader': (number);
  'replicas': (number)[];
  'isr': (number)[];
  'logStartOffset': (string);
  'logEndOffset': (string);
  'highWatermark': (string);
  'sizeBytes': (string);
  /**
   * "online" or "offline" (then `offline_reason` says why, e.g. CORRUPT_DATA).
   */
  'status': (string);
  'offlineReason': (string);
}
