import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Temporal's native worker misbehaves under worker threads (sdk-typescript#876); forks isolate it per file.
    pool: 'forks',
    // Two cores: more forks than that only adds contention with the Temporal and PostgreSQL servers.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          // One real Temporal dev server and one real PostgreSQL for the whole run (or the ones the environment names).
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
