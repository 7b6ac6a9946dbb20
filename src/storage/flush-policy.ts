/**
 * When appended bytes reach stable storage, per log (topic config `flush`):
 *
 * | policy          | an append resolves when…                         | a power loss can take…          |
 * |-----------------|--------------------------------------------------|---------------------------------|
 * | `always`        | its bytes are fdatasync'ed (one fdatasync serves every append queued meanwhile: group commit) | nothing acknowledged |
 * | `interval:<ms>` | its bytes are written; fdatasync within <ms>     | up to <ms> of acknowledged data |
 * | `never`         | its bytes are written; fdatasync at roll and close only (rely on replication, Kafka's default) | what the kernel had not written back |
 *
 * A process crash (SIGKILL, OOM) loses nothing under any policy: written bytes are in the
 * page cache. Readers see bytes only once the policy's acknowledgement point is reached.
 */
import { limits } from '../config/limits.js';
import { BrokerError } from '../errors/index.js';

export type FlushPolicy = { kind: 'always' } | { kind: 'interval'; intervalMs: number } | { kind: 'never' };


export function parseFlushPolicy(text: string): FlushPolicy {
  if (text === 'always') return { kind: 'always' };
  if (text === 'never') return { kind: 'never' };
  const match = /^interval:(\d+)$/.exec(text);
  if (match !== null) {
    const intervalMs = Number(match[1]);
    if (intervalMs >= 1 && intervalMs <= limits.flushIntervalMsMax) return { kind: 'interval', intervalMs };
  }
  throw new BrokerError(
    'INVALID_REQUEST',
    `invalid flush policy ${JSON.stringify(text)}: use "always", "never" or "interval:<ms>" with 1 ≤ ms ≤ ${limits.flushIntervalMsMax}`,
  );
}

export function formatFlushPolicy(policy: FlushPolicy): string {
  return policy.kind === 'interval' ? `interval:${policy.intervalMs}` : policy.kind;
}
