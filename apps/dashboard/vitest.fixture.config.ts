import { defineConfig } from 'vitest/config';

// Only for regenerating fixtures/runs (see fixtures/generate-fixture.ts); not part of `pnpm test`.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: { include: ['fixtures/generate-fixture.ts'], testTimeout: 600_000 },
});
