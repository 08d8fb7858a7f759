// Device entry of tools/device/profile-train.sh: `grin bench train`'s model (trainRun: 4 layers at
// GRIN width, bf16 with f32 master weights, AdamW with bf16 moments, the optimizer on the main
// stream), three warm-up steps, then `steps` steps (argv[2], default 2) inside the profiler's
// capture range (cudaProfilerStart / Stop), so Nsight sees only steady-state steps. Its own summary
// goes to stderr: under ncu, stdout is the CSV report.
// Bundled by tools/device/build-bundle.sh into .device/profile-train.mjs.
import { requireCuda } from '../../apps/trainer/src/commands/bench-gemm.js';
import { TRAIN_SHAPE, trainRun } from '../../apps/trainer/src/commands/bench-train.js';

const steps = Number(process.argv[2] ?? 2);
const layers = Number(process.argv[3] ?? TRAIN_SHAPE.layers);
const cuda = await requireCuda('train');
const run = trainRun(cuda, layers);
run.setMoments('bf16');
for (let i = 0; i < 3; i++) await run.step();
cuda.cudaSynchronize();
cuda.cudaProfilerStart();
const started = performance.now();
for (let i = 0; i < steps; i++) await run.step();
cuda.cudaSynchronize();
const ms = (performance.now() - started) / steps;
cuda.cudaProfilerStop();
await run.step(true);
console.error(JSON.stringify({ steps, layers, ms_per_step: Number(ms.toFixed(2)), phase_ms: run.phases }));
run.dispose();
