// Dev harness for softmax / log_softmax over the last axis (csrc/nn.cu), in the spirit of llm.c's
// dev/cuda: validate each version's forward and gradient against the CPU op, then time the forward
// of each against this GPU's copy bandwidth measured in the same run. Versions: `scalar`
// (softmaxRowsKernel: a block a row, one element a thread, online max + sum) and `vec` (16-byte
// loads, f32 math; rows of up to 16 vectors packed several to a warp, a warp a row up to 128
// vectors (1024 bf16 / 512 f32), a block a row up to 2048 (16K bf16 / 8K f32) with the row in
// registers so x is read once, longer rows read twice: online max+sum, then the output), switched
// by GRIN_SOFTMAX_SCALAR, which the native side reads on every call. The backward is the autograd
// rule's composite (elementwise ops and a row sum, no kernel of its own), timed once.
// Run on a GPU: npx tsx dev/softmax/softmax.ts (device machine: /tmp/node .device/dev-softmax.mjs)
import * as T from '@grin-moe/tensor';
import { DTYPES, randn } from '../../tests/cases/harness.js';
import { forwardBackward, logSoftmaxCase } from '../../tests/cases/nn.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

const VERSIONS = { scalar: '1', vec: '0' } as const;

requireCuda('softmax');
let passed = true;
for (const [version, flag] of Object.entries(VERSIONS)) {
  process.env.GRIN_SOFTMAX_SCALAR = flag;
  for (const dtype of DTYPES) {
    passed =
      validate(`${version} ${dtype}`, (notes) => {
        for (const shape of [
          [7, 5],
          [1000, 8],
          [333, 24],
          [257, 128],
          [64, 1000],
          [40, 1024],
          [20, 4096],
          [6, 16384],
          [16, 32064],
          [3, 300, 128],
        ]) {
          const x = randn(shape, dtype, 3);
          notes.add(forwardBackward(`softmax [${shape}]`, [x], (t) => T.softmax(t, -1), dtype));
          notes.add(logSoftmaxCase(`log_softmax [${shape}]`, x, (t) => T.logSoftmax(t, -1), -1, dtype));
        }
      }) && passed;
  }
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
for (const dtype of DTYPES) {
  for (const [rows, v] of [
    [2048, 32064],
    [4096, 16384],
    [16384, 4096],
    [65536, 1024],
    [262144, 128],
    [1048576, 32],
  ] as const) {
    T.tidy(() => {
      const x = bigRandn([rows, v], dtype);
      const item = dtype === 'bf16' ? 2 : 4;
      // forward reads x, writes y
      for (const [version, flag] of Object.entries(VERSIONS)) {
        process.env.GRIN_SOFTMAX_SCALAR = flag;
        const fwd = timeMs(() => void T.softmax(x, -1));
        const log = timeMs(() => void T.logSoftmax(x, -1));
        console.log(
          rate(`${version.padEnd(6)} softmax ${dtype} [${rows},${v}]`, 2 * item * x.size, fwd, copy),
        );
        console.log(
          rate(`${version.padEnd(6)} log_softmax ${dtype} [${rows},${v}]`, 2 * item * x.size, log, copy),
        );
      }
      delete process.env.GRIN_SOFTMAX_SCALAR;
      const y = T.softmax(x, -1);
      const g = bigRandn([rows, v], dtype);
      // the autograd rule's backward: y * (g - sum(g * y)) as elementwise ops + a row sum
      const bwd = timeMs(() => void T.mul(y, T.sub(g, T.sum(T.mul(g, y), -1, true))));
      console.log(rate(`softmax ${dtype} [${rows},${v}] backward (composite)`, 3 * item * x.size, bwd, copy));
    });
  }
}
delete process.env.GRIN_SOFTMAX_SCALAR;
process.exit(passed ? 0 : 1);
