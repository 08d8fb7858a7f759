// Dev harness for cross_entropy (csrc/loss.cu), in the spirit of llm.c's dev/cuda: validate each
// version's forward and backward (mean / sum / none, ignored rows) against the CPU op, then time
// forward (reads the logits) and backward (reads the logits, writes their gradient) of each against
// this GPU's copy bandwidth measured in the same run. Versions: `scalar` (a block a row, one
// element a thread) and `vec` (16-byte loads, f32 math, a warp a row up to 128 vectors (1024 bf16 /
// 512 f32), else a block; the forward reads each row once with an online max+sum, the backward
// holds rows of up to 2048 vectors in registers and reads longer ones twice), switched by
// GRIN_CROSS_ENTROPY_SCALAR, which the native side reads on every call.
// Run on a GPU: npx tsx dev/cross_entropy/cross_entropy.ts
// (device machine: /tmp/node .device/dev-cross-entropy.mjs)
import * as T from '@grin-moe/tensor';
import { DTYPES, randint, randn } from '../../tests/cases/harness.js';
import { forwardBackward } from '../../tests/cases/nn.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

const VERSIONS = { scalar: '1', vec: '0' } as const;

requireCuda('cross_entropy');
let passed = true;
for (const [version, flag] of Object.entries(VERSIONS)) {
  process.env.GRIN_CROSS_ENTROPY_SCALAR = flag;
  for (const dtype of DTYPES) {
    passed =
      validate(`${version} ${dtype}`, (notes) => {
        for (const [n, v] of [
          [5, 7],
          [33, 64],
          [37, 384],
          [1024, 2048],
          [16, 16384],
          [300, 32064],
        ] as const) {
          const logits = randn([n, v], dtype, 2);
          const host = randint([n], 0, v).cpu.toArray() as Int32Array;
          host[1] = -100;
          const targets = { cpu: T.tensor(host), cuda: T.tensor(host, { device: 'cuda' }) };
          for (const reduction of ['mean', 'sum', 'none'] as const) {
            const fn = (l: T.Tensor) =>
              T.crossEntropy(l, l.device === 'cpu' ? targets.cpu : targets.cuda, {
                ignoreIndex: -100,
                reduction,
              });
            const tol = dtype === 'f32' ? { atol: 1e-4, rtol: 1e-5 } : { atol: 5e-2, rtol: 1.6e-2 };
            notes.add(forwardBackward(`crossEntropy ${reduction} [${n},${v}]`, [logits], fn, dtype, tol));
          }
        }
      }) && passed;
  }
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
for (const dtype of DTYPES) {
  for (const [n, v] of [
    [2048, 32064],
    [8192, 32064],
    [16384, 2048],
    [65536, 512],
  ] as const) {
    T.tidy(() => {
      const logits = bigRandn([n, v], dtype);
      const targets = T.tensor(
        Int32Array.from({ length: n }, (_, i) => (i * 7) % v),
        { device: 'cuda' },
      );
      const item = dtype === 'bf16' ? 2 : 4;
      const attrs = { ignoreIndex: -100, reduction: 'mean' as const };
      const g = T.cast(T.ones([], { device: 'cuda' }), dtype);
      for (const [version, flag] of Object.entries(VERSIONS)) {
        process.env.GRIN_CROSS_ENTROPY_SCALAR = flag;
        const fwd = timeMs(() => void T.runOp('cross_entropy', [logits, targets], attrs));
        const bwd = timeMs(
          () => void T.runKernel('cross_entropy_backward', 'cuda', [g, logits, targets], attrs),
        );
        // forward reads the logits; backward reads them and writes their gradient
        console.log(
          rate(
            `${version.padEnd(6)} cross_entropy ${dtype} [${n},${v}] forward`,
            item * logits.size,
            fwd,
            copy,
          ),
        );
        console.log(
          rate(
            `${version.padEnd(6)} cross_entropy ${dtype} [${n},${v}] backward`,
            2 * item * logits.size,
            bwd,
            copy,
          ),
        );
      }
    });
  }
}
delete process.env.GRIN_CROSS_ENTROPY_SCALAR;
process.exit(passed ? 0 : 1);
