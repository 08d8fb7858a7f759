// Dev harness for softmax / log_softmax over the last axis (csrc/nn.cu softmaxRowsKernel: a block
// per row, online max + sum in f32, one element a thread): validates forward and gradient against
// the CPU op, then times forward and backward against this GPU's copy bandwidth measured in the
// same run. One version so far; a vectorised one (16-byte loads, row in registers for V <= ~8K)
// is the next step (README "Not done yet"). Run on a GPU: npx tsx dev/softmax/softmax.ts
// (device machine: /tmp/node .device/dev-softmax.mjs)
import * as T from '@grin-moe/tensor';
import { cudaStatus } from '../../src/index.js';
import { DTYPES, Notes, randn } from '../../tests/cases/harness.js';
import { forwardBackward } from '../../tests/cases/nn.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

const status = cudaStatus();
if (!status.available) {
  console.log(`dev/softmax: cuda unavailable: ${status.reason}`);
  process.exit(1);
}
let failed = false;
for (const dtype of DTYPES) {
  const notes = new Notes();
  try {
    T.tidy(() => {
      for (const shape of [
        [7, 5],
        [64, 1000],
        [16, 32064],
        [3, 300, 128],
      ]) {
        const x = randn(shape, dtype, 3);
        notes.add(forwardBackward(`softmax [${shape}]`, [x], (t) => T.softmax(t, -1), dtype));
        notes.add(forwardBackward(`log_softmax [${shape}]`, [x], (t) => T.logSoftmax(t, -1), dtype));
      }
    });
    console.log(`validate ${dtype} vs cpu: ok, worst ${notes}`);
  } catch (error) {
    failed = true;
    console.log(`validate ${dtype} vs cpu: FAIL ${(error as Error).message}`);
  }
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
for (const dtype of DTYPES) {
  for (const [rows, v] of [
    [2048, 32064],
    [16384, 4096],
    [65536, 1024],
    [262144, 128],
  ] as const) {
    T.tidy(() => {
      const x = bigRandn([rows, v], dtype);
      const item = dtype === 'bf16' ? 2 : 4;
      const fwd = timeMs(() => void T.softmax(x, -1));
      const y = T.softmax(x, -1);
      const g = bigRandn([rows, v], dtype);
      // the autograd rule's backward: y * (g - sum(g * y)) as elementwise ops + a row sum
      const bwd = timeMs(() => void T.mul(y, T.sub(g, T.sum(T.mul(g, y), -1, true))));
      console.log(rate(`softmax ${dtype} [${rows},${v}] forward`, 2 * item * x.size, fwd, copy));
      console.log(rate(`softmax ${dtype} [${rows},${v}] backward (composite)`, 3 * item * x.size, bwd, copy));
    });
  }
}
process.exit(failed ? 1 : 0);
