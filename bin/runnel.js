#!/usr/bin/env node
// The `runnel` command. Runs the compiled CLI from dist/ (built by `npm ci` through the
// `prepare` script, or by `npm run build`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('runnel: the CLI is not built yet; run `npm run build` (or `npm ci`) in the repository first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
