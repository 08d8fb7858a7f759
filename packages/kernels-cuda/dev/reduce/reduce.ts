// Dev harness for the reductions (csrc/reduce.cu sum and max; csrc/fused.cu topk, a thread per row
// and k passes over it): validates sum over rows (last axis: a block per output), over columns
// (axis 0: a thread per output, chunked partial sums for tall inputs) and over everything, max +
// argmax over rows and columns, and topk (k = 2 over 16 columns: the router's case, plus k = 5 and a
// middle axis) against the CPU op, then times them at 64M elements and the router's [8192, 16] and
// prints GB/s (bytes read + written) as a fraction of this GPU's copy bandwidth measured in the same
// run. One version per op so far. Run on a GPU: npx tsx dev/reduce/reduce.ts
// (device machine: /tmp/node .device/dev-reduce.mjs)
import * as T from '@grin-moe/tensor';
import { compare, DTYPES, randn } from '../../tests/cases/harness.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

requireCuda('reduce');
let passed = true;
for (const dtype of DTYPES) {
  passed =
    validate(dtype, (notes) => {
      // bf16 sums round once at the end: the f32 reference rounded to bf16, one ulp apart at most
      const sumTol = dtype === 'bf16' ? { atol: 3e-2, rtol: 1.6e-2 } : { atol: 2e-3, rtol: 1e-5 };
      for (const [rows, d] of [
        [7, 5],
        [37, 300],
        [512, 4096],
        [65536, 64],
        [3, 100000],
      ] as const) {
        const x = randn([rows, d], dtype);
        const tag = `[${rows},${d}]`;
        notes.add(compare(`sum rows ${tag}`, T.sum(x.cuda, 1), T.sum(x.cpu, 1), sumTol));
        notes.add(compare(`sum columns ${tag}`, T.sum(x.cuda, 0), T.sum(x.cpu, 0), sumTol));
        notes.add(compare(`sum all ${tag}`, T.sum(x.cuda), T.sum(x.cpu), { atol: 5e-2, rtol: 1.6e-2 }));
        for (const axis of [1, 0]) {
          const c = T.maxWithIndices(x.cuda, axis);
          const p = T.maxWithIndices(x.cpu, axis);
          notes.add(compare(`max axis ${axis} ${tag}`, c.values, p.values));
          notes.add(compare(`argmax axis ${axis} ${tag}`, c.indices, p.indices));
        }
      }
      for (const [shape, k, axis] of [
        [[8192, 16], 2, 1],
        [[300, 16], 5, 1],
        [[4, 16, 33], 2, 1],
        [[1000, 128], 2, 1],
      ] as Array<[number[], number, number]>) {
        const x = randn(shape, dtype);
        const c = T.topk(x.cuda, k, axis);
        const p = T.topk(x.cpu, k, axis);
        notes.add(compare(`topk values k=${k} [${shape}]`, c.values, p.values));
        notes.add(compare(`topk indices k=${k} [${shape}]`, c.indices, p.indices));
      }
    }) && passed;
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
for (const dtype of DTYPES) {
  const item = dtype === 'bf16' ? 2 : 4;
  for (const [rows, d] of [
    [8192, 8192],
    [262144, 256],
    [64, 1048576],
  ] as const) {
    T.tidy(() => {
      const x = bigRandn([rows, d], dtype);
      const n = rows * d;
      const tag = (name: string) => `${name} ${dtype} [${rows},${d}]`;
      // read the input once, write the outputs (max also writes i32 indices)
      const cases: Array<[string, () => unknown, number]> = [
        ['sum rows', () => T.sum(x, 1), item * (n + rows)],
        ['sum columns', () => T.sum(x, 0), item * (n + d)],
        ['sum all', () => T.sum(x), item * (n + 1)],
        ['max+argmax rows', () => T.maxWithIndices(x, 1), item * n + (item + 4) * rows],
        ['max+argmax columns', () => T.maxWithIndices(x, 0), item * n + (item + 4) * d],
      ];
      for (const [name, fn, bytes] of cases)
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
  // the router: top-2 of 16 expert logits for 8192 tokens (launch-bound), and 64M elements
  for (const tokens of [8192, 4194304]) {
    T.tidy(() => {
      const x = bigRandn([tokens, 16], dtype);
      const ms = timeMs(() => void T.topk(x, 2, 1));
      console.log(
        rate(`topk k=2 ${dtype} [${tokens},16]`, item * x.size + (item + 4) * 2 * tokens, ms, copy),
      );
    });
  }
}
process.exit(passed ? 0 : 1);
