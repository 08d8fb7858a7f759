// cuda vs cpu: the layout checks of cases/layout.ts. Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/layout.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/layout.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping layout GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda layout vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
