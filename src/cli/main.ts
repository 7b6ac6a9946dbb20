/**
 * The `runnel` command: parses arguments (commander) and runs one command. Every command
 * returns an exit code; failures print one line that says what to do, never a stack trace
 * (unless RUNNEL_DEBUG=1).
 *
 * Commands now: `runnel log …` — offline tools over a partition directory (append lines,
 * dump, verify, repair). The broker, topics, produce and consume arrive with the gRPC API.
 */
import { Command, CommanderError } from 'commander';
import { isBrokerError } from '../errors/index.js';
import { registerBrokerCommand } from './commands/broker.js';
import { registerLogCommands } from './commands/log.js';

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command('runnel')
    .description('Runnel: a Kafka-style partitioned commit log.')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Today runnel ships its storage engine and the offline tools over it:
  runnel log append ./data/demo-0 < app.log      store lines as records
  runnel log dump ./data/demo-0 --records        print them back (JSON lines)
  runnel log verify ./data/demo-0                check every batch's CRC
Run \`runnel log --help\` for details. The broker and its gRPC API come next.`,
    );
  let exitCode = 0;
  registerBrokerCommand(program);
  registerLogCommands(program, (code) => {
    exitCode = code;
  });
  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    process.stderr.write(`runnel: ${describeError(error)}\n`);
    if (process.env.RUNNEL_DEBUG === '1' && error instanceof Error) process.stderr.write(`${error.stack ?? ''}\n`);
    return 1;
  }
}

function describeError(error: unknown): string {
  if (isBrokerError(error)) return `${error.message} [${error.reason}]`;
  if (error instanceof Error) return error.message;
  return String(error);
}
