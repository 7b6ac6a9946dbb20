import { describe, expect, it } from 'vitest';
import { BrokerError, isBrokerError } from '../errors/index.js';
import { limits } from './limits.js';
import { isValidTopicName, validateTopicName } from './topic-name.js';

function rejectionOf(name: string): BrokerError {
  try {
    validateTopicName(name);
  } catch (error) {
    if (isBrokerError(error)) return error;
    throw error;
  }
  throw new Error(`expected ${JSON.stringify(name)} to be rejected`);
}

describe('topic names', () => {
  it.each(['orders', 'a', 'A', '0', 'orders.v2', 'orders_v2', 'orders-v2', '...', '.hidden', 'a..b', '_-.', 'Mixed.Case-09_x'])(
    'accepts %j, made only of a-z A-Z 0-9 . _ -',
    (name) => {
      expect(isValidTopicName(name)).toBe(true);
      expect(() => validateTopicName(name)).not.toThrow();
    },
  );

  it('accepts a name of exactly 249 characters', () => {
    expect(limits.topicNameLengthMax).toBe(249);
    const name = 'x'.repeat(249);
    expect(isValidTopicName(name)).toBe(true);
    expect(() => validateTopicName(name)).not.toThrow();
  });

  it('rejects a name of 250 characters, one over the limit', () => {
    const name = 'x'.repeat(250);
    expect(isValidTopicName(name)).toBe(false);
    expect(rejectionOf(name).reason).toBe('INVALID_TOPIC_NAME');
  });

  it.each([
    ['the empty name', ''],
    ['"."', '.'],
    ['".."', '..'],
    ['"/"', '/'],
    ['a path escaping the data directory', '../x'],
    ['an absolute path', '/etc'],
    ['a name with a slash', 'a/b'],
    ['a name with a backslash', 'a\\b'],
    ['a name with a space', 'a b'],
    ['a lone space', ' '],
    ['a name with a trailing newline', 'orders\n'],
    ['a name with a NUL byte', 'a\u0000b'],
    ['a name with an accented letter', 'café'],
    ['a name with a non-Latin script', 'заказы'],
    ['a name with an emoji', 'orders🚀'],
    ['a name with a colon', 'a:b'],
    ['a name with a plus sign', 'a+b'],
  ])('rejects %s with INVALID_TOPIC_NAME', (_label, name) => {
    expect(isValidTopicName(name)).toBe(false);
    const error = rejectionOf(name);
    expect(error).toBeInstanceOf(BrokerError);
    expect(error.reason).toBe('INVALID_TOPIC_NAME');
    expect(error.retriable).toBe(false);
  });

  it('says in the rejection which characters and lengths are allowed', () => {
    const error = rejectionOf('a/b');
    expect(error.message).toContain('"a/b"');
    expect(error.message).toContain('1–249');
    expect(error.message).toContain('a-z A-Z 0-9 . _ -');
    expect(error.message).toContain('not "." or ".."');
  });

  it('shortens a very long rejected name in the message and in the error topic field', () => {
    const name = 'y'.repeat(10_000);
    const error = rejectionOf(name);
    expect(error.message.length).toBeLessThan(300);
    expect(error.message).toContain('…');
    expect(error.topic?.length).toBe(limits.topicNameLengthMax);
  });
});
