/**
 * The gRPC server of one broker: binds LogService and AdminService (and server reflection, so
 * grpcurl works without the .proto files) on host:port with the declared message limits.
 */
import { setMaxListeners } from 'node:events';
import { format } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { systemClock, type Clock } from '../common/clock.js';
import type { Broker } from '../broker/index.js';
import { limitRepeats, RepeatLimiter, type Logger } from '../observability/index.js';
import { CHANNEL_OPTIONS, loadRunnelProto } from '../protocol/index.js';
import { ByteBudget } from './byte-budget.js';
import { checkProduceRequest, guardService } from './request-guard.js';
import { createAdminService } from './services/admin-service.js';
import { createLogService } from './services/log-service.js';

export interface ServerOptions {
  broker: Broker;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** host:port to advertise in metadata; defaults to the bound address. */
  advertise?: string | undefined;
  logger: Logger;
  clock: Clock;
  produceTimeoutMs: number;
  inFlightRequestsPerConnectionMax: number;
  /** Produce request bytes the broker holds at once, over every connection (byte-budget.ts). */
  produceBytesInFlightMax: number;
}

export interface RunningServer {
  readonly port: number;
  readonly address: string;
  /** Calls started and not yet answered or ended (all services); a hung stop names it. */
  readonly callsInFlight: number;
  /** Stops taking calls, lets in-flight ones finish (up to `graceMs`), then cuts the rest. */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { definition, proto } = loadRunnelProto();
  const server = new grpc.Server({
    ...CHANNEL_OPTIONS,
    'grpc.max_concurrent_streams': options.inFlightRequestsPerConnectionMax,
  });
  // Aborted first thing in close(): long-lived calls end instead of holding the shutdown.
  const stopping = new AbortController();
  setMaxListeners(0, stopping.signal); // one listener per open streaming call, removed when it ends
  // Every request is bounded before grpc-js decodes it (request-guard.ts).
  const logService = guardService(proto.runnel.v1.LogService.service, { Produce: checkProduceRequest, ProduceStream: checkProduceRequest });
  const calls = { inFlight: 0 };
  // The services log what a request's failure was (status.ts): a refusal at debug, anything
  // unexpected at error with its stack. Either may come with every request a client sends:
  // once a minute per method and reason (a refusal) or per method and the stack frame that
  // threw (`thrownAt`, an unexpected error), with the count of the others.
  const requestLogger = limitRepeats(options.logger, new RepeatLimiter({ clock: options.clock }), ['method', 'reason', 'thrownAt']);
  server.addService(logService, countCalls(logService, createLogService({ ...options, logger: requestLogger, stopping: stopping.signal, produceBudget: new ByteBudget(options.produceBytesInFlightMax) }) as unknown as grpc.UntypedServiceImplementation, calls));
  const isWindowSet = widenStreamWindow(server);
  // An IPv6 host (`::`, `::1`) goes in brackets, as gRPC's target syntax needs; given
  // bracketed already, it stays as it is.
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)));
  });
  if (!isWindowSet || !widenSessionWindows(server)) {
    options.logger.warn({}, 'could not raise the HTTP/2 receive window (grpc-js internals changed?); uploads are limited to the 64 KiB default window');
  }
  // HOST:PORT (checked in broker-config.ts); the port follows the last colon, so a bracketed
  // IPv6 host ([::1]:7070) stays whole.
  const advertised = options.advertise ?? `${options.host === '0.0.0.0' ? '127.0.0.1' : host === '[::]' ? '[::1]' : host}:${port}`;
  const portColon = advertised.lastIndexOf(':');
  const [advertisedHost, advertisedPortText] = [advertised.slice(0, portColon), advertised.slice(portColon + 1)];
  const adminService = guardService(proto.runnel.v1.AdminService.service, {});
  server.addService(
    adminService,
    countCalls(
      adminService,
      createAdminService({
        broker: options.broker,
        logger: requestLogger,
        advertised: { host: advertisedHost ?? '127.0.0.1', port: Number(advertisedPortText ?? port) },
      }) as unknown as grpc.UntypedServiceImplementation,
      calls,
    ),
  );
  new ReflectionService(definition).addToServer(server);
  const address = `${host}:${port}`;
  options.logger.info({ address, port }, 'gRPC server listening');
  return {
    port,
    address,
    get callsInFlight() {
      return calls.inFlight;
    },
    close: (graceMs = 5_000) =>
      new Promise<void>((resolve) => {
        stopping.abort();
        const cancel = options.clock.setTimer(graceMs, () => {
          options.logger.warn({ graceMs }, 'calls still running after the shutdown grace period; cutting them');
          server.forceShutdown();
          resolve();
        });
        server.tryShutdown(() => {
          cancel();
          resolve();
        });
      }),
  };
}

/**
 * Wraps every handler of `implementation` so `calls.inFlight` counts the calls started and not
 * yet over: a unary or client-streaming call until its callback runs, a streaming response
 * until the call finishes; either until the client cancels. Only for the log lines of a stop
 * that hangs, so a call counted a moment too long costs nothing.
 */
