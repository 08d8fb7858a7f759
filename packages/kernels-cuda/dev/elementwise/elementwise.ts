// Dev harness for the elementwise kernels (csrc/elementwise.cu, csrc/layout.cu cast): validates
// unary maps (exp, log, rsqrt, silu, sigmoid, tanh, relu), binary ops with broadcasting (add
// same-shape, add a bias row, add a transposed operand, mul), where / masked_fill with broadcast
// conditions, and cast f32 <-> bf16 against the CPU op, then times each at 64M elements
// ([8192, 8192]) and prints GB/s (bytes read + written) as a fraction of this GPU's copy bandwidth
// measured in the same run. One version per op so far. Run on a GPU: npx tsx dev/elementwise/elementwise.ts
// (device machine: /tmp/node .device/dev-elementwise.mjs)
import * as T from '@grin-moe/tensor';
import { compare, DTYPES, randbool, randn } from '../../tests/cases/harness.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

const UNARY: Record<string, (t: T.Tensor) => T.Tensor> = {
  exp: T.exp,
  log: T.log,
  rsqrt: T.rsqrt,
  silu: T.silu,
  sigmoid: T.sigmoid,
  tanh: T.tanh,
  relu: T.relu,
};
const POSITIVE = new Set(['log', 'rsqrt']);

requireCuda('elementwise');
let passed = true;
for (const dtype of DTYPES) {
  passed =
    validate(dtype, (notes) => {
      for (const [rows, d] of [
        [7, 5],
        [33, 65],
        [1024, 1031],
        [256, 4096],
      ] as const) {
        const x = randn([rows, d], dtype, 2);
        const pos = randn([rows, d], dtype, 1, 3);
        for (const [name, fn] of Object.entries(UNARY)) {
          const t = POSITIVE.has(name) ? pos : x;
          notes.add(compare(`${name} [${rows},${d}]`, fn(t.cuda), fn(t.cpu)));
        }
        const y = randn([rows, d], dtype);
        const bias = randn([d], dtype);
        const yt = randn([d, rows], dtype);
        notes.add(compare(`add [${rows},${d}]`, T.add(x.cuda, y.cuda), T.add(x.cpu, y.cpu)));
        notes.add(compare(`add bias [${rows},${d}]`, T.add(x.cuda, bias.cuda), T.add(x.cpu, bias.cpu)));
        notes.add(
          compare(
            `add transposed [${rows},${d}]`,
            T.add(x.cuda, yt.cuda.transpose()),
            T.add(x.cpu, yt.cpu.transpose()),
          ),
        );
        notes.add(compare(`mul [${rows},${d}]`, T.mul(x.cuda, y.cuda), T.mul(x.cpu, y.cpu)));
        const cond = randbool([rows, d]);
        const mask = randbool([1, d]);
        notes.add(
          compare(
            `where [${rows},${d}]`,
            T.where(cond.cuda, x.cuda, y.cuda),
            T.where(cond.cpu, x.cpu, y.cpu),
          ),
        );
        notes.add(
          compare(
            `masked_fill [${rows},${d}] by [1,${d}]`,
            T.maskedFill(x.cuda, mask.cuda, -Infinity),
            T.maskedFill(x.cpu, mask.cpu, -Infinity),
          ),
        );
        // cast to bf16 and back: exact (round-to-nearest-even both sides)
        const exact = { atol: 0, rtol: 0 };
        const down = T.cast(x.cuda, 'bf16');
        notes.add(compare(`cast ${dtype} -> bf16`, down, T.cast(x.cpu, 'bf16'), exact));
        notes.add(
          compare(`cast bf16 -> f32`, T.cast(down, 'f32'), T.cast(T.cast(x.cpu, 'bf16'), 'f32'), exact),
        );
      }
    }) && passed;
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
const [rows, d] = [8192, 8192];
const n = rows * d;
for (const dtype of DTYPES) {
  T.tidy(() => {
    const item = dtype === 'bf16' ? 2 : 4;
    const x = bigRandn([rows, d], dtype);
    const y = bigRandn([rows, d], dtype);
    const pos = T.add(T.abs(x), 1);
    const bias = T.cast(T.ones([d], { device: 'cuda' }), dtype);
    const cond = T.gt(y, 0); // bool, 1 byte an element
    const mask = T.gt(bias.reshape([1, d]), 0);
    const tag = (name: string) => `${name} ${dtype} [${rows},${d}]`;
    for (const [name, fn] of Object.entries(UNARY)) {
      const t = POSITIVE.has(name) ? pos : x;
      console.log(
        rate(
          tag(name),
          2 * item * n,
          timeMs(() => void fn(t)),
          copy,
        ),
      );
    }
    const binary: Array<[string, () => T.Tensor, number]> = [
      ['add', () => T.add(x, y), 3 * item * n],
      ['add bias row', () => T.add(x, bias), 2 * item * n],
      ['add transposed', () => T.add(x, y.transpose()), 3 * item * n],
      ['mul', () => T.mul(x, y), 3 * item * n],
      ['where', () => T.where(cond, x, y), (3 * item + 1) * n],
      ['masked_fill [1,d] mask', () => T.maskedFill(x, mask, -Infinity), 2 * item * n],
    ];
    for (const [name, fn, bytes] of binary)
      console.log(
        rate(
          tag(name),
          bytes,
          timeMs(() => void fn()),
          copy,
        ),
      );
  });
}
T.tidy(() => {
  const x = bigRandn([rows, d], 'f32');
  const xb = T.cast(x, 'bf16');
  const f2b = timeMs(() => void T.cast(x, 'bf16'));
  const b2f = timeMs(() => void T.cast(xb, 'f32'));
  console.log(rate(`cast f32 -> bf16 [${rows},${d}]`, 6 * n, f2b, copy));
  console.log(rate(`cast bf16 -> f32 [${rows},${d}]`, 6 * n, b2f, copy));
});
process.exit(passed ? 0 : 1);
