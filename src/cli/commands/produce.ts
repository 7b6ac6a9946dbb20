/**
 * `runnel produce TOPIC`: stdin to a topic, one record per line, streaming.
 *
 * Lines are sent as they arrive (batched by the producer's linger), so `tail -F app.log |
 * runnel produce app-logs` keeps going for as long as tail does. Memory stays bounded: the
 * loop awaits the producer's buffer space before each send, and while it waits it does not
 * read stdin (line-reader.ts), so the pipe's writer blocks instead.
 *
 * Exit status: 0 only when every line read was acknowledged (per --acks; with `all`, every
 * in-sync replica has it). At EOF the producer is flushed and closed. The first record that
 * fails stops the reading (a gap would follow it otherwise); what was sent is still settled,
 * then the command exits 1 naming the line and the reason. Lines sent before the failure came
 * back (in later batches) may still land after the failed one, so a line that cannot fit the
 * topic's max.message.bytes is refused before it is sent, as a line that is not valid input
 * for --format json is, or one that names a partition the topic does not have. SIGINT/SIGTERM stop the reading, send the lines already read,
 * settle them and exit 130/143 (1 if something failed).
 *
 * While records cannot be delivered (broker down or restarting, retriable errors), stderr says
 * so, with the lines waiting and when the producer gives up (--delivery-timeout-ms after the
 * oldest of them was sent), and says again when delivery resumes (outage-notice.ts; tested
 * in test/integration/cli-broker-restart.test.ts). A broker that cannot be reached when the
 * command starts is waited for the same way, for --delivery-timeout-ms, before stdin is read
 * (wait-for-broker.ts); an unknown topic or a broker host name that does not resolve still
 * fails at once.
 *
 * With --acks 1 or 0 the producer is not idempotent, so a resent batch may be written twice or
 * after later lines (the client's inFlightBatchesPerPartitionMax); the help says so.
 *
 * Every record is observed (a `.then` per send) so a failure is noticed while stdin is still
 * open, not only at EOF; at CLI rates the promise per record is cheap next to reading lines.
 */
import type { Command } from 'commander';
import type { Acks, Producer, ProducerRecord, RunnelClient, TopicDescription } from '../../client/index.js';
import { BATCH_HEADER_BYTES, varintSizeBytes } from '../../protocol/index.js';
import { CliError, describeBrokerTrouble, toCliError } from '../cli-error.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { readLines } from '../line-reader.js';
import { parseAcks, parseChoice, parseCount, parsePositiveCount } from '../option-parsers.js';
import { formatClockTime, formatElapsed, OutageNotice } from '../outage-notice.js';
import { formatCount, ProgressLine, ratePerSec } from '../progress-line.js';
import { parseJsonInputRecord } from '../record-json.js';
import { ProducerOutage } from '../producer-outage.js';
import { waitForBroker } from '../wait-for-broker.js';

type SetExitCode = (code: number) => void;

interface ProduceFlags extends ClientFlags {
  keySeparator?: string;
  partition?: number;
  acks: Acks;
  format: 'lines' | 'json';
  lingerMs: number;
  compression: 'none' | 'gzip';
  deliveryTimeoutMs: number;
}

/** Why the reading stopped. */
type StopCause =
  | { kind: 'eof' }
  | { kind: 'signal'; signal: NodeJS.Signals }
  | { kind: 'failed' }
  | { kind: 'bad-input'; message: string };

/** Single writer: this command's event-loop code (the read loop and the send handlers). */
export interface ProduceState {
  sent: number;
  acked: number;
  /** The earliest line that failed, with its error (see noteFailure); later lines' failures only count. */
  firstFailure: { lineNumber: number; error: unknown } | undefined;
  stopCause: StopCause | undefined;
  /** The read loop reached the end of stdin (nothing was left unread). */
  isInputDone: boolean;
}

/**
 * The producer's buffer budget. The client counts record bytes, but a buffered record costs
 * about 1 KiB of heap besides (its objects, buffer views and the promise observing it): with
 * the client's default 32 MiB, 40-byte lines held ~1 GB. 4 MiB keeps the heap near 100 MB
 * and cost no throughput in a 3-million-line run on loopback.
 */
const PRODUCE_BUFFER_BYTES = 4 * 1024 * 1024;

/** The producer's default batch size; smaller when the topic's max.message.bytes is. */
const PRODUCE_BATCH_BYTES = 256 * 1024;
/**
 * Room between a batch's record estimate and the topic's max.message.bytes: the 61-byte batch
 * header, and what gzip adds to a section that does not compress.
 */
