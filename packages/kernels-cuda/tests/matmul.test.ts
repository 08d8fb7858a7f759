// cuda vs cpu: the matmul checks of cases/matmul.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/matmul.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/matmul.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping matmul GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda matmul vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
