#!/usr/bin/env -S node --initial-old-space-size=256
// The `runnel` command. Runs the compiled CLI from dist/ (built by `npm ci` through the
// `prepare` script, or by `npm run build`).
//
// --initial-old-space-size=256 (on the line above; Node refuses it in NODE_OPTIONS and it
// cannot be set at run time): V8 otherwise starts with a small old-generation limit, and a
// broker streaming MiB-sized request buffers fell into "GC storms" of 50-300 mark-compacts that
// freed almost nothing, doubling its CPU per record. With the flag: none in 35 of 36 runs, and
// the same peak RSS (bench/BROKER-RESULTS.md section 7.1). It raises a limit; it reserves no
// memory. bench/broker-support.ts reads the flags from this line to start brokers the same way.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('runnel: the CLI is not built yet; run `npm run build` (or `npm ci`) in the repository first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
const code = await main(process.argv);
// A failure already recorded (stdout could not be written: ENOSPC, EIO) is kept, not replaced by 0.
process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
