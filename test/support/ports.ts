/**
 * Loopback ports for tests that need to know a broker's port before it listens, or one
 * nothing listens on.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Listens on 127.0.0.1:`port`, closes, and returns the port that was bound. */
function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const bound = (server.address() as { port: number }).port;
      server.close(() => resolve(bound));
    });
  });
}

/** A port nothing listens on (taken from the kernel, then freed). */
export function unusedPort(): Promise<number> {
  return listenOnce(0);
}

/**
 * A port free now on 127.0.0.1 and outside the kernel's ephemeral range, so nothing can be
 * given it by the kernel while a broker that owns it is down. Falls back to a port-0 pick
 * where the range cannot be read or leaves no room below it.
 */
export async function pickStablePort(): Promise<number> {
  let ephemeralLow = 32_768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // not Linux: assume the IANA range starts at 49152, or Linux's default 32768, whichever is lower
  }
  const low = 10_000;
  if (Number.isSafeInteger(ephemeralLow) && ephemeralLow > low + 1_000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = randomInt(low, ephemeralLow);
      if (await isPortFree(port)) return port;
    }
  }
  return unusedPort();
}

async function isPortFree(port: number): Promise<boolean> {
  try {
    await listenOnce(port);
    return true;
  } catch {
    return false;
  }
}
