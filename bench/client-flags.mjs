/**
 * `--name value` and bare `--switch` flags for the measured bench clients (plain JS, run from
 * dist/ without tsx) and, re-exported by broker-support.ts, for the orchestrators. A bare
 * switch reads as 'true'.
 */
export function parseFlags(argv) {
  const flags = {};
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index];
    if (!arg.startsWith('--')) continue;
    const next = argv[index + 1];
    if (next === undefined || next.startsWith('--')) flags[arg.slice(2)] = 'true';
    else {
      flags[arg.slice(2)] = next;
      index++;
    }
  }
  return flags;
}
