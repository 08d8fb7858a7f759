// Device entry: where `grin bench moe`'s block spends its wall time, host or GPU. For each token
// count in argv[2] (comma-separated, default 2048,8192) and each grouped implementation (argv[3]), in
// argv[4] alternating rounds (so clock drift and order hit all alike), argv[5] steps (default 10) of
// forward + backward:
//  - fwd: the forward's host time (it ends with the count read, so it waits for the GPU's routing);
//  - bwd: the backward's host time (no read: only enqueueing);
//  - wall: the steps' time with one synchronize at the end.
// bwd close to wall - fwd means the host, not the GPU, sets the pace of the backward. Each line
// also gives the window's start and end (epoch ms), to line up with `nvidia-smi -lms` samples of
// the SM clock and power.
// Bundled by tools/device/build-bundle.sh into .device/moe-host.mjs; run with `--cpu-prof` to see
// where the host time goes.
import { requireCuda } from '../../apps/trainer/src/commands/bench-gemm.js';
import { clearGrads, grinMoeBlock, moeInputs } from '../../apps/trainer/src/commands/bench-moe.js';
import type { GroupedGemmImplementation } from '../../packages/kernels-cuda/src/index.js';
import { moe } from '../../packages/model-grin/src/index.js';
import * as T from '../../packages/tensor/src/index.js';

const tokenList = (process.argv[2] ?? '2048,8192').split(',').map(Number);
const implementations = (process.argv[3] ?? 'lt-serial,wgmma,lt-streams').split(
  ',',
) as GroupedGemmImplementation[];
const rounds = Number(process.argv[4] ?? 3);
const STEPS = Number(process.argv[5] ?? 10);
const cuda = await requireCuda('moe-host');
const generator = new T.Generator(2409);
const { config, params } = grinMoeBlock(generator);
for (const tokens of tokenList) {
  const { x, g } = moeInputs(tokens, generator);
  const step = (host: { fwd: number; bwd: number }) =>
    T.tidy(() => {
      const t0 = performance.now();
      const { out_BSD } = moe(config, params, 0, x, { training: true, generator });
      const t1 = performance.now();
      T.backward(out_BSD, g);
      clearGrads([...params.values(), x]);
      host.fwd += t1 - t0;
      host.bwd += performance.now() - t1;
    });
  for (let round = 1; round <= rounds; round++) {
    for (const implementation of implementations) {
      cuda.setGroupedGemmImplementation(implementation);
      for (let i = 0; i < 2; i++) step({ fwd: 0, bwd: 0 }); // warm-up, not counted
      cuda.cudaSynchronize();
      const host = { fwd: 0, bwd: 0 };
      const started = performance.now();
      const from = Date.now();
      for (let i = 0; i < STEPS; i++) step(host);
      cuda.cudaSynchronize();
      const wall = (performance.now() - started) / STEPS;
      const to = Date.now();
      console.log(
        JSON.stringify({
          tokens,
          round,
          implementation,
          wall_ms: Number(wall.toFixed(3)),
          fwd_host_ms: Number((host.fwd / STEPS).toFixed(3)),
          bwd_host_ms: Number((host.bwd / STEPS).toFixed(3)),
          from,
          to,
        }),
      );
    }
  }
}
