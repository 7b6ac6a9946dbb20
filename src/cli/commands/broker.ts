/**
 * `runnel broker`: runs one broker — storage and metadata under --data-dir, the gRPC API on
 * --port. SIGTERM/SIGINT shut down cleanly: stop taking calls, finish in-flight appends,
 * flush, write clean-shutdown marks. The stop is bounded (`shutdownTimeoutMs`): while it
 * runs long it logs what it waits on, and past the bound, or at a second signal, the process
 * exits at once, non-zero (`exitNow`). Logs are JSON lines on stdout (pino).
 */
import { Option, type Command } from 'commander';
import { systemClock, type Clock } from '../../common/clock.js';
import { brokerConfigDefaults, brokerSettingNames, loadBrokerConfig, type BrokerConfig } from '../../config/broker-config.js';
import { AUTO_OPEN_SEGMENT_FILES_MAX, AUTO_OPEN_SEGMENT_FILES_MIN, Broker } from '../../broker/index.js';
import { defaults } from '../../config/defaults.js';
import { isBrokerError } from '../../errors/index.js';
import { createRootLogger, errorFields, type Logger } from '../../observability/index.js';
import { routeGrpcLogs, startServer, type RunningServer } from '../../server/index.js';
import type { FileSystem } from '../../storage/index.js';
import { CliError } from '../cli-error.js';
import { packageVersion } from '../package-version.js';
import { formatTable } from '../table.js';

interface BrokerFlags {
  dataDir?: string;
  port?: string;
  host?: string;
  config?: string;
  logLevel?: string;
  brokerId?: string;
  advertise?: string;
  flush?: string;
  shutdownTimeoutMs?: string;
  cluster?: string;
}

export interface BrokerCommandOptions {
  /** Storage's file access; node's by default (a test entry script puts a hanging disk here). */
  fileSystem?: FileSystem;
}

/** How often a stop that takes long logs what it still waits on. */
const SHUTDOWN_PROGRESS_INTERVAL_MS = 5_000;
/** Longest the server waits for calls in flight at a stop before cutting them (at most half of what is left of the bound). */
const SERVER_GRACE_MS_MAX = 5_000;

export function registerBrokerCommand(program: Command, options: BrokerCommandOptions = {}): void {
  program
    .command('broker')
    .description('run a broker (single node: storage under --data-dir, gRPC on --port)')
    .option('--data-dir <dir>', 'where partitions and metadata live (default ./data, env RUNNEL_DATA_DIR)')
    .option('--port <n>', 'gRPC port; 0 picks a free one (default 7070, env RUNNEL_PORT)')
    .option('--host <addr>', 'address to listen on (default 0.0.0.0, env RUNNEL_HOST)')
    .option('--config <file>', 'JSON file of settings (flags and RUNNEL_* variables override it)')
    .option('--log-level <level>', 'fatal | error | warn | info | debug | trace | silent (default info)')
    .option('--broker-id <n>', 'this broker\'s id (default 0)')
    .option('--advertise <host:port>', 'address clients are told to use (default the bound one, with 127.0.0.1 for 0.0.0.0 and [::1] for ::)')
    .option('--flush <policy>', 'default flush policy of topics: always | never | interval:<ms> (default interval:1000)')
    .option('--shutdown-timeout-ms <ms>', `longest a stop may take before the broker exits without finishing it (default ${brokerConfigDefaults.shutdownTimeoutMs}, env RUNNEL_SHUTDOWN_TIMEOUT_MS)`)
    // In CLI.md for a later release: refused with what to do, not "unknown option".
    .addOption(new Option('--cluster <etcd-urls>').hideHelp())
    .addHelpText(
      'after',
      `
Examples:
  runnel broker                                   # ./data, port 7070
  runnel broker --data-dir /var/lib/runnel --flush always
  RUNNEL_PORT=9092 runnel broker --log-level debug
  runnel broker --config /etc/runnel.json         # {"dataDir": "/var/lib/runnel", "port": 9092}

Every setting comes from a flag, else its RUNNEL_* variable, else its key in the --config
file (a JSON object; unknown keys are refused), else the default:
${formatSettings()}

Stop it with Ctrl-C or SIGTERM: calls in flight are answered (parked fetches and streams
end), every log is closed cleanly so the next start skips recovery, and the exit code is 0.
The stop is bounded by --shutdown-timeout-ms (default ${brokerConfigDefaults.shutdownTimeoutMs / 1000} s, under systemd's 90 s):
every ${SHUTDOWN_PROGRESS_INTERVAL_MS / 1000} s it logs "shutdown still waiting" with the calls in flight and the
partitions not closed yet (a disk that stopped answering hangs their close); past the bound it logs
"shutdown timed out" and exits non-zero (killed by its own SIGKILL: status 137), and a
second Ctrl-C or SIGTERM during the stop does the same at once ("second signal during
shutdown"); one after the stop has finished is ignored (the exit code stays 0). A signal
while the broker is still starting stops it as soon as it serves.
Nothing acknowledged is lost either way: the partitions it could not close are
recovered (scanned) at the next start. One broker uses a data directory at a time: it holds
<data-dir>/broker.lock while it runs (a lock left by a killed broker is taken over).`,
    )
    .action(async (flags: BrokerFlags) => {
      if (flags.cluster !== undefined) {
        throw new CliError('clusters (--cluster) are not available yet: this release runs a single broker; start it without --cluster');
      }
      try {
        await runBroker(loadBrokerConfigFromFlags(flags), options);
      } catch (error) {
        // A setting or data directory refused at start-up: the message already says what to
        // do; the wire reason tag ("[INVALID_REQUEST]") means nothing to an operator.
        if (isBrokerError(error, 'INVALID_REQUEST')) throw new CliError(error.message, { cause: error });
        throw error;
      }
    });
}

