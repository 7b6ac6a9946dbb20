import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { brokerConfigDefaults, loadBrokerConfig } from './broker-config.js';
import { limits } from './limits.js';

const scratchDirs: string[] = [];

afterEach(() => {
  for (const dir of scratchDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function configFile(settings: object): string {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-broker-config-'));
  scratchDirs.push(dir);
  const path = join(dir, 'runnel.json');
  writeFileSync(path, JSON.stringify(settings));
  return path;
}

describe('loadBrokerConfig', () => {
  it('keeps by default as many partition logs open as one topic may have partitions, so a producer writing round-robin to them all does not reopen a log at every append', () => {
    // Measured with 10,000 partitions at 1,000 records/s: see defaults.ts `openPartitionsMax`.
    expect(loadBrokerConfig({}).openPartitionsMax).toBeGreaterThanOrEqual(limits.partitionsPerTopicMax);
  });

  it('takes each setting from the flag, else the environment, else the file, else the default', () => {
    const file = configFile({ port: 7001, host: '127.0.0.2', logLevel: 'warn', dataDir: '/from/file' });
    const config = loadBrokerConfig({
      configFile: file,
      env: { RUNNEL_PORT: '7002', RUNNEL_HOST: '127.0.0.3' },
      flags: { port: '7003', dataDir: undefined },
    });
    expect({ port: config.port, host: config.host, logLevel: config.logLevel, dataDir: config.dataDir, brokerId: config.brokerId }).toEqual({
      port: 7003,
      host: '127.0.0.3',
      logLevel: 'warn',
      dataDir: '/from/file',
      brokerId: brokerConfigDefaults.brokerId,
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes --advertise only as HOST:PORT (IPv6 in brackets), naming what is wrong', () => {
    expect(loadBrokerConfig({ flags: { advertise: 'broker-1.internal:7070' } }).advertise).toBe('broker-1.internal:7070');
    expect(loadBrokerConfig({ flags: { advertise: '[::1]:7070' } }).advertise).toBe('[::1]:7070');
    for (const bad of ['foo:bar', 'foo', 'foo:0', 'foo:70000', '::1:7070', 'a b:7070', ':7070']) {
      expect(() => loadBrokerConfig({ flags: { advertise: bad } }), bad).toThrow(/^--advertise must be HOST:PORT with a port from 1 to 65535/);
    }
  });

  it('names a refused flag as the operator typed it, and the environment variable or file key otherwise', () => {
    expect(() => loadBrokerConfig({ flags: { logLevel: 'verbose' } })).toThrow(/^--log-level must be one of fatal, error, warn, info, debug/);
    expect(() => loadBrokerConfig({ flags: { port: '70000' } })).toThrow('--port must be an integer from 0 to 65535, got "70000"');
    expect(() => loadBrokerConfig({ flags: { brokerId: '-1' } })).toThrow(/^--broker-id must be an integer/);
    expect(() => loadBrokerConfig({ env: { RUNNEL_PORT: 'abc' } })).toThrow('environment variable RUNNEL_PORT must be an integer');
    expect(() => loadBrokerConfig({ configFile: configFile({ port: '7071x' }) })).toThrow('config file key "port" must be an integer');
    expect(() => loadBrokerConfig({ configFile: configFile({ bogus: 1 }) })).toThrow(/unknown setting in config file key "bogus"; known settings: dataDir, host, port/);
  });

  it('refuses a config file key named after a member every object has, as it refuses any unknown key', () => {
    for (const key of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      const path = configFile({});
      writeFileSync(path, `{"${key}": 1}`); // JSON.stringify would drop __proto__
      expect(() => loadBrokerConfig({ configFile: path }), key).toThrow(`unknown setting in config file key "${key}"`);
    }
  });
});
