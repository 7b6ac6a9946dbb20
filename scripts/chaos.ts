/**
 * `npm run chaos`: the whole-broker soak and chaos run. Real broker processes are SIGKILLed
 * and restarted under a steady idempotent produce load; at the end every partition is read
 * back and checked against what was acknowledged. The run itself, and what it checks, is in
 * test/support/broker-chaos.ts; `test/fault/broker-chaos.test.ts` is its short bounded mode
 * in `npm test`. Exits 1 on any violation, 2 on bad arguments.
 *
 * It stops only the broker processes it started, by PID, also on Ctrl-C.
 */
import { parseArgs } from 'node:util';
import { stopAllBrokerProcesses } from '../test/support/broker-process.js';
import { FLUSH_DEFAULT, formatChaosReport, runBrokerChaos, type ChaosReport } from '../test/support/broker-chaos.js';

const HELP = `usage: npm run chaos -- [options]

Soak and chaos run of one Runnel broker: proves that no acknowledged record is ever lost
and that the idempotent producer writes none twice, through broker processes killed with
SIGKILL.

What it does, for each flush policy asked for:
  1. starts \`runnel broker\` (from sources) on a fresh temporary data directory, on a fixed
     port chosen free below the kernel's ephemeral range (the client cannot follow a new
     port, and the kernel cannot hand that one out while the broker is down);
  2. creates a topic of --partitions partitions with --segment-bytes segments (small, so
     segments roll and producer snapshots are written during the run); --producers
     idempotent producers (acks=all) send keyed records at --rate records/s for --seconds
     seconds; each value names its producer run and sequence number;
  3. --kills times, at points the seed picks, SIGKILLs the broker by PID, waits until it is
     gone and starts it again on the same data directory and port (some kills come within
     300 ms of a restart, while the producers are resending); after one restart in
     three, one producer is replaced by a new one, which asks the restarted broker for a
     producer id; one restart in four is itself SIGKILLed within 1.5 s of its spawn, during
     start-up or while the first requests make it recover the partitions, before the broker
     is started again; a tailing consumer reads every partition from offset 0 through all of
     it;
  4. stops producing, waits for every record to be acknowledged or to fail, stops the broker
     cleanly and starts it again, reads every partition from offset 0 to its end, and checks:
     every acknowledged record is there exactly once at the offset it was acknowledged with,
     unchanged; no record is there twice; failed records at most once; nothing unknown;
     offsets dense from 0; per producer and partition, records in sequence order; what the
     tailing consumer read is what the log holds at those offsets; and every restart came up,
     the client reached it, and the tailing consumer caught up with the end.

A SIGKILL ends the process, not the machine: what the broker wrote is in the page cache and
survives it, so under the default flush (${FLUSH_DEFAULT}) a process crash loses nothing
acknowledged either. Only a power loss may, and this run does not simulate one.

Options:
  --seconds <n>     production time per flush policy, the kills spread over it (default 60)
  --kills <n>       SIGKILLs per flush policy (default 10)
  --seed <n>        fixes the kill schedule; printed at the start so a failure can be replayed
                    (default: from the clock). Timing still varies between runs, so a replay is
                    likely, not certain, to hit the same spot.
  --flush <policy>  always | interval:<ms> | never | both (default both: always, then
                    ${FLUSH_DEFAULT})
  --partitions <n>  partitions of the topic (default 4)
  --producers <n>   idempotent producers side by side (default 2)
  --segment-bytes <n>  the topic's segment.bytes (default 262144; at least 1024)
  --rate <n>        records per second, all producers together (default 2000)
  --value-bytes <n> bytes per record value (default 100)
  --delivery-timeout-ms <n>
                    the producers' delivery timeout (default 120000: no record fails). Shorter
                    than a restart (say 1500), records fail with their outcome unknown and the
                    producers bump their epoch, after resolving every batch an earlier attempt
                    may have appended under the old epoch (see src/client/producer.ts); the run
                    still must find no record twice
  --keep            keep the data directory (it is always kept after a violation)
  --quiet           print only the summary
  -h, --help        this text

Output: progress lines, then per flush policy a summary (kills, records sent, acknowledged,
failed, read back, duplicates, lost, seconds) and the first violations, each naming the record
(producer:sequence), where it was acknowledged and what was found. Exit status 0 when every
run was clean, 1 on any violation.

Examples:
  npm run chaos                                         # both policies, 60 s and 10 kills each
  npm run chaos -- --seconds 600 --kills 100 --flush always
  npm run chaos -- --seed 12345 --flush interval:1000  # replay a reported failure
`;

