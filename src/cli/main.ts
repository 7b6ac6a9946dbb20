/**
 * The `runnel` command: parses arguments (commander) and runs one command. Every command
 * returns an exit code; failures print one line that says what to do, never a stack trace
 * (unless RUNNEL_DEBUG=1).
 *
 * Commands: `runnel broker` runs a broker; `topic`, `produce`, `consume`, `offsets` and `perf`
 * talk to one over gRPC through the client library (`--broker`, client-command.ts); `log …`
 * are offline tools over a partition directory (append lines, dump, verify, repair). The
 * contract users and scripts rely on is CLI.md: commands and flags grow, never change meaning.
 */
import { Command, CommanderError } from 'commander';
import { isBrokerError } from '../errors/index.js';
import { CliError } from './cli-error.js';
import { packageVersion } from './package-version.js';
import { registerBrokerCommand } from './commands/broker.js';
import { registerConsumeCommand } from './commands/consume.js';
import { registerLogCommands } from './commands/log.js';
import { registerOffsetsCommand } from './commands/offsets.js';
import { registerPerfCommands } from './commands/perf.js';
import { registerProduceCommand } from './commands/produce.js';
import { registerTopicCommands } from './commands/topic.js';

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('runnel')
    .description('Runnel: a Kafka-style partitioned commit log.')
    .version(packageVersion(), '-V, --version', 'print the version of runnel and exit')
    .exitOverride()
    .addHelpText(
      'after',
      `
A first session:
  runnel broker --data-dir ./data                      start a broker (gRPC on 7070)
  runnel topic create app-logs --partitions 3          make a topic
  tail -F app.log | runnel produce app-logs            stream lines into it
  runnel consume app-logs --from beginning             read them back, then keep tailing
  runnel offsets app-logs                              first and next offset per partition
  runnel perf produce app-logs --records 100000 --size 100

Client commands take --broker HOST:PORT[,HOST:PORT…] (default 127.0.0.1:7070, or
RUNNEL_BROKER) and exit non-zero with one line saying what to do when something fails.
Offline tools over a partition directory (stop the broker first): runnel log --help.
Run \`runnel <command> --help\` for each command's options and examples.`,
    );
  ignoreClosedStdout();
  let exitCode = 0;
  const setExitCode = (code: number): void => {
    exitCode = code;
  };
  registerBrokerCommand(program);
  registerTopicCommands(program);
  registerProduceCommand(program, setExitCode);
  registerConsumeCommand(program, setExitCode);
  registerOffsetsCommand(program);
  registerPerfCommands(program);
  registerLogCommands(program, setExitCode);
  registerNotYetCommands(program);
  configureUsageErrors(program);
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(helpAsOption(program, argv));
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    process.stderr.write(`runnel: ${describeError(error)}\n`);
    if (process.env.RUNNEL_DEBUG === '1' && error instanceof Error) process.stderr.write(`${debugStack(error)}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  }
}

/**
 * `runnel help topic create` as `runnel topic create --help`: commander's own help command
 * looks one word deep only, and printed the help of `topic` instead. A word that names no
 * command is refused as `runnel topic frobnicate` is (`--help` after it would print the help
 * of the last command that matched, and exit 0).
 */
function helpAsOption(program: Command, argv: readonly string[]): string[] {
  if (argv[2] !== 'help' || argv.length <= 3) return [...argv];
  const words = argv.slice(3);
  let command = program;
  for (const word of words) {
    const subcommand = command.commands.find((candidate) => candidate.name() === word || candidate.aliases().includes(word));
    if (subcommand === undefined) throw new CliError(`unknown command '${word}' (see \`${commandPath(command)} --help\`)`);
    command = subcommand;
  }
  return [...argv.slice(0, 2), ...words, '--help'];
}

/**
 * A usage error (a bad flag value, a missing argument, an unknown option or command) is one
 * line, as every other failure (CLI.md): `runnel: <what> (see \`runnel topic create --help\`)`.
 * Commander's own form was two lines, "error: …" and "(run with --help for usage)", without
 * saying which command's help. Set on every command, since each keeps its own output settings.
 */
function configureUsageErrors(command: Command): void {
  command.showHelpAfterError(false).configureOutput({
    outputError: (text, write) => write(`runnel: ${usageErrorLine(text)} (see \`${commandPath(command)} --help\`)\n`),
  });
  for (const subcommand of command.commands) configureUsageErrors(subcommand);
}

/** "error: option '--n <n>' argument '0' is invalid. expected …\n" → "option '--n <n>' argument '0' is invalid: expected …". */
function usageErrorLine(text: string): string {
  return text
    .replace(/^error: /, '')
    .replace(/ is invalid\. /, ' is invalid: ')
    .trim()
    .replace(/\s*\n\s*/g, ' ');
}

function commandPath(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at !== null; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}

function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  if (isBrokerError(error)) return `${error.message} [${error.reason}]`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** The stack, and the cause's (a `CliError` usually wraps the client's `BrokerError`). */
function debugStack(error: Error): string {
  const cause = error.cause instanceof Error ? `\ncaused by ${error.cause.stack ?? error.cause.message}` : '';
  return `${error.stack ?? ''}${cause}`;
}

/**
 * `runnel … | head` closes stdout early; the next write fails with EPIPE, which node raises as
 * an unhandled 'error' event (a crash with a stack). Here a closed reader simply means nobody
 * wants more output; `consume` also stops reading on it (its own listener).
 */
let isIgnoringClosedStdout = false;

function ignoreClosedStdout(): void {
  if (isIgnoringClosedStdout) return; // main() ran before in this process
  isIgnoringClosedStdout = true;
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') return;
    process.stderr.write(`runnel: cannot write to stdout: ${error.message}\n`);
    process.exitCode = 1;
  });
}

/**
 * Commands CLI.md lists for later capabilities (consumer groups, clusters): hidden from the
 * help, they answer with what is missing and what to use instead, not "unknown command".
 */
function registerNotYetCommands(program: Command): void {
  const notYet = (name: string, message: string): void => {
    program
      .command(name, { hidden: true })
      .allowUnknownOption()
      .allowExcessArguments()
      .argument('[args...]')
      .action(() => {
        throw new CliError(message);
      });
  };
  notYet('group', 'consumer groups (runnel group …) are not available yet in this release: read with `runnel consume TOPIC --partition N` and keep your own offsets');
  notYet('cluster', 'clusters (runnel cluster …) are not available yet: this release runs a single broker (runnel broker)');
}
