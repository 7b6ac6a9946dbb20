import { describe, expect, it } from 'vitest';
import { brokerAddresses } from './client-command.js';

describe('brokerAddresses', () => {
  it('reads host:port lists, IPv6 in brackets, from --broker before RUNNEL_BROKER', () => {
    expect(brokerAddresses({}, { RUNNEL_BROKER: ' a:1, [::1]:7070 ,' })).toEqual(['a:1', '[::1]:7070']);
    expect(brokerAddresses({ broker: 'b:2' }, { RUNNEL_BROKER: 'a:1' })).toEqual(['b:2']);
    expect(brokerAddresses({}, {})).toEqual(['127.0.0.1:7070']);
  });

  it('refuses an address without a port, junk, and a port outside 1-65535', () => {
    expect(() => brokerAddresses({}, { RUNNEL_BROKER: 'localhost' })).toThrow(/is not HOST:PORT/);
    expect(() => brokerAddresses({}, { RUNNEL_BROKER: '::1:7070' })).toThrow(/is not HOST:PORT/);
    expect(() => brokerAddresses({ broker: 'localhost:70700' }, {})).toThrow(/port 70700, outside 1-65535/);
    expect(() => brokerAddresses({ broker: 'localhost:0' }, {})).toThrow(/port 0, outside 1-65535/);
    expect(() => brokerAddresses({ broker: ',' }, {})).toThrow(/no broker address given/);
  });
});