const BATCH_HEADROOM_BYTES = 1024;
/**
 * The batch size under a limit smaller than the headroom: every batch then holds one record
 * (the producer closes a batch once it reaches this size), which fits whenever the line does.
 * A larger floor would make batches of several small lines, each batch over the limit.
 */
const BATCH_BYTES_MIN = 1;

const EXIT_CODE_BY_SIGNAL: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/** The client producer's default: two minutes to ride out a broker restart. */
const DELIVERY_TIMEOUT_MS_DEFAULT = 120_000;

export function registerProduceCommand(program: Command, setExitCode: SetExitCode): void {
  addClientOptions(
    program
      .command('produce')
      .description('send stdin to a topic, one record per line, until EOF')
      .argument('<topic>', 'topic to write to (it must exist)')
      .option('--key-separator <s>', 'split each line at the first <s> into key and value (a line without it gets a null key)')
      .option('--partition <n>', 'write every record to this partition (default: by key hash; records without a key spread in batches)', parseCount)
      .option('--acks <acks>', '0 (no ack), 1 (leader has it) or all (every in-sync replica has it)', parseAcks, 'all' as Acks)
      .option('--format <format>', 'lines: each line is the value; json: each line is {"key","value","headers","partition","timestamp"}', parseChoice(['lines', 'json'] as const), 'lines')
      .option('--linger-ms <ms>', 'how long a batch waits for more lines before it is sent', parseCount, 5)
      .option('--compression <codec>', 'none or gzip', parseChoice(['none', 'gzip'] as const), 'none')
      .option('--delivery-timeout-ms <ms>', 'how long a line may wait for its acknowledgement (retrying while the broker is unreachable) before the command gives up', parsePositiveCount, DELIVERY_TIMEOUT_MS_DEFAULT),
  )
    .addHelpText(
      'after',
      `
Examples:
  tail -F app.log | runnel produce app-logs                 # streams until tail stops
  runnel produce users --key-separator : < users.txt       # "42:alice" → key 42, value alice
  runnel consume users --from beginning --no-follow --format json | runnel produce users-copy --format json

With --format json each line is one object; only "value" is required:
  {"key":"42","value":"alice","headers":{"source":"import"},"partition":0,"timestamp":1763632800000}
"timestamp" is ms since the epoch or ISO 8601 (2026-11-20T10:00:00Z; local time without a
zone); "encoding":"base64" means key, value and header values are base64; "topic" and
"offset" (as printed by consume) are ignored. A line's "partition" wins over --partition.

With --acks all (the default) the producer is idempotent: a line is written once, in order.
With --acks 1 or 0 it is not: a batch of lines resent after a broker error (too many appends
waiting, a timeout, a restart) may be written twice, or after lines sent behind it.

Exit status is 0 only when every line read was acknowledged. The first failed record (or bad
JSON line) stops the reading: the command settles what it sent and exits 1 naming the line.
A line larger than the topic's max.message.bytes (without --compression), or a JSON line
naming a partition the topic does not have, is refused before it is sent, so no line after
it is written either.
Ctrl-C stops reading, sends what was read, waits for the acknowledgements and exits 130 (a
second Ctrl-C exits at once). On a terminal, stderr shows the rate.

While the broker is unreachable (down, restarting) the lines wait and are retried; stderr
says so when it starts (then every 10 s, later every minute), with the lines waiting and
the time the command gives up (--delivery-timeout-ms), and says when delivery resumes:
  runnel produce: cannot reach broker 127.0.0.1:7070 (connection refused); 12 lines waiting, retrying until 12:34:56 (--delivery-timeout-ms), then exits 1
  runnel produce: broker 127.0.0.1:7070 is back; lines delivered again after 14 s
A broker unreachable when the command starts is waited for the same way, for up to
--delivery-timeout-ms, before stdin is read:
  runnel produce: cannot reach broker 127.0.0.1:7070 (connection refused); stdin not read yet, retrying until 12:34:56 (--delivery-timeout-ms), then exits 1
  runnel produce: broker 127.0.0.1:7070 is reachable after 9 s; reading stdin`,
    )
    .action(async (topic: string, flags: ProduceFlags) => {
      if (flags.keySeparator === '') throw new CliError('--key-separator must not be empty');
      const exitCode = await withClient(flags, topic, ({ client, brokers }) => produceStdin(client, topic, flags, brokers));
      setExitCode(exitCode);
    });
}

