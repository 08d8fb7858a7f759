// The model's fused attention on cuda against the eager path (cuda/attention-cases.ts).
// Skipped, with the reason, where cudaStatus() says cuda is unavailable (CI).
// Run: cd packages/model-grin && npx vitest run src/cuda
import { cudaStatus } from '@grin-moe/kernels-cuda';
import { describe, it } from 'vitest';
import { cases } from './attention-cases.js';

const status = cudaStatus();
if (!status.available) console.log(`[model-grin] skipping the attention GPU tests: ${status.reason}`);

describe.skipIf(!status.available)('cuda fused attention vs the eager path', () => {
  for (const c of cases) it(c.name, () => console.log(`${c.name}: ${c.run()}`));
});
