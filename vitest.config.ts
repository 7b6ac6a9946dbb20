import { defineConfig } from 'vitest/config';

// One project per tier so each runs alone (`vitest run --project unit`). The tiers that start
// processes or touch many files get longer timeouts; none of them relies on a fixed sleep.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'fault',
          include: ['test/fault/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 60_000,
          // Fault tests mount file systems and kill processes; keep them one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
