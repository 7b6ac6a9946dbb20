/**
 * A subscriber in its own process, for tests that stall a reader for real (SIGSTOP): it
 * subscribes with the given credit, prints `first <bytes>` on its first message and
 * `total <bytes>` every time the running total passes another 8 MiB.
 * Usage: node --import tsx test/support/subscribe-child.ts <address> <topic> <creditBytes>
 */
import type * as grpc from '@grpc/grpc-js';
import { rawClients } from './raw-grpc.js';

const [address, topic, creditText] = process.argv.slice(2);
const clients = rawClients(address as string);
const call = (clients.log as unknown as { Subscribe(): grpc.ClientDuplexStream<object, { recordBatches: Buffer }> }).Subscribe();
let total = 0;
let reported = 0;
call.on('data', (message) => {
  if (total === 0) process.stdout.write(`first ${message.recordBatches.length}\n`);
  total += message.recordBatches.length;
  if (total - reported >= 8 * 1024 * 1024) {
    reported = total;
    process.stdout.write(`total ${total}\n`);
  }
});
call.on('error', (error) => {
  process.stderr.write(`subscribe failed: ${error.message}\n`);
  process.exit(1);
});
call.write({ start: { topic, partition: 0, offset: '0', creditBytes: Number(creditText), format: 'RECORD_FORMAT_BATCHES' } });
