/**
 * Shared set-up for meta tests: fresh temporary directories, and the victim process of the
 * producer id crash test. Not part of the meta surface (excluded from the build).
 *
 * Run as a script it is the child that gets killed:
 *
 *   node --import tsx src/meta/test-helpers.ts allocate-producer-ids <dir>
 *
 * It opens a MetaStore in <dir>, then allocates producer ids one after the other and prints,
 * one line each, on stdout:
 *
 *   ready                 after the store opened
 *   id <producerId>       after allocateProducerId resolved: the id was handed out
 *
 * It stops allocating after CHILD_PRODUCER_IDS_MAX ids and then idles without closing the
 * store, so the test can also kill it at rest. stdout is a pipe, and node writes to pipes
 * synchronously on Linux, so a line printed before SIGKILL reaches the parent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { silentLogger } from '../observability/index.js';
import { MetaStore } from './meta-store.js';

/** Enough to cross several producer id blocks; bounds the child's output. */
export const CHILD_PRODUCER_IDS_MAX = 20_000;

/** Temporary directories made by `tempDir`, removed by `removeTempDirs` (call in afterEach). */
const tempDirs: string[] = [];

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'runnel-meta-'));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

async function allocateProducerIdsUntilKilled(dir: string): Promise<void> {
  const store = await MetaStore.open({ dir, logger: silentLogger });
  process.stdout.write('ready\n');
  for (let count = 0; count < CHILD_PRODUCER_IDS_MAX; count++) {
    const producerId = await store.allocateProducerId();
    process.stdout.write(`id ${producerId}\n`);
  }
  // Never closes: the parent kills this process. The interval keeps it alive until then.
  setInterval(() => undefined, 60_000);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href;
if (isMain) {
  const [command, dir] = process.argv.slice(2);
  if (command !== 'allocate-producer-ids' || dir === undefined) {
    process.stderr.write('usage: test-helpers.ts allocate-producer-ids <dir>\n');
    process.exit(2);
  }
  allocateProducerIdsUntilKilled(dir).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  });
}