/** The help's default of a setting whose default is not a value of its own. */
const DEFAULT_TEXTS: Partial<Record<keyof BrokerConfig, string>> = {
  advertise: 'the bound address',
  openSegmentFilesMax: `half of ulimit -n (${AUTO_OPEN_SEGMENT_FILES_MIN}–${AUTO_OPEN_SEGMENT_FILES_MAX})`,
};

/** The settings table of the help: config file key, variable, flag, default. */
function formatSettings(): string {
  const flagged = new Set(['dataDir', 'port', 'host', 'logLevel', 'brokerId', 'advertise', 'flush', 'shutdownTimeoutMs']);
  const rows = brokerSettingNames().map(({ key, env }) => [
    key,
    env,
    flagged.has(key) ? `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}` : '',
    DEFAULT_TEXTS[key] ?? String(brokerConfigDefaults[key]),
  ]);
  return formatTable(['  FILE KEY', 'VARIABLE', 'FLAG', 'DEFAULT'], rows.map(([key, ...rest]) => [`  ${key}`, ...rest])).trimEnd();
}

function loadBrokerConfigFromFlags(flags: BrokerFlags): Readonly<BrokerConfig> {
  return loadBrokerConfig({
    configFile: flags.config,
    env: process.env,
    flags: {
      dataDir: flags.dataDir,
      port: flags.port,
      host: flags.host,
      logLevel: flags.logLevel,
      brokerId: flags.brokerId,
      advertise: flags.advertise,
      flush: flags.flush,
      shutdownTimeoutMs: flags.shutdownTimeoutMs,
    },
  });
}

