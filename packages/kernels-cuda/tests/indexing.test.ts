// cuda vs cpu: the indexing checks of cases/indexing.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/indexing.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/indexing.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping indexing GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda indexing vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
