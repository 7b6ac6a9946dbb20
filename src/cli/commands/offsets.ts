/**
 * `runnel offsets TOPIC`: per partition, the log start offset (first offset still readable)
 * and the log end offset (next offset to be written); or, with `--time`, the offset a reader
 * starting at that time would begin at. ListOffsets calls, one per question, for
 * OFFSETS_PARTITIONS_PER_CALL partitions at a time; on a terminal, a topic with more partitions
 * than that shows how many are done on stderr.
 */
import type { Command } from 'commander';
import type { BrokerError, ListOffsetsOptions, PartitionOffsetResult, RunnelClient } from '../../client/index.js';
import { CliError } from '../cli-error.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { parseTimePoint } from '../option-parsers.js';
import { formatCount, ProgressLine } from '../progress-line.js';
import { formatTable } from '../table.js';

/**
 * Partitions asked about per ListOffsets call. The first question about a partition the broker
 * has not opened yet opens its log: for 10,000 such partitions one call took about 5 s, and a
 * slice keeps each call well inside the command's request deadline and lets a terminal show
 * progress.
 */
const OFFSETS_PARTITIONS_PER_CALL = 1_000;

/** What a report prints, and the failure to exit with after it when a partition could not be read. */
interface Report {
  text: string;
  failure: CliError | undefined;
}

interface OffsetsFlags extends ClientFlags {
  time?: number;
  json?: boolean;
}

