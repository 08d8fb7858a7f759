// Device entry of `ENTRY=moe tools/device/profile-train.sh`: `grin bench moe`'s block (GRIN widths,
// bf16, SparseMixer-v2, input jitter on) forward + backward at argv[3] tokens (default 2048) with
// the grouped implementation argv[4] (default lt-serial; 'dense': the bench's dense GLU of the same
// active parameters instead, the baseline its ratios divide by): two warm-up steps, then `steps` (argv[2])
// inside the profiler's capture range. The per-expert row counts of one more step go to stderr with
// the time a step; under ncu, stdout is the CSV report.
// Bundled by tools/device/build-bundle.sh into .device/profile-moe.mjs. tools/ has no package.json,
// so the packages come by relative path: with --conditions=source the app's @grin-moe/* imports
// resolve to the same source files, so the bundle holds one copy of each.

import { requireCuda } from '../../apps/trainer/src/commands/bench-gemm.js';
import {
  denseGlu,
  denseGluStep,
  grinMoeBlock,
  moeBlockStep,
  moeInputs,
} from '../../apps/trainer/src/commands/bench-moe.js';
import type { GroupedGemmImplementation } from '../../packages/kernels-cuda/src/index.js';
import * as T from '../../packages/tensor/src/index.js';

const steps = Number(process.argv[2] ?? 2);
const tokens = Number(process.argv[3] ?? 2048);
const implementation = process.argv[4] ?? 'lt-serial';
const cuda = await requireCuda('moe');
if (implementation !== 'dense')
  cuda.setGroupedGemmImplementation(implementation as GroupedGemmImplementation);
const generator = new T.Generator(2409);
const block = grinMoeBlock(generator);
const dense = denseGlu(generator); // drawn for every form, so x and g are the bench's draws
const { x, g } = moeInputs(tokens, generator);
let counts: number[] = [];
const step = (readCounts = false) =>
  T.tidy(() => {
    if (implementation === 'dense') return denseGluStep(dense, x, g);
    const balance = moeBlockStep(block, x, g, generator);
    if (readCounts) counts = Array.from(balance.counts_E.toArray() as ArrayLike<number>);
  });
for (let i = 0; i < 2; i++) step();
cuda.cudaSynchronize();
cuda.cudaProfilerStart();
const started = performance.now();
for (let i = 0; i < steps; i++) step();
cuda.cudaSynchronize();
const ms = (performance.now() - started) / steps;
cuda.cudaProfilerStop();
step(true);
console.error(JSON.stringify({ tokens, implementation, steps, ms_per_step: Number(ms.toFixed(3)), counts }));
