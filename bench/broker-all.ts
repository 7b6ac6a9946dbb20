/**
 * Runs the broker benches one after another, each in its own child process (under tsx;
 * every measured client and the broker run compiled JS): broker-produce, broker-consume,
 * broker-latency. About 5–6 minutes on the 2-core VM. Results: bench/BROKER-RESULTS.md.
 *
 *   npm run build && node --import tsx bench/broker-all.ts [--only produce,consume,latency] [--save bench/broker-last-run.txt]
 *
 * Each bench's JSON summary goes next to the --save file (…-produce.json etc.) when given.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './common.js';
import { parseFlags } from './broker-support.js';

const flags = parseFlags(process.argv.slice(2));
const only = flags.only?.split(',') ?? ['produce', 'consume', 'latency'];
const save = flags.save;
const output: string[] = [];

for (const name of only) {
  const args = ['--import', 'tsx', join(repoRoot, 'bench', `broker-${name}.ts`)];
  if (save !== undefined) args.push('--save', save.replace(/(\.txt)?$/, `-${name}.json`));
  const started = Date.now();
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (chunk: Buffer) => {
      process.stdout.write(chunk);
      output.push(chunk.toString());
    });
    child.once('exit', resolve);
  });
  const line = `\n[broker-${name} finished in ${((Date.now() - started) / 1000).toFixed(0)} s with exit code ${String(code)}]\n`;
  process.stdout.write(line);
  output.push(line);
}
if (save !== undefined) fs.writeFileSync(save, output.join(''));