interface Arguments {
  seconds: number;
  kills: number;
  seed: number;
  flushes: string[];
  partitions: number;
  producers: number;
  segmentBytes: number;
  rate: number;
  valueBytes: number;
  deliveryTimeoutMs: number;
  keep: boolean;
  quiet: boolean;
}

function parseArguments(argv: string[]): Arguments | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      kills: { type: 'string' },
      seed: { type: 'string' },
      flush: { type: 'string' },
      partitions: { type: 'string' },
      producers: { type: 'string' },
      'segment-bytes': { type: 'string' },
      rate: { type: 'string' },
      'value-bytes': { type: 'string' },
      'delivery-timeout-ms': { type: 'string' },
      keep: { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) return 'help';
  const flush = values.flush ?? 'both';
  if (flush !== 'both' && !/^(always|never|interval:\d+)$/.test(flush)) {
    throw new Error(`--flush must be always, never, interval:<ms> or both, got ${JSON.stringify(flush)}`);
  }
  return {
    seconds: integer(values.seconds, '--seconds', 60, 1),
    kills: integer(values.kills, '--kills', 10, 0),
    seed: integer(values.seed, '--seed', Date.now() % 2 ** 31, 0),
    flushes: flush === 'both' ? ['always', FLUSH_DEFAULT] : [flush],
    partitions: integer(values.partitions, '--partitions', 4, 1),
    producers: integer(values.producers, '--producers', 2, 1),
    segmentBytes: integer(values['segment-bytes'], '--segment-bytes', 256 * 1024, 1024),
    rate: integer(values.rate, '--rate', 2_000, 1),
    valueBytes: integer(values['value-bytes'], '--value-bytes', 100, 1),
    deliveryTimeoutMs: integer(values['delivery-timeout-ms'], '--delivery-timeout-ms', 120_000, 1),
    keep: values.keep === true,
    quiet: values.quiet === true,
  };
}

function integer(text: string | undefined, name: string, fallback: number, min: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer ≥ ${min}, got ${JSON.stringify(text)}`);
  return value;
}

/** The command that runs the same again: the seed, and every option not at its default. */
function replayCommand(args: Arguments, flush?: string): string {
  const flags = [`--seed ${args.seed}`, `--seconds ${args.seconds}`, `--kills ${args.kills}`];
  if (flush !== undefined) flags.push(`--flush ${flush}`);
  else if (args.flushes.length === 1) flags.push(`--flush ${args.flushes[0]}`);
  const optional: [string, number, number][] = [
    ['--partitions', args.partitions, 4],
    ['--producers', args.producers, 2],
    ['--segment-bytes', args.segmentBytes, 256 * 1024],
    ['--rate', args.rate, 2_000],
    ['--value-bytes', args.valueBytes, 100],
    ['--delivery-timeout-ms', args.deliveryTimeoutMs, 120_000],
  ];
  for (const [name, value, fallback] of optional) if (value !== fallback) flags.push(`${name} ${value}`);
  return `npm run chaos -- ${flags.join(' ')}`;
}

async function main(): Promise<number> {
  let args: Arguments | 'help';
  try {
    args = parseArguments(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${HELP}`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  // Ctrl-C: kill the brokers this process started (by PID), then exit; the data directory
  // of the run cut short stays, for a look (its path is in the first progress line).
  process.once('SIGINT', () => {
    console.log('chaos: interrupted; its brokers are stopped, its data directory is left');
    void stopAllBrokerProcesses().finally(() => process.exit(130));
  });
  console.log(`chaos: seed ${args.seed}; replay with: ${replayCommand(args)}`);
  const reports: ChaosReport[] = [];
  for (const flush of args.flushes) {
    const report = await runBrokerChaos({
      seconds: args.seconds,
      kills: args.kills,
      seed: args.seed,
      flush,
      partitions: args.partitions,
      producers: args.producers,
      segmentBytes: args.segmentBytes,
      rate: args.rate,
      valueBytes: args.valueBytes,
      deliveryTimeoutMs: args.deliveryTimeoutMs,
      keepDataDir: args.keep,
      log: args.quiet ? undefined : (line) => console.log(`  ${flush}: ${line}`),
    });
    reports.push(report);
    console.log(formatChaosReport(report));
  }
  const failed = reports.filter((report) => report.violations.length > 0);
  if (failed.length > 0) {
    for (const report of failed) {
      console.log(`chaos: FAILED under flush=${report.flush}; replay with: ${replayCommand(args, report.flush)}`);
    }
    return 1;
  }
  console.log('chaos: OK');
  return 0;
}

process.exitCode = await main();