function countCalls(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation, calls: { inFlight: number }): grpc.UntypedServiceImplementation {
  const counted: grpc.UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const method = definition[name];
    const started = (call: NodeJS.EventEmitter): (() => void) => {
      calls.inFlight++;
      let isOver = false;
      const over = (): void => {
        if (isOver) return;
        isOver = true;
        calls.inFlight--;
      };
      for (const event of ['cancelled', 'finish', 'close']) call.once(event, over);
      return over;
    };
    const invoke = handler as (...args: unknown[]) => void;
    counted[name] = (method?.responseStream === true
      ? (call: NodeJS.EventEmitter) => {
          started(call);
          invoke(call);
        }
      : (call: NodeJS.EventEmitter, callback: (...args: unknown[]) => void) => {
          const over = started(call);
          invoke(call, (...args: unknown[]) => {
            over();
            callback(...args);
          });
        }) as grpc.UntypedHandleCall;
  }
  return counted;
}

/** How grpc-js's `trace` starts a line: `2026-11-22T16:25:17.123Z | v1.12.0 4242 | tracer | …`. */
const GRPC_TRACE_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z \| /;

/** The kind of a grpc-js line for the repeat limit: its first six words, quoted text and numbers blanked. */
function routeGrpcLogsKind(detail: string): string {
  return detail
    .replace(/"[^"]*"|'[^']*'/g, '""')
    .replace(/\d+/g, '0')
    .split(/\s+/, 6)
    .join(' ');
}

/**
 * Sends what grpc-js itself logs (by default `console.error` lines such as "E No address added
 * out of total 1 resolved" when the port is taken) into the broker's JSON log, component
 * `grpc`, instead of stderr: an operator greps one log, and a failed start leaves stderr to the
 * one line that says what to do. grpc-js's logger is process-wide; its verbosity still follows
 * GRPC_VERBOSITY. grpc-js reports errors there that the broker handles or reports itself, so
 * they are warnings here. Its text goes in `detail` under a fixed message.
 *
 * Some of its lines come once per request a client sends, e.g. "Metadata key "x!y" contains
 * illegal characters" for every call with such a header: each kind (its first six words, with
 * quoted text and numbers blanked, so a client varying the key makes no new kind) is logged
 * once a minute, with the count of the others (observability/repeat-limit.ts). Traces an
 * operator turned on (GRPC_TRACE) are never limited, whatever their severity: grpc-js's
 * `trace` writes them at debug, info or error, each starting with its ISO time.
 */
export function routeGrpcLogs(logger: Logger, clock: Clock = systemClock): void {
  const limiter = new RepeatLimiter({ clock });
  const write =
    (level: 'warn' | 'info' | 'debug', message: string) =>
    (text?: unknown, ...rest: unknown[]): void => {
      const detail = format(text, ...rest);
      const isTrace = level === 'debug' || GRPC_TRACE_LINE.test(detail);
      const admitted = isTrace ? {} : limiter.admit(`${level} ${routeGrpcLogsKind(detail)}`);
      if (admitted !== undefined) logger[level]({ detail, ...admitted }, isTrace ? 'grpc-js trace' : message);
    };
  grpc.setLogger({
    error: write('warn', 'grpc-js reported an error'),
    info: write('info', 'grpc-js reported'),
    debug: write('debug', 'grpc-js trace'),
  });
}

/**
 * Uploads (produce) are held back by Node's 64 KiB default HTTP/2 receive window, which
 * grpc-js does not expose on the server (FINDINGS: raising it lifted 1 MiB produce from ~220
 * to ~370 MB/s). These two functions reach into grpc-js 1.14.7 internals, pinned in
 * package.json: the per-stream window through the settings grpc-js passes to
 * http2.createServer, the per-connection window on each new session. Each returns false when
 * the internals are not where expected, and the server then runs with the defaults.
 */
const RECEIVE_WINDOW_BYTES = 16 * 1024 * 1024;

function widenStreamWindow(server: grpc.Server): boolean {
  const internals = server as unknown as { commonServerOptions?: { settings?: Record<string, number> } };
  const options = internals.commonServerOptions;
  if (options === undefined) return false;
  options.settings = { ...options.settings, initialWindowSize: RECEIVE_WINDOW_BYTES };
  return true;
}

function widenSessionWindows(server: grpc.Server): boolean {
  const internals = server as unknown as { http2Servers?: Map<{ on(event: 'session', listener: (session: { setLocalWindowSize(size: number): void }) => void): void }, unknown> };
  if (!(internals.http2Servers instanceof Map) || internals.http2Servers.size === 0) return false;
  for (const http2Server of internals.http2Servers.keys()) {
    http2Server.on('session', (session) => {
      try {
        session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
      } catch {
        // A session already closing: nothing to widen.
      }
    });
  }
  return true;
}
