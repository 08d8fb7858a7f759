// Dev harness for layer_norm (csrc/nn.cu), in the spirit of llm.c's dev/cuda: validate each version
// against the CPU op (forward and, through autograd, dx / dweight / dbias), then time forward and
// backward against this GPU's copy bandwidth measured in the same run. Versions: `scalar` (a block
// per row, one element a thread, row cached in shared memory) and `vec` (16-byte loads, row in
// registers, a warp per row up to 1024 bf16 / 512 f32, else a block), switched by
// GRIN_LAYER_NORM_SCALAR. Run on a GPU: npx tsx dev/layer_norm/layer_norm.ts
// (device machine: /tmp/node .device/dev-layer-norm.mjs)
import * as T from '@grin-moe/tensor';
import { DTYPES, randn } from '../../tests/cases/harness.js';
import { layerNormCheck } from '../../tests/cases/nn.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

const VERSIONS = { scalar: '1', vec: '0' } as const;

requireCuda('layer_norm');
let passed = true;
for (const [version, flag] of Object.entries(VERSIONS)) {
  process.env.GRIN_LAYER_NORM_SCALAR = flag;
  for (const dtype of DTYPES) {
    passed =
      validate(`${version} ${dtype}`, (notes) => {
        for (const [rows, d] of [
          [4, 8],
          [37, 100],
          [64, 768],
          [33, 1024],
          [16, 1032],
          [32, 4096],
          [8, 8192],
          [3, 20480],
        ] as const) {
          notes.add(layerNormCheck(randn([rows, d], dtype, 2, 0.5), dtype));
        }
      }) && passed;
  }
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
for (const dtype of DTYPES) {
  for (const [rows, d] of [
    [8192, 4096],
    [16384, 4096],
    [65536, 1024],
    [262144, 128],
    [2048, 16384],
  ] as const) {
    T.tidy(() => {
      const x = bigRandn([rows, d], dtype);
      const g = bigRandn([rows, d], dtype);
      const w = T.cast(T.ones([d], { device: 'cuda' }), dtype);
      const b = T.cast(T.zeros([d], { device: 'cuda' }), dtype);
      const item = dtype === 'bf16' ? 2 : 4;
      const attrs = { eps: 1e-5, hasWeight: true, hasBias: true };
      for (const [version, flag] of Object.entries(VERSIONS)) {
        process.env.GRIN_LAYER_NORM_SCALAR = flag;
        const fwd = timeMs(() => void T.runOp('layer_norm', [x, w, b], attrs));
        const [, mean, rstd] = T.runOp('layer_norm', [x, w, b], attrs);
        const bwd = timeMs(
          () =>
            void T.runKernel('layer_norm_backward', 'cuda', [g, x, mean!, rstd!, w], {
              eps: 1e-5,
              hasWeight: true,
            }),
        );
        // forward reads x, writes y; backward reads g and x, writes dx (dweight/dbias are per column)
        console.log(
          rate(`${version.padEnd(6)} ${dtype} [${rows},${d}] forward`, 2 * item * x.size, fwd, copy),
        );
        console.log(
          rate(`${version.padEnd(6)} ${dtype} [${rows},${d}] backward`, 3 * item * x.size, bwd, copy),
        );
      }
    });
  }
}
delete process.env.GRIN_LAYER_NORM_SCALAR;
process.exit(passed ? 0 : 1);
