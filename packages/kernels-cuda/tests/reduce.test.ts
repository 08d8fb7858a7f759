// cuda vs cpu: the reduce checks of cases/reduce.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/reduce.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/reduce.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping reduce GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda reduce vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
