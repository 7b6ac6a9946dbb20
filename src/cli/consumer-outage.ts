/**
 * The stderr lines a consuming command prints while the broker is unreachable
 * (outage-notice.ts): at start, while its look-ups are retried (`onStartRetry`, `onStarted`),
 * and while reading, from the consumer's `onRetry` and `onRecovered`. Used by `runnel consume`
 * and `runnel perf consume`.
 */
import { describeBrokerTrouble } from './cli-error.js';
import { formatClockTime, formatElapsed, OutageNotice } from './outage-notice.js';

/**
 * The lines about an outage (outage-notice.ts): on while any partition's stream is
 * retrying, over when every one of them streams again.
 */
export class ConsumerOutage {
  private readonly notice: OutageNotice;
  private readonly topic: string;
  private readonly brokers: string[];
  /** Partitions retrying now; bounded by the assignment. */
  private readonly retrying = new Set<number>();
  private giveUpAtMs = Infinity;

  constructor(command: string, topic: string, brokers: string[], write: (line: string) => void) {
    this.notice = new OutageNotice({ command, write });
    this.topic = topic;
    this.brokers = brokers;
  }

  get isOngoing(): boolean {
    return this.notice.isOngoing;
  }

  onRetry(error: unknown, partition: number, giveUpAtMs: number): void {
    if (!this.notice.isOngoing) this.giveUpAtMs = Infinity;
    this.retrying.add(partition);
    this.giveUpAtMs = Math.min(this.giveUpAtMs, giveUpAtMs);
    const until = Number.isFinite(this.giveUpAtMs) ? `${formatClockTime(this.giveUpAtMs)}, then exits 1` : 'Ctrl-C';
    this.notice.retrying(({ isFirst, outageMs }) =>
      `${describeBrokerTrouble(error, this.brokers)}${isFirst ? '' : ` for ${formatElapsed(outageMs)}`}; retrying until ${until}, reading resumes where it stopped`,
    );
  }

  onRecovered(partition: number): void {
    this.retrying.delete(partition);
    if (this.retrying.size > 0) return;
    this.notice.recovered((outageMs) => `broker ${this.brokers.join(',')} is back; reading ${this.topic} again after ${formatElapsed(outageMs)}`);
  }

  /** The start-up look-ups failed and will be retried until `giveUpAtMs`; no partition is read meanwhile. */
  onStartRetry(error: unknown, giveUpAtMs: number): void {
    this.notice.retrying(({ isFirst, outageMs }) =>
      `${describeBrokerTrouble(error, this.brokers)}${isFirst ? '' : ` for ${formatElapsed(outageMs)}`}; ` +
        `nothing read yet, retrying until ${formatClockTime(giveUpAtMs)} (--api-timeout-ms), then exits 1`,
    );
  }

  /** The start-up look-ups succeeded: ends a start-up outage, if there was one. */
  onStarted(): void {
    this.notice.recovered((outageMs) => `broker ${this.brokers.join(',')} is reachable after ${formatElapsed(outageMs)}; reading ${this.topic}`);
  }
}
