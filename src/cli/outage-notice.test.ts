import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import { formatElapsed, OutageNotice } from './outage-notice.js';

function makeNotice() {
  const clock = new ManualClock();
  const lines: string[] = [];
  const notice = new OutageNotice({ command: 'produce', clock, write: (line) => lines.push(line) });
  const retry = () => notice.retrying(({ isFirst, outageMs }) => (isFirst ? 'down' : `down for ${outageMs}`));
  return { clock, lines, notice, retry };
}

describe('OutageNotice', () => {
  it('prints when an outage starts, every 10 s in its first minute, then every minute, and once when it ends', () => {
    const { clock, lines, notice, retry } = makeNotice();
    notice.recovered(() => 'back'); // no outage: nothing
    retry();
    for (let step = 0; step < 60; step++) {
      clock.advance(2_000); // retries every 2 s for two minutes
      retry();
    }
    notice.recovered((outageMs) => `back after ${outageMs}`);
    notice.recovered(() => 'again'); // over already
    expect(lines).toEqual([
      'runnel produce: down',
      ...[10, 20, 30, 40, 50, 60].map((seconds) => `runnel produce: down for ${seconds * 1000}`),
      'runnel produce: down for 120000',
      'runnel produce: back after 120000',
    ]);
  });

  it('starts a new outage, with its own first line, after one ended', () => {
    const { clock, lines, notice, retry } = makeNotice();
    retry();
    clock.advance(1_000);
    notice.recovered((outageMs) => `back after ${outageMs}`);
    clock.advance(1_000);
    retry();
    expect(lines).toEqual(['runnel produce: down', 'runnel produce: back after 1000', 'runnel produce: down']);
  });

  it('formats elapsed times in whole seconds, minutes and hours', () => {
    expect([400, 4_300, 125_000, 7_500_000].map(formatElapsed)).toEqual(['0 s', '4 s', '2 min 5 s', '2 h 5 min']);
  });
});
