/**
 * `OutageNotice`: what a streaming command (`produce`, `consume`, the `perf` pair) prints on
 * stderr while its broker cannot be reached or answers only retriable errors, so an operator
 * watching a log shipper sees the stall instead of silence. One line when the outage starts,
 * the same line (with how long it has lasted) every 10 s during its first minute and then
 * once a minute, and one line when it ends. Each line starts with `runnel <command>: ` so it
 * can be grepped.
 *
 * Unlike `ProgressLine`, the lines are printed when stderr is not a terminal too: a shipper's
 * stderr usually goes to a journal or a file, which is where the operator looks. They never
 * go to stdout, so `consume --format json | jq` stays parseable.
 *
 * Driven by the client's retry reports (the producer's and the consumer's `onRetry`), which
 * come at least every couple of seconds while an outage lasts (the retry backoff is capped at
 * 2 s), so no timer of its own is needed and none can keep the process alive.
 *
 * Owns (single writer: the command's event-loop code): whether an outage is on, since when,
 * and when it last printed.
 */
import { systemClock, type Clock } from '../common/index.js';

export interface OutageNoticeOptions {
  /** The command's name, as in `runnel produce: …`. */
  command: string;
  /** Prints one line (without its newline); default: stderr. */
  write?: (line: string) => void;
  clock?: Clock;
}

/** What a retrying line may say about the outage so far. */
export interface OutageSoFar {
  /** True for the outage's first line. */
  isFirst: boolean;
  outageMs: number;
}

/** Repeat every 10 s during the first minute, then every minute: bounded, yet fresh when it matters. */
const REPEAT_INTERVAL_MS_EARLY = 10_000;
const REPEAT_INTERVAL_MS_LATE = 60_000;
const EARLY_PHASE_MS = 60_000;

export class OutageNotice {
  private readonly prefix: string;
  private readonly write: (line: string) => void;
  private readonly clock: Clock;
  /** When the current outage started; undefined when there is none. */
  private startedMs: number | undefined;
  private lastPrintedMs = 0;

  constructor(options: OutageNoticeOptions) {
    this.prefix = `runnel ${options.command}: `;
    this.write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.clock = options.clock ?? systemClock;
  }

  get isOngoing(): boolean {
    return this.startedMs !== undefined;
  }

  /** A retry happened: starts an outage and prints `render`'s line, or prints it again when due. */
  retrying(render: (soFar: OutageSoFar) => string): void {
    const nowMs = this.clock.nowMs();
    if (this.startedMs === undefined) {
      this.startedMs = nowMs;
      this.print(render({ isFirst: true, outageMs: 0 }), nowMs);
      return;
    }
    const outageMs = nowMs - this.startedMs;
    const intervalMs = this.lastPrintedMs - this.startedMs < EARLY_PHASE_MS ? REPEAT_INTERVAL_MS_EARLY : REPEAT_INTERVAL_MS_LATE;
    if (nowMs - this.lastPrintedMs >= intervalMs) this.print(render({ isFirst: false, outageMs }), nowMs);
  }

  /**
   * Delivery or reading works again: ends the outage with `render`'s line (given how long it
   * lasted, from its first line). Nothing happens when no outage is on.
   */
  recovered(render: (outageMs: number) => string): void {
    if (this.startedMs === undefined) return;
    const nowMs = this.clock.nowMs();
    const outageMs = nowMs - this.startedMs;
    this.startedMs = undefined;
    this.print(render(outageMs), nowMs);
  }

  private print(text: string, nowMs: number): void {
    this.lastPrintedMs = nowMs;
    this.write(`${this.prefix}${text}`);
  }
}

/** 4_300 → "4 s", 125_000 → "2 min 5 s", 7_500_000 → "2 h 5 min". */
export function formatElapsed(elapsedMs: number): string {
  const totalSeconds = Math.max(0, Math.round(elapsedMs / 1000));
  if (totalSeconds < 60) return `${totalSeconds} s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  if (totalMinutes < 60) return `${totalMinutes} min ${totalSeconds % 60} s`;
  return `${Math.floor(totalMinutes / 60)} h ${totalMinutes % 60} min`;
}

/** The local time of day of `timeMs` as HH:MM:SS (what an operator compares with a clock). */
export function formatClockTime(timeMs: number): string {
  return new Date(timeMs).toTimeString().slice(0, 8);
}
