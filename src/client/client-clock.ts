/**
 * The wall clock the client uses by default. Unlike common's `systemClock`, its timers keep
 * the process alive: a linger timer or a retry backoff stands for records or a call the
 * application is still waiting on, and Node must not exit under it with the work undone.
 * Everything that ends (close()) cancels its timers, so an idle, closed client holds none.
 */
import type { Clock } from '../common/index.js';

export const clientClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};
