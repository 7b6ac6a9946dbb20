/**
 * `runnel topic create|list|describe|alter|delete`: topic administration over the broker's
 * AdminService, through the client library's `Admin`. Each subcommand is one or two unary
 * calls; failures come out as one line saying what to do (cli-error.ts).
 */
import type { Command } from 'commander';
import { isBrokerError, type Admin, type TopicDescription } from '../../client/index.js';
import { limits } from '../../config/limits.js';
import { CliError, isLeftoverDirectory } from '../cli-error.js';
import { addClientOptions, withClient, type ClientFlags } from '../client-command.js';
import { collectConfig, collectString, parsePositiveCount } from '../option-parsers.js';
import { formatCount, ProgressLine } from '../progress-line.js';
import { formatTable } from '../table.js';

/**
 * From this many partitions a create says on a terminal that it is at work: the broker makes a
 * directory per partition and a create of 10,000 takes seconds (about 2 s on a laptop).
 */
const CREATE_PROGRESS_PARTITIONS_MIN = 1_000;

interface CreateFlags extends ClientFlags {
  partitions?: number;
  replicationFactor?: number;
  config?: Record<string, string>;
  ifNotExists?: boolean;
}

interface AlterFlags extends ClientFlags {
  partitions?: number;
  config?: Record<string, string>;
  deleteConfig?: string[];
}

const CONFIG_HELP = `
Topic configs use Kafka's names: retention.ms, retention.bytes, segment.bytes, segment.ms,
max.message.bytes, min.insync.replicas, cleanup.policy, message.timestamp.type,
message.timestamp.after.max.ms (default 1 hour: records stamped further ahead of the broker's
clock are refused, INVALID_TIMESTAMP), message.timestamp.before.max.ms (no limit by default),
index.interval.bytes, plus flush = always | interval:<ms> | never.`;

