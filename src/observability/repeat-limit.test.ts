import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { recordingLogger } from '../../test/support/recording-logger.js';
import { limitRepeats, RepeatLimiter } from './repeat-limit.js';

describe('limitRepeats', () => {
  it('logs the first line of a key per interval and counts the dropped ones on the next line', () => {
    const clock = new ManualClock();
    const sink = recordingLogger();
    const logger = limitRepeats(sink, new RepeatLimiter({ clock, intervalMs: 60_000 }), ['topic', 'partition']);
    for (let i = 0; i < 1_000; i++) logger.error({ topic: 't', partition: 0, err: `EIO ${i}` }, 'retention failed');
    expect(sink.calls).toEqual([{ level: 'error', fields: { topic: 't', partition: 0, err: 'EIO 0' }, message: 'retention failed' }]);
    clock.advance(60_000);
    logger.error({ topic: 't', partition: 0, err: 'EIO again' }, 'retention failed');
    expect(sink.calls[1]).toEqual({ level: 'error', fields: { topic: 't', partition: 0, err: 'EIO again', suppressed: 999 }, message: 'retention failed' });
    clock.advance(60_000);
    logger.error({ topic: 't', partition: 0, err: 'EIO' }, 'retention failed');
    expect(sink.calls[2]?.fields).not.toHaveProperty('suppressed');
  });

  it('keeps keys apart by message, level and key fields, including fields bound by child', () => {
    const clock = new ManualClock();
    const sink = recordingLogger();
    const logger = limitRepeats(sink, new RepeatLimiter({ clock }), ['topic', 'partition']);
    for (let i = 0; i < 10; i++) {
      logger.child({ topic: 't', partition: 0 }).warn({}, 'interval flush failed');
      logger.child({ topic: 't', partition: 1 }).warn({}, 'interval flush failed');
      logger.warn({ topic: 't', partition: 1 }, 'another line');
      logger.error({ topic: 't', partition: 1 }, 'another line');
    }
    expect(sink.calls).toHaveLength(4);
  });

  it('logs at most keysMax + 1 lines per interval however many keys repeat', () => {
    const clock = new ManualClock();
    const sink = recordingLogger();
    const logger = limitRepeats(sink, new RepeatLimiter({ clock, keysMax: 8 }), ['partition']);
    for (let round = 0; round < 5; round++) {
      for (let partition = 0; partition < 100; partition++) logger.error({ partition }, 'retention failed');
    }
    expect(sink.calls).toHaveLength(9);
    // After the interval, keys with nothing dropped make room; the overflow key reports its count.
    clock.advance(60_000);
    for (let partition = 0; partition < 100; partition++) logger.error({ partition }, 'retention failed');
    expect(sink.calls.length).toBeLessThanOrEqual(9 + 9);
    expect(sink.calls.slice(9).some((call) => typeof call.fields.suppressed === 'number')).toBe(true);
  });

  it('keeps new keys apart once the keys that filled the map have gone quiet, even those that dropped lines', () => {
    const clock = new ManualClock();
    const sink = recordingLogger();
    const logger = limitRepeats(sink, new RepeatLimiter({ clock, keysMax: 4 }), ['partition']);
    // A burst over four partitions, each repeating (so each key has a count not reported yet).
    for (let partition = 0; partition < 4; partition++) {
      for (let i = 0; i < 3; i++) logger.error({ partition }, 'retention failed');
    }
    expect(sink.calls).toHaveLength(4);
    // The burst is over; a minute later two other partitions fail once each: both are lines of
    // their own, not one line under a key shared with every later newcomer.
    clock.advance(60_000);
    logger.error({ partition: 10 }, 'partition log cannot be opened');
    logger.error({ partition: 11 }, 'partition log cannot be opened');
    expect(sink.calls.slice(4).map((call) => call.fields.partition)).toEqual([10, 11]);
  });
});
