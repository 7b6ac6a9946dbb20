/**
 * `runnel broker` whose start-up is held: its storage's listing of the data directory waits,
 * with `until-signal`, for the first SIGTERM or SIGINT (then start-up goes on), or with
 * `forever`, for good (a start-up stuck on a slow disk). The wait is a pending promise, not a
 * blocked thread, so the process can exit. Lets a test signal a broker that is still starting.
 * Used by test/integration/broker-shutdown.test.ts.
 *
 *   node --import tsx test/support/held-start-broker.ts until-signal|forever broker --data-dir … [flags]
 */
import { Command } from 'commander';
import { registerBrokerCommand } from '../../src/cli/commands/broker.js';
import { nodeFileSystem, type FileSystem } from '../../src/storage/index.js';

const [mode, ...argv] = process.argv.slice(2);
if (mode !== 'until-signal' && mode !== 'forever') throw new Error('usage: held-start-broker.ts until-signal|forever broker [flags]');

let release: () => void = () => undefined;
const held = new Promise<void>((resolve) => (release = resolve));
if (mode === 'forever') {
  // A real stuck disk call keeps the process alive (its pool thread is busy); a pending
  // promise alone does not, and node would exit 13 at the unsettled top-level await.
  setInterval(() => undefined, 1 << 30);
}
if (mode === 'until-signal') {
  // Registered before the broker's own handlers, which therefore see the signal before start-up goes on.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => setImmediate(release));
}

const dataDirIndex = argv.indexOf('--data-dir');
const dataDir = dataDirIndex === -1 ? undefined : argv[dataDirIndex + 1];
const heldFileSystem: FileSystem = {
  ...nodeFileSystem,
  readdir: async (path) => {
    if (path === dataDir) await held;
    return nodeFileSystem.readdir(path);
  },
};

const program = new Command('runnel').exitOverride();
registerBrokerCommand(program, { fileSystem: heldFileSystem });
await program.parseAsync(['node', 'runnel', ...argv]);
