/**
 * `runnel broker` whose process stays up after the command has returned (the stop finished),
 * as a real one may for a while: flushing its logs to a slow pipe, or a pool thread still
 * busy. It prints `{"msg":"held after the stop"}`, then holds until its stdin ends, and then
 * exits with the status the command left (`process.exitCode`). It installs no signal handler
 * of its own, so a signal in that window meets only the broker's (or node's default action).
 * Used by test/integration/broker-shutdown.test.ts.
 *
 *   node --import tsx test/support/held-exit-broker.ts broker --data-dir … [flags]
 */
import { Command } from 'commander';
import { registerBrokerCommand } from '../../src/cli/commands/broker.js';

const program = new Command('runnel').exitOverride();
registerBrokerCommand(program);
await program.parseAsync(['node', 'runnel', ...process.argv.slice(2)]);
process.stdout.write(`${JSON.stringify({ msg: 'held after the stop' })}\n`);
for await (const _ of process.stdin) {
  // Held until the test ends stdin; what it writes is not read.
}
