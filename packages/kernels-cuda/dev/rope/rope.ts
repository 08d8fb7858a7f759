// Dev harness for rotate-half RoPE (csrc/fused.cu rope: a thread per (j, j + D/2) pair, strided x,
// broadcast cos / sin tables): validates forward and gradient (the same kernel, rotating the other
// way) against the CPU op, on contiguous inputs and on the attention's layout (the [B,S,H,D]
// projection viewed as [B,H,S,D], marked `view`), then times forward and backward for the GRIN
// attention (8192 tokens as B=2 x S=4096, q 32 heads, k 8 heads, head dim 128) and prints GB/s
// (x read, out written, cos / sin read) as a fraction of this GPU's copy bandwidth measured in the
// same run. One version so far. Run on a GPU: npx tsx dev/rope/rope.ts
// (device machine: /tmp/node .device/dev-rope.mjs)
import * as T from '@grin-moe/tensor';
import { DTYPES, type Dt, pairFrom, randn } from '../../tests/cases/harness.js';
import { forwardBackward } from '../../tests/cases/nn.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

/** cos / sin [S, D] for positions 0..S-1 on the CPU (f32) and on cuda (in dtype). */
function tables(S: number, D: number, dtype: Dt) {
  const { cos, sin } = T.ropeTables([...Array(S).keys()], D);
  return {
    cos: pairFrom(cos.toArray() as Float32Array, [S, D], dtype),
    sin: pairFrom(sin.toArray() as Float32Array, [S, D], dtype),
  };
}

requireCuda('rope');
let passed = true;
for (const dtype of DTYPES) {
  passed =
    validate(dtype, (notes) => {
      // [B, S, H, D] and whether x is the [B,S,H,D] tensor viewed as [B,H,S,D] (else contiguous [B,H,S,D])
      for (const [B, S, H, D, view] of [
        [1, 5, 1, 2, false],
        [2, 12, 3, 16, true],
        [1, 64, 4, 128, false],
        [2, 100, 8, 128, true],
        [1, 33, 2, 96, true],
      ] as Array<[number, number, number, number, boolean]>) {
        const tab = tables(S, D, dtype);
        const x = randn(view ? [B, S, H, D] : [B, H, S, D], dtype);
        const fn = (t: T.Tensor) => {
          const on = t.device === 'cpu' ? 'cpu' : 'cuda';
          return T.rope(view ? t.transpose(1, 2) : t, tab.cos[on], tab.sin[on]);
        };
        notes.add(forwardBackward(`rope [${B},${H},${S},${D}]${view ? ' view' : ''}`, [x], fn, dtype));
      }
    }) && passed;
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
const [B, S, D] = [2, 4096, 128];
for (const dtype of DTYPES) {
  const item = dtype === 'bf16' ? 2 : 4;
  for (const [name, H, view] of [
    ['q', 32, true],
    ['q', 32, false],
    ['k', 8, true],
  ] as Array<[string, number, boolean]>) {
    T.tidy(() => {
      const { cos, sin } = T.ropeTables([...Array(S).keys()], D, 10000, { device: 'cuda' });
      const [c, s] = [T.cast(cos, dtype), T.cast(sin, dtype)];
      const x = view ? bigRandn([B, S, H, D], dtype).transpose(1, 2) : bigRandn([B, H, S, D], dtype);
      const g = bigRandn([B, H, S, D], dtype);
      const fwd = timeMs(() => void T.runOp('rope', [x, c, s], { transpose: false }));
      const bwd = timeMs(() => void T.runKernel('rope', 'cuda', [g, c, s], { transpose: true }));
      const bytes = 2 * item * x.size + 2 * item * c.size;
      const tag = `rope ${name} ${dtype} [${B},${H},${S},${D}]${view ? ' view' : ''}`;
      console.log(rate(`${tag} fwd`, bytes, fwd, copy));
      console.log(rate(`${tag} bwd`, bytes, bwd, copy));
    });
  }
}
process.exit(passed ? 0 : 1);
