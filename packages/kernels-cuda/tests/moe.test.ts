// cuda vs cpu: the dropless MoE op checks of cases/moe.ts. Skipped (with a note) where cudaStatus()
// says cuda is unavailable, e.g. CI. Run: cd packages/kernels-cuda && npx vitest run tests/moe.test.ts
import { describe, it } from 'vitest';
import { cudaStatus } from '../src/index.js';
import { cases } from './cases/moe.js';

const status = cudaStatus();
if (!status.available) console.log(`[kernels-cuda] skipping MoE GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda MoE ops vs cpu', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
