import { defineConfig } from 'vitest/config';

// Unit tests (src) and the headless-Chromium end-to-end tests (e2e, skipped without /usr/bin/chromium).
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['src/**/*.test.ts', 'e2e/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    fileParallelism: false,
  },
});
