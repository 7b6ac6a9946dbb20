import { describe, expect, it } from 'vitest';
import { BrokerError } from '../errors/index.js';
import { checkBrokerAddressesOrThrow, describeBrokerAddressProblem } from './broker-address.js';
import { createClient } from './runnel-client.js';

describe('describeBrokerAddressProblem', () => {
  it('accepts HOST:PORT and [IPV6]:PORT with a port in 1-65535', () => {
    for (const address of ['127.0.0.1:7070', 'broker-1.example:1', 'localhost:65535', '[::1]:7070', '[fe80::1]:9092', '[::ffff:127.0.0.1]:7070', '[64:ff9b::192.0.2.33]:9092']) {
      expect(describeBrokerAddressProblem(address), address).toBeUndefined();
    }
  });

  it('refuses a missing host or port, junk, an unbracketed IPv6 address, and a port of 0 or above 65535', () => {
    for (const address of ['localhost', ':7070', 'localhost:', '::1:7070', 'a b:1', 'host/path:1', 'localhost:70x', '[::1.]:7070', '[localhost]:7070']) {
      expect(describeBrokerAddressProblem(address), address).toBe('is not HOST:PORT');
    }
    expect(describeBrokerAddressProblem('localhost:0')).toBe('has port 0, outside 1-65535');
    expect(describeBrokerAddressProblem('localhost:65536')).toBe('has port 65536, outside 1-65535');
    expect(describeBrokerAddressProblem('[::1]:70700')).toBe('has port 70700, outside 1-65535');
    expect(describeBrokerAddressProblem('localhost:1234567')).toBe('has port 1234567, outside 1-65535');
  });
});

describe('createClient bootstrap addresses', () => {
  function creationError(brokers: string[]): unknown {
    try {
      createClient({ brokers }).close();
    } catch (error) {
      return error;
    }
    return undefined;
  }

  it('refuses a port outside 1-65535 at once, naming the address and the expected form', () => {
    // Any digits used to be taken: the client then retried a port no broker can listen on for
    // its whole retry budget, and reported the broker as unreachable.
    for (const [address, port] of [['localhost:70700', '70700'], ['127.0.0.1:0', '0']] as const) {
      const error = creationError(['127.0.0.1:7070', address]);
      expect(error).toBeInstanceOf(BrokerError);
      expect(error).toMatchObject({ reason: 'INVALID_REQUEST', details: { address } });
      expect((error as Error).message).toContain(`"${address}" has port ${port}, outside 1-65535`);
      expect((error as Error).message).toContain('expected HOST:PORT with a port in 1-65535, e.g. 127.0.0.1:7070');
    }
  });

  it('refuses an empty host, a missing port and an empty list', () => {
    expect(creationError([':7070'])).toMatchObject({ reason: 'INVALID_REQUEST', message: expect.stringContaining('":7070" is not HOST:PORT: expected HOST:PORT') });
    expect(creationError(['localhost'])).toMatchObject({ reason: 'INVALID_REQUEST', message: expect.stringContaining('"localhost" is not HOST:PORT') });
    expect(creationError([])).toMatchObject({ reason: 'INVALID_REQUEST', message: expect.stringContaining('at least one bootstrap broker') });
  });

  it('takes addresses of the expected form', () => {
    expect(creationError(['127.0.0.1:7070', '[::1]:65535', 'broker.example:1'])).toBeUndefined();
    expect(() => checkBrokerAddressesOrThrow(['127.0.0.1:1'])).not.toThrow();
  });
});
