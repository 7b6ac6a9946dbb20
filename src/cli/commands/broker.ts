/**
 * `runnel broker`: runs one broker — storage and metadata under --data-dir, the gRPC API on
 * --port. SIGTERM/SIGINT shut down cleanly: stop taking calls, finish in-flight appends,
 * flush, write clean-shutdown marks. Logs are JSON lines on stdout (pino).
 */
import { Option, type Command } from 'commander';
import { systemClock } from '../../common/clock.js';
import { brokerConfigDefaults, brokerSettingNames, loadBrokerConfig, type BrokerConfig } from '../../config/broker-config.js';
import { Broker } from '../../broker/index.js';
import { isBrokerError } from '../../errors/index.js';
import { createRootLogger } from '../../observability/index.js';
import { routeGrpcLogs, startServer } from '../../server/index.js';
import type { FileSystem } from '../../storage/index.js';
import { CliError } from '../cli-error.js';
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
  cluster?: string;
}

export interface BrokerCommandOptions {
  /** Storage's file access; node's by default (a test entry script puts a hanging disk here). */
  fileSystem?: FileSystem;
}

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

Stop it with Ctrl-C or SIGTERM: in-flight appends finish and every log is closed cleanly,
so the next start skips recovery. A second Ctrl-C or SIGTERM does not cut that short (the
log says so); SIGKILL does, and the next start then recovers. One broker uses a data
directory at a time: it holds <data-dir>/broker.lock while it runs (a lock left by a killed
broker is taken over).`,
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

/** The settings table of the help: config file key, variable, flag, default. */
function formatSettings(): string {
  const flagged = new Set(['dataDir', 'port', 'host', 'logLevel', 'brokerId', 'advertise', 'flush']);
  const rows = brokerSettingNames().map(({ key, env }) => [
    key,
    env,
    flagged.has(key) ? `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}` : '',
    String(brokerConfigDefaults[key] ?? 'the bound address'),
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
    },
  });
}

async function runBroker(config: BrokerConfig, options: BrokerCommandOptions): Promise<void> {
  const rootLogger = createRootLogger({ level: config.logLevel });
  routeGrpcLogs(rootLogger.child({ component: 'grpc' }));
  const broker = await Broker.open({ config, logger: rootLogger, ...(options.fileSystem === undefined ? {} : { fileSystem: options.fileSystem }) });
  const logger = rootLogger.child({ component: 'broker' }); // start and stop lines
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
  logger.info({ port: server.port, dataDir: config.dataDir, brokerId: config.brokerId, clusterId: broker.clusterId, flush: config.flush }, 'broker started');
  await new Promise<void>((resolve) => {
    let isStopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      // Handlers stay installed until the end: with `once`, a second Ctrl-C (or a supervisor's
      // second SIGTERM) met node's default action and killed the broker mid-shutdown, with no
      // log line, leaving its lock and unflushed logs for recovery. SIGKILL still stops it at once.
      if (isStopping) {
        logger.warn({ signal }, 'already shutting down (calls get at most 5 s, then every log is closed cleanly); send SIGKILL to stop at once');
        return;
      }
      isStopping = true;
      logger.info({ signal }, 'shutting down');
      server
        .close()
        .then(() => broker.close())
        .then(() => {
          logger.info({}, 'broker stopped cleanly');
          resolve();
        })
        .catch((error: unknown) => {
          logger.error({ err: String(error) }, 'shutdown failed; the next start recovers');
          process.exitCode = 1;
          resolve();
        });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
