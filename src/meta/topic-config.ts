/**
 * The per-topic config catalogue: every key a topic may override (Kafka's names where Kafka has
 * one), its type, default, accepted range and a one-line doc; validation of overrides into
 * normalised strings; and the one function that merges overrides over broker defaults.
 *
 * Overrides are stored as strings, exactly as `validateTopicOverrides` normalised them
 * ("0100" → "100", "LOGAPPENDTIME" → "LogAppendTime"), so two equal configs compare equal and
 * `topic describe` shows what is stored. Precedence, highest first: topic override, broker
 * default (the broker's loaded config), catalogue default (config/defaults.ts).
 *
 * Deliberately not here: parsing `flush` into a policy object. Storage owns that
 * (`parseFlushPolicy`), and meta sits on the same layer as storage, so it may not import it;
 * this file only checks the shape `always | never | interval:<ms>` with its own pattern.
 * Nothing here holds mutable state.
 */
import { assert } from '../common/index.js';
import { defaults, limits } from '../config/index.js';
import { BrokerError } from '../errors/index.js';
import { BATCH_HEADER_BYTES } from '../protocol/index.js';

export type CleanupPolicy = 'delete';
export type TimestampType = 'CreateTime' | 'LogAppendTime';

/** Every topic setting with its effective value, typed; what the broker hands to storage. */
export interface EffectiveTopicConfig {
  retentionMs: number;
  retentionBytes: number;
  segmentBytes: number;
  segmentMs: number;
  maxMessageBytes: number;
  minInsyncReplicas: number;
  cleanupPolicy: CleanupPolicy;
  /** `always` | `never` | `interval:<ms>`; storage's `parseFlushPolicy` turns it into a policy. */
  flush: string;
  indexIntervalBytes: number;
  timestampType: TimestampType;
  timestampAfterMaxMs: number;
  timestampBeforeMaxMs: number;
}

