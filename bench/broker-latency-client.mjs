/**
 * The measured sides of broker-latency.ts, on compiled JS: a producer process sending at a
 * steady rate and a consumer process tailing, on one machine. Each record's value carries
 * `process.hrtime.bigint()` at `send` (CLOCK_MONOTONIC, shared by every process on the
 * machine); the consumer's latency for it is hrtime when its chunk arrived minus that.
 *
 *   consume --broker ADDR --topic T [--create-partitions N] [--records M] [--warmup-records W] [--dump FILE]
 *       Creates the topic (broker default flush), assigns and seeks to 0, prints {"ready":true},
 *       tails until M records arrived (or 5 s without one), prints the latency summary of the
 *       records after the first W.
 *   produce --broker ADDR --topic T --rate R --seconds S [--linger-ms L] [--record-bytes 100]
 *       Sends R records/s for S seconds: every timer tick (setTimeout 1 ms) sends the records
 *       due by then, each stamped as it is sent; acks=leader; flush() at the end.
 *   pair --broker ADDR --topic T --records M --rate R --seconds S …
 *       Both in this one process (as Kafka's EndToEndLatency tool runs its producer and
 *       consumer): prints {"ready":true} once the consumer is positioned, then one line with
 *       the consumer's summary and the producer's result under "producer".
 *   consume --bare ADDR …  /  produce --bare ADDR …  /  pair --bare ADDR …
 *       The same through bare grpc-js (transport-baseline.mjs server): each tick's records are
 *       one Publish message, forwarded by the server to the Relay stream as it arrives.
 *
 * Latency values are in ms; percentiles by sorting every sample.
 */
import * as grpc from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { createClient } from '../dist/client/index.js';
import { CHANNEL_OPTIONS } from '../dist/protocol/grpc.js';
import { TRANSPORT_SERVICE } from './transport-baseline.mjs';
import { parseFlags } from './client-flags.mjs';

const [role, ...argv] = process.argv.slice(2);
const flags = parseFlags(argv);
const recordBytes = Number(flags['record-bytes'] ?? 100);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function summary(samples, count, warmup, extra) {
  const sorted = samples.subarray(0, count).sort();
  const at = (fraction) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    samples: sorted.length,
    warmupExcluded: warmup,
    avgMs: sum / sorted.length,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    p999Ms: at(0.999),
    maxMs: sorted[sorted.length - 1],
    ...extra,
  };
}

/** Tails until the expected records arrived; calls `onReady` once it is positioned. Returns the summary. */
async function consume(onReady) {
  const expected = Number(flags.records);
  const warmup = Number(flags['warmup-records'] ?? 0);
  const samples = new Float64Array(expected);
  const warmupSamples = new Float64Array(Math.max(warmup, 1));
  // --dump FILE: every record's send time (ms since the first) and latency, for finding patterns.
  const dump = flags.dump === undefined ? undefined : new Float64Array(expected * 2);
  let firstSentNs;
  let received = 0;
  let sampleCount = 0;
  let outOfOrder = 0;
  let lastSequence = -1;
  let lastArrivalMs = Date.now();
  const take = (value, nowNs) => {
    const sentNs = value.readBigInt64BE(0);
    const sequence = value.readUInt32BE(8);
    if (sequence !== lastSequence + 1) outOfOrder++;
    lastSequence = sequence;
    if (dump !== undefined && received < expected) {
      firstSentNs ??= sentNs;
      dump[received * 2] = Number(sentNs - firstSentNs) / 1e6;
      dump[received * 2 + 1] = Number(nowNs - sentNs) / 1e6;
    }
    if (received < warmup) warmupSamples[received] = Number(nowNs - sentNs) / 1e6;
    if (received++ >= warmup && sampleCount < samples.length) samples[sampleCount++] = Number(nowNs - sentNs) / 1e6;
  };
  const idle = async (stop) => {
    while (received < expected && Date.now() - lastArrivalMs < 5_000) await sleep(100);
    await stop();
  };
  if (flags.bare !== undefined) {
    const Client = grpc.makeGenericClientConstructor(TRANSPORT_SERVICE, 'Transport');
    const client = new Client(flags.bare, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS });
    const call = client.relay(Buffer.alloc(0));
    let isReady = false;
    const finished = new Promise((resolve) => {
      call.on('data', (message) => {
        if (!isReady) {
          isReady = true;
          onReady();
          return;
        }
        const nowNs = process.hrtime.bigint();
        lastArrivalMs = Date.now();
        for (let offset = 0; offset + recordBytes <= message.length; offset += recordBytes) take(message.subarray(offset, offset + recordBytes), nowNs);
        if (received >= expected) resolve();
      });
      call.on('error', () => resolve());
    });
    await Promise.race([finished, idle(async () => undefined)]);
    call.cancel();
    client.close();
  } else {
    const client = createClient({ brokers: [flags.broker], clientId: 'bench-latency-consume' });
    const topic = flags.topic;
    await client.admin.createTopic({ name: topic, partitions: Number(flags['create-partitions'] ?? 1) });
    const consumer = client.consumer({ autoOffsetReset: 'none' });
    consumer.assign([{ topic, partition: 0 }]);
    await consumer.seek({ topic, partition: 0 }, 0);
    onReady();
    void idle(() => consumer.close());
    for await (const chunk of consumer.batches()) {
      const nowNs = process.hrtime.bigint();
      lastArrivalMs = Date.now();
      for (let index = 0; index < chunk.length; index++) take(chunk[index].value, nowNs);
      if (received >= expected) break;
    }
    await consumer.close();
    await client.close();
  }
  if (dump !== undefined) writeFileSync(flags.dump, Buffer.from(dump.buffer, 0, Math.min(received, expected) * 16));
  const warmupSummary = warmup > 0 ? summary(warmupSamples, Math.min(received, warmup), 0, {}) : undefined;
  return summary(samples, sampleCount, warmup, { received, expected, outOfOrder, warmup: warmupSummary });
}

