/**
 * The pino root logger and the `Logger` type every other folder imports. Components get a
 * child logger with their fixed fields (component, topic, partition) bound once, so messages
 * stay short and an operator can grep by field. JSON lines on stdout by default.
 */
import { pino } from 'pino';
import { BrokerError } from '../errors/index.js';

/** The subset of pino's logger that Runnel code uses; a pino logger satisfies it. */
export interface Logger {
  error(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
  debug(fields: object, message: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface RootLoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go; stdout (fd 1) by default. */
  destinationFd?: number;
}

/** The root logger of a process, which can also hand out a logger that writes at once. */
export interface RootLogger extends Logger {
  /**
   * A logger (with `bindings`) whose lines are written before each call returns, on the main
   * thread, after every line buffered before them: for the few lines that must be out even if
   * the process ends right after (a forced stop). Ordinary lines are written later by libuv's
   * thread pool, which I/O hung on a dead disk can fill, and whatever is still buffered when
   * the process is killed is gone. A line whose write is already running in the pool is left
   * to it. Costs a synchronous write per line: not for the hot path.
   */
  synchronous(bindings: Record<string, unknown>): Logger;
}

export function createRootLogger(options: RootLoggerOptions = {}): RootLogger {
  const fd = options.destinationFd ?? 1;
  const settings = { level: options.level ?? 'info', base: { service: 'runnel' } };
  const destination = pino.destination({ fd, sync: false });
  let writesAtOnce: Logger | undefined;
  const synchronous = (bindings: Record<string, unknown>): Logger => {
    writesAtOnce ??= pino(settings, pino.destination({ fd, sync: true }));
    return afterBuffered(writesAtOnce.child(bindings), () => {
      try {
        destination.flushSync();
      } catch {
        // Not open yet, or closed: nothing buffered can be written anyway.
      }
    });
  };
  return Object.assign(pino(settings, destination), { synchronous });
}

/** `logger`, with `flushBuffered` run before each line (and in its children). */
function afterBuffered(logger: Logger, flushBuffered: () => void): Logger {
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (fields: object, message: string): void => {
      flushBuffered();
      logger[level](fields, message);
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), child: (bindings) => afterBuffered(logger.child(bindings), flushBuffered) };
}

/** A logger that drops everything, for tests and tools that report in their own way. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};

/**
 * The fields a line gives a caught error: `err`, its message, and for a `BrokerError` its
 * `reason` (STORAGE_ERROR, DISK_FULL, …), so an operator can filter by reason the way a client
 * does.
 */
export function errorFields(error: unknown): { err: string; reason?: string } {
  if (error instanceof BrokerError) return { reason: error.reason, err: error.message };
  return { err: String(error) };
}
