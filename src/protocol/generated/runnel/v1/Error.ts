// Original file: proto/runnel/v1/common.proto


/**
 * A per-partition failure inside an otherwise successful call. `reason` is a stable
 * SCREAMING_SNAKE name, the same as `runnel-reason` on a failed call (see the top of
 * log.proto; every reason is listed in src/errors/index.ts); `retriable` says whether the
 * same request may succeed if sent again.
 */
export interface Error {
  'reason'?: (string);
  'message'?: (string);
  'retriable'?: (boolean);
}

/**
 * A per-partition failure inside an otherwise successful call. `reason` is a stable
 * SCREAMING_SNAKE name, the same as `runnel-reason` on a failed call (see the top of
 * log.proto; every reason is listed in src/errors/index.ts); `retriable` says whether the
 * same request may succeed if sent again.
 */
export interface Error__Output {
  'reason': (string);
  'message': (string);
  'retriable': (boolean);
}
