/**
 * The pino root logger, per-component child loggers, and (with the broker) metric counters.
 * Only this folder creates pino loggers; every other folder imports the `Logger` type.
 */
export { createRootLogger, silentLogger, type LogLevel, type Logger, type RootLogger, type RootLoggerOptions } from './logger.js';