async function produceStdin(client: RunnelClient, topic: string, flags: ProduceFlags, brokers: string[]): Promise<number> {
  const state: ProduceState = { sent: 0, acked: 0, firstFailure: undefined, stopCause: undefined, isInputDone: false };
  const startedMs = Date.now();
  const progress = new ProgressLine({
    mode: 'rewrite',
    intervalMs: 1_000,
    render: () =>
      `produce ${topic}: ${formatCount(state.sent)} lines sent, ${formatCount(state.acked)} acknowledged, ` +
      `${formatCount(ratePerSec(state.acked, Date.now() - startedMs))} lines/s`,
  });
  const outage = new ProduceOutage(brokers, (line) => progress.writeLine(line));
  // A broker that cannot be reached yet is waited for as a line would be (wait-for-broker.ts).
  const description = await waitForBroker((onRetry) => client.admin.describeTopic(topic, { onRetry }), {
    budgetMs: flags.deliveryTimeoutMs,
    budgetFlag: '--delivery-timeout-ms',
    onRetry: (error, giveUpAtMs) => outage.onStartRetry(error, giveUpAtMs),
  });
  outage.onStarted();
  const { batchBytes, maxMessageBytes } = checkTopicAndSizeBatches(description, topic, flags.partition);
  const partitions = new KnownPartitions(description.partitions.length, async () => (await client.admin.describeTopic(topic)).partitions.length);
  const producer = client.producer({
    acks: flags.acks,
    lingerMs: flags.lingerMs,
    compression: flags.compression,
    bufferBytes: PRODUCE_BUFFER_BYTES,
    batchBytes,
    deliveryTimeoutMs: flags.deliveryTimeoutMs,
    // A line waiting for buffer space waits for the broker too (the buffer drains as it
    // acknowledges): it must not fail sooner than the give-up time stderr announces.
    bufferWaitMsMax: flags.deliveryTimeoutMs,
    onRetry: (error, retrying) => outage.onRetry(error, retrying.deliveryDeadlineMs, state.sent - state.acked),
  });
  const stop = (cause: StopCause): void => {
    if (state.stopCause !== undefined) return;
    state.stopCause = cause;
    process.stdin.destroy(); // ends the read loop even while it waits for input
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (state.stopCause?.kind === 'signal') process.exit(EXIT_CODE_BY_SIGNAL[signal] ?? 1); // second Ctrl-C: give up waiting
    stop({ kind: 'signal', signal });
  };
  // Someone typing lines at a terminal needs their echo, not a status line.
  if (process.stdin.isTTY !== true) progress.start();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await sendLines(producer, topic, flags, state, stop, outage, { maxMessageBytes, partitions });
    // Close = flush and wait: every record sent gets its outcome (or fails after the delivery timeout).
    await producer.close().catch(() => undefined); // each failure reaches its own handler
    await new Promise((resolve) => setImmediate(resolve)); // let the last handlers run
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    progress.stop();
  }
  return finishProduce(topic, state, brokers);
}

/** `runnel produce`'s outage lines: a producer's (producer-outage.ts), and the start-up look-up's. */
class ProduceOutage extends ProducerOutage {
  constructor(brokers: string[], write: (line: string) => void) {
    super(brokers, write, { command: 'produce', item: 'line', recovered: 'lines delivered' });
  }

  /** The start-up look-up of the topic failed and will be retried until `giveUpAtMs`; stdin is not read meanwhile. */
  onStartRetry(error: unknown, giveUpAtMs: number): void {
    this.giveUpAtMs = giveUpAtMs;
    this.notice.retrying(({ isFirst, outageMs }) =>
      `${describeBrokerTrouble(error, this.brokers)}${isFirst ? '' : ` for ${formatElapsed(outageMs)}`}; ` +
        `stdin not read yet, retrying until ${formatClockTime(giveUpAtMs)} (--delivery-timeout-ms), then exits 1`,
    );
  }

  /** The start-up look-up succeeded: ends a start-up outage, if there was one. */
  onStarted(): void {
    this.notice.recovered((outageMs) => `broker ${this.brokers.join(',')} is reachable after ${formatElapsed(outageMs)}; reading stdin`);
  }
}

/**
 * Checks --partition against the topic and returns the batch size to use: the producer's
 * default, but below the topic's max.message.bytes, which rejects a larger batch whole (the
 * producer would split each refused batch and resend it, a wasted round trip every time
 * until it has learnt the smaller size).
 */
