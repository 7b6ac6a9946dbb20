/**
 * Runs every storage bench in sequence, each in its own child process (a fresh heap and page
 * cache state per bench, and the restart bench needs to spawn and SIGKILL children of its
 * own), and prints everything they print. Exits non-zero if any bench failed.
 *
 * Run: npm run bench [-- --only append,cold-read,restart] [-- --save bench/last-run.txt]
 * Takes about 6–8 minutes on the machine in RESULTS.md; needs root for cold-cache figures.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const benches = [
  { name: 'append', file: 'storage-append.ts' },
  { name: 'cold-read', file: 'storage-cold-read.ts' },
  { name: 'restart', file: 'storage-restart.ts' },
];

const { values: args } = parseArgs({ options: { only: { type: 'string' }, save: { type: 'string' } } });
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
const failures: string[] = [];
const start = Date.now();
for (const bench of benches) {
  if (only !== undefined && !only.has(bench.name)) continue;
  const code = await runBench(bench.file, output);
  if (code !== 0) failures.push(`${bench.file} (exit ${code})`);
}
const summary = `\nall benches done in ${((Date.now() - start) / 1000).toFixed(0)} s${failures.length > 0 ? `; FAILED: ${failures.join(', ')}` : ''}\n`;
process.stdout.write(summary);
output.push(summary);
if (args.save !== undefined) writeFileSync(args.save, output.join(''));
process.exitCode = failures.length > 0 ? 1 : 0;
