import { describe, expect, it } from 'vitest';
import { BrokerError } from '../../errors/index.js';
import { CliError } from '../cli-error.js';
import { consumeSummary, translateConsumeError } from './consume.js';

describe('translateConsumeError', () => {
  const outOfRange = (offset: number, logStartOffset: number, logEndOffset: number) =>
    new BrokerError('OFFSET_OUT_OF_RANGE', `offset ${offset} is outside logs-0's range [${logStartOffset}, ${logEndOffset}]`, {
      topic: 'logs',
      partition: 0,
      details: { offset: String(offset), logStartOffset, logEndOffset },
    });

  it('blames retention for an offset below the log start', () => {
    const error = translateConsumeError(outOfRange(5, 100, 200), 'logs');
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).message).toMatch(/^records of logs-0 were deleted by retention before they were read/);
  });

  it('says the log got shorter, not retention, for an offset past the log end (the topic was deleted and created again)', () => {
    const error = translateConsumeError(outOfRange(500, 0, 3), 'logs');
    expect((error as CliError).message).toMatch(/^logs-0 now ends at offset 3, before offset 500 this consumer had reached: the topic was deleted and created again/);
    expect((error as CliError).message).not.toMatch(/retention/);
  });

  it("quotes the broker's message, not the consumer's advice to seek, when the consumer wraps it", () => {
    const broker = outOfRange(5, 100, 200);
    const wrapped = new BrokerError('OFFSET_OUT_OF_RANGE', "records of logs-0 from offset 5 up to 100 were deleted (retention) before this consumer read them; autoOffsetReset is 'none', so the partition stops here: seek it", {
      topic: 'logs',
      partition: 0,
      details: broker.details,
      cause: broker,
    });
    expect((translateConsumeError(wrapped, 'logs') as CliError).message).toBe(
      "records of logs-0 were deleted by retention before they were read (offset 5 is outside logs-0's range [100, 200]): start again with --from beginning",
    );
  });

  it('passes other errors through', () => {
    const other = new BrokerError('TOPIC_NOT_FOUND', 'no topic logs', { topic: 'logs' });
    expect(translateConsumeError(other, 'logs')).toBe(other);
  });
});

describe('consumeSummary', () => {
  it('reports the reading time and the rate beside the count, also for a replay shorter than a second', () => {
    expect(consumeSummary('app-logs', 400_000, 800)).toBe('consumed 400,000 records from app-logs in 0.8 s (500,000 records/s)');
    expect(consumeSummary('app-logs', 0, 0)).toBe('consumed 0 records from app-logs in 0.0 s (0 records/s)');
  });
});