function checkTopicAndSizeBatches(description: TopicDescription, topic: string, partition: number | undefined): { batchBytes: number; maxMessageBytes: number | undefined } {
  const partitionCount = description.partitions.length;
  if (partition !== undefined && partition >= partitionCount) {
    throw new CliError(`topic ${topic} has ${partitionCount} partition(s), so no partition ${partition}: pick 0..${partitionCount - 1} with --partition`);
  }
  const maxMessageBytes = Number(description.configs['max.message.bytes']);
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes <= 0) return { batchBytes: PRODUCE_BATCH_BYTES, maxMessageBytes: undefined };
  return { batchBytes: Math.max(BATCH_BYTES_MIN, Math.min(PRODUCE_BATCH_BYTES, maxMessageBytes - BATCH_HEADROOM_BYTES)), maxMessageBytes };
}

/**
 * The exact size of the uncompressed batch holding `record` alone (record-batch.ts's
 * layout: the batch header, the record's length varint, then attributes, timestamp delta
 * and offset delta, one byte each in a batch of one record, and the length-prefixed key,
 * value and headers). When it is above max.message.bytes the broker refuses the record
 * whatever the batching; a lower bound here let records a few bytes over through.
 */
export function singleRecordBatchBytesOf(record: ProducerRecord): number {
  const fieldBytesOf = (data: Buffer | string | null | undefined): number => {
    if (data === null || data === undefined) return varintSizeBytes(-1);
    const sizeBytes = Buffer.byteLength(data);
    return varintSizeBytes(sizeBytes) + sizeBytes;
  };
  const headers = Array.isArray(record.headers) ? record.headers : Object.entries(record.headers ?? {}).map(([key, value]) => ({ key, value }));
  let bodyBytes = 3 + fieldBytesOf(record.key) + fieldBytesOf(record.value) + varintSizeBytes(headers.length);
  for (const header of headers) bodyBytes += fieldBytesOf(header.key) + fieldBytesOf(header.value);
  return BATCH_HEADER_BYTES + varintSizeBytes(bodyBytes) + bodyBytes;
}

/**
 * The topic's partition count as last looked up. A line naming a partition past it looks
 * the count up again (partitions may have been added since the command started) before the
 * line is refused.
 */
class KnownPartitions {
  constructor(
    public count: number,
    private readonly lookUpCount: () => Promise<number>,
  ) {}

  /** Whether the topic has `partition`, looking its count up again first. */
  async hasAfterLookUp(partition: number): Promise<boolean> {
    this.count = await this.lookUpCount().catch(() => this.count);
    return partition < this.count;
  }
}

/** What the topic allows, checked before each line is sent. */
interface TopicBounds {
  maxMessageBytes: number | undefined;
  partitions: KnownPartitions;
}

async function sendLines(
  producer: Producer,
  topic: string,
  flags: ProduceFlags,
  state: ProduceState,
  stop: (cause: StopCause) => void,
  outage: ProduceOutage,
  { maxMessageBytes, partitions }: TopicBounds,
): Promise<void> {
  // A line too large for the topic is refused before it is sent, so nothing after it is sent
  // either: refused by the broker, the lines read after it, already sent in later batches,
  // would land behind a gap. Under gzip only the broker can tell (the section may shrink).
  const sizeLimitBytes = flags.compression === 'none' ? maxMessageBytes : undefined;
  const separator = flags.keySeparator === undefined ? undefined : Buffer.from(flags.keySeparator, 'utf8');
  const onAcked = (): void => {
    state.acked++;
    if (outage.isOngoing) outage.onDelivered();
  };
  let lineNumber = 0;
  try {
    for await (const lines of readLines(process.stdin)) {
      for (const line of lines) {
        lineNumber++;
        let record: ProducerRecord;
        try {
          record = flags.format === 'json' ? jsonLineToRecord(topic, line, flags.partition) : textLineToRecord(topic, line, separator, flags.partition);
        } catch (error) {
          const problem = error instanceof Error ? error.message : String(error);
          stop({ kind: 'bad-input', message: `line ${lineNumber} ${problem}: fix it, or send lines as they are with --format lines` });
          return;
        }
        // A line's own "partition" (--format json) the topic does not have would be refused
        // by the producer, after the lines read with it were sent: refused before, as bad input.
        if (record.partition !== undefined && record.partition >= partitions.count && !(await partitions.hasAfterLookUp(record.partition))) {
          stop({
            kind: 'bad-input',
            message:
              `line ${lineNumber} names partition ${record.partition}, but topic ${topic} has ${partitions.count} partition(s), 0..${partitions.count - 1}: ` +
              `fix the line, or add partitions with \`runnel topic alter ${topic} --partitions N\``,
          });
          return;
        }
        const batchBytes = sizeLimitBytes === undefined ? 0 : singleRecordBatchBytesOf(record);
        if (sizeLimitBytes !== undefined && batchBytes > sizeLimitBytes) {
          stop({
            kind: 'bad-input',
            message:
              `line ${lineNumber} is ${formatCount(line.length)} bytes, too large for topic ${topic} (a batch of it alone is ${formatCount(batchBytes)} bytes; ` +
              `max.message.bytes is ${formatCount(sizeLimitBytes)}): split it, or raise the limit with \`runnel topic alter ${topic} --config max.message.bytes=N\``,
          });
          return;
        }
        if (!producer.hasBufferSpace) await producer.waitForBufferSpace();
        // After a failure nothing more is sent (it would follow a gap). After a signal the
        // lines already read are still sent: only the reading stops.
        if (state.stopCause !== undefined && state.stopCause.kind !== 'signal') return;
        const sentLine = lineNumber;
        state.sent++;
        const pending = producer.send(record).then(onAcked, (error: unknown) => {
          noteFailure(state, sentLine, error);
          stop({ kind: 'failed' });
        });
        // The first record is awaited, so a line that cannot be delivered (a broker away past
        // --delivery-timeout-ms, a topic gone) stops the command before more of stdin is read;
        // afterwards every send is bounded by buffer space.
        if (state.sent === 1) await pending;
      }
    }
    state.isInputDone = true;
  } catch (error) {
    // Destroying stdin to stop ends the iteration with a premature-close error: expected.
    if (state.stopCause !== undefined && isPrematureClose(error)) return;
    if (error instanceof CliError) {
      stop({ kind: 'bad-input', message: error.message });
      return;
    }
    throw error;
  }
}

