/**
 * The stderr lines a producing command prints while its producer retries a broker that went
 * away (outage-notice.ts): the producer reports every retry; an acknowledgement after one
 * means delivery works again. Gives up at the earliest delivery deadline among the batches
 * retried in this outage (the oldest waiting record's). Never on stdout, which holds only
 * records or a report. Used by `runnel produce` (waiting "lines") and `runnel perf produce`
 * (waiting "records").
 */
import { describeBrokerTrouble } from './cli-error.js';
import { formatClockTime, formatElapsed, OutageNotice } from './outage-notice.js';
import { formatCount } from './progress-line.js';

export interface ProducerOutageWords {
  /** The command as its lines name it, e.g. `perf produce`. */
  command: string;
  /** What waits, singular: `line`, `record`. */
  item: string;
  /** What happens again once the broker is back, e.g. `lines delivered`. */
  recovered: string;
}

export class ProducerOutage {
  protected readonly notice: OutageNotice;
  protected giveUpAtMs = Infinity;

  constructor(
    protected readonly brokers: string[],
    write: (line: string) => void,
    private readonly words: ProducerOutageWords,
  ) {
    this.notice = new OutageNotice({ command: words.command, write });
  }

  get isOngoing(): boolean {
    return this.notice.isOngoing;
  }

  onRetry(error: unknown, deliveryDeadlineMs: number, waitingCount: number): void {
    if (!this.notice.isOngoing) this.giveUpAtMs = Infinity;
    this.giveUpAtMs = Math.min(this.giveUpAtMs, deliveryDeadlineMs);
    this.notice.retrying(({ isFirst, outageMs }) =>
      `${describeBrokerTrouble(error, this.brokers)}${isFirst ? '' : ` for ${formatElapsed(outageMs)}`}; ` +
        `${formatCount(waitingCount)} ${this.words.item}${waitingCount === 1 ? '' : 's'} waiting, retrying until ${formatClockTime(this.giveUpAtMs)} (--delivery-timeout-ms), then exits 1`,
    );
  }

  onDelivered(): void {
    this.notice.recovered((outageMs) => `broker ${this.brokers.join(',')} is back; ${this.words.recovered} again after ${formatElapsed(outageMs)}`);
  }
}
