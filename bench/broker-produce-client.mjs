/**
 * The measured side of broker-produce.ts (and the loader of broker-consume.ts): one producer
 * process on compiled JS (dist/client) sending fixed-size records to a running broker as fast
 * as its buffer allows, the documented high-rate pattern (send without awaiting, yield to the
 * event loop every `--sends-per-turn` records, `waitForBufferSpace()` when the buffer is
 * full, `flush()` at the end).
 *
 * Runs `--warmup-seconds` first (JIT, connection, metadata, producer id), flushes, then
 * measures `--seconds` (or exactly `--records`) of sends plus the final flush. Reads the
 * broker's CPU time from /proc/<broker-pid>/stat at both ends of the measured window.
 *
 *   node bench/broker-produce-client.mjs --broker 127.0.0.1:P --broker-pid PID --topic T
 *     [--create-partitions N] [--topic-flush always|never] [--record-bytes 100] [--seconds 4 | --records N]
 *     [--warmup-seconds 1] [--acks leader] [--batch-bytes B] [--linger-ms L] [--sends-per-turn 1000] [--delete-after]
 *
 * Prints one JSON line: records, seconds, recordsPerSec, valueMBps, brokerCpuSeconds,
 * clientCpuSeconds (this process, user+system), options.
 */
import { createClient } from '../dist/client/index.js';
import { parseFlags } from './client-flags.mjs';
import { clientCpuSeconds, machineBusySeconds, processCpuSeconds } from './cpu-accounting.mjs';

const flags = parseFlags(process.argv.slice(2));

const topic = flags.topic;
const recordBytes = Number(flags['record-bytes'] ?? 100);
const measureSeconds = Number(flags.seconds ?? 4);
const recordsWanted = flags.records === undefined ? undefined : Number(flags.records);
const warmupSeconds = Number(flags['warmup-seconds'] ?? 1);
const sendsPerTurn = Number(flags['sends-per-turn'] ?? 1000);
const brokerPid = Number(flags['broker-pid']);
const producerOptions = { acks: flags.acks ?? 'leader' };
if (flags['batch-bytes'] !== undefined) producerOptions.batchBytes = Number(flags['batch-bytes']);
if (flags['linger-ms'] !== undefined) producerOptions.lingerMs = Number(flags['linger-ms']);
if (flags['buffer-bytes'] !== undefined) producerOptions.bufferBytes = Number(flags['buffer-bytes']);

const brokerCpuSeconds = () => processCpuSeconds(brokerPid);



const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Sends until `untilNs` (or `count` records); returns records sent. Awaits nothing per record. */
async function sendLoop(producer, value, untilNs, count) {
  let sent = 0;
  let failure;
  for (;;) {
    for (let index = 0; index < sendsPerTurn; index++) {
      if (count !== undefined && sent >= count) return { sent, failure };
      if (!producer.hasBufferSpace) await producer.waitForBufferSpace();
      const pending = producer.send({ topic, value });
      if (sent === 0) await pending.then(undefined, (error) => (failure = error)); // metadata + producer id
      sent++;
    }
    if (count === undefined && process.hrtime.bigint() >= untilNs) return { sent, failure };
    await yieldTurn();
  }
}

const client = createClient({ brokers: [flags.broker], clientId: 'bench-produce' });
try {
  if (flags['create-partitions'] !== undefined) {
    const configs = flags['topic-flush'] === undefined ? {} : { flush: flags['topic-flush'] };
    await client.admin.createTopic({ name: topic, partitions: Number(flags['create-partitions']), configs });
  }
  const producer = client.producer(producerOptions);
  const value = Buffer.alloc(recordBytes, 0x62);
  if (warmupSeconds > 0) {
    await sendLoop(producer, value, process.hrtime.bigint() + BigInt(Math.round(warmupSeconds * 1e9)));
    await producer.flush();
  }
  const brokerCpu0 = brokerCpuSeconds();
  const clientCpu0 = clientCpuSeconds();
  const machine0 = machineBusySeconds();
  const start = process.hrtime.bigint();
  const { sent, failure } = await sendLoop(producer, value, start + BigInt(Math.round(measureSeconds * 1e9)), recordsWanted);
  await producer.flush();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const brokerCpu = brokerCpuSeconds() - brokerCpu0;
  const clientCpu = clientCpuSeconds() - clientCpu0;
  const machineBusy = machineBusySeconds() - machine0;
  if (failure !== undefined) throw failure;
  await producer.close();
  if (flags['delete-after'] === 'true') await client.admin.deleteTopic(topic);
  process.stdout.write(
    `${JSON.stringify({
      records: sent,
      seconds,
      recordsPerSec: sent / seconds,
      valueMBps: (sent * recordBytes) / 1e6 / seconds,
      brokerCpuSeconds: brokerCpu,
      clientCpuSeconds: clientCpu,
      machineBusySeconds: machineBusy,
      options: producerOptions,
    })}\n`,
  );
} finally {
  await client.close();
}
