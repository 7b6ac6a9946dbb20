/** Runs the CLI from sources (`node --import tsx src/cli/run.ts …`), as tests and dev scripts do. */
import { main } from './main.js';

process.exitCode = await main(process.argv);
