// cuda vs cpu: the fused attention checks of cases/attention.ts. Skipped (with a note) where
// cudaStatus() says cuda is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/attention.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/attention.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping attention GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda attention vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
