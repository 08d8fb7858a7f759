// cuda vs cpu: the random-draw checks of cases/random.ts. Skipped (with a note) where cudaStatus()
// says cuda is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/random.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/random.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping random GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda random draws vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
