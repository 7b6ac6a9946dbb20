/**
 * Runs every storage bench in sequence, each in its own child process (a fresh heap and page
 * cache state per bench, and the restart bench needs to spawn and SIGKILL children of its
 * own), and prints everything they print. Exits non-zero if any bench failed.
 *
 * Run: npm run bench [-- --only append,cold-read,restart] [--save bench/last-run.txt]
 *      [--quiet-load 1.0]   (before each bench, wait up to 10 min for the 1-min load average to
 *                            fall below this: other work on the machine skews every figure)
 * Takes about 6–10 minutes on the machine in RESULTS.md (plus any --quiet-load wait); needs root
 * for cold-cache figures.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benches = [
  { name: 'append', file: 'storage-append.ts' },
  { name: 'append-floor', file: 'storage-append-floor.ts' },
  { name: 'cold-read', file: 'storage-cold-read.ts' },
  { name: 'restart', file: 'storage-restart.ts' },
  { name: 'open-partitions', file: 'storage-open-partitions.ts' },
  { name: 'many-partitions', file: 'storage-many-partitions.ts' },
  { name: 'topic-admin', file: 'broker-topic-admin.ts' },
];

const { values: args } = parseArgs({ options: { only: { type: 'string' }, save: { type: 'string' }, 'quiet-load': { type: 'string' } } });
const only = args.only === undefined ? undefined : new Set(args.only.split(','));
const benchDir = dirname(fileURLToPath(import.meta.url));

function runBench(file: string, output: string[]): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(benchDir, file)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (stream: NodeJS.WritableStream) => (chunk: Buffer) => {
      stream.write(chunk);
      output.push(chunk.toString('utf8'));
    };
    child.stdout.on('data', forward(process.stdout));
    child.stderr.on('data', forward(process.stderr));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolvePromise(code ?? (signal === null ? 1 : 128)));
  });
}

const output: string[] = [];

function say(text: string): void {
  process.stdout.write(text);
  output.push(text);
}

async function waitForQuiet(threshold: number): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  let said = false;
  while ((loadavg()[0] as number) >= threshold && Date.now() < deadline) {
    if (!said) say(`waiting for the 1-min load average (${(loadavg()[0] as number).toFixed(2)}) to fall below ${threshold}…\n`);
    said = true;
    await new Promise((resolvePromise) => setTimeout(resolvePromise, 5_000));
  }
  if ((loadavg()[0] as number) >= threshold) say(`gave up waiting after 10 min: running at load ${(loadavg()[0] as number).toFixed(2)}\n`);
}

const failures: string[] = [];
const start = Date.now();
for (const bench of benches) {
  if (only !== undefined && !only.has(bench.name)) continue;
  if (args['quiet-load'] !== undefined) await waitForQuiet(Number(args['quiet-load']));
  const code = await runBench(bench.file, output);
  if (code !== 0) failures.push(`${bench.file} (exit ${code})`);
}
const summary = `\nall benches done in ${((Date.now() - start) / 1000).toFixed(0)} s${failures.length > 0 ? `; FAILED: ${failures.join(', ')}` : ''}\n`;
say(summary);
if (args.save !== undefined) writeFileSync(args.save, output.join(''));
process.exitCode = failures.length > 0 ? 1 : 0;
