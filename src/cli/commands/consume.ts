/**
 * `runnel consume TOPIC`: prints a topic's records on stdout, one per line, in offset order
 * per partition (partitions interleave chunk by chunk).
 *
 * Where it starts: every partition's start offset is resolved once, up front, with one
 * ListOffsets call for all partitions (beginning, end, or a point in time), and the consumer
 * is sought to those numbers; so a record appended between that call and the subscription is
 * still printed. Default: `end` when following (like `tail -f` and Kafka's console consumer),
 * `beginning` with `--no-follow` (which would print nothing from the end).
 *
 * While following every partition (no `--partition`), partitions added to the topic meanwhile
 * (`runnel topic alter --partitions`) are found within `PARTITION_CHECK_INTERVAL_MS` and read from
 * their start: all they hold was written after the command began.
 *
 * Where it stops: `--no-follow` takes every partition's log end offset at start and stops each
 * partition there; `--max N` after N records; otherwise it tails until Ctrl-C (exit 130) or a
 * closed stdout (`| head`, exit 0). After Ctrl-C or SIGTERM the reader of stdout gets
 * OUTPUT_GRACE_MS to take the output still held, then it is given up (a reader that stopped
 * reading would hold the command for ever); a second Ctrl-C gives it up at once.
 *
 * `--from @TIME` asks the broker for the first record at or after TIME and starts there (the
 * consumer also skips records older than TIME until the first one that is not, which matters
 * only if the broker had to answer with a batch's first offset). A partition with no record
 * that late starts at its log end and skips nothing: what is appended later comes after TIME
 * in the log, even when a producer stamped it earlier (or TIME lies in the future).
 *
 * When the broker goes away (down, restarting), each partition's stream is reopened where it
 * stopped, and stderr says so (outage-notice.ts): while following, without a deadline (the
 * command tails until Ctrl-C, as `tail -F` outlives a rotated file); with --no-follow for the
 * client's 60 s, then it exits 1. A broker that cannot be reached when the command starts
 * (down, or still starting: a consumer started at boot races it) is waited for, with and
 * without --no-follow, up to --api-timeout-ms (60 s by default, Kafka's
 * default.api.timeout.ms), saying so the same way (wait-for-broker.ts); an unknown topic,
 * partition or offset still fails at once. Tested in test/integration/cli-broker-restart.test.ts.
 *
 * The consumer never skips records silently: it is created with autoOffsetReset 'none', so
 * if retention deletes records before they were read the command stops with an error.
 */
import type { Command } from 'commander';
import {
  isBrokerError,
  RETRY_DEFAULTS,
  type BrokerError,
  type Consumer,
  type ConsumerRecord,
  type PartitionOffset,
  type RunnelClient,
  type TopicPartition,
} from '../../client/index.js';
import { systemClock } from '../../common/index.js';
import { CliError } from '../cli-error.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { parseChoice, parseCount, parseFromSpec, parsePositiveCount, type FromSpec } from '../option-parsers.js';
import { writeWithBackpressure } from '../output.js';
import { formatCount, ProgressLine, ratePerSec } from '../progress-line.js';
import { consumerRecordToJson } from '../record-json.js';
import { ConsumerOutage } from '../consumer-outage.js';
import { waitForBroker } from '../wait-for-broker.js';

type SetExitCode = (code: number) => void;

interface ConsumeFlags extends ClientFlags {
  from?: FromSpec;
  partition?: number;
  group?: string;
  max?: number;
  format: 'value' | 'json';
  follow?: boolean;
  apiTimeoutMs: number;
}

/** What the read loop needs per partition. */
export interface PartitionPlan {
  partition: number;
  startOffset: number;
  /** With --no-follow: stop before this offset (the log end offset at start). */
  endOffset: number | undefined;
  /**
   * With --from @TIME, when the broker found a record that late: skip leading records older
   * than this (they can precede it only in the batch the broker answered with).
   */
  skipBeforeMs: number | undefined;
}

