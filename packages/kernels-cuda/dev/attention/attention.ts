// Dev harness for the fused attention kernel (csrc/attention.cu), in the spirit of llm.c's dev/cuda:
// validate each version against the CPU op `sdpa` (the f64-accumulating reference), then time it.
// Versions: `simt` (f32 inputs: the same tiles through an f32 SIMT product) and `mma` (bf16 inputs:
// mma.sync m16n8k16 + ldmatrix, f32 accumulate). Both come from one source, picked by dtype.
// Run on a GPU: npx tsx dev/attention/attention.ts [simt|mma]  (device machine: /tmp/node .device/dev-attention.mjs)
import * as T from '@grin-moe/tensor';
import { cudaSynchronize } from '../../src/index.js';
import { checkShape } from '../../tests/cases/attention.js';
import { requireCuda } from '../harness.js';

const ALL_VERSIONS = { simt: 'f32', mma: 'bf16' } as const;
// `attention.ts mma` runs one version only (A/B runs of builds time just the bf16 path)
const picked = process.argv[2];
const VERSIONS = Object.fromEntries(
  Object.entries(ALL_VERSIONS).filter(([version]) => !picked || version === picked),
) as Partial<typeof ALL_VERSIONS>;

function visiblePairs(S: number, window: number, causal: boolean): number {
  let pairs = 0;
  for (let i = 0; i < S; i++)
    pairs += causal ? Math.min(i + 1, window || i + 1) : window ? Math.min(S, window) : S;
  return pairs;
}

function timeMs(fn: () => void, reps: number): number {
  T.tidy(fn);
  cudaSynchronize();
  const times: number[] = [];
  for (let b = 0; b < 3; b++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) T.tidy(fn);
    cudaSynchronize();
    times.push((performance.now() - start) / reps);
  }
  return times.sort((a, b) => a - b)[1]!;
}

requireCuda('attention');
for (const [version, dtype] of Object.entries(VERSIONS)) {
  const shape = { B: 1, H: 8, Hkv: 2, S: 256, Skv: 256, D: 128, Dv: 128, causal: true, window: 100 };
  console.log(
    `validate ${version} (${dtype}) vs cpu ${JSON.stringify(shape)}: ${T.tidy(() => checkShape(shape, dtype))}`,
  );
}
const shapes = [
  { B: 2, H: 32, Hkv: 8, S: 4096, D: 128, window: 2047 },
  { B: 2, H: 32, Hkv: 8, S: 4096, D: 128, window: 0 },
  { B: 4, H: 32, Hkv: 8, S: 1024, D: 128, window: 0 },
  { B: 4, H: 32, Hkv: 8, S: 1024, D: 64, window: 0 },
];
for (const [version, dtype] of Object.entries(VERSIONS)) {
  for (const s of shapes) {
    if (dtype === 'f32' && s.S > 1024) continue; // the SIMT path is a correctness fallback
    T.tidy(() => {
      const make = (shape: number[]) => T.cast(T.randn(shape, { device: 'cuda' }), dtype);
      const q = make([s.B, s.H, s.S, s.D]);
      const k = make([s.B, s.Hkv, s.S, s.D]);
      const v = make([s.B, s.Hkv, s.S, s.D]);
      const g = make([s.B, s.H, s.S, s.D]);
      const attrs = { scale: 1 / Math.sqrt(s.D), window: s.window, causal: true };
      const flops = 4 * s.D * visiblePairs(s.S, s.window, true) * s.B * s.H;
      const reps = dtype === 'f32' ? 2 : 10;
      const fwd = timeMs(() => void T.runOp('sdpa', [q, k, v], attrs), reps);
      const [out, lse] = T.runOp('sdpa', [q, k, v], attrs);
      const bwd = timeMs(() => void T.runOp('sdpa_backward', [q, k, v, out!, lse!, g], attrs), reps);
      console.log(
        `${version.padEnd(5)} ${JSON.stringify(s)} fwd ${fwd.toFixed(3)} ms ${(flops / fwd / 1e9).toFixed(1)} TFLOP/s; ` +
          `bwd ${bwd.toFixed(3)} ms ${((2.5 * flops) / bwd / 1e9).toFixed(1)} TFLOP/s`,
      );
    });
  }
}
