/**
 * `runnel offsets TOPIC`: per partition, the log start offset (first offset still readable)
 * and the log end offset (next offset to be written); or, with `--time`, the offset a reader
 * starting at that time would begin at. ListOffsets calls, one per question, all partitions
 * at once.
 */
import type { Command } from 'commander';
import type { RunnelClient } from '../../client/index.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { parseTimePoint } from '../option-parsers.js';
import { formatTable } from '../table.js';

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
      .option('--time <time>', 'ISO 8601 (2026-11-20T10:00:00Z), ms since the epoch, or -DURATION (-1h)', parseTimePoint)
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
With --time: OFFSET is the first record at or after the time (as Kafka answers: the first
such record of the first batch that holds one); TIMESTAMP is that record's time. When no
record is that late, OFFSET is the log end offset and TIMESTAMP is empty (null in JSON).
  --json: {"topic","time","partitions":[{"partition","offset","timestamp"}]}`,
    )
    .action(async (topic: string, flags: OffsetsFlags) => {
      await withClient(flags, topic, async ({ client }) => {
        process.stdout.write(flags.time === undefined ? await reportRange(client, topic, flags.json === true) : await reportTime(client, topic, flags.time, flags.json === true));
      });
    });
}

async function reportRange(client: RunnelClient, topic: string, isJson: boolean): Promise<string> {
  const [earliest, latest] = await Promise.all([client.admin.listOffsets({ topic, spec: 'earliest' }), client.admin.listOffsets({ topic, spec: 'latest' })]);
  const endByPartition = new Map(latest.map((entry) => [entry.partition, entry.offset]));
  const partitions = earliest
    .map((entry) => ({ partition: entry.partition, logStartOffset: entry.offset, logEndOffset: endByPartition.get(entry.partition) ?? entry.offset }))
    .sort((a, b) => a.partition - b.partition);
  if (isJson) return `${JSON.stringify({ topic, partitions })}\n`;
  return formatTable(
    ['PARTITION', 'START', 'END'],
    partitions.map((entry) => [String(entry.partition), String(entry.logStartOffset), String(entry.logEndOffset)]),
  );
}

async function reportTime(client: RunnelClient, topic: string, timeMs: number, isJson: boolean): Promise<string> {
  const found = await client.admin.listOffsets({ topic, spec: { timestamp: timeMs } });
  const partitions = found
    .map((entry) => ({ partition: entry.partition, offset: entry.offset, timestamp: entry.timestamp >= 0 ? entry.timestamp : null }))
    .sort((a, b) => a.partition - b.partition);
  if (isJson) return `${JSON.stringify({ topic, time: timeMs, partitions })}\n`;
  const header = `offsets of ${topic} at ${new Date(timeMs).toISOString()}\n`;
  return (
    header +
    formatTable(
      ['PARTITION', 'OFFSET', 'TIMESTAMP'],
      partitions.map((entry) => [String(entry.partition), String(entry.offset), entry.timestamp === null ? '' : new Date(entry.timestamp).toISOString()]),
    )
  );
}
