/**
 * `ProgressLine`: rate and progress of a long-running command on stderr, only when stderr is
 * a terminal (CLI.md: scripts reading stderr see nothing extra). `rewrite` keeps one status
 * line up to date in place; `append` prints a new line each time (perf, like Kafka's
 * perf tools, so the history stays on screen).
 *
 * Timers come from `systemClock`, whose timers are unref'd: a progress line never keeps the
 * process alive by itself.
 */
import { systemClock, type Clock } from '../common/index.js';

export interface ProgressLineOptions {
  render: () => string;
  intervalMs: number;
  mode: 'rewrite' | 'append';
  stream?: NodeJS.WriteStream;
  clock?: Clock;
}

export class ProgressLine {
  private readonly render: () => string;
  private readonly intervalMs: number;
  private readonly mode: 'rewrite' | 'append';
  private readonly stream: NodeJS.WriteStream;
  private readonly clock: Clock;
  private readonly isEnabled: boolean;
  private cancelTimer: (() => void) | undefined;
  private hasWritten = false;

  constructor(options: ProgressLineOptions) {
    this.render = options.render;
    this.intervalMs = options.intervalMs;
    this.mode = options.mode;
    this.stream = options.stream ?? process.stderr;
    this.clock = options.clock ?? systemClock;
    this.isEnabled = this.stream.isTTY === true;
  }

  start(): void {
    if (!this.isEnabled || this.cancelTimer !== undefined) return;
    this.schedule();
  }

  /** Draws the line now (a step of known work finished), besides the timed updates; nothing when not a terminal. */
  update(): void {
    if (this.isEnabled) this.write();
  }

  /** Stops updating; a rewritten line is finished with a newline (after one last update). */
  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.isEnabled && this.hasWritten && this.mode === 'rewrite') {
      this.write();
      this.stream.write('\n');
    }
    this.hasWritten = false;
  }

  /**
   * Prints `text` as a line of its own on the progress stream, whether or not it is a
   * terminal (a notice, not progress): a status line being rewritten is cleared first and
   * redrawn at the next update, so the two never share a line.
   */
  writeLine(text: string): void {
    const isOverwriting = this.isEnabled && this.hasWritten && this.mode === 'rewrite';
    this.stream.write(isOverwriting ? `\r\x1b[2K${text}\n` : `${text}\n`);
  }

  private schedule(): void {
    this.cancelTimer = this.clock.setTimer(this.intervalMs, () => {
      this.write();
      this.schedule();
    });
  }

  private write(): void {
    const text = this.render();
    this.stream.write(this.mode === 'rewrite' ? `\r\x1b[2K${text}` : `${text}\n`);
    this.hasWritten = true;
  }
}

/** 1234567 → "1,234,567". */
export function formatCount(count: number): string {
  return Math.round(count).toLocaleString('en-US');
}

/** Per-second rate of `count` over `elapsedMs`, 0 before any time passed. */
export function ratePerSec(count: number, elapsedMs: number): number {
  return elapsedMs <= 0 ? 0 : (count * 1000) / elapsedMs;
}
