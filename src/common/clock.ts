/**
 * Time as a seam. Code that needs the time or a timer takes a `Clock`, so tests and the
 * simulator can drive time themselves instead of waiting on the wall clock.
 */

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  nowMs(): number;
  /** Calls `callback` once after `delayMs`; the returned function cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    // A pending flush or retention timer must never keep a process alive on its own.
    timer.unref();
    return () => clearTimeout(timer);
  },
};

/** A clock moved by hand, for unit tests. */
export class ManualClock implements Clock {
  private timeMs: number;
  private timers: { dueMs: number; callback: () => void; id: number }[] = [];
  private nextId = 0;

  constructor(startMs = 1_700_000_000_000) {
    this.timeMs = startMs;
  }

  nowMs(): number {
    return this.timeMs;
  }

  setTimer(delayMs: number, callback: () => void): () => void {
    const id = this.nextId++;
    this.timers.push({ dueMs: this.timeMs + delayMs, callback, id });
    return () => {
      this.timers = this.timers.filter((timer) => timer.id !== id);
    };
  }

  /** Moves time forward and fires every timer that came due, in due order. */
  advance(deltaMs: number): void {
    const targetMs = this.timeMs + deltaMs;
    for (;;) {
      const due = this.timers.filter((timer) => timer.dueMs <= targetMs).sort((a, b) => a.dueMs - b.dueMs)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((timer) => timer.id !== due.id);
      this.timeMs = Math.max(this.timeMs, due.dueMs);
      due.callback();
    }
    this.timeMs = targetMs;
  }
}
