import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['source'] },
  test: { include: ['tests/**/*.test.ts'], testTimeout: 120_000 },
});
