/**
 * `runnel broker` over a disk that stops answering when the broker is told to stop: from the
 * first SIGTERM or SIGINT on, every fdatasync (and directory fsync) storage starts never
 * returns, as on a dead disk. The hang is real, not a promise left pending: each hung call
 * holds one of libuv's thread-pool threads in open(2) of a FIFO nobody writes to, so the
 * process must be able to exit with pool threads stuck (`exitNow` in cli/commands/broker.ts).
 * Used by test/integration/broker-shutdown.test.ts through `startBrokerProcess({ entry })`.
 *
 *   node --import tsx test/support/hung-disk-broker.ts <fifo> broker --data-dir … [flags]
 *
 * Before the signal the disk is node's, so appends are acknowledged as usual. Keep the hung
 * partitions under libuv's 4 pool threads, or the broker's own reads and log writes queue too.
 */
import { open } from 'node:fs/promises';
import { Command } from 'commander';
import { registerBrokerCommand } from '../../src/cli/commands/broker.js';
import { ForwardingFileHandle, nodeFileSystem, type FileHandle, type FileSystem } from '../../src/storage/index.js';

const [fifoPath, ...argv] = process.argv.slice(2);
if (fifoPath === undefined) throw new Error('usage: hung-disk-broker.ts <fifo> broker [flags]');

let isDiskHung = false;
// Registered before the broker's own handlers (it installs them as the command starts), so
// the disk is hung by the time the stop begins.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => (isDiskHung = true));

/** Never settles: open(2) of a FIFO with no writer blocks its pool thread for good. */
async function hangForever(): Promise<never> {
  await open(fifoPath as string, 'r');
  throw new Error(`something wrote to ${String(fifoPath)}`);
}

class HangingFileHandle extends ForwardingFileHandle {
  override datasync(): Promise<void> {
    return isDiskHung ? hangForever() : super.datasync();
  }
}

const hangingFileSystem: FileSystem = {
  ...nodeFileSystem,
  open: async (path, mode): Promise<FileHandle> => new HangingFileHandle(await nodeFileSystem.open(path, mode)),
  syncDirectory: (path) => (isDiskHung ? hangForever() : nodeFileSystem.syncDirectory(path)),
};

const program = new Command('runnel').exitOverride();
registerBrokerCommand(program, { fileSystem: hangingFileSystem });
await program.parseAsync(['node', 'runnel', ...argv]);