async function runBroker(config: BrokerConfig, options: BrokerCommandOptions): Promise<void> {
  const startedAtMs = systemClock.nowMs();
  const rootLogger = createRootLogger({ level: config.logLevel });
  routeGrpcLogs(rootLogger.child({ component: 'grpc' }));
  const logger = rootLogger.child({ component: 'broker' }); // start-up lines (the stop's are written at once: SignalStop)
  // Signals are handled from here on, before the first line says the broker is starting (a
  // supervisor or a test may signal as soon as it sees that line): one during start-up stops
  // the broker once it serves.
  const signals = new SignalStop({ config, logger: rootLogger.synchronous({ component: 'broker' }) });
  // Before anything is opened: what this broker runs with, also when the start then fails.
  logger.info(
    {
      version: packageVersion(),
      host: config.host,
      port: config.port,
      dataDir: config.dataDir,
      brokerId: config.brokerId,
      flush: config.flush,
      retentionMs: defaults.retentionMs,
      retentionBytes: defaults.retentionBytes,
      segmentBytes: defaults.segmentBytes,
      overridden: overriddenSettings(config),
    },
    'broker starting',
  );
  let broker: Broker;
  try {
    broker = await Broker.open({ config, logger: rootLogger, ...(options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem }) });
  } catch (error) {
    signals.abandon();
    throw error;
  }
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer({
      broker,
      host: config.host,
      port: config.port,
      advertise: config.advertise,
      logger: rootLogger.child({ component: 'server' }),
      clock: systemClock,
      produceTimeoutMs: config.produceTimeoutMs,
      inFlightRequestsPerConnectionMax: config.inFlightRequestsPerConnectionMax,
      produceBytesInFlightMax: config.produceBytesInFlightMax,
    });
  } catch (error) {
    // Nothing was served: close what was opened (and release the data directory) first.
    signals.abandon();
    await broker.close().catch(() => undefined);
    const message = String((error as Error).message ?? error);
    logger.error({ host: config.host, port: config.port, err: message }, 'broker failed to start: cannot listen');
    if (message.includes('EADDRINUSE')) {
      throw new CliError(`port ${config.port} on ${config.host} is in use: stop what uses it, or pick another with --port <n> (--port 0 takes a free one)`);
    }
    if (message.includes('EADDRNOTAVAIL')) {
      throw new CliError(`--host ${config.host} is not an address of this machine: pass one it has (0.0.0.0 listens on all, 127.0.0.1 on this machine only)`);
    }
    if (message.includes('Name resolution failed')) {
      throw new CliError(`--host ${config.host} does not resolve to an address: pass an IP address of this machine (0.0.0.0 listens on all) or a name that resolves to one`);
    }
    throw new CliError(`cannot listen on ${config.host}:${config.port}: ${message}`);
  }
  // The ready line (tools read `port` from it: test/support/broker-process.ts, bench/).
  logger.info(
    { address: server.address, port: server.port, dataDir: config.dataDir, brokerId: config.brokerId, clusterId: broker.clusterId, flush: config.flush, startMs: systemClock.nowMs() - startedAtMs },
    'broker started',
  );
  await signals.serve(broker, server);
}

/** Where SIGTERM and SIGINT come from: the process, or a unit test's emitter. */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT', listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface SignalStopOptions {
  config: Pick<BrokerConfig, 'shutdownTimeoutMs'>;
  /** Writes each line before the next step: the process may be killed right after. */
  logger: Logger;
  /** The bound, the progress lines and the elapsed times; the system's by default. */
  clock?: Clock;
  /** The process by default. */
  signals?: SignalSource;
  /** How a forced end ends the process: `exitNow` by default (a unit test records it instead). */
  exit?: () => void;
}

/** What a stop closes: the gRPC server first, then the broker. */
export interface StoppableParts {
  broker: Pick<Broker, 'close' | 'partitionsNotClosed' | 'closeStage'>;
  server: Pick<RunningServer, 'close' | 'callsInFlight'>;
}

/**
 * SIGTERM and SIGINT for the broker's whole life, from before anything is opened. A signal
 * while it serves stops it: the server first (calls answered, parked fetches and streams
 * ended, the rest cut after a grace of at most 5 s and half of what is left of the bound, so
 * the logs' closes get the other half), then the broker (every log closed with its
 * clean-shutdown mark, the metadata store, the lock). A signal while it starts is kept, and
 * the stop begins as soon as it serves (start-up is never cut in the middle by node's default
 * action, which logged nothing). The stop is bounded by `shutdownTimeoutMs` from the first
 * signal; a second signal before the stop has finished exits at once; one after it has
 * finished is ignored (logged: the process is on its way out, and its exit status stays the
 * stop's). Both forced ends go through `exitNow`. Tested in
 * test/integration/broker-shutdown.test.ts and broker.test.ts (the grace).
 */
