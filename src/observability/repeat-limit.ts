/**
 * Bounds the log lines that a client, a bad disk or a timer can set off again and again (a
 * request failing the same way on every call, a retention run or an interval flush failing on
 * every tick). Per key (the line's message plus the fields that say what it is about: topic,
 * partition, path, method), the first line of each `intervalMs` is logged and the rest are
 * dropped and counted; the next line logged for that key carries `suppressed`, how many were
 * dropped since the one before (Linux's printk_ratelimit does the same: "N callbacks
 * suppressed"). A flood then costs one line per key per interval, and the count still says how
 * often it happened.
 *
 * Only the lines that can repeat without bound go through a limited logger; one-off lines
 * (start-up, a partition going offline, a topic created) use the plain one.
 *
 * The key map is bounded (`keysMax`): when it is full, keys whose interval is over are
 * forgotten first, and a new key that still does not fit shares one overflow key, so at most
 * `keysMax + 1` lines per level are logged per interval, however many partitions fail. A key
 * forgotten with lines dropped and not yet counted on a line loses that count: it has been
 * quiet for a whole interval, and keeping it would keep its slot for good (the burst that
 * filled the map would then push every later new key into the overflow key, one line a
 * minute for all of them, for the life of the process).
 */
import type { Clock } from '../common/clock.js';
import type { Logger } from './logger.js';

/** One line per key per minute: a flood stays visible, and a day of it costs 1,440 lines. */
export const REPEAT_INTERVAL_MS = 60_000;
/** Distinct keys remembered; 1,024 × ~100 bytes. Past it, new keys share one overflow key. */
export const REPEAT_KEYS_MAX = 1_024;

const OVERFLOW_KEY = '\u0000overflow';

export interface RepeatLimiterOptions {
  clock: Clock;
  intervalMs?: number;
  keysMax?: number;
}

export class RepeatLimiter {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly keysMax: number;
  /** Key → when its current interval began and how many lines it dropped since. */
  private readonly byKey = new Map<string, { sinceMs: number; suppressedCount: number }>();

  constructor(options: RepeatLimiterOptions) {
    this.clock = options.clock;
    this.intervalMs = options.intervalMs ?? REPEAT_INTERVAL_MS;
    this.keysMax = options.keysMax ?? REPEAT_KEYS_MAX;
  }

  /**
   * Whether a line with `key` is logged now: `undefined` drops it (counted); otherwise the
   * fields to add to it, `{ suppressed: n }` when n lines of the key were dropped before it.
   */
  admit(key: string): { suppressed?: number } | undefined {
    const nowMs = this.clock.nowMs();
    let slot = this.byKey.get(key);
    if (slot === undefined && this.byKey.size >= this.keysMax) {
      this.forgetExpiredKeys(nowMs);
      if (this.byKey.size >= this.keysMax) {
        key = OVERFLOW_KEY;
        slot = this.byKey.get(key);
      }
    }
    if (slot !== undefined && nowMs - slot.sinceMs < this.intervalMs) {
      slot.suppressedCount++;
      return undefined;
    }
    const suppressedCount = slot?.suppressedCount ?? 0;
    this.byKey.set(key, { sinceMs: nowMs, suppressedCount: 0 });
    return suppressedCount > 0 ? { suppressed: suppressedCount } : {};
  }

  /**
   * Drops keys whose interval is over: their next line is logged anyway. Those that dropped
   * lines since their last one go too (that count is lost; see the file header): kept, they
   * would hold their slots until the same line came again, maybe never.
   */
  private forgetExpiredKeys(nowMs: number): void {
    for (const [key, slot] of this.byKey) {
      if (key !== OVERFLOW_KEY && nowMs - slot.sinceMs >= this.intervalMs) this.byKey.delete(key);
    }
  }
}

/**
 * A logger whose lines go through `limiter`, keyed by level, message and the values of
 * `keyFields` (in the line's fields or bound by `child`). Every level is limited.
 */
export function limitRepeats(logger: Logger, limiter: RepeatLimiter, keyFields: readonly string[], bound: Record<string, unknown> = {}): Logger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (fields: object, message: string): void => {
      const all: Record<string, unknown> = { ...bound, ...(fields as Record<string, unknown>) };
      const key = [level, message, ...keyFields.map((field) => String(all[field] ?? ''))].join('\u0000');
      const extra = limiter.admit(key);
      if (extra !== undefined) logger[level]({ ...fields, ...extra }, message);
    };
  return {
    error: write('error'),
    warn: write('warn'),
    info: write('info'),
    debug: write('debug'),
    child: (bindings) => limitRepeats(logger.child(bindings), limiter, keyFields, { ...bound, ...bindings }),
  };
}
