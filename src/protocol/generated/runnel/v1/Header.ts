// Original file: proto/runnel/v1/common.proto


/**
 * A record header: a UTF-8 key and optional bytes (unset = null, as in Kafka).
 */
export interface Header {
  'key'?: (string);
  'value'?: (Buffer | Uint8Array | string);
  '_value'?: "value";
}

/**
 * A record header: a UTF-8 key and optional bytes (unset = null, as in Kafka).
 */
export interface Header__Output {
  'key': (string);
  'value'?: (Buffer);
  '_value'?: "value";
}