export function registerOffsetsCommand(program: Command): void {
  addClientOptions(
    program
      .command('offsets')
      .description('first and next offset of every partition, or the offset for a point in time')
      .argument('<topic>', 'topic')
      .option('--time <time>', 'ISO 8601 (2026-11-20T10:00:00Z; local time without a zone), ms since the epoch, or -DURATION (-1h)', parseTimePoint)
      .option('--json', 'print the report as one JSON object'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel offsets app-logs
  runnel offsets app-logs --time 2026-11-20T10:00:00Z
  runnel offsets app-logs --time -15m --json

Without --time: START is the first offset still readable, END the next offset to be written
(so END - START records, fewer after deletions).
  --json: {"topic","partitions":[{"partition","logStartOffset","logEndOffset"}]}
A partition that cannot be read (offline: damaged, or an I/O error) is listed with its
reason ({"partition","error":{"reason","message"}} in JSON), and the command exits 1.
With --time: OFFSET is the first record at or after the time (as Kafka answers: the first
such record of the first batch that holds one); TIMESTAMP is that record's time. When no
record is that late, OFFSET is the log end offset and TIMESTAMP is empty (null in JSON).
  --json: {"topic","time","partitions":[{"partition","offset","timestamp"}]}
The broker is asked about ${formatCount(OFFSETS_PARTITIONS_PER_CALL)} partitions at a time; for a topic with more, a
terminal shows on stderr how many are done (nothing is added when stderr is not a terminal).`,
    )
    .action(async (topic: string, flags: OffsetsFlags) => {
      await withClient(flags, topic, async ({ client }) => {
        // Every partition is reported; one that could not be read is shown as such, and then
        // the command fails (exit 1) naming it.
        const report = flags.time === undefined ? await reportRange(client, topic, flags.json === true) : await reportTime(client, topic, flags.time, flags.json === true);
        process.stdout.write(report.text);
        if (report.failure !== undefined) throw report.failure;
      });
    });
}

/** A partition's own error, as a report shows it: the reason and the message. */
interface PartitionFailure {
  partition: number;
  error: { reason: string; message: string };
}

/** One line naming the partitions that could not be read, and what to look at; undefined when none. */
function failureSummary(topic: string, failures: readonly PartitionFailure[]): CliError | undefined {
  if (failures.length === 0) return undefined;
  const list = failures.map((failure) => `${topic}-${failure.partition} (${failure.error.reason})`).join(', ');
  return new CliError(`${list}: no offsets, the partition is offline or unreadable (${failures[0]!.error.message}); see \`runnel topic describe ${topic}\``);
}

function failureOf(result: Extract<PartitionOffsetResult, { error: BrokerError }>): PartitionFailure {
  return { partition: result.partition, error: { reason: result.error.reason, message: result.error.message } };
}

type OffsetSpec = ListOffsetsOptions['spec'];

/**
 * The answers to `specs` for every partition of `topic` (as the topic is when the command
 * starts), OFFSETS_PARTITIONS_PER_CALL partitions at a time, all specs of a slice at once.
 */
async function listOffsetsInSlices(client: RunnelClient, topic: string, specs: readonly OffsetSpec[]): Promise<PartitionOffsetResult[][]> {
  const metadata = await client.admin.getMetadata([topic]);
  const partitions = (metadata.topics.find((entry) => entry.name === topic)?.partitions ?? []).map((entry) => entry.partition).sort((a, b) => a - b);
  const answers: PartitionOffsetResult[][] = specs.map(() => []);
  let doneCount = 0;
  const progress = new ProgressLine({
    mode: 'rewrite',
    intervalMs: 1_000,
    render: () => `offsets of ${topic}: ${formatCount(doneCount)} of ${formatCount(partitions.length)} partitions`,
  });
  const isShowingProgress = partitions.length > OFFSETS_PARTITIONS_PER_CALL;
  if (isShowingProgress) progress.start();
  try {
    for (let start = 0; start < partitions.length; start += OFFSETS_PARTITIONS_PER_CALL) {
      const slice = partitions.slice(start, start + OFFSETS_PARTITIONS_PER_CALL);
      const sliceAnswers = await Promise.all(specs.map((spec) => client.admin.listOffsetsEach({ topic, partitions: slice, spec })));
      sliceAnswers.forEach((answer, index) => answers[index]!.push(...answer));
      doneCount += slice.length;
      if (isShowingProgress) progress.update();
    }
  } finally {
    progress.stop(); // before the report is printed
  }
  return answers;
}

async function reportRange(client: RunnelClient, topic: string, isJson: boolean): Promise<Report> {
  const [earliest = [], latest = []] = await listOffsetsInSlices(client, topic, ['earliest', 'latest']);
  const endByPartition = new Map(latest.map((entry) => [entry.partition, entry]));
  const rows = earliest
    .map((start): PartitionFailure | { partition: number; logStartOffset: number; logEndOffset: number } => {
      const end = endByPartition.get(start.partition);
      if (start.error !== undefined) return failureOf(start);
      if (end?.error !== undefined) return failureOf(end);
      return { partition: start.partition, logStartOffset: start.offset, logEndOffset: end?.offset ?? start.offset };
    })
    .sort((a, b) => a.partition - b.partition);
  const failures = rows.filter((row): row is PartitionFailure => 'error' in row);
  if (isJson) return { text: `${JSON.stringify({ topic, partitions: rows })}\n`, failure: failureSummary(topic, failures) };
  const text = formatTable(
    ['PARTITION', 'START', 'END'],
    rows.map((row) => ('error' in row ? [String(row.partition), '-', `- offline (${row.error.reason})`] : [String(row.partition), String(row.logStartOffset), String(row.logEndOffset)])),
  );
  return { text, failure: failureSummary(topic, failures) };
}

async function reportTime(client: RunnelClient, topic: string, timeMs: number, isJson: boolean): Promise<Report> {
  const [found = []] = await listOffsetsInSlices(client, topic, [{ timestamp: timeMs }]);
  const rows = found
    .map((entry): PartitionFailure | { partition: number; offset: number; timestamp: number | null } =>
      entry.error !== undefined ? failureOf(entry) : { partition: entry.partition, offset: entry.offset, timestamp: entry.timestamp >= 0 ? entry.timestamp : null },
    )
    .sort((a, b) => a.partition - b.partition);
  const failures = rows.filter((row): row is PartitionFailure => 'error' in row);
  if (isJson) return { text: `${JSON.stringify({ topic, time: timeMs, partitions: rows })}\n`, failure: failureSummary(topic, failures) };
  const header = `offsets of ${topic} at ${new Date(timeMs).toISOString()}\n`;
  const text =
    header +
    formatTable(
      ['PARTITION', 'OFFSET', 'TIMESTAMP'],
      rows.map((row) =>
        'error' in row
          ? [String(row.partition), '-', `offline (${row.error.reason})`]
          : [String(row.partition), String(row.offset), row.timestamp === null ? '' : new Date(row.timestamp).toISOString()],
      ),
    );
  return { text, failure: failureSummary(topic, failures) };
}