export class SignalStop {
  private phase: 'starting' | 'serving' | 'stopping' | 'stopped' = 'starting';
  private pendingSignal: NodeJS.Signals | undefined;
  private stopStartedMs: number | undefined;
  private parts: StoppableParts | undefined;
  private isServerClosed = false;
  private readonly cancelTimers: (() => void)[] = [];
  private resolveStopped: (() => void) | undefined;
  private readonly onSignal = (signal: NodeJS.Signals): void => this.handle(signal);
  private readonly config: Pick<BrokerConfig, 'shutdownTimeoutMs'>;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly signals: SignalSource;
  private readonly exit: () => void;

  constructor(options: SignalStopOptions) {
    this.config = options.config;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.signals = options.signals ?? process;
    this.exit = options.exit ?? exitNow;
    // Handlers stay installed until the process ends: with `once`, a second signal met node's
    // default action and killed the broker with no line saying why (and one after the stop
    // had finished, while the process was still on its way out, turned a clean 0 into 143).
    this.signals.on('SIGTERM', this.onSignal);
    this.signals.on('SIGINT', this.onSignal);
  }

  /** The broker serves: stops at the next signal (or now, for one that came while it started), then resolves. */
  serve(broker: StoppableParts['broker'], server: StoppableParts['server']): Promise<void> {
    this.parts = { broker, server };
    return new Promise<void>((resolve) => {
      this.resolveStopped = resolve;
      this.phase = 'serving';
      if (this.pendingSignal !== undefined) this.beginStop(this.pendingSignal);
    });
  }

  /** The start failed and the command reports it: signals get node's default action again. */
  abandon(): void {
    for (const cancel of this.cancelTimers.splice(0)) cancel();
    this.signals.off('SIGTERM', this.onSignal);
    this.signals.off('SIGINT', this.onSignal);
  }

  private handle(signal: NodeJS.Signals): void {
    switch (this.phase) {
      case 'stopped':
        // The stop finished (its line is out) and the process is on its way out, flushing
        // what it still holds: its exit status stays the stop's.
        this.logger.info({ signal }, 'signal after the stop had finished: ignored, the process is exiting');
        return;
      case 'stopping':
        this.logger.error({ signal, ...this.waitingOn() }, 'second signal during shutdown: exiting now, without waiting for the stop to finish; the partitions not closed are recovered at the next start');
        return this.exit();
      case 'starting':
        if (this.pendingSignal !== undefined) {
          this.logger.error({ signal, ...this.waitingOn() }, 'second signal during start-up: exiting now; what start-up had not finished is done again at the next start');
          return this.exit();
        }
        this.pendingSignal = signal;
        this.stopStartedMs = this.clock.nowMs();
        this.logger.info({ signal, shutdownTimeoutMs: this.config.shutdownTimeoutMs }, 'stop requested while starting: stopping as soon as start-up has finished');
        this.armDeadline();
        return;
      case 'serving':
        return this.beginStop(signal);
    }
  }

  private beginStop(signal: NodeJS.Signals): void {
    const { broker, server } = this.parts as StoppableParts;
    this.phase = 'stopping';
    if (this.stopStartedMs === undefined) {
      this.stopStartedMs = this.clock.nowMs();
      this.armDeadline();
    }
    this.logger.info({ signal, shutdownTimeoutMs: this.config.shutdownTimeoutMs }, 'shutting down');
    // The grace leaves at least half of what is left of the bound to close the partitions:
    // of all of it for a signal while serving, of what start-up left for one while starting
    // (the bound counts from that signal).
    const leftMs = Math.max(0, this.config.shutdownTimeoutMs - this.elapsedMs());
    const graceMs = Math.min(SERVER_GRACE_MS_MAX, Math.floor(leftMs / 2));
    server
      .close(graceMs)
      .then(() => {
        this.isServerClosed = true;
        return broker.close();
      })
      .then(
        () => this.logger.info({ stopMs: this.elapsedMs() }, 'broker stopped cleanly'),
        (error: unknown) => {
          this.logger.error({ stopMs: this.elapsedMs(), ...errorFields(error) }, 'shutdown failed; the next start recovers');
          process.exitCode = 1;
        },
      )
      .finally(() => {
        this.phase = 'stopped';
        for (const cancel of this.cancelTimers.splice(0)) cancel();
        this.resolveStopped?.();
      });
  }

