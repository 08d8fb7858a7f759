// GPU-vs-CPU checks for the reductions: sum over every axis subset of a 4-d tensor (rows and
// columns paths, chunked partial sums), mean, sums of i32 and bool, and max / argmax with ties
// and NaN over leading, middle and last axes.
import * as T from '@grin-moe/tensor';
import { type Case, compare, DTYPES, Notes, pairFrom, randbool, randint, randn, scoped } from './harness.js';

function subsets(rank: number): number[][] {
  const out: number[][] = [];
  for (let mask = 1; mask < 1 << rank; mask++)
    out.push([...Array(rank).keys()].filter((i) => mask & (1 << i)));
  return out;
}

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `sum ${dtype} over all 15 axis subsets of [6,5,7,9], keepdim both ways`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const x = randn([6, 5, 7, 9], dtype);
        // bf16 sums round once at the end: compare against the f32 sum rounded to bf16.
        const tol = dtype === 'bf16' ? { atol: 3e-2, rtol: 1.6e-2 } : { atol: 1e-4, rtol: 1e-5 };
        for (const axes of subsets(4)) {
          notes.add(compare(`sum [${axes}]`, T.sum(x.cuda, axes), T.sum(x.cpu, axes), tol));
          notes.add(
            compare(`sum keepdim [${axes}]`, T.sum(x.cuda, axes, true), T.sum(x.cpu, axes, true), tol),
          );
        }
        notes.add(
          compare(
            'sum of a transposed view',
            T.sum(x.cuda.transpose(0, 3), [1, 2]),
            T.sum(x.cpu.transpose(0, 3), [1, 2]),
            tol,
          ),
        );
        return notes.toString();
      }),
  })),
  {
    name: 'sum f32 at scale: rows [4096,4096] -> last axis, columns [65536,64] -> axis 0 (chunked), all 16M elements',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randn([4096, 4096]);
        notes.add(compare('rows', T.sum(a.cuda, 1), T.sum(a.cpu, 1), { atol: 1e-3, rtol: 1e-5 }));
        notes.add(compare('columns', T.sum(a.cuda, 0), T.sum(a.cpu, 0), { atol: 1e-3, rtol: 1e-5 }));
        notes.add(compare('all', T.sum(a.cuda), T.sum(a.cpu), { atol: 1e-2, rtol: 1e-6 }));
        const b = randn([65536, 64]);
        notes.add(compare('tall columns', T.sum(b.cuda, 0), T.sum(b.cpu, 0), { atol: 1e-3, rtol: 1e-5 }));
        notes.add(compare('mean', T.mean(b.cuda, [0, 1]), T.mean(b.cpu, [0, 1]), { atol: 1e-6, rtol: 1e-5 }));
        return notes.toString();
      }),
  },
  {
    name: 'sum of i32 and bool (bool sums to i32)',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randint([37, 300], -1000, 1000);
        notes.add(compare('i32 rows', T.sum(a.cuda, 1), T.sum(a.cpu, 1)));
        notes.add(compare('i32 columns', T.sum(a.cuda, 0), T.sum(a.cpu, 0)));
        const b = randbool([300, 37]);
        notes.add(compare('bool', T.sum(b.cuda, 0), T.sum(b.cpu, 0)));
        notes.add(compare('bool all', T.sum(b.cuda), T.sum(b.cpu)));
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `max with indices ${dtype}: each axis, ties (first wins), NaN (first NaN wins)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const ints = randint([9, 33, 2048], -4, 4);
        const x = { cpu: T.cast(ints.cpu, 'f32'), cuda: T.cast(ints.cuda, dtype) };
        for (const axis of [0, 1, 2]) {
          const c = T.maxWithIndices(x.cuda, axis);
          const p = T.maxWithIndices(x.cpu, axis);
          notes.add(compare(`max values axis ${axis}`, c.values, p.values));
          notes.add(compare(`max indices axis ${axis}`, c.indices, p.indices));
        }
        const values = Float32Array.from({ length: 5 * 300 }, (_, i) =>
          i % 300 === 7 * (1 + (i % 5)) || i === 1111 ? Number.NaN : Math.cos(i),
        );
        const y = pairFrom(values, [5, 300], dtype);
        for (const axis of [0, 1]) {
          const c = T.maxWithIndices(y.cuda, axis, true);
          const p = T.maxWithIndices(y.cpu, axis, true);
          notes.add(compare(`NaN max axis ${axis}`, c.values, p.values));
          notes.add(compare(`NaN argmax axis ${axis}`, c.indices, p.indices));
        }
        return notes.toString();
      }),
  })),
  {
    name: 'few long rows split over blocks (totals, [64, 1M] rows, strided reduced axes) and tall column max in pieces',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randn([64, 1 << 20]);
        notes.add(compare('[64, 1M] rows', T.sum(a.cuda, 1), T.sum(a.cpu, 1), { atol: 1e-3, rtol: 1e-5 }));
        const v = randn([40000, 3, 8]); // reduced axes 0 and 2 do not merge: pieces index through them
        notes.add(
          compare('strided pieces', T.sum(v.cuda, [0, 2]), T.sum(v.cpu, [0, 2]), { atol: 1e-3, rtol: 1e-5 }),
        );
        const i = randint([300000], -5, 5);
        notes.add(compare('i32 total', T.sum(i.cuda), T.sum(i.cpu)));
        const b = { cpu: T.gt(i.cpu, 0), cuda: T.gt(i.cuda, 0) };
        notes.add(compare('bool total', T.sum(b.cuda), T.sum(b.cpu)));
        // ties and NaNs spread over pieces: the first maximum / first NaN must win across pieces
        const host = randint([40000, 3], 0, 4).cpu.toArray() as Int32Array;
        const f = Float32Array.from(host);
        f[3 * 30000 + 1] = Number.NaN;
        f[3 * 35000 + 1] = Number.NaN;
        const tall = {
          cpu: T.tensor(f, { shape: [40000, 3] }),
          cuda: T.tensor(f, { shape: [40000, 3], device: 'cuda' }),
        };
        const c = T.maxWithIndices(tall.cuda, 0);
        const p = T.maxWithIndices(tall.cpu, 0);
        notes.add(compare('tall max', c.values, p.values));
        notes.add(compare('tall argmax (ties, NaN)', c.indices, p.indices));
        return notes.toString();
      }),
  },
  {
    name: 'max / argmax of i32',
    run: () =>
      scoped(() => {
        const a = randint([50, 700], -3, 3);
        const notes = new Notes();
        notes.add(compare('i32 max', T.max(a.cuda, 1), T.max(a.cpu, 1)));
        notes.add(compare('i32 argmax', T.argmax(a.cuda, 0), T.argmax(a.cpu, 0)));
        return notes.toString();
      }),
  },
  {
    name: 'sum_squares f32 and bf16 [5000003] and an unaligned view of it (gradient norms): against the CPU in f32',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const dt of ['f32', 'bf16'] as const) {
          const x = randn([5000003], dt);
          notes.add(
            compare(`sum_squares ${dt}`, T.sumSquares(x.cuda), T.sumSquares(x.cpu), { atol: 0, rtol: 1e-5 }),
          );
          // one element in: not 16-byte aligned, so the element-by-element loop
          const view = (t: T.Tensor) => t.slice([1, 5000003]);
          notes.add(
            compare(
              `sum_squares ${dt} (unaligned view)`,
              T.sumSquares(view(x.cuda)),
              T.sumSquares(view(x.cpu)),
              {
                atol: 0,
                rtol: 1e-5,
              },
            ),
          );
        }
        return notes.toString();
      }),
  },
  {
    name: 'sum_squares_many over 300 f32 and bf16 tensors (empty, 1, 2049, 3M elements; chunks of 256): equals the loop of sum_squares and add exactly, and the CPU',
    run: () =>
      scoped(() => {
        const sizes = Array.from({ length: 300 }, (_, i) =>
          i === 7 ? 0 : i === 11 ? 3_000_001 : i % 3 === 0 ? 2049 : 1 + ((i * 37) % 500),
        );
        const xs = sizes.map((n, i) => randn([n], i % 2 === 0 ? 'bf16' : 'f32'));
        const many = T.runKernel(
          'sum_squares_many',
          'cuda',
          xs.map((x) => x.cuda),
          {},
        )[0]!;
        let loop = T.sumSquares(xs[0]!.cuda);
        for (const x of xs.slice(1)) loop = T.add(loop, T.sumSquares(x.cuda));
        let cpu = T.sumSquares(xs[0]!.cpu);
        for (const x of xs.slice(1)) cpu = T.add(cpu, T.sumSquares(x.cpu));
        const notes = new Notes();
        notes.add(compare('many vs loop (cuda)', many, loop, { atol: 0, rtol: 0 }));
        notes.add(compare('many vs cpu', many, cpu, { atol: 0, rtol: 1e-5 }));
        return notes.toString();
      }),
  },
];
