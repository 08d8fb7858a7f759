// cuda vs cpu: the elementwise checks of cases/elementwise.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/elementwise.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/elementwise.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping elementwise GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda elementwise vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
