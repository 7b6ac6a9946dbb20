import { describe, expect, it } from 'vitest';
import { BrokerError } from '../client/index.js';
import { BROKER_STOPPING_MESSAGE } from '../errors/index.js';
import { describeBrokerTrouble, toCliError } from './cli-error.js';

describe('toCliError and describeBrokerTrouble for a broker that is stopping', () => {
  it('say the broker is shutting down, not that it cannot be reached or may not run', () => {
    // What a stopping broker answers (log-service.ts), as the client receives it.
    const error = new BrokerError('BROKER_UNAVAILABLE', BROKER_STOPPING_MESSAGE);
    expect(toCliError(error, { brokers: ['127.0.0.1:7070'] }).message).toBe('broker 127.0.0.1:7070 is shutting down: try again once it is back');
    expect(describeBrokerTrouble(error, ['127.0.0.1:7070'])).toBe('broker 127.0.0.1:7070 is shutting down');
    // A refused connection is still "cannot reach".
    const refused = new BrokerError('BROKER_UNAVAILABLE', 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:7070');
    expect(describeBrokerTrouble(refused, ['127.0.0.1:7070'])).toBe('cannot reach broker 127.0.0.1:7070 (connection refused)');
  });
});

describe('toCliError for a broker host name that does not resolve', () => {
  it('names the host and says to check --broker / RUNNEL_BROKER, not whether the broker runs', () => {
    const error = new BrokerError('BROKER_UNAVAILABLE', 'Name resolution failed for target dns:broker-1.invalid:7070');
    const line = toCliError(error, { brokers: ['broker-1.invalid:7070', '127.0.0.1:7070'] }).message;
    expect(line).toBe(
      'the broker host name broker-1.invalid could not be resolved (brokers broker-1.invalid:7070,127.0.0.1:7070): check the host in --broker HOST:PORT or RUNNEL_BROKER',
    );
    expect(describeBrokerTrouble(error, ['broker-1.invalid:7070'])).toBe('the broker host name broker-1.invalid could not be resolved (brokers broker-1.invalid:7070)');
  });

  it('reads the host from getaddrinfo ENOTFOUND and EAI_AGAIN messages too', () => {
    for (const message of ['getaddrinfo ENOTFOUND broker-2.invalid', 'getaddrinfo EAI_AGAIN broker-2.invalid']) {
      expect(toCliError(new BrokerError('BROKER_UNAVAILABLE', message), { brokers: ['broker-2.invalid:7070'] }).message).toMatch(/^the broker host name broker-2\.invalid could not be resolved/);
    }
  });

  it('still asks whether the broker runs when the connection is refused', () => {
    const error = new BrokerError('BROKER_UNAVAILABLE', 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:7070');
    expect(toCliError(error, { brokers: ['127.0.0.1:7070'] }).message).toMatch(/^cannot reach broker 127\.0\.0\.1:7070 \(connection refused\): is `runnel broker` running\?/);
  });
});

describe('toCliError for a full disk', () => {
  it('says the broker\'s disk is full, where, and to free space or shorten retention', () => {
    const error = new BrokerError('DISK_FULL', 'disk full while trying to commit in the broker metadata (/data/meta); free space in the data directory and retry', {
      details: { operation: 'commit', path: '/data/meta' },
    });
    expect(toCliError(error, { brokers: ['127.0.0.1:7070'], topic: 't' }).message).toBe(
      'the disk of broker 127.0.0.1:7070 is full (/data/meta): free space in its data directory, or shorten retention (retention.ms, retention.bytes) so old segments are deleted, then try again',
    );
  });
});
