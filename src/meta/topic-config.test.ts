import { describe, expect, it } from 'vitest';
import { AssertionError } from '../common/index.js';
import { defaults, limits } from '../config/index.js';
import { BrokerError } from '../errors/index.js';
import { BATCH_HEADER_BYTES } from '../protocol/index.js';
import {
  TOPIC_CONFIG_KEYS,
  describeEffectiveConfig,
  effectiveTopicConfig,
  timestampWindowMs,
  validateTopicOverrides,
  type TopicConfigKey,
} from './topic-config.js';

function rejection(overrides: Record<string, string>): BrokerError {
  try {
    validateTopicOverrides(overrides);
  } catch (error) {
    if (error instanceof BrokerError) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(overrides)} to be rejected`);
}

describe('validateTopicOverrides', () => {
  it('refuses a value longer than the limit before looking at it, and accepts one at the limit', () => {
    const over = rejection({ 'cleanup.policy': ','.repeat(limits.topicConfigValueLengthMax + 1) });
    expect(over.reason).toBe('INVALID_REQUEST');
    expect(over.message).toContain(`at most ${limits.topicConfigValueLengthMax} characters`);
    expect(validateTopicOverrides({ flush: 'always'.padStart(limits.topicConfigValueLengthMax) })).toEqual({ flush: 'always' });
  });

  it('accepts every key at both ends of its range and normalises the spelling', () => {
    const cases: [TopicConfigKey, string, string][] = [
      ['retention.ms', '-1', '-1'],
      ['retention.ms', '0', '0'],
      ['retention.ms', String(Number.MAX_SAFE_INTEGER), String(Number.MAX_SAFE_INTEGER)],
      ['retention.bytes', '-1', '-1'],
      ['retention.bytes', '0', '0'],
      ['segment.bytes', String(limits.segmentBytesMin), String(limits.segmentBytesMin)],
      ['segment.bytes', String(limits.segmentBytesMax), String(limits.segmentBytesMax)],
      ['segment.ms', '1', '1'],
      ['max.message.bytes', String(BATCH_HEADER_BYTES), String(BATCH_HEADER_BYTES)],
      ['max.message.bytes', String(limits.batchBytesMax), String(limits.batchBytesMax)],
      ['min.insync.replicas', '1', '1'],
      ['min.insync.replicas', String(limits.replicationFactorMax), String(limits.replicationFactorMax)],
      ['index.interval.bytes', String(limits.indexIntervalBytesMin), String(limits.indexIntervalBytesMin)],
      ['index.interval.bytes', String(limits.segmentBytesMax), String(limits.segmentBytesMax)],
      ['cleanup.policy', 'Delete', 'delete'],
      ['flush', 'always', 'always'],
      ['flush', 'NEVER', 'never'],
      ['flush', 'interval:1', 'interval:1'],
      ['flush', `interval:${limits.flushIntervalMsMax}`, `interval:${limits.flushIntervalMsMax}`],
      ['flush', 'interval:0050', 'interval:50'],
      ['message.timestamp.type', 'createtime', 'CreateTime'],
      ['message.timestamp.type', 'LogAppendTime', 'LogAppendTime'],
      ['segment.bytes', ' 0004096 ', '4096'],
    ];
    for (const [key, value, expected] of cases) {
      expect(validateTopicOverrides({ [key]: value }), `${key}=${value}`).toEqual({ [key]: expected });
    }
  });

  it('is idempotent on its own output and sorts keys', () => {
    const once = validateTopicOverrides({ 'segment.ms': '010', flush: 'Interval:7', 'cleanup.policy': 'DELETE' });
    expect(Object.keys(once)).toEqual(['cleanup.policy', 'flush', 'segment.ms']);
    expect(validateTopicOverrides(once)).toEqual(once);
  });

  it('rejects one past each limit, naming the key and what it accepts', () => {
    const cases: [TopicConfigKey, string, string][] = [
      ['segment.bytes', String(limits.segmentBytesMax + 1), `from ${limits.segmentBytesMin} to ${limits.segmentBytesMax}`],
      ['segment.bytes', String(limits.segmentBytesMin - 1), `from ${limits.segmentBytesMin} to ${limits.segmentBytesMax}`],
      ['max.message.bytes', String(limits.batchBytesMax + 1), `to ${limits.batchBytesMax}`],
      ['max.message.bytes', String(BATCH_HEADER_BYTES - 1), `from ${BATCH_HEADER_BYTES}`],
      ['index.interval.bytes', String(limits.indexIntervalBytesMin - 1), `from ${limits.indexIntervalBytesMin}`],
      ['index.interval.bytes', String(limits.segmentBytesMax + 1), `to ${limits.segmentBytesMax}`],
      ['min.insync.replicas', '0', 'from 1'],
      ['min.insync.replicas', String(limits.replicationFactorMax + 1), `to ${limits.replicationFactorMax}`],
      ['retention.ms', '-2', 'or -1 for no limit'],
      ['retention.ms', String(Number.MAX_SAFE_INTEGER + 1), 'integer'],
      ['retention.bytes', '-2', 'or -1 for no limit'],
      ['segment.ms', '0', 'from 1'],
      ['segment.ms', '-1', 'from 1'],
      ['flush', 'interval:0', 'interval:<ms>'],
      ['flush', `interval:${limits.flushIntervalMsMax + 1}`, `ms ≤ ${limits.flushIntervalMsMax}`],
      ['flush', 'sometimes', 'always, never, or interval:<ms>'],
      ['flush', 'interval:', 'interval:<ms>'],
      ['flush', 'interval:1s', 'interval:<ms>'],
      ['message.timestamp.type', 'BrokerTime', 'one of CreateTime, LogAppendTime'],
      ['cleanup.policy', 'archive', 'one of delete'],
      ['retention.ms', '1e3', 'integer'],
      ['retention.ms', '', 'integer'],
      ['retention.ms', '1.5', 'integer'],
      ['segment.bytes', '0x1000', 'integer'],
    ];
    for (const [key, value, accepted] of cases) {
      const error = rejection({ [key]: value });
      expect(error.reason, `${key}=${value}`).toBe('INVALID_REQUEST');
      expect(error.message, `${key}=${value}`).toContain(`topic config ${key}`);
      expect(error.message, `${key}=${value}`).toContain(accepted);
      expect(error.details.configKey).toBe(key);
    }
  });

  it('rejects an unknown key, listing the known ones', () => {
    const error = rejection({ 'retention.msx': '1' });
    expect(error.reason).toBe('INVALID_REQUEST');
    expect(error.message).toContain('unknown topic config "retention.msx"');
    for (const key of Object.keys(TOPIC_CONFIG_KEYS)) expect(error.message).toContain(key);
    expect(rejection(JSON.parse('{"__proto__":"1"}') as Record<string, string>).message).toContain('unknown topic config "__proto__"');
    expect(rejection({ 'log.retention.ms': '1' }).reason).toBe('INVALID_REQUEST');
  });

  it('refuses the first unknown key as sent, before sorting the whole map (a request may carry many)', () => {
    const overrides: Record<string, string> = { 'zz.unknown': '1' };
    for (let i = 0; i < 100_000; i++) overrides[`k${i}`] = '1';
    overrides['aa.unknown'] = '1';
    expect(() => validateTopicOverrides(overrides)).toThrow(/unknown topic config "zz\.unknown"/);
  });

  it('rejects compaction with a message saying it is not supported yet', () => {
    for (const value of ['compact', 'COMPACT', 'compact,delete', 'delete, compact']) {
      const error = rejection({ 'cleanup.policy': value });
      expect(error.reason).toBe('INVALID_REQUEST');
      expect(error.message).toContain('compaction is not supported yet');
      expect(error.message).toContain('cleanup.policy=delete');
    }
  });

  it('rejects a value that is not a string', () => {
    expect(rejection({ 'retention.ms': 5 as unknown as string }).reason).toBe('INVALID_REQUEST');
  });

  it('accepts every catalogue default as an override', () => {
    for (const [key, spec] of Object.entries(TOPIC_CONFIG_KEYS)) {
      expect(validateTopicOverrides({ [key]: String(spec.default) }), key).toEqual({ [key]: String(spec.default) });
    }
  });
});

describe('effectiveTopicConfig', () => {
  it('uses the catalogue defaults from config/defaults.ts when nothing is overridden', () => {
    expect(effectiveTopicConfig({})).toEqual({
      retentionMs: defaults.retentionMs,
      retentionBytes: defaults.retentionBytes,
      segmentBytes: defaults.segmentBytes,
      segmentMs: defaults.segmentMs,
      maxMessageBytes: defaults.maxMessageBytes,
      minInsyncReplicas: defaults.minInsyncReplicas,
      cleanupPolicy: 'delete',
      flush: defaults.flush,
      indexIntervalBytes: defaults.indexIntervalBytes,
      timestampType: 'CreateTime',
      timestampAfterMaxMs: defaults.messageTimestampAfterMaxMs,
      timestampBeforeMaxMs: defaults.messageTimestampBeforeMaxMs,
    });
  });

  it('reads the create-time timestamp window straight from stored overrides, as effectiveTopicConfig does', () => {
    expect(timestampWindowMs({})).toEqual({ afterMaxMs: defaults.messageTimestampAfterMaxMs, beforeMaxMs: defaults.messageTimestampBeforeMaxMs });
    const overrides = validateTopicOverrides({ 'message.timestamp.after.max.ms': '0060000', 'message.timestamp.before.max.ms': ' 1000 ' });
    expect(timestampWindowMs(overrides)).toEqual({ afterMaxMs: 60_000, beforeMaxMs: 1_000 });
    const effective = effectiveTopicConfig(overrides);
    expect([effective.timestampAfterMaxMs, effective.timestampBeforeMaxMs]).toEqual([60_000, 1_000]);
  });

  it('lets a topic override beat a broker default, and a broker default beat the catalogue', () => {
    const effective = effectiveTopicConfig(
      { 'retention.ms': '-1', flush: 'always', 'message.timestamp.type': 'LogAppendTime' },
      { retentionMs: 1_000, segmentBytes: 1_048_576, flush: 'never', timestampType: 'CreateTime' },
    );
    expect(effective).toMatchObject({
      retentionMs: -1,
      segmentBytes: 1_048_576,
      flush: 'always',
      timestampType: 'LogAppendTime',
      maxMessageBytes: defaults.maxMessageBytes,
    });
  });

  it('rejects a bad override like validateTopicOverrides', () => {
    expect(() => effectiveTopicConfig({ 'segment.bytes': '1' })).toThrow(BrokerError);
  });

  it('treats a broker default outside its range as a bug', () => {
    expect(() => effectiveTopicConfig({}, { segmentBytes: limits.segmentBytesMax + 1 })).toThrow(AssertionError);
    expect(() => effectiveTopicConfig({}, { flush: 'sometimes' })).toThrow(AssertionError);
  });
});

describe('describeEffectiveConfig', () => {
  it('lists every key, sorted, with its effective value as a string', () => {
    const described = describeEffectiveConfig({ 'segment.bytes': '2048' }, { retentionBytes: 1_000_000 });
    expect(Object.keys(described)).toEqual(Object.keys(TOPIC_CONFIG_KEYS).sort());
    expect(described).toMatchObject({
      'segment.bytes': '2048',
      'retention.bytes': '1000000',
      'retention.ms': String(defaults.retentionMs),
      'cleanup.policy': 'delete',
      flush: defaults.flush,
      'message.timestamp.type': 'CreateTime',
    });
  });
});
