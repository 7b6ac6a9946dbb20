// Original file: proto/runnel/v1/log.proto

/**
 * Any other value (Kafka's -1 included) fails the request with INVALID_ARGUMENT
 * (reason INVALID_REQUEST).
 */
export const Acks = {
  /**
   * Same as ACKS_ALL.
   */
  ACKS_UNSPECIFIED: 'ACKS_UNSPECIFIED',
  /**
   * Reply once the request is read; no per-partition result is waited for.
   */
  ACKS_NONE: 'ACKS_NONE',
  /**
   * Reply once the partition leader appended (and synced, under flush=always).
   */
  ACKS_LEADER: 'ACKS_LEADER',
  /**
   * Reply once every in-sync replica has the records (single node: as ACKS_LEADER).
   */
  ACKS_ALL: 'ACKS_ALL',
} as const;

/**
 * Any other value (Kafka's -1 included) fails the request with INVALID_ARGUMENT
 * (reason INVALID_REQUEST).
 */
export type Acks =
  /**
   * Same as ACKS_ALL.
   */
  | 'ACKS_UNSPECIFIED'
  | 0
  /**
   * Reply once the request is read; no per-partition result is waited for.
   */
  | 'ACKS_NONE'
  | 1
  /**
   * Reply once the partition leader appended (and synced, under flush=always).
   */
  | 'ACKS_LEADER'
  | 2
  /**
   * Reply once every in-sync replica has the records (single node: as ACKS_LEADER).
   */
  | 'ACKS_ALL'
  | 3

/**
 * Any other value (Kafka's -1 included) fails the request with INVALID_ARGUMENT
 * (reason INVALID_REQUEST).
 */
export type Acks__Output = typeof Acks[keyof typeof Acks]