interface IntegerKeySpec {
  readonly type: 'integer';
  readonly field: keyof EffectiveTopicConfig;
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** Whether `-1` is accepted too, meaning "no limit" (Kafka's convention for retention). */
  readonly isMinusOneUnlimited: boolean;
  readonly unit: string;
  readonly doc: string;
}

interface ChoiceKeySpec<V extends string> {
  readonly type: 'choice';
  readonly field: keyof EffectiveTopicConfig;
  readonly default: V;
  readonly values: readonly V[];
  /** Values Kafka knows that Runnel does not support yet, each with what to do instead. */
  readonly unsupported: Readonly<Record<string, string>>;
  readonly doc: string;
}

interface FlushKeySpec {
  readonly type: 'flush';
  readonly field: 'flush';
  readonly default: string;
  readonly intervalMsMin: number;
  readonly intervalMsMax: number;
  readonly doc: string;
}

export type TopicConfigKeySpec = IntegerKeySpec | ChoiceKeySpec<string> | FlushKeySpec;

/** The largest number any integer setting may take: settings are JS numbers, kept exact. */
const INTEGER_MAX = Number.MAX_SAFE_INTEGER;

/**
 * The catalogue. Keys are sorted by name, so listings built from it come out sorted.
 * Ranges come from config/limits.ts, defaults from config/defaults.ts.
 */
export const TOPIC_CONFIG_KEYS = {
  'cleanup.policy': {
    type: 'choice',
    field: 'cleanupPolicy',
    default: defaults.cleanupPolicy,
    values: ['delete'],
    unsupported: { compact: 'compaction is not supported yet; use cleanup.policy=delete (retention by time and size)' },
    doc: 'What happens to old segments: "delete" removes whole segments past retention.ms or retention.bytes.',
  } satisfies ChoiceKeySpec<CleanupPolicy>,
  flush: {
    type: 'flush',
    field: 'flush',
    default: defaults.flush,
    intervalMsMin: 1,
    intervalMsMax: limits.flushIntervalMsMax,
    doc: 'When appends reach the disk before they are acknowledged: always (fdatasync first), interval:<ms>, or never (at roll and close).',
  } satisfies FlushKeySpec,
  'index.interval.bytes': {
    type: 'integer',
    field: 'indexIntervalBytes',
    default: defaults.indexIntervalBytes,
    min: limits.indexIntervalBytesMin,
    // An interval longer than the largest segment would mean one entry per segment anyway.
    max: limits.segmentBytesMax,
    isMinusOneUnlimited: false,
    unit: 'bytes',
    doc: 'Bytes of log between two entries of the sparse offset and time indexes.',
  } satisfies IntegerKeySpec,
  'max.message.bytes': {
    type: 'integer',
    field: 'maxMessageBytes',
    default: defaults.maxMessageBytes,
    // Below one batch header no batch at all could be produced.
    min: BATCH_HEADER_BYTES,
    max: limits.batchBytesMax,
    isMinusOneUnlimited: false,
    unit: 'bytes',
    doc: 'Largest record batch a producer may send to this topic.',
  } satisfies IntegerKeySpec,
  'message.timestamp.after.max.ms': {
    type: 'integer',
    field: 'timestampAfterMaxMs',
    default: defaults.messageTimestampAfterMaxMs,
    min: 0,
    max: INTEGER_MAX,
    isMinusOneUnlimited: false,
    unit: 'ms',
    doc: "Refuse a create-time record whose timestamp lies more than this ahead of the broker's clock (INVALID_TIMESTAMP).",
  } satisfies IntegerKeySpec,
  'message.timestamp.before.max.ms': {
    type: 'integer',
    field: 'timestampBeforeMaxMs',
    default: defaults.messageTimestampBeforeMaxMs,
    min: 0,
    max: INTEGER_MAX,
    isMinusOneUnlimited: false,
    unit: 'ms',
    doc: "Refuse a create-time record whose timestamp lies more than this behind the broker's clock (INVALID_TIMESTAMP); the default sets no limit.",
  } satisfies IntegerKeySpec,
  'message.timestamp.type': {
    type: 'choice',
    field: 'timestampType',
    default: defaults.messageTimestampType,
    values: ['CreateTime', 'LogAppendTime'],
    unsupported: {},
    doc: "Which timestamp records keep: the producer's (CreateTime) or the broker's at append (LogAppendTime).",
  } satisfies ChoiceKeySpec<TimestampType>,
  'min.insync.replicas': {
    type: 'integer',
    field: 'minInsyncReplicas',
    default: defaults.minInsyncReplicas,
    min: 1,
    max: limits.replicationFactorMax,
    isMinusOneUnlimited: false,
    unit: 'replicas',
    doc: 'In-sync replicas that must hold a batch before an acks=all produce is acknowledged.',
  } satisfies IntegerKeySpec,
  'retention.bytes': {
    type: 'integer',
    field: 'retentionBytes',
    default: defaults.retentionBytes,
    min: 0,
    max: INTEGER_MAX,
    isMinusOneUnlimited: true,
    unit: 'bytes',
    doc: 'Delete the oldest segments while a partition is larger than this; -1 keeps any size.',
  } satisfies IntegerKeySpec,
  'retention.ms': {
    type: 'integer',
    field: 'retentionMs',
    default: defaults.retentionMs,
    min: 0,
    max: INTEGER_MAX,
    isMinusOneUnlimited: true,
    unit: 'ms',
    doc: 'Delete segments whose newest record is older than this; -1 keeps records forever.',
  } satisfies IntegerKeySpec,
  'segment.bytes': {
    type: 'integer',
    field: 'segmentBytes',
    default: defaults.segmentBytes,
    min: limits.segmentBytesMin,
    max: limits.segmentBytesMax,
    isMinusOneUnlimited: false,
    unit: 'bytes',
    doc: 'Roll to a new segment file once the active one would grow past this.',
  } satisfies IntegerKeySpec,
  'segment.ms': {
    type: 'integer',
    field: 'segmentMs',
    default: defaults.segmentMs,
    min: 1,
    max: INTEGER_MAX,
    isMinusOneUnlimited: false,
    unit: 'ms',
    doc: 'Roll to a new segment once the active one spans more than this much record time.',
  } satisfies IntegerKeySpec,
} as const satisfies Record<string, TopicConfigKeySpec>;

export type TopicConfigKey = keyof typeof TOPIC_CONFIG_KEYS;

type IntegerKey = { [K in TopicConfigKey]: (typeof TOPIC_CONFIG_KEYS)[K]['type'] extends 'integer' ? K : never }[TopicConfigKey];

const KEY_NAMES = Object.keys(TOPIC_CONFIG_KEYS).sort() as TopicConfigKey[];

/** Longest value echoed back in an error message; the rest is cut. */
const SHOWN_VALUE_LENGTH_MAX = 60;

export function isTopicConfigKey(key: string): key is TopicConfigKey {
  return Object.hasOwn(TOPIC_CONFIG_KEYS, key);
}

/** What a key accepts, in words, for error messages and help text. */
export function describeAcceptedValues(key: TopicConfigKey): string {
  const spec: TopicConfigKeySpec = TOPIC_CONFIG_KEYS[key];
  switch (spec.type) {
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max} (${spec.unit})${spec.isMinusOneUnlimited ? ', or -1 for no limit' : ''}`;
    case 'choice':
      return `one of ${spec.values.join(', ')}`;
    case 'flush':
      return `always, never, or interval:<ms> with ${spec.intervalMsMin} ≤ ms ≤ ${spec.intervalMsMax}`;
  }
}

/**
 * Checks topic config overrides and returns them normalised, keys sorted.
 * Throws INVALID_REQUEST naming the key and what it accepts for an unknown key, a value that
 * is not a string, or a value out of range. Pure and idempotent: normalised output passes
 * through unchanged.
 */
/** Throws INVALID_REQUEST, naming the known keys, unless `key` is a topic config key. */
export function checkTopicConfigKey(key: string): asserts key is TopicConfigKey {
  if (!isTopicConfigKey(key)) {
    throw new BrokerError('INVALID_REQUEST', `unknown topic config ${JSON.stringify(shorten(key))}: use one of ${KEY_NAMES.join(', ')}`, {
      details: { configKey: shorten(key) },
    });
  }
}

export function validateTopicOverrides(overrides: Record<string, string>): Record<string, string> {
  const normalised: Record<string, string> = {};
  const keys = Object.keys(overrides);
  // Unknown keys first, before any sorting: afterwards at most one entry per known key is left.
  for (const key of keys) checkTopicConfigKey(key);
  for (const key of keys.sort()) {
    checkTopicConfigKey(key); // narrows the type; every key passed above
    const value: unknown = overrides[key];
    if (typeof value !== 'string') throw invalidValue(key, String(value));
    if (value.length > limits.topicConfigValueLengthMax) {
      throw new BrokerError('INVALID_REQUEST', `value of topic config ${key} is ${value.length} characters long: use at most ${limits.topicConfigValueLengthMax} characters, ${describeAcceptedValues(key)}`, {
        details: { configKey: key },
      });
    }
    normalised[key] = normaliseValue(key, value.trim());
  }
  return normalised;
}

/**
 * Every setting with its effective value: the topic's override, else the broker's default,
 * else the catalogue default. Throws INVALID_REQUEST like `validateTopicOverrides` for a bad
 * override. `brokerDefaults` comes from the validated broker config; a value outside a key's
 * range there is a bug upstream and fails an assertion.
 */
export function effectiveTopicConfig(
  overrides: Record<string, string>,
  brokerDefaults: Partial<EffectiveTopicConfig> = {},
): EffectiveTopicConfig {
  const valid = validateTopicOverrides(overrides);
  const integer = (key: IntegerKey): number => {
    const spec: IntegerKeySpec = TOPIC_CONFIG_KEYS[key];
    const override = valid[key];
    if (override !== undefined) return Number(override);
    const brokerDefault = brokerDefaults[spec.field];
    if (brokerDefault === undefined) return spec.default;
    assert(typeof brokerDefault === 'number' && isIntegerAccepted(spec, brokerDefault), `broker default for ${key} is out of range: ${String(brokerDefault)}`);
    return brokerDefault;
  };
  return {
    retentionMs: integer('retention.ms'),
    retentionBytes: integer('retention.bytes'),
    segmentBytes: integer('segment.bytes'),
    segmentMs: integer('segment.ms'),
    maxMessageBytes: integer('max.message.bytes'),
    minInsyncReplicas: integer('min.insync.replicas'),
    cleanupPolicy: effectiveChoice('cleanup.policy', TOPIC_CONFIG_KEYS['cleanup.policy'], valid, brokerDefaults.cleanupPolicy),
    flush: effectiveFlush(valid, brokerDefaults.flush),
    indexIntervalBytes: integer('index.interval.bytes'),
    timestampType: effectiveChoice('message.timestamp.type', TOPIC_CONFIG_KEYS['message.timestamp.type'], valid, brokerDefaults.timestampType),
    timestampAfterMaxMs: integer('message.timestamp.after.max.ms'),
    timestampBeforeMaxMs: integer('message.timestamp.before.max.ms'),
  };
}

/**
 * The create-time timestamp window of a topic, from its stored overrides (normalised by
 * `validateTopicOverrides`, so read as they are) over the catalogue defaults. For the produce
 * path, which runs per batch: `effectiveTopicConfig` validates every override each time.
 */
export function timestampWindowMs(overrides: Readonly<Record<string, string>>): { afterMaxMs: number; beforeMaxMs: number } {
  const after = overrides['message.timestamp.after.max.ms'];
  const before = overrides['message.timestamp.before.max.ms'];
  return {
    afterMaxMs: after === undefined ? TOPIC_CONFIG_KEYS['message.timestamp.after.max.ms'].default : Number(after),
    beforeMaxMs: before === undefined ? TOPIC_CONFIG_KEYS['message.timestamp.before.max.ms'].default : Number(before),
  };
}

/** Every key with its effective value as a string, keys sorted: what `topic describe` shows. */
export function describeEffectiveConfig(
  overrides: Record<string, string>,
  brokerDefaults: Partial<EffectiveTopicConfig> = {},
): Record<string, string> {
  const effective = effectiveTopicConfig(overrides, brokerDefaults);
  const described: Record<string, string> = {};
  for (const key of KEY_NAMES) described[key] = String(effective[TOPIC_CONFIG_KEYS[key].field]);
  return described;
}

/** One value, already trimmed, in its canonical spelling; throws INVALID_REQUEST if not accepted. */
function normaliseValue(key: TopicConfigKey, value: string): string {
  const spec: TopicConfigKeySpec = TOPIC_CONFIG_KEYS[key];
  switch (spec.type) {
    case 'integer': {
      const parsed = /^-?\d{1,20}$/.test(value) ? Number(value) : Number.NaN;
      if (!isIntegerAccepted(spec, parsed)) throw invalidValue(key, value);
      return String(parsed);
    }
    case 'choice':
      return normaliseChoice(key, spec, value);
    case 'flush':
      return normaliseFlush(key, spec, value);
  }
}

function isIntegerAccepted(spec: IntegerKeySpec, value: number): boolean {
  if (!Number.isSafeInteger(value)) return false;
  if (value === -1 && spec.isMinusOneUnlimited) return true;
  return value >= spec.min && value <= spec.max;
}

/** Case-insensitive match, so `logappendtime` is accepted as `LogAppendTime`. */
function normaliseChoice(key: TopicConfigKey, spec: ChoiceKeySpec<string>, value: string): string {
  const lower = value.toLowerCase();
  // Kafka's cleanup.policy is a list ("compact,delete"); any unsupported member decides the message.
  for (const member of lower.split(',')) {
    const advice = spec.unsupported[member.trim()];
    if (advice !== undefined) throw new BrokerError('INVALID_REQUEST', `topic config ${key}=${shorten(value)}: ${advice}`, { details: { configKey: key } });
  }
  const match = spec.values.find((candidate) => candidate.toLowerCase() === lower);
  if (match === undefined) throw invalidValue(key, value);
  return match;
}

function normaliseFlush(key: TopicConfigKey, spec: FlushKeySpec, value: string): string {
  const lower = value.toLowerCase();
  if (lower === 'always' || lower === 'never') return lower;
  const match = /^interval:(\d{1,20})$/.exec(lower);
  const intervalMs = match === null ? Number.NaN : Number(match[1]);
  if (!Number.isSafeInteger(intervalMs) || intervalMs < spec.intervalMsMin || intervalMs > spec.intervalMsMax) {
    throw invalidValue(key, value);
  }
  return `interval:${intervalMs}`;
}

function effectiveChoice<V extends string>(
  key: TopicConfigKey,
  spec: ChoiceKeySpec<V>,
  valid: Record<string, string>,
  brokerDefault: V | undefined,
): V {
  const override = valid[key];
  if (override !== undefined) {
    // validateTopicOverrides returned one of spec.values, spelled exactly.
    const value = spec.values.find((candidate) => candidate === override);
    assert(value !== undefined, `normalised ${key} is one of its values`);
    return value;
  }
  if (brokerDefault === undefined) return spec.default;
  assert(spec.values.includes(brokerDefault), `broker default for ${key} is not accepted: ${brokerDefault}`);
  return brokerDefault;
}

function effectiveFlush(valid: Record<string, string>, brokerDefault: string | undefined): string {
  const override = valid.flush;
  if (override !== undefined) return override;
  if (brokerDefault === undefined) return TOPIC_CONFIG_KEYS.flush.default;
  let normalised: string | undefined;
  try {
    normalised = normaliseFlush('flush', TOPIC_CONFIG_KEYS.flush, brokerDefault);
  } catch {
    normalised = undefined;
  }
  assert(normalised !== undefined, `broker default for flush is not accepted: ${brokerDefault}`);
  return normalised;
}

function invalidValue(key: TopicConfigKey, value: string): BrokerError {
  return new BrokerError(
    'INVALID_REQUEST',
    `invalid value ${JSON.stringify(shorten(value))} for topic config ${key}: use ${describeAcceptedValues(key)}`,
    { details: { configKey: key } },
  );
}

function shorten(text: string): string {
  return text.length > SHOWN_VALUE_LENGTH_MAX ? `${text.slice(0, SHOWN_VALUE_LENGTH_MAX)}…` : text;
}
