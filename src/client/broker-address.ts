/**
 * Bootstrap broker addresses: `HOST:PORT` or `[IPV6]:PORT`, the host non-empty and the port
 * in 1-65535. The client checks every address it is given when it is created
 * (connections.ts), and the CLI checks `--broker` / `RUNNEL_BROKER` with the same function, so
 * a typo fails at once, naming the address, instead of being retried for the whole retry
 * budget and then reported as a broker that is not running.
 */
import { BrokerError } from '../errors/index.js';

/** Lowest and highest TCP port; 0 and anything above 65535 reach no broker. */
const PORT_MIN = 1;
const PORT_MAX = 65_535;

/**
 * An address or host name, then `:` and the port digits; an IPv6 address goes in brackets,
 * also one with an IPv4 tail (`[::ffff:10.0.0.5]`, how an IPv4 peer shows in IPv6 socket
 * tables and logs), which grpc-js connects to like any other.
 */
const BROKER_ADDRESS_PATTERN = /^(?:[^\s:/[\]]+|\[[0-9a-fA-F:]+(?:\.[0-9]+){0,3}\]):(\d+)$/;

/**
 * What is wrong with `address` as a bootstrap broker address, worded to follow it in a
 * sentence ("is not HOST:PORT", "has port 70700, outside 1-65535"); undefined when it is fine.
 */
export function describeBrokerAddressProblem(address: string): string | undefined {
  const match = BROKER_ADDRESS_PATTERN.exec(address);
  if (match === null) return 'is not HOST:PORT';
  const digits = match[1]!;
  const port = Number(digits);
  if (port < PORT_MIN || port > PORT_MAX) return `has port ${digits}, outside ${PORT_MIN}-${PORT_MAX}`;
  return undefined;
}

/** Throws INVALID_REQUEST naming the first bad address (or an empty list) and the expected form. */
export function checkBrokerAddressesOrThrow(addresses: readonly string[]): void {
  if (addresses.length === 0) {
    throw new BrokerError('INVALID_REQUEST', 'at least one bootstrap broker address is required: pass brokers as HOST:PORT, e.g. 127.0.0.1:7070');
  }
  for (const address of addresses) {
    const problem = describeBrokerAddressProblem(address);
    if (problem !== undefined) {
      throw new BrokerError(
        'INVALID_REQUEST',
        `bootstrap broker address ${JSON.stringify(address)} ${problem}: expected HOST:PORT with a port in ${PORT_MIN}-${PORT_MAX}, e.g. 127.0.0.1:7070 or [::1]:7070`,
        { details: { address } },
      );
    }
  }
}
