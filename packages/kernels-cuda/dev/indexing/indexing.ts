// Dev harness for the indexing kernels (csrc/indexing.cu): validates embedding forward and backward
// (index_add of the output gradient), the MoE dispatch and combine (index_select of each token's
// two expert rows, index_add back, repeated indices accumulating), gather / scatter_add along rows
// and along the router's 16 columns (top-2), with gradients, against the CPU op; then times them
// at MoE-like sizes (16384 tokens of width 1024, top-2: 32768 dispatched rows; a 32064-row
// embedding table) and prints GB/s as a fraction of this GPU's copy bandwidth measured in the same
// run. Bytes are the minimum traffic: indices, rows read, rows written; an add also reads and
// writes its base once (the atomics' read-modify-write and bf16's f32 accumulator are not counted).
// One version per op so far. Run on a GPU: npx tsx dev/indexing/indexing.ts
// (device machine: /tmp/node .device/dev-indexing.mjs)
import * as T from '@grin-moe/tensor';
import { DTYPES, type Pair, randint, randn } from '../../tests/cases/harness.js';
import { forwardBackward } from '../../tests/cases/nn.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, rate, timeMs } from '../timing.js';

/** The dispatch order: every token twice (its two experts), scattered as rows grouped by expert are. */
function top2(tokens: number): Int32Array {
  return Int32Array.from({ length: 2 * tokens }, (_, i) => (i * 7919) % tokens);
}
const on = (p: Pair, t: T.Tensor) => (t.device === 'cpu' ? p.cpu : p.cuda);
const upload = (a: Int32Array, shape?: number[]): Pair => ({
  cpu: T.tensor(a, { shape }),
  cuda: T.tensor(a, { shape, device: 'cuda' }),
});

requireCuda('indexing');
let passed = true;
for (const dtype of DTYPES) {
  passed =
    validate(dtype, (notes) => {
      const tol = dtype === 'f32' ? { atol: 1e-4, rtol: 1e-5 } : { atol: 3e-2, rtol: 1.6e-2 };
      const ids = randint([8, 50], 0, 60);
      const emb = randn([1000, 64], dtype);
      notes.add(forwardBackward('embedding', [emb], (w) => T.embedding(w, on(ids, w)), dtype, tol));
      for (const [tokens, width] of [
        [7, 5],
        [1024, 256],
      ] as const) {
        const rows = upload(top2(tokens));
        const x = randn([tokens, width], dtype);
        const tag = `[${tokens},${width}]`;
        notes.add(
          forwardBackward(`indexSelect ${tag}`, [x], (t) => T.indexSelect(t, 0, on(rows, t)), dtype, tol),
        );
        const src = randn([2 * tokens, width], dtype);
        const base = randn([tokens, width], dtype);
        const combine = (b: T.Tensor, s: T.Tensor) => T.indexAdd(b, 0, on(rows, b), s);
        notes.add(forwardBackward(`indexAdd ${tag}`, [base, src], combine, dtype, tol));
        // torch gather along rows: the dispatch with a full index
        const full = upload(
          Int32Array.from({ length: 2 * tokens * width }, (_, i) => (Math.floor(i / width) * 7919) % tokens),
          [2 * tokens, width],
        );
        notes.add(forwardBackward(`gather rows ${tag}`, [x], (t) => T.gather(t, 0, on(full, t)), dtype, tol));
        const scatter = (b: T.Tensor, s: T.Tensor) => T.scatterAdd(b, 0, on(full, b), s);
        notes.add(forwardBackward(`scatterAdd rows ${tag}`, [base, src], scatter, dtype, tol));
        // the router: the two chosen of 16 expert probabilities per token, and their gradient
        const experts = upload(
          Int32Array.from({ length: 2 * tokens }, (_, i) => (i * 5 + (i >> 1)) % 16),
          [tokens, 2],
        );
        const probs = randn([tokens, 16], dtype);
        notes.add(
          forwardBackward(
            `gather top-2 [${tokens},16]`,
            [probs],
            (t) => T.gather(t, 1, on(experts, t)),
            dtype,
            tol,
          ),
        );
      }
    }) && passed;
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
const [tokens, width, vocab] = [16384, 1024, 32064];
const m = 2 * tokens;
for (const dtype of DTYPES) {
  const item = dtype === 'bf16' ? 2 : 4;
  T.tidy(() => {
    const dev = { device: 'cuda' };
    const ids = T.tensor(
      Int32Array.from({ length: tokens }, (_, i) => (i * 7919) % vocab),
      dev,
    );
    const rows = T.tensor(top2(tokens), dev);
    const full = T.contiguous(rows.reshape([m, 1]).expand([m, width]));
    const experts = T.tensor(
      Int32Array.from({ length: m }, (_, i) => (i * 5 + (i >> 1)) % 16),
      { ...dev, shape: [tokens, 2] },
    );
    const table = bigRandn([vocab, width], dtype);
    const x = bigRandn([tokens, width], dtype);
    const src = bigRandn([m, width], dtype);
    const probs = bigRandn([tokens, 16], dtype);
    const chosen = T.gather(probs, 1, experts);
    const zeros = (shape: number[]) => T.zeros(shape, { dtype, device: 'cuda' });
    const [tw, xw, mw] = [vocab * width * item, tokens * width * item, m * width * item];
    const cases: Array<[string, () => unknown, number]> = [
      [`embedding [${vocab},${width}] x ${tokens} ids`, () => T.embedding(table, ids), 4 * tokens + 2 * xw],
      [
        'embedding backward (index_add)',
        () => T.indexAdd(zeros([vocab, width]), 0, ids, x),
        2 * tw + xw + 4 * tokens,
      ],
      [`index_select dispatch ${m} rows`, () => T.indexSelect(x, 0, rows), 4 * m + 2 * mw],
      [`index_add combine ${m} rows`, () => T.indexAdd(x, 0, rows, src), 4 * m + 2 * xw + mw],
      [`gather rows [${m},${width}]`, () => T.gather(x, 0, full), 4 * m * width + 2 * mw],
      [`scatter_add rows [${m},${width}]`, () => T.scatterAdd(x, 0, full, src), 4 * m * width + 2 * xw + mw],
      [`gather top-2 of [${tokens},16]`, () => T.gather(probs, 1, experts), 4 * m + (16 * tokens + m) * item],
      [
        `scatter_add top-2 into [${tokens},16]`,
        () => T.scatterAdd(probs, 1, experts, chosen),
        4 * m + (32 * tokens + m) * item,
      ],
    ];
    for (const [name, fn, bytes] of cases)
      console.log(
        rate(
          `${name} ${dtype}`,
          bytes,
          timeMs(() => void fn()),
          copy,
        ),
      );
  });
}
process.exit(passed ? 0 : 1);
