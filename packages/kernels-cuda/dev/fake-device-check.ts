// Dry run of the GPU test cases with NO GPU: re-registers the CPU backend and kernels under the
// name 'cuda', so every case compares the CPU with itself. It proves the test code (shapes, API
// use, references) before device time is spent; bf16 and allocator cases fail by design here.
// Run: bash -c 'E=$(ls ../../node_modules/.pnpm/@esbuild+linux-x64@*/node_modules/@esbuild/linux-x64/bin/esbuild);
//   $E dev/fake-device-check.ts --bundle --platform=node --format=esm --conditions=source --outfile=/tmp/fake.mjs && node /tmp/fake.mjs'
import * as T from '@grin-moe/tensor';
import { cases as elementwise } from '../tests/cases/elementwise.js';
import type { Case } from '../tests/cases/harness.js';
import { cases as indexing } from '../tests/cases/indexing.js';
import { cases as layout } from '../tests/cases/layout.js';
import { cases as matmul } from '../tests/cases/matmul.js';
import { cases as nn } from '../tests/cases/nn.js';
import { cases as optim } from '../tests/cases/optim.js';
import { cases as reduce } from '../tests/cases/reduce.js';

const cpu = T.backendOf('cpu');
const fake: T.Backend = {
  name: 'cuda',
  allocate: (dtype, length, device) =>
    new T.Storage(fake, dtype, length, cpu.allocate(dtype, length, device).data),
  fromHost: (array, dtype, device) =>
    new T.Storage(fake, dtype, array.length, cpu.fromHost(array, dtype, device).data),
  toHost: (storage, offset, length) => cpu.toHost(storage, offset, length),
  free: () => {},
};
T.registerBackend(fake);
for (const { op, backend } of T.listKernels()) {
  if (backend !== 'cpu') continue;
  const entry = T.getKernel(op as T.OpName, 'cpu');
  T.registerKernel(op as 'add', 'cuda', entry.kernel as never, { strided: entry.strided });
}

const groups: Record<string, Case[]> = { elementwise, layout, reduce, matmul, nn, indexing, optim };
let failed = 0;
for (const [group, cases] of Object.entries(groups)) {
  for (const c of cases) {
    try {
      const note = c.run();
      console.log(`ok   [${group}] ${c.name}: ${note}`);
    } catch (error) {
      failed++;
      console.log(`FAIL [${group}] ${c.name}: ${(error as Error).message.split('\n')[0]!.slice(0, 200)}`);
    }
  }
}
console.log(`${failed} failed`);