/** Sends at the steady rate; returns what was sent and the send → ack summary. */
async function produce() {
  const rate = Number(flags.rate);
  const total = Math.round(rate * Number(flags.seconds));
  // send → acknowledgement (acks=leader, flush=always: after the broker's fdatasync), per record.
  const ackSamples = new Float64Array(total);
  let ackCount = 0;
  let publish;
  let finish;
  if (flags.bare !== undefined) {
    const Client = grpc.makeGenericClientConstructor(TRANSPORT_SERVICE, 'Transport');
    const client = new Client(flags.bare, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS });
    const call = client.publish(() => undefined);
    publish = (values) => call.write(Buffer.concat(values));
    finish = async () => {
      call.end();
      await sleep(100);
      client.close();
    };
  } else {
    const client = createClient({ brokers: [flags.broker], clientId: 'bench-latency-produce' });
    const producerOptions = { acks: flags.acks ?? 'leader' };
    if (flags['linger-ms'] !== undefined) producerOptions.lingerMs = Number(flags['linger-ms']);
    const producer = client.producer(producerOptions);
    await client.admin.getMetadata([flags.topic]);
    let failure;
    publish = (values) => {
      for (const value of values) {
        const sentNs = value.readBigInt64BE(0);
        producer.send({ topic: flags.topic, value }).then(
          () => {
            if (ackCount < ackSamples.length) ackSamples[ackCount++] = Number(process.hrtime.bigint() - sentNs) / 1e6;
          },
          (error) => (failure ??= error),
        );
      }
    };
    finish = async () => {
      await producer.flush();
      await client.close();
      if (failure !== undefined) throw failure;
    };
  }
  const start = process.hrtime.bigint();
  let sent = 0;
  let ticks = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((Number(process.hrtime.bigint() - start) / 1e9) * rate));
    if (due > sent) {
      const values = [];
      while (sent < due) {
        const value = Buffer.alloc(recordBytes, 0x62);
        value.writeBigInt64BE(process.hrtime.bigint(), 0);
        value.writeUInt32BE(sent, 8);
        values.push(value);
        sent++;
      }
      publish(values);
      ticks++;
    }
    await sleep(1);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await finish();
  const warmup = Math.min(rate, ackCount);
  const ack = ackCount > warmup ? summary(ackSamples.subarray(warmup), ackCount - warmup, warmup, {}) : undefined;
  return { sent, seconds, ratePerSec: sent / seconds, ticks, ack };
}

const printLine = (value) => process.stdout.write(`${JSON.stringify(value)}\n`);
if (role === 'consume') printLine(await consume(() => printLine({ ready: true })));
else if (role === 'produce') printLine(await produce());
else if (role === 'pair') {
  // Producer and consumer in this one process, as Kafka's EndToEndLatency tool runs them.
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  const consumed = consume(onReady);
  consumed.catch(() => undefined);
  await Promise.race([ready, consumed]);
  printLine({ ready: true });
  const producer = await produce();
  printLine({ ...(await consumed), producer });
} else {
  console.error('usage: broker-latency-client.mjs consume|produce|pair …');
  process.exit(2);
}
