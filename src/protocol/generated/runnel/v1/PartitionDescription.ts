// Original file: proto/runnel/v1/admin.proto

import type { Long } from '@grpc/proto-loader';

export interface PartitionDescription {
  'partition'?: (number);
  'leader'?: (number);
  'replicas'?: (number)[];
  'isr'?: (number)[];
  /**
   * The three offsets are -1 when the partition's log cannot be opened at all (status
   * "offline", offline_reason STORAGE_ERROR for an I/O error such as EIO, DISK_FULL for a
   * full disk); an offline partition whose log opened (CORRUPT_DATA) still reports them.
   */
  'logStartOffset'?: (number | string | Long);
  'logEndOffset'?: (number | string | Long);
  'highWatermark'?: (number | string | Long);
  /**
   * Bytes in the partition's segment files (also when offline: what is on disk).
   */
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
  /**
   * The three offsets are -1 when the partition's log cannot be opened at all (status
   * "offline", offline_reason STORAGE_ERROR for an I/O error such as EIO, DISK_FULL for a
   * full disk); an offline partition whose log opened (CORRUPT_DATA) still reports them.
   */
  'logStartOffset': (string);
  'logEndOffset': (string);
  'highWatermark': (string);
  /**
   * Bytes in the partition's segment files (also when offline: what is on disk).
   */
  'sizeBytes': (string);
  /**
   * "online" or "offline" (then `offline_reason` says why, e.g. CORRUPT_DATA).
   */
  'status': (string);
  'offlineReason': (string);
}
