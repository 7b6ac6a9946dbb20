// Original file: proto/runnel/v1/common.proto

/**
 * How fetched data comes back. Any other value fails the Fetch or Subscribe with
 * INVALID_ARGUMENT (reason INVALID_REQUEST).
 */
export const RecordFormat = {
  /**
   * Same as RECORD_FORMAT_RECORDS.
   */
  RECORD_FORMAT_UNSPECIFIED: 'RECORD_FORMAT_UNSPECIFIED',
  /**
   * Decoded records: easiest from any language.
   */
  RECORD_FORMAT_RECORDS: 'RECORD_FORMAT_RECORDS',
  /**
   * Raw record batch v2 bytes, exactly as stored (Kafka's format): fastest; the client
   * checks CRCs and decodes.
   */
  RECORD_FORMAT_BATCHES: 'RECORD_FORMAT_BATCHES',
} as const;

/**
 * How fetched data comes back. Any other value fails the Fetch or Subscribe with
 * INVALID_ARGUMENT (reason INVALID_REQUEST).
 */
export type RecordFormat =
  /**
   * Same as RECORD_FORMAT_RECORDS.
   */
  | 'RECORD_FORMAT_UNSPECIFIED'
  | 0
  /**
   * Decoded records: easiest from any language.
   */
  | 'RECORD_FORMAT_RECORDS'
  | 1
  /**
   * Raw record batch v2 bytes, exactly as stored (Kafka's format): fastest; the client
   * checks CRCs and decodes.
   */
  | 'RECORD_FORMAT_BATCHES'
  | 2

/**
 * How fetched data comes back. Any other value fails the Fetch or Subscribe with
 * INVALID_ARGUMENT (reason INVALID_REQUEST).
 */
export type RecordFormat__Output = typeof RecordFormat[keyof typeof RecordFormat]
