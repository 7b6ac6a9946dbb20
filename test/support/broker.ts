/**
 * An in-process broker with its gRPC server, for tests that do not need a separate process:
 * fresh temp data dir (unless given), 127.0.0.1, port 0, silent logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/common/clock.js';
import { loadBrokerConfig, type BrokerConfig } from '../../src/config/broker-config.js';
import { Broker } from '../../src/broker/index.js';
import { silentLogger } from '../../src/observability/index.js';
import { startServer } from '../../src/server/index.js';

export interface TestBroker {
  readonly broker: Broker;
  readonly address: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the server and closes the broker cleanly (removes the temp dir it made). */
  close(): Promise<void>;
}

export async function startBroker(options: { dataDir?: string; config?: Partial<BrokerConfig> } = {}): Promise<TestBroker> {
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'runnel-broker-'));
  const config = { ...loadBrokerConfig({}), dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent' as const, ...options.config };
  const broker = await Broker.open({ config, logger: silentLogger });
  const server = await startServer({
    broker,
    host: config.host,
    port: config.port,
    logger: silentLogger,
    clock: systemClock,
    produceTimeoutMs: config.produceTimeoutMs,
    inFlightRequestsPerConnectionMax: config.inFlightRequestsPerConnectionMax,
    produceBytesInFlightMax: config.produceBytesInFlightMax,
  });
  return {
    broker,
    address: `127.0.0.1:${server.port}`,
    port: server.port,
    dataDir,
    async close() {
      await server.close(1_000);
      await broker.close();
      if (ownsDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
