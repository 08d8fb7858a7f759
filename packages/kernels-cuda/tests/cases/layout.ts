// GPU-vs-CPU checks for data movement: contiguous copies of views (transpose, stepped slices,
// expand), every cast pair, full, arange, concat, slice_scatter, addInPlace / copyInPlace into
// strided views, and the caching allocator (reuse, no leaks, async index errors at the next read).
import * as T from '@grin-moe/tensor';
import { expectNoLeaks } from '@grin-moe/tensor/testing';
import { cudaEmptyCache, cudaMemoryStats } from '../../src/index.js';
import { type Case, compare, DTYPES, Notes, pairFrom, randn, scoped } from './harness.js';

const ALL = ['f32', 'bf16', 'i32', 'bool'] as const;

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `contiguous of views ${dtype} (transpose, permute, stepped slice, expand, select)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const x = randn([6, 7, 8, 9], dtype);
        const views: Array<(t: T.Tensor) => T.Tensor> = [
          (t) => t.transpose(1, 3),
          (t) => t.permute([3, 1, 0, 2]),
          (t) => t.slice([1, 6, 2], null, [0, 8, 3]),
          (t) => t.select(2, 4).unsqueeze(1).expand([6, 5, 7, 9]),
          (t) => t.slice(null, null, null, [8, 9]).expand([6, 7, 8, 4]),
        ];
        for (const view of views)
          notes.add(compare('contiguous', T.contiguous(view(x.cuda)), T.contiguous(view(x.cpu))));
        notes.add(
          compare('reshape of transpose', x.cuda.transpose().reshape([-1]), x.cpu.transpose().reshape([-1])),
        );
        return notes.toString();
      }),
  })),
  {
    name: 'cast between f32, bf16, i32 and bool (NaN, inf, rounding, truncation, wrap)',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const special = [
          0,
          -0,
          1.5,
          -1.5,
          2.5,
          -2.7,
          1e10,
          -3e9,
          Number.NaN,
          Infinity,
          -Infinity,
          65504.7,
          1 / 3,
          255,
          256,
        ];
        const values = Float32Array.from({ length: 4000 }, (_, i) =>
          i < special.length ? special[i]! : (Math.sin(i) * 10 ** (i % 7)) / 3,
        );
        const base = pairFrom(values, [values.length]);
        for (const from of ALL) {
          const src = { cpu: T.cast(base.cpu, from), cuda: T.cast(base.cuda, from) };
          notes.add(compare(`cast to ${from}`, src.cuda, src.cpu, { atol: 0, rtol: 0 }));
          for (const to of ALL)
            notes.add(
              compare(`cast ${from} -> ${to}`, T.cast(src.cuda, to), T.cast(src.cpu, to), {
                atol: 0,
                rtol: 0,
              }),
            );
        }
        return notes.toString();
      }),
  },
  {
    name: 'full and arange for every dtype',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const dtype of ALL) {
          for (const value of [0, 1, -2.5, 3.7e9, Number.NaN, -Infinity]) {
            if (dtype !== 'f32' && dtype !== 'bf16' && !Number.isFinite(value)) continue;
            const c = T.full([3, 5], value, { dtype, device: 'cuda' });
            notes.add(
              compare(`full ${dtype} ${value}`, c, T.full([3, 5], value, { dtype }), { atol: 0, rtol: 0 }),
            );
          }
          if (dtype === 'bf16' || dtype === 'bool') continue;
          const a = T.arange(1000, { dtype, start: -7, step: dtype === 'i32' ? 3 : 0.25, device: 'cuda' });
          notes.add(
            compare(
              `arange ${dtype}`,
              a,
              T.arange(1000, { dtype, start: -7, step: dtype === 'i32' ? 3 : 0.25 }),
            ),
          );
        }
        notes.add(compare('empty full', T.zeros([0, 4], { device: 'cuda' }), T.zeros([0, 4])));
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `concat and slice_scatter ${dtype}`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const parts = [randn([3, 4, 5], dtype), randn([3, 2, 5], dtype), randn([3, 7, 5], dtype)];
        notes.add(
          compare(
            'concat axis 1',
            T.concat(
              parts.map((p) => p.cuda),
              1,
            ),
            T.concat(
              parts.map((p) => p.cpu),
              1,
            ),
          ),
        );
        const q = [randn([2, 6], dtype), randn([5, 6], dtype)];
        notes.add(
          compare(
            'concat axis 0 with a view',
            T.concat([q[0]!.cuda, q[1]!.cuda.slice([1, 4])]),
            T.concat([q[0]!.cpu, q[1]!.cpu.slice([1, 4])]),
          ),
        );
        const base = randn([8, 9, 10], dtype);
        const src = randn([3, 9, 4], dtype);
        notes.add(
          compare(
            'slice_scatter',
            T.sliceScatter(base.cuda, src.cuda, [2, 0, 1], [2, 1, 2]),
            T.sliceScatter(base.cpu, src.cpu, [2, 0, 1], [2, 1, 2]),
          ),
        );
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `addInPlace and copyInPlace into strided views ${dtype}`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const dst = randn([16, 12], dtype);
        const src = randn([12], dtype);
        T.noGrad(() => {
          const vc = dst.cuda.slice([2, 14, 3]);
          const vp = dst.cpu.slice([2, 14, 3]);
          T.addInPlace(vc, src.cuda, -0.5);
          T.addInPlace(vp, src.cpu, -0.5);
          const tc = dst.cuda.transpose().slice([0, 12, 2]);
          const tp = dst.cpu.transpose().slice([0, 12, 2]);
          const s2 = randn([6, 1], dtype);
          T.copyInPlace(tc, s2.cuda);
          T.copyInPlace(tp, s2.cpu);
        });
        notes.add(compare('in place', dst.cuda, dst.cpu));
        return notes.toString();
      }),
  })),
  {
    name: 'caching allocator: blocks are reused, scopes free everything, stats add up',
    run: () => {
      const before = cudaMemoryStats();
      expectNoLeaks(() => {
        for (let i = 0; i < 20; i++)
          T.tidy(() => T.sum(T.mul(T.add(T.ones([1000, 1000], { device: 'cuda' }), 1), 2)).item());
      });
      const after = cudaMemoryStats();
      if (after.inUseBytes !== before.inUseBytes)
        throw new Error(`bytes in use changed from ${before.inUseBytes} to ${after.inUseBytes}`);
      const mallocs = after.cudaMallocs - before.cudaMallocs;
      const reuses = after.reuses - before.reuses;
      if (mallocs > 10 || reuses < 50)
        throw new Error(`poor reuse: ${mallocs} cudaMallocs, ${reuses} reuses`);
      cudaEmptyCache();
      const emptied = cudaMemoryStats();
      if (emptied.cachedBytes !== 0) throw new Error(`emptyCache left ${emptied.cachedBytes} bytes cached`);
      return `20 iterations: ${mallocs} cudaMallocs, ${reuses} reuses; in use ${after.inUseBytes} B before and after`;
    },
  },
  {
    name: 'an out-of-range index is reported at the next read, naming the op and value',
    run: () =>
      scoped(() => {
        const weight = randn([10, 4]).cuda;
        const ids = T.tensor(new Int32Array([1, 12, 3]), { device: 'cuda' });
        const out = T.embedding(weight, ids); // enqueued: no throw here
        let message = '';
        try {
          out.toArray();
        } catch (error) {
          message = (error as Error).message;
        }
        if (!/embedding: id 12 at position 1 is out of range \(valid 0\.\.9\)/.test(message))
          throw new Error(`expected an embedding range error at the read, got: '${message}'`);
        // The slot is cleared: later reads work.
        const ok = T.add(weight, 1).toArray();
        if (ok.length !== 40) throw new Error('read after the error failed');
        return message.slice(0, 80);
      }),
  },
];