export function registerTopicCommands(program: Command): void {
  const topic = program
    .command('topic')
    .description('create, list, describe, alter and delete topics')
    .addHelpText('after', `\nRun \`runnel topic <command> --help\` for each command's options.${CONFIG_HELP}`);

  addClientOptions(
    topic
      .command('create')
      .description('create a topic')
      .argument('<name>', 'topic name: letters, digits, ".", "_" and "-"')
      .option('--partitions <n>', 'number of partitions (default: the broker\'s, 1)', parsePositiveCount)
      .option('--replication-factor <n>', 'copies of each partition (default: the broker\'s, 1 on a single node)', parsePositiveCount)
      .option('--config <key=value>', 'a config override; repeat for several', collectConfig)
      .option('--if-not-exists', 'succeed (and change nothing) when the topic already exists'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel topic create app-logs --partitions 6
  runnel topic create audit --config retention.ms=604800000 --config flush=always

With ${formatCount(CREATE_PROGRESS_PARTITIONS_MIN)} partitions or more, a terminal shows on stderr that the create is at work,
and for how long (seconds for 10,000 partitions); nothing is added when stderr is not one.
${CONFIG_HELP}`,
    )
    .action(async (name: string, flags: CreateFlags) => {
      await withClient(flags, name, async ({ client }) => {
        let created: TopicDescription;
        const progress = topicCreateProgress(name, flags.partitions ?? 1);
        try {
          created = await client.admin.createTopic({
            name,
            ...(flags.partitions === undefined ? {} : { partitions: flags.partitions }),
            ...(flags.replicationFactor === undefined ? {} : { replicationFactor: flags.replicationFactor }),
            ...(flags.config === undefined ? {} : { configs: flags.config }),
          });
        } catch (error) {
          progress.stop(); // before any output, which would otherwise land on the status line
          if (flags.ifNotExists === true && isBrokerError(error, 'TOPIC_ALREADY_EXISTS') && !isLeftoverDirectory(error)) {
            process.stdout.write(`topic ${name} already exists; nothing changed\n`);
            return;
          }
          throw error;
        }
        progress.stop();
        const overrides = Object.entries(created.overrides).map(([key, value]) => `${key}=${value}`);
        process.stdout.write(
          `created topic ${name}: ${created.partitions.length} partition(s), replication factor ${created.replicationFactor}` +
            `${overrides.length === 0 ? '' : `, configs ${overrides.join(' ')}`}\n`,
        );
      });
    });

  addClientOptions(
    topic
      .command('list')
      .description('list topics with their partition counts')
      .option('--json', 'print {"topics":[{"name","partitions","replicationFactor"}]}'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel topic list
  runnel topic list --json | jq -r '.topics[].name'
  runnel topic list --broker 10.0.0.5:7070

Topics are sorted by name. With no topics, prints nothing on stdout (a hint on stderr; with
--json, {"topics":[]}) and exits 0.`,
    )
    .action(async (flags: ClientFlags & { json?: boolean }) => {
    await withClient(flags, undefined, async ({ client }) => {
      const topics = (await client.admin.listTopics()).sort((a, b) => a.name.localeCompare(b.name));
      if (flags.json === true) {
        process.stdout.write(`${JSON.stringify({ topics })}\n`);
      } else if (topics.length === 0) {
        process.stderr.write('no topics yet: create one with `runnel topic create NAME`\n');
      } else {
        process.stdout.write(
          formatTable(
            ['NAME', 'PARTITIONS', 'REPLICATION-FACTOR'],
            topics.map((summary) => [summary.name, String(summary.partitions), String(summary.replicationFactor)]),
          ),
        );
      }
    });
  });

  addClientOptions(
    topic
      .command('describe')
      .description('partitions (leader, replicas, ISR, start/end offsets, bytes, status) and configs of a topic')
      .argument('<name>', 'topic name')
      .option('--json', 'print the description as one JSON object'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel topic describe app-logs
  runnel topic describe app-logs --json | jq '.partitions[] | {partition, logEndOffset}'

START is the log start offset (first offset still readable), END the log end offset (next
offset to be written), HWM the high watermark (consumers read below it). Configs marked *
are set on this topic; the others are the broker's defaults.

--json prints {"name","replicationFactor","partitions":[{"partition","leader","replicas","isr",
"logStartOffset","logEndOffset","highWatermark","sizeBytes","status","offlineReason"}],
"configs":{…effective…},"overrides":{…set on this topic…}}.`,
    )
    .action(async (name: string, flags: ClientFlags & { json?: boolean }) => {
      await withClient(flags, name, async ({ client }) => {
        const description = await client.admin.describeTopic(name);
        process.stdout.write(flags.json === true ? `${JSON.stringify(description)}\n` : formatDescription(description));
      });
    });

  addClientOptions(
    topic
      .command('alter')
      .description('change config overrides of a topic, or add partitions')
      .argument('<name>', 'topic name')
      .option('--config <key=value>', 'set a config override; repeat for several', collectConfig)
      .option('--delete-config <key>', 'remove an override (back to the broker default); repeatable', collectString)
      .option('--partitions <n>', 'grow the topic to this many partitions (never shrinks)', parsePositiveCount),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel topic alter app-logs --config retention.ms=86400000
  runnel topic alter app-logs --delete-config retention.ms
  runnel topic alter app-logs --partitions 12

Adding partitions changes which partition a key maps to: records with one key written before
and after land in different partitions.
${CONFIG_HELP}`,
    )
    .action(async (name: string, flags: AlterFlags) => {
      const set = flags.config ?? {};
      const remove = flags.deleteConfig ?? [];
      if (Object.keys(set).length === 0 && remove.length === 0 && flags.partitions === undefined) {
        throw new CliError('nothing to alter: pass --config key=value, --delete-config key or --partitions N');
      }
      const both = remove.filter((key) => Object.hasOwn(set, key));
      if (both.length > 0) throw new CliError(`${both.join(', ')} is both set and deleted: pass it to --config or --delete-config, not both`);
      await withClient(flags, name, async ({ client }) => {
        const changes: string[] = [];
        // A count the broker would refuse is refused before any config changes, so a bad
        // --partitions leaves the topic as it was. (The two changes are two calls: an I/O
        // error adding partitions after the configs were set is reported as such.)
        const current = flags.partitions === undefined ? undefined : await currentPartitionCount(client.admin, name, flags.partitions);
        const isConfigChange = Object.keys(set).length > 0 || remove.length > 0;
        if (isConfigChange) {
          await client.admin.alterTopicConfigs({ name, set, remove });
          changes.push(...Object.entries(set).map(([key, value]) => `set ${key}=${value}`), ...remove.map((key) => `removed ${key}`));
        }
        if (flags.partitions !== undefined && current !== undefined) {
          try {
            changes.push(await alterPartitions(client.admin, name, current, flags.partitions));
          } catch (error) {
            if (!isConfigChange) throw error;
            const message = error instanceof Error ? error.message : String(error);
            throw new CliError(`${changes.join('; ')} on topic ${name}, but adding partitions failed: ${message}; run \`runnel topic alter ${name} --partitions ${flags.partitions}\` again`, { cause: error });
          }
        }
        process.stdout.write(`altered topic ${name}: ${changes.join('; ')}\n`);
      });
    });

  addClientOptions(
    topic
      .command('delete')
      .description('delete a topic and all its records')
      .argument('<name>', 'topic name')
      .option('--if-exists', 'succeed when there is no such topic'),
  )
    .addHelpText(
      'after',
      `
Examples:
  runnel topic delete app-logs
  runnel topic delete app-logs --if-exists          # exit 0 when it is already gone

The records cannot be recovered: the partition directories are removed from the broker's disk.`,
    )
    .action(async (name: string, flags: ClientFlags & { ifExists?: boolean }) => {
    await withClient(flags, name, async ({ client }) => {
      try {
        await client.admin.deleteTopic(name);
      } catch (error) {
        if (isBrokerError(error, 'TOPIC_NOT_FOUND')) {
          if (flags.ifExists === true) {
            process.stdout.write(`topic ${name} does not exist; nothing deleted\n`);
            return;
          }
          throw new CliError(`topic ${name} does not exist, so nothing was deleted (add --if-exists to make that not an error)`);
        }
        throw error;
      }
      process.stdout.write(`deleted topic ${name}\n`);
    });
  });
}

/**
 * On a terminal, for a create of many partitions: "creating topic big: 10,000 partitions…",
 * then the seconds it has taken, every second, until the broker answers. Started here.
 */
function topicCreateProgress(name: string, partitionCount: number): ProgressLine {
  const startedMs = performance.now();
  const progress = new ProgressLine({
    mode: 'rewrite',
    intervalMs: 1_000,
    render: () => {
      const elapsedSec = Math.floor((performance.now() - startedMs) / 1000);
      return `creating topic ${name}: ${formatCount(partitionCount)} partitions…${elapsedSec < 1 ? '' : ` ${elapsedSec} s`}`;
    },
  });
  if (partitionCount >= CREATE_PROGRESS_PARTITIONS_MIN) {
    progress.update();
    progress.start();
  }
  return progress;
}

/** The topic's partition count, once `partitionCount` is known to be one it may grow to. */
async function currentPartitionCount(admin: Admin, name: string, partitionCount: number): Promise<number> {
  const current = (await admin.describeTopic(name)).partitions.length;
  if (partitionCount < current) {
    throw new CliError(`topic ${name} has ${current} partitions and cannot shrink: pass --partitions larger than ${current}`);
  }
  if (partitionCount > limits.partitionsPerTopicMax) {
    throw new CliError(`--partitions ${partitionCount} is over the limit of ${limits.partitionsPerTopicMax} partitions per topic`);
  }
  return current;
}

/** Grows the topic; the same count is a no-op. */
async function alterPartitions(admin: Admin, name: string, current: number, partitionCount: number): Promise<string> {
  if (partitionCount === current) return `already has ${current} partition(s)`;
  await admin.addPartitions({ name, partitionCount });
  return `partitions ${current} → ${partitionCount}`;
}

function formatDescription(description: TopicDescription): string {
  const header = `topic ${description.name}  partitions ${description.partitions.length}  replication factor ${description.replicationFactor}\n`;
  const partitions = formatTable(
    ['PARTITION', 'LEADER', 'REPLICAS', 'ISR', 'START', 'END', 'HWM', 'BYTES', 'STATUS'],
    description.partitions.map((partition) => [
      String(partition.partition),
      String(partition.leader),
      partition.replicas.join(','),
      partition.isr.join(','),
      String(partition.logStartOffset),
      String(partition.logEndOffset),
      String(partition.highWatermark),
      String(partition.sizeBytes),
      partition.status === 'offline' && partition.offlineReason !== '' ? `offline (${partition.offlineReason})` : partition.status,
    ]),
  );
  const configRows = Object.keys(description.configs)
    .sort()
    .map((key) => [key in description.overrides ? `* ${key}` : `  ${key}`, description.configs[key] ?? '']);
  return `${header}${partitions}configs (* = set on this topic):\n${formatTable(['  KEY', 'VALUE'], configRows)}`;
}