/** While following every partition: how often the topic's partitions are listed again. */
const PARTITION_CHECK_INTERVAL_MS = 5_000;

/**
 * How long the start-up look-ups (partitions, offsets) wait for a broker that cannot be
 * reached: a minute, as Kafka's consumer bounds such calls (default.api.timeout.ms), and as
 * long as a --no-follow read waits for a broker that went away.
 */
const API_TIMEOUT_MS_DEFAULT = RETRY_DEFAULTS.timeoutMs;

const EXIT_CODE_BY_SIGNAL: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };
/** After SIGINT/SIGTERM: how long the reader of stdout gets to take the output still held. */
const OUTPUT_GRACE_MS = 2_000;
const NEWLINE = Buffer.from('\n');

export function registerConsumeCommand(program: Command, setExitCode: SetExitCode): void {
  addClientOptions(
    program
      .command('consume')
      .description('print records of a topic on stdout, one per line')
      .argument('<topic>', 'topic to read')
      .option('--from <position>', 'beginning | end | OFFSET | @TIME | -DURATION (default: end when following, beginning with --no-follow)', parseFromSpec)
      .option('--partition <n>', 'read only this partition (default: all)', parseCount)
      .option('--max <n>', 'stop after n records', parsePositiveCount)
      .option('--format <format>', 'value: the value as is; json: {"topic","partition","offset","timestamp","key","value","headers"}', parseChoice(['value', 'json'] as const), 'value')
      .option('--follow', 'keep waiting for new records (the default)')
      .option('--no-follow', 'stop at the end offsets current when the command started')
      .option(
        '--api-timeout-ms <ms>',
        'how long to wait at start for a broker that cannot be reached (down, still starting) before exiting 1 (as Kafka\'s default.api.timeout.ms)',
        parsePositiveCount,
        API_TIMEOUT_MS_DEFAULT,
      )
      .option('--group <group>', 'consumer groups are not supported yet'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel consume app-logs                                   # new records from now on, until Ctrl-C
  runnel consume app-logs --from beginning --no-follow > dump.txt
  runnel consume app-logs --from -1h --format json | jq .value
  runnel consume app-logs --from @2026-11-20T10:00:00Z --max 100
  runnel consume app-logs --partition 2 --from 1500 --max 1
  runnel consume app-logs --api-timeout-ms 300000          # started at boot: wait up to 5 min for the broker

--from: beginning (oldest record kept), end (only new records), OFFSET (needs --partition
when the topic has several: offsets are per partition), @TIME as ISO 8601 (local time
without a zone, so @2026-11-20 is local midnight) or ms since the epoch, or -DURATION back
from now (30s, 15m, 1h, 2d; 1h30m). Default: end when following, beginning with --no-follow.

--format json prints one object per line; key, value and header values are UTF-8 strings,
or base64 for all of them when one is not valid UTF-8 (the object then has
"encoding":"base64"); null stays null. "headers" is an object ({"trace":"abc"}), or an
array of {"key","value"} in order when a header key repeats, is __proto__, or is a number. --format value prints each
value followed by a newline (a null value prints an empty line).

Ctrl-C (exit 130) or SIGTERM (143) gives the reader of stdout ${OUTPUT_GRACE_MS / 1000} s to take what is still
printed, then gives that up; a second Ctrl-C exits at once.

Without --max and --no-follow it keeps tailing until Ctrl-C (exit 130), and without
--partition it also reads partitions added meanwhile, from their start, within 5 s. When the broker
goes away it keeps retrying and resumes where it stopped; stderr says so when it starts
(then every 10 s, later every minute) and when reading resumes:
  runnel consume: cannot reach broker 127.0.0.1:7070 (connection refused); retrying until Ctrl-C, reading resumes where it stopped
  runnel consume: broker 127.0.0.1:7070 is back; reading app-logs again after 14 s
With --no-follow it gives up after a minute (exit 1), and the line says when.

A broker unreachable when the command starts (down, or still starting at boot) is waited
for, with or without --no-follow, for up to --api-timeout-ms (default ${API_TIMEOUT_MS_DEFAULT} ms); stderr
says so the same way, then exits 1 if it is still unreachable:
  runnel consume: cannot reach broker 127.0.0.1:7070 (connection refused); nothing read yet, retrying until 12:34:56 (--api-timeout-ms), then exits 1
  runnel consume: broker 127.0.0.1:7070 is reachable after 9 s; reading app-logs
An unknown topic, partition or offset fails at once.`,
    )
    .action(async (topic: string, flags: ConsumeFlags) => {
      if (flags.group !== undefined) {
        throw new CliError('consumer groups are not supported yet: drop --group to read the partitions directly (use --from to choose where to start)');
      }
      const exitCode = await withClient(flags, topic, ({ client, brokers }) => consumeTopic(client, topic, flags, brokers));
      setExitCode(exitCode);
    });
}

async function consumeTopic(client: RunnelClient, topic: string, flags: ConsumeFlags, brokers: string[]): Promise<number> {
  const isFollowing = flags.follow ?? true;
  const from = flags.from ?? (isFollowing ? { kind: 'end' } : { kind: 'beginning' });
  const state = { printed: 0, exitCode: 0, isStopping: false };
  let startedMs = Date.now();
  const progress = new ProgressLine({
    mode: 'rewrite',
    intervalMs: 1_000,
    render: () => `consume ${topic}: ${formatCount(state.printed)} records, ${formatCount(ratePerSec(state.printed, Date.now() - startedMs))} records/s`,
  });
  const outage = new ConsumerOutage('consume', topic, brokers, (line) => progress.writeLine(line));
  // A broker that cannot be reached yet is waited for, up to --api-timeout-ms (wait-for-broker.ts).
  const plans = await waitForBroker(
    async (onRetry) => {
      const partitions = await selectPartitions(client, topic, flags.partition, onRetry);
      return planPartitions(client, topic, partitions, from, isFollowing, onRetry);
    },
    { budgetMs: flags.apiTimeoutMs, budgetFlag: '--api-timeout-ms', onRetry: (error, giveUpAtMs) => outage.onStartRetry(error, giveUpAtMs) },
  );
  outage.onStarted();
  const active = plans.filter((plan) => plan.endOffset === undefined || plan.startOffset < plan.endOffset);
  if (active.length === 0) return 0;
  startedMs = Date.now(); // the rate counts reading time, not the wait for the broker
  const consumer = client.consumer({
    autoOffsetReset: 'none',
    // Following has no deadline: the command runs until Ctrl-C, and a wait costs one timer
    // per partition (nothing accumulates); stderr says every minute that it is still waiting.
    retry: { timeoutMs: isFollowing ? Number.POSITIVE_INFINITY : RETRY_DEFAULTS.timeoutMs },
    onRetry: (error, retrying) => outage.onRetry(error, retrying.partition, retrying.giveUpAtMs),
    onRecovered: (recovered) => outage.onRecovered(recovered.partition),
  });
  const stop = (exitCode: number): void => {
    if (state.isStopping) return;
    state.isStopping = true;
    state.exitCode = exitCode;
    void consumer.close(); // ends the read loop, also while it waits for records
  };
  let isSignalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    const exitCode = EXIT_CODE_BY_SIGNAL[signal] ?? 1;
    if (isSignalled) process.exit(exitCode); // second Ctrl-C: give up the output not yet taken at once
    isSignalled = true;
    stop(exitCode);
    // Output stdout still holds keeps the process alive until its reader takes it, and the read
    // loop may be waiting for 'drain': a reader that stopped reading (a full pipe) would hold
    // the command for ever. It gets OUTPUT_GRACE_MS, then what it has not taken is given up
    // (stdout cannot be destroyed). The timer is unref'd: a reader that takes it all in time
    // lets the command end as usual.
    systemClock.setTimer(OUTPUT_GRACE_MS, () => process.exit(exitCode));
  };
  const onStdoutError = (error: NodeJS.ErrnoException): void => stop(error.code === 'EPIPE' ? 0 : 1); // `| head` closed the pipe: done
  // Records going to the terminal and a status line on the same screen would garble both.
  if (process.stdout.isTTY !== true) progress.start();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', onStdoutError);
  const byPartition = new Map(active.map((plan) => [plan.partition, { ...plan }]));
  let stopFollowingNewPartitions: (() => void) | undefined;
  try {
    consumer.assign(active.map((plan) => ({ topic, partition: plan.partition })));
    for (const plan of active) await consumer.seek({ topic, partition: plan.partition }, plan.startOffset);
    if (isFollowing && flags.partition === undefined) stopFollowingNewPartitions = followNewPartitions(client, consumer, topic, byPartition);
    await printRecords(consumer, topic, byPartition, flags, state, stop);
  } catch (error) {
    // Once stopping, the consumer is closed under assign/seek/the loop: their failure is expected.
    if (!state.isStopping) throw translateConsumeError(error, topic);
  } finally {
    stopFollowingNewPartitions?.();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onStdoutError);
    progress.stop();
    await consumer.close();
  }
  if (process.stderr.isTTY === true && process.stdout.isTTY !== true) process.stderr.write(`${consumeSummary(topic, state.printed, Date.now() - startedMs)}\n`);
  return state.exitCode;
}

/**
 * The last line on a terminal's stderr (stdout redirected): the count, the reading time and the
 * rate, so a replay shorter than the progress line's first update (1 s) reports its throughput
 * too; before, it said only the count.
 */
export function consumeSummary(topic: string, printedCount: number, elapsedMs: number): string {
  return `consumed ${formatCount(printedCount)} records from ${topic} in ${(elapsedMs / 1000).toFixed(1)} s (${formatCount(ratePerSec(printedCount, elapsedMs))} records/s)`;
}

/**
 * Lists the topic's partitions every `intervalMs` and assigns the new ones, from their start
 * (they were created after the command began). A failed check is left to the next one: the
 * streams of the partitions already read report an unreachable broker, and a deleted topic
 * ends the read loop with TOPIC_NOT_FOUND. A new partition whose start could not be found
 * (its log not created yet while the broker adds partitions, or the broker went away) is
 * looked for again at the next check. Returns the function that stops it.
 */
export function followNewPartitions(
  client: RunnelClient,
  consumer: Consumer,
  topic: string,
  byPartition: Map<number, PartitionPlan>,
  intervalMs = PARTITION_CHECK_INTERVAL_MS,
): () => void {
  let isChecking = false;
  let isStopped = false;
  const check = async (): Promise<void> => {
    const partitions = await selectPartitions(client, topic, undefined);
    const added = partitions.filter((partition) => !byPartition.has(partition));
    if (added.length === 0 || isStopped) return;
    for (const partition of added) byPartition.set(partition, { partition, startOffset: 0, endOffset: undefined, skipBeforeMs: undefined });
    consumer.assign([...byPartition.keys()].map((partition) => ({ topic, partition })));
    for (const partition of added) {
      try {
        await consumer.seek({ topic, partition }, 'earliest');
      } catch (error) {
        // Assigned but not positioned, so never read: forget it, and the next check finds it
        // new again and seeks once more (the seek failure was not reported to the read loop).
        byPartition.delete(partition);
        if (isStopped) throw error;
      }
    }
  };
  const timer = setInterval(() => {
    if (isChecking || isStopped) return;
    isChecking = true;
    check()
      .catch(() => undefined)
      .finally(() => (isChecking = false));
  }, intervalMs);
  return () => {
    isStopped = true;
    clearInterval(timer);
  };
}

/** `onRetry` hears of each failure the look-up will retry. */
async function selectPartitions(client: RunnelClient, topic: string, partition: number | undefined, onRetry?: (error: BrokerError) => void): Promise<number[]> {
  const metadata = await client.admin.getMetadata([topic], { onRetry });
  const all = (metadata.topics.find((candidate) => candidate.name === topic)?.partitions ?? []).map((entry) => entry.partition).sort((a, b) => a - b);
  if (partition === undefined) return all;
  if (!all.includes(partition)) {
    throw new CliError(`topic ${topic} has ${all.length} partition(s), so no partition ${partition}: pick 0..${all.length - 1} with --partition`);
  }
  return [partition];
}

/**
 * Resolves where each partition starts (and, without following, ends) with one call per spec.
 * `onRetry` hears of each failure those calls will retry.
 */
async function planPartitions(
  client: RunnelClient,
  topic: string,
  partitions: number[],
  from: FromSpec,
  isFollowing: boolean,
  onRetry: (error: BrokerError) => void,
): Promise<PartitionPlan[]> {
  /** Partitions with no record at or after TIME (answered with the log end): nothing there to skip. */
  const noRecordThatLate = new Set<number>();
  const offsetsOf = async (spec: 'earliest' | 'latest' | { timestamp: number }): Promise<Map<number, number>> => {
    const offsets: PartitionOffset[] = await client.admin.listOffsets({ topic, partitions, spec, onRetry });
    if (typeof spec === 'object') for (const entry of offsets) if (entry.timestamp < 0) noRecordThatLate.add(entry.partition);
    return new Map(offsets.map((entry) => [entry.partition, entry.offset]));
  };
  const ends = isFollowing ? undefined : await offsetsOf('latest');
  let starts: Map<number, number>;
  switch (from.kind) {
    case 'beginning':
      starts = await offsetsOf('earliest');
      break;
    case 'end':
      starts = ends ?? (await offsetsOf('latest'));
      break;
    case 'timestamp':
      starts = await offsetsOf({ timestamp: from.timestampMs });
      break;
    case 'offset':
      starts = await checkExplicitOffset(topic, partitions, from.offset, offsetsOf);
      break;
  }
  return partitions.map((partition) => ({
    partition,
    startOffset: starts.get(partition) ?? 0,
    endOffset: ends?.get(partition),
    // Records appended after the log end the broker answered with follow TIME in the log,
    // whatever their own timestamps: skipping them would drop records silently.
    skipBeforeMs: from.kind === 'timestamp' && !noRecordThatLate.has(partition) ? from.timestampMs : undefined,
  }));
}

/** An explicit offset must name one partition and lie between its first kept and next offset. */
async function checkExplicitOffset(
  topic: string,
  partitions: number[],
  offset: number,
  offsetsOf: (spec: 'earliest' | 'latest') => Promise<Map<number, number>>,
): Promise<Map<number, number>> {
  const partition = partitions[0];
  if (partitions.length !== 1 || partition === undefined) {
    throw new CliError(`topic ${topic} has ${partitions.length} partitions and offsets are per partition: add --partition N to --from ${offset}`);
  }
  const earliest = (await offsetsOf('earliest')).get(partition) ?? 0;
  const latest = (await offsetsOf('latest')).get(partition) ?? 0;
  if (offset < earliest || offset > latest) {
    throw new CliError(
      `offset ${offset} is outside ${topic}-${partition}, which holds offsets ${earliest}..${latest - 1}` +
        `${offset < earliest ? ' (older ones were deleted by retention)' : ''}: pick one in range, or use --from beginning|end`,
    );
  }
  return new Map([[partition, offset]]);
}

interface ConsumeState {
  printed: number;
  isStopping: boolean;
}

/** `byPartition`: the plan of every partition read; while following, new partitions join it. */
async function printRecords(
  consumer: Consumer,
  topic: string,
  byPartition: Map<number, PartitionPlan>,
  flags: ConsumeFlags,
  state: ConsumeState,
  stop: (exitCode: number) => void,
): Promise<void> {
  let unfinishedCount = byPartition.size;
  for await (const chunk of consumer.batches()) {
    const first = chunk[0];
    if (state.isStopping || first === undefined) continue;
    const plan = byPartition.get(first.partition);
    if (plan === undefined) continue;
    const selected = selectRecords(chunk, plan, flags.max === undefined ? Infinity : flags.max - state.printed);
    if (selected.length > 0) {
      state.printed += selected.length;
      await writeOut(formatRecords(selected, flags.format));
    }
    const tp: TopicPartition = { topic, partition: plan.partition };
    if (plan.endOffset !== undefined && (consumer.position(tp) ?? 0) >= plan.endOffset) {
      consumer.pause([tp]);
      plan.endOffset = -1; // finished; counted once
      unfinishedCount--;
    }
    if ((flags.max !== undefined && state.printed >= flags.max) || unfinishedCount === 0) stop(0);
  }
}

/** The records of `chunk` to print: not before --from @TIME, not at or past the end, at most `remainingCount`. */
function selectRecords(chunk: ConsumerRecord[], plan: PartitionPlan, remainingCount: number): ConsumerRecord[] {
  let startIndex = 0;
  if (plan.skipBeforeMs !== undefined) {
    const skipBeforeMs = plan.skipBeforeMs;
    while (startIndex < chunk.length && chunk[startIndex]!.timestamp < skipBeforeMs) startIndex++;
    if (startIndex < chunk.length) plan.skipBeforeMs = undefined; // found the first record at or after TIME
  }
  let endIndex = chunk.length;
  if (plan.endOffset !== undefined && plan.endOffset >= 0) {
    while (endIndex > startIndex && chunk[endIndex - 1]!.offset >= plan.endOffset) endIndex--;
  }
  endIndex = Math.min(endIndex, startIndex + remainingCount);
  return startIndex === 0 && endIndex === chunk.length ? chunk : chunk.slice(startIndex, endIndex);
}

function formatRecords(records: ConsumerRecord[], format: 'value' | 'json'): string | Buffer {
  if (format === 'json') {
    let text = '';
    for (const record of records) text += `${consumerRecordToJson(record)}\n`;
    return text;
  }
  const pieces: Buffer[] = [];
  for (const record of records) {
    if (record.value !== null) pieces.push(record.value);
    pieces.push(NEWLINE);
  }
  return Buffer.concat(pieces);
}

/** Writes to stdout, waiting while its buffer is full (a slow reader slows the consumer, which stops granting credit). */
async function writeOut(data: string | Buffer): Promise<void> {
  await writeWithBackpressure(process.stdout, data);
}

/** The one-line CliError for a failure that ends a consume (OFFSET_OUT_OF_RANGE says which way). */
export function translateConsumeError(error: unknown, topic: string): unknown {
  if (isBrokerError(error, 'OFFSET_OUT_OF_RANGE')) {
    const where = error.partition === undefined ? topic : `${topic}-${error.partition}`;
    // The consumer's own message (autoOffsetReset 'none') tells a program to seek; the command's
    // advice is --from, so only the broker's message it wraps is quoted.
    const brokerMessage = error.cause instanceof Error ? error.cause.message : error.message;
    const offset = Number(error.details.offset);
    const logEndOffset = Number(error.details.logEndOffset);
    if (Number.isSafeInteger(offset) && Number.isSafeInteger(logEndOffset) && offset > logEndOffset) {
      // Past the end, not before the start: the log is shorter than what was read already.
      return new CliError(
        `${where} now ends at offset ${logEndOffset}, before offset ${offset} this consumer had reached: the topic was deleted and created again, ` +
          `or its records were lost (${brokerMessage}); start again with --from beginning or --from end`,
      );
    }
    return new CliError(`records of ${where} were deleted by retention before they were read (${brokerMessage}): start again with --from beginning`);
  }
  return error;
}
