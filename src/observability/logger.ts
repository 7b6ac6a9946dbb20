/**
 * The pino root logger and the `Logger` type every other folder imports. Components get a
 * child logger with their fixed fields (component, topic, partition) bound once, so messages
 * stay short and an operator can grep by field. JSON lines on stdout by default.
 */
import { pino } from 'pino';

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

export function createRootLogger(options: RootLoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? 'info', base: { service: 'runnel' } },
    pino.destination({ fd: options.destinationFd ?? 1, sync: false }),
  );
}

/** A logger that drops everything, for tests and tools that report in their own way. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};
