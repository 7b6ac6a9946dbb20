// Original file: proto/runnel/v1/log.proto

import type { FetchedRecord as _runnel_v1_FetchedRecord, FetchedRecord__Output as _runnel_v1_FetchedRecord__Output } from '../../runnel/v1/FetchedRecord.js';
import type { Long } from '@grpc/proto-loader';

export interface FetchResponse {
  /**
   * RECORD_FORMAT_BATCHES: whole batches; the first may start before `offset` (drop the
   * records below it).
   */
  'recordBatches'?: (Buffer | Uint8Array | string);
  /**
   * RECORD_FORMAT_RECORDS: records from `offset` on, decoded. Batches decode to about
   * `max_bytes` of record data at most (always the first batch), and never much past 16 MiB:
   * a batch that decodes past that (a gzip batch can hold millions of records) is cut after
   * the record that reaches it, so a reply may end before the bytes read did, even inside a
   * batch: continue from `next_offset`.
   */
  'records'?: (_runnel_v1_FetchedRecord)[];
  /**
   * Consumers read below this offset.
   */
  'highWatermark'?: (number | string | Long);
  'logStartOffset'?: (number | string | Long);
  /**
   * Where the next fetch should start.
   */
  'nextOffset'?: (number | string | Long);
}

export interface FetchResponse__Output {
  /**
   * RECORD_FORMAT_BATCHES: whole batches; the first may start before `offset` (drop the
   * records below it).
   */
  'recordBatches': (Buffer);
  /**
   * RECORD_FORMAT_RECORDS: records from `offset` on, decoded. Batches decode to about
   * `max_bytes` of record data at most (always the first batch), and never much past 16 MiB:
   * a batch that decodes past that (a gzip batch can hold millions of records) is cut after
   * the record that reaches it, so a reply may end before the bytes read did, even inside a
   * batch: continue from `next_offset`.
   */
  'records': (_runnel_v1_FetchedRecord__Output)[];
  /**
   * Consumers read below this offset.
   */
  'highWatermark': (string);
  'logStartOffset': (string);
  /**
   * Where the next fetch should start.
   */
  'nextOffset': (string);
}
