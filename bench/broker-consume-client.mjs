/**
 * The measured side of broker-consume.ts: one consumer process on compiled JS (dist/client)
 * replaying every partition of a topic from offset 0 with `consumer.batches()` (the fast
 * path: one decoded, CRC-checked array of records per Subscribe reply) until `--records`
 * records arrived. Touches each record's value length, as an application would at least.
 *
 * The clock starts before `assign` + `seek` (stream setup is part of a replay) and stops at
 * the last record; `firstChunkSeconds` says how much of it was setup. Broker CPU comes from
 * /proc/<broker-pid>/stat over the same window.
 *
 *   node bench/broker-consume-client.mjs --broker 127.0.0.1:P --broker-pid PID --topic T --partitions N --records M
 *     [--partition-buffer-bytes B] [--max-message-bytes B]
 *
 * Prints one JSON line: records, bytes (values), seconds, firstChunkSeconds, chunks,
 * recordsPerSec, valueMBps, brokerCpuSeconds, clientCpuSeconds.
 */
import { createClient } from '../dist/client/index.js';
import { parseFlags } from './client-flags.mjs';
import { clientCpuSeconds, machineBusySeconds, processCpuSeconds } from './cpu-accounting.mjs';

const flags = parseFlags(process.argv.slice(2));
const topic = flags.topic;
const partitions = Number(flags.partitions ?? 1);
const recordsWanted = Number(flags.records);
const brokerPid = Number(flags['broker-pid']);
const consumerOptions = { autoOffsetReset: 'none' };
if (flags['partition-buffer-bytes'] !== undefined) consumerOptions.partitionBufferBytes = Number(flags['partition-buffer-bytes']);
if (flags['max-message-bytes'] !== undefined) consumerOptions.maxMessageBytes = Number(flags['max-message-bytes']);

const brokerCpuSeconds = () => processCpuSeconds(brokerPid);



const client = createClient({ brokers: [flags.broker], clientId: 'bench-consume' });
try {
  await client.admin.getMetadata([topic]); // connection and metadata outside the window
  const consumer = client.consumer(consumerOptions);
  const brokerCpu0 = brokerCpuSeconds();
  const clientCpu0 = clientCpuSeconds();
  const machine0 = machineBusySeconds();
  const start = process.hrtime.bigint();
  const assignment = Array.from({ length: partitions }, (_, partition) => ({ topic, partition }));
  consumer.assign(assignment);
  await Promise.all(assignment.map((tp) => consumer.seek(tp, 0)));
  let records = 0;
  let bytes = 0;
  let chunks = 0;
  let firstChunkNs = 0n;
  for await (const chunk of consumer.batches()) {
    if (chunks++ === 0) firstChunkNs = process.hrtime.bigint();
    for (let index = 0; index < chunk.length; index++) bytes += chunk[index].value?.length ?? 0;
    records += chunk.length;
    if (records >= recordsWanted) break;
  }
  const end = process.hrtime.bigint();
  const brokerCpu = brokerCpuSeconds() - brokerCpu0;
  const clientCpu = clientCpuSeconds() - clientCpu0;
  const machineBusy = machineBusySeconds() - machine0;
  const seconds = Number(end - start) / 1e9;
  await consumer.close();
  process.stdout.write(
    `${JSON.stringify({
      records,
      bytes,
      seconds,
      firstChunkSeconds: Number(firstChunkNs - start) / 1e9,
      chunks,
      recordsPerSec: records / seconds,
      valueMBps: bytes / 1e6 / seconds,
      brokerCpuSeconds: brokerCpu,
      clientCpuSeconds: clientCpu,
      machineBusySeconds: machineBusy,
      options: consumerOptions,
    })}\n`,
  );
} finally {
  await client.close();
}