  /** The bound on the stop, from its first signal, and a progress line every 5 s until then. */
  private armDeadline(): void {
    let cancelProgress: () => void;
    const logProgress = (): void => {
      this.logger.warn(this.waitingOn(), 'shutdown still waiting');
      cancelProgress = this.clock.setTimer(SHUTDOWN_PROGRESS_INTERVAL_MS, logProgress);
    };
    cancelProgress = this.clock.setTimer(SHUTDOWN_PROGRESS_INTERVAL_MS, logProgress);
    this.cancelTimers.push(() => cancelProgress());
    this.cancelTimers.push(
      this.clock.setTimer(this.config.shutdownTimeoutMs, () => {
        this.logger.error(
          this.waitingOn(),
          'shutdown timed out (shutdownTimeoutMs): exiting without the clean-shutdown marks of the partitions not closed; they are recovered at the next start. Check the disk of the data directory: a hung close is usually a disk that stopped answering',
        );
        this.exit();
      }),
    );
  }

  private elapsedMs(): number {
    return this.clock.nowMs() - (this.stopStartedMs ?? this.clock.nowMs());
  }

  /**
   * What the stop still waits on: the same fields in every line about it, so one grep shows
   * the stop's progress. Ten partitions name the problem; the count says how wide it is.
   */
  private waitingOn(): Record<string, unknown> {
    const partitions = this.parts?.broker.partitionsNotClosed() ?? [];
    return {
      stage: this.phase === 'starting' ? 'starting' : this.isServerClosed ? (this.parts?.broker.closeStage ?? 'closing partitions') : 'answering calls',
      callsInFlight: this.parts?.server.callsInFlight ?? 0,
      partitionsNotClosed: partitions.slice(0, 10).map(({ topic, partition }) => `${topic}-${partition}`),
      partitionsNotClosedCount: partitions.length,
      elapsedMs: this.elapsedMs(),
      shutdownTimeoutMs: this.config.shutdownTimeoutMs,
    };
  }
}

/**
 * Ends the process at once, non-zero: by its own SIGKILL (exit status 137 in a shell; systemd
 * and Kubernetes count it a failure). Not `process.exit(1)`: on its way out node joins libuv's
 * thread-pool threads, and a thread stuck in an fdatasync or write on a dead disk never
 * returns, so the exit would hang exactly when it is needed (measured on node 20: with a
 * pool thread blocked in open(2) of a FIFO, `process.exit` never returned). The line saying
 * why was written before (`RootLogger.synchronous`).
 *
 * What a forced exit here leaves behind, and why nothing acknowledged is lost: every append
 * was acknowledged only once its flush policy's acknowledgement point was reached
 * (storage/flush-policy.ts): under flush=always after its fdatasync, so it is on disk; under
 * interval or never once its bytes were written into the page cache, which the kernel keeps
 * and writes back after the process is gone (a process dying is not a power loss). An append
 * not acknowledged yet may or may not be in the log; its client got no answer and retries (an
 * idempotent producer's retry is recognised). What is skipped is the clean close of the
 * partitions still open: no clean-shutdown mark, producer snapshot or index files for them,
 * so the next start scans them from their recovery checkpoint (storage/recovery.ts) and takes
 * over the lock the process leaves (data-dir-lock.ts). The metadata store keeps its last
 * committed transaction (lmdb is built to be killed; each of its writes awaited `flushed`
 * before it was answered). The cost is that scan, not data.
 */
function exitNow(): never {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL cannot be caught or ignored; the process is gone before this line.
  throw new Error('SIGKILL did not end the process');
}

/** Settings not at their default, other than those the start line names anyway. */
function overriddenSettings(config: BrokerConfig): Record<string, unknown> {
  const named = new Set<keyof BrokerConfig>(['dataDir', 'host', 'port', 'brokerId', 'flush']);
  return Object.fromEntries(
    brokerSettingNames()
      .map(({ key }) => key)
      .filter((key) => !named.has(key) && config[key] !== brokerConfigDefaults[key])
      .map((key) => [key, config[key]]),
  );
}
