/**
 * The pino root logger, per-component child loggers, and (with the broker) metric counters.
 * Only this folder creates pino loggers; every other folder imports the `Logger` type.
 */
export { createRootLogger, errorFields, silentLogger, type LogLevel, type Logger, type RootLogger, type RootLoggerOptions } from './logger.js';
export { limitRepeats, RepeatLimiter, REPEAT_INTERVAL_MS, REPEAT_KEYS_MAX, type RepeatLimiterOptions } from './repeat-limit.js';
