// cuda vs cpu: the optim checks of cases/optim.ts, and cases/side-stream.ts (the step on the side stream). Skipped (with a note) where cudaStatus() says cuda
// is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/optim.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/optim.js';
import { cases as sideStream } from './cases/side-stream.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping optim GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda optim vs cpu', () => {
  for (const c of [...cases, ...sideStream]) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
