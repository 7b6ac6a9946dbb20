/** Runs the CLI from sources (`node --import tsx src/cli/run.ts …`), as tests and dev scripts do. */
import { main } from './main.js';

const code = await main(process.argv);
// A failure already recorded (stdout could not be written: ENOSPC, EIO) is kept, not replaced by 0.
process.exitCode = Math.max(Number(process.exitCode ?? 0), code);
