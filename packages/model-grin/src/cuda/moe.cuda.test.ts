// The MoE block and the fused routers on cuda against their references (cuda/moe-cases.ts).
// Skipped, with the reason, where cudaStatus() says cuda is unavailable (CI).
// Run: cd packages/model-grin && npx vitest run src/cuda
import { cudaStatus } from '@grin-moe/kernels-cuda';
import { describe, it } from 'vitest';
import { cases } from './moe-cases.js';

const status = cudaStatus();
if (!status.available) console.log(`[model-grin] skipping the MoE GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda MoE block and routers vs the references', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