function isPrematureClose(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_STREAM_PREMATURE_CLOSE';
}

function textLineToRecord(topic: string, line: Buffer, separator: Buffer | undefined, partition: number | undefined): ProducerRecord {
  const separatorAt = separator === undefined ? -1 : line.indexOf(separator);
  return {
    topic,
    key: separatorAt < 0 ? null : line.subarray(0, separatorAt),
    value: separatorAt < 0 ? line : line.subarray(separatorAt + separator!.length),
    ...(partition === undefined ? {} : { partition }),
  };
}

function jsonLineToRecord(topic: string, line: Buffer, defaultPartition: number | undefined): ProducerRecord {
  const parsed = parseJsonInputRecord(line.toString('utf8'));
  const partition = parsed.partition ?? defaultPartition;
  return {
    topic,
    key: parsed.key,
    value: parsed.value,
    headers: parsed.headers,
    ...(partition === undefined ? {} : { partition }),
    ...(parsed.timestamp === undefined ? {} : { timestamp: parsed.timestamp }),
  };
}

/**
 * Records that line `lineNumber` failed. Failures come back out of line order (a batch that
 * is retried fails after a later line's batch that failed at once, say when the topic was
 * deleted), and the command names the earliest: the lines before it were all acknowledged.
 */
export function noteFailure(state: Pick<ProduceState, 'firstFailure'>, lineNumber: number, error: unknown): void {
  if (state.firstFailure === undefined || lineNumber < state.firstFailure.lineNumber) state.firstFailure = { lineNumber, error };
}

function finishProduce(topic: string, state: ProduceState, brokers: string[]): number {
  const summary = `${formatCount(state.acked)} of ${formatCount(state.sent)} lines sent were acknowledged`;
  if (state.firstFailure !== undefined) {
    const reason = toCliError(state.firstFailure.error, { brokers, topic }).message;
    throw new CliError(`line ${state.firstFailure.lineNumber} was not acknowledged: ${reason}; ${summary}, ${state.isInputDone ? 'every line was read' : 'reading stopped there'}`);
  }
  const cause = state.stopCause ?? { kind: 'eof' };
  if (cause.kind === 'bad-input') throw new CliError(`${cause.message}; ${summary}, reading stopped there`);
  // Every outcome arrived through a handler, so this is a safety net for a client that settled without one.
  if (state.acked < state.sent) throw new CliError(`${summary}; the others have no outcome: send the missing lines again`);
  if (process.stderr.isTTY === true) process.stderr.write(`produced ${formatCount(state.acked)} records to ${topic}\n`);
  return cause.kind === 'signal' ? (EXIT_CODE_BY_SIGNAL[cause.signal] ?? 1) : 0;
}
