/**
 * A client in its own process that closes only its consumer or its producer, never the
 * client, while a call it started is still retried against an address nothing answers: the
 * process must then exit on its own, promptly, because nothing of the closed part may keep a
 * timer or a call alive. Prints `closed` right after the close (the parent times the exit from
 * there).
 *
 * Modes:
 * - `consumer`: a consumer whose offset reset (assign) and seek retry ListOffsets; closed once
 *   the client's clock has armed a few backoff timers.
 * - `producer-metadata`: an idempotent producer whose record waits for the topic's metadata;
 *   closed (timeout 0) at the first `onRetry`.
 * - `producer-id <topic>`: the same with the topic's metadata loaded first (the address must
 *   answer until the parent stops it: it waits for a line on stdin), so the record waits for
 *   InitProducerId.
 *
 * Usage: node --import tsx test/support/close-child.ts <mode> <address> <retryTimeoutMs> [topic]
 */
import { createInterface } from 'node:readline';
import type { Clock } from '../../src/common/index.js';
import { createClient } from '../../src/client/index.js';

const [mode, address, retryTimeoutText, topicArgument] = process.argv.slice(2);
let timersArmed = 0;
let onTimerArmed: (() => void) | undefined;
const countingClock: Clock = {
  nowMs: () => Date.now(),
  setTimer(delayMs, callback) {
    timersArmed++;
    onTimerArmed?.();
    const timer = setTimeout(callback, delayMs);
    return () => clearTimeout(timer);
  },
};
const client = createClient({ brokers: [address as string], clock: countingClock, retry: { timeoutMs: Number(retryTimeoutText) } });

let isClosedReported = false;
function reportClosed(): void {
  if (isClosedReported) return;
  isClosedReported = true;
  process.stdout.write('closed\n');
}

async function runConsumer(): Promise<void> {
  const consumer = client.consumer({ autoOffsetReset: 'earliest' });
  consumer.assign([
    { topic: 'close-child', partition: 0 },
    { topic: 'close-child', partition: 1 },
  ]);
  const seeking = consumer.seek({ topic: 'close-child', partition: 1 }, 'latest');
  await new Promise<void>((resolve) => {
    onTimerArmed = () => {
      if (timersArmed >= 4) resolve();
    };
  });
  onTimerArmed = undefined;
  await consumer.close();
  reportClosed();
  await seeking.then(
    () => process.stdout.write('seek resolved\n'),
    (error: unknown) => process.stdout.write(`seek failed: ${String(error)}\n`),
  );
}

async function runProducer(topic: string): Promise<void> {
  const producer = client.producer({
    lingerMs: 0,
    deliveryTimeoutMs: 600_000,
    onRetry: () => {
      producer.close({ timeoutMs: 0 }).catch(() => undefined);
      reportClosed();
    },
  });
  await producer.send({ topic, value: 'v' }).catch(() => undefined);
}

async function waitForStdinLine(): Promise<void> {
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => lines.once('line', () => resolve()));
  lines.close();
}

if (mode === 'consumer') {
  await runConsumer();
} else if (mode === 'producer-metadata') {
  await runProducer('close-child');
} else if (mode === 'producer-id') {
  const topic = topicArgument as string;
  // A producer without idempotence loads the metadata (the cache is the client's) and sends.
  const loader = client.producer({ acks: 'leader', lingerMs: 0 });
  await loader.send({ topic, value: 'cached' });
  await loader.close();
  process.stdout.write('cached\n');
  await waitForStdinLine();
  await runProducer(topic);
} else {
  throw new Error(`unknown mode ${mode}`);
}
