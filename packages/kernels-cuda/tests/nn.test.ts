// cuda vs cpu: the nn checks of cases/nn.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/nn.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/nn.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping nn GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda nn vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
