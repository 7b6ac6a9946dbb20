/** A `Logger` that keeps every call, so tests can check what was reported and at which level. */
import type { Logger } from '../../src/observability/index.js';

export interface LoggedCall {
  level: 'error' | 'warn' | 'info' | 'debug';
  fields: Record<string, unknown>;
  message: string;
}

export function recordingLogger(): Logger & { calls: LoggedCall[] } {
  const calls: LoggedCall[] = [];
  const record =
    (level: LoggedCall['level']) =>
    (fields: object, message: string): void => {
      calls.push({ level, fields: fields as Record<string, unknown>, message });
    };
  const logger: Logger & { calls: LoggedCall[] } = {
    calls,
    error: record('error'),
    warn: record('warn'),
    info: record('info'),
    debug: record('debug'),
    child: () => logger,
  };
  return logger;
}
