/**
 * Durable broker-local metadata in lmdb: the cluster id, topic definitions with their config
 * overrides, and the producer id counter; plus the per-topic config catalogue and the one
 * function that merges overrides over defaults. The only folder that opens lmdb.
 *
 * Who owns what mutable state:
 * - `MetaStore` owns the lmdb environment at `<data-dir>/meta` and everything in it. Every
 *   write goes through one of its methods, runs as one lmdb write transaction, and resolves
 *   only once flushed to disk. The broker opens one store at startup and closes it last.
 * - `MetaStore` also owns the in-memory producer id block (the reserved, unused ids); only
 *   `allocateProducerId` moves it.
 * - topic-config.ts holds no state: a frozen catalogue and pure functions.
 */
export { MetaStore, type MetaStoreOptions, type NewTopic, type TopicRecord } from './meta-store.js';
export {
  TOPIC_CONFIG_KEYS,
  describeAcceptedValues,
  describeEffectiveConfig,
  effectiveTopicConfig,
  checkTopicConfigKey,
  isTopicConfigKey,
  timestampWindowMs,
  validateTopicOverrides,
  type CleanupPolicy,
  type EffectiveTopicConfig,
  type TimestampType,
  type TopicConfigKey,
  type TopicConfigKeySpec,
} from './topic-config.js';
