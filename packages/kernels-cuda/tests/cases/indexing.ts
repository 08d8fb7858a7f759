// GPU-vs-CPU checks for the indexing ops with gradients: embedding (repeated ids), index_select /
// index_add over each axis (MoE dispatch / combine, duplicates accumulate), gather / scatter_add
// (torch semantics, src larger than index), in f32, bf16 and i32 where defined.
import * as T from '@grin-moe/tensor';
import { type Case, compare, DTYPES, type Dt, Notes, randint, randn, scoped } from './harness.js';

const GRAD_TOL = (dtype: Dt) => (dtype === 'f32' ? { atol: 1e-4, rtol: 1e-5 } : { atol: 3e-2, rtol: 1.6e-2 });

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `embedding ${dtype} with repeated ids, and its gradient (index_add)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const weight = randn([1000, 64], dtype);
        const ids = randint([8, 50], 0, 60);
        const wc = weight.cuda.detach().setRequiresGrad();
        const wp = weight.cpu.detach().setRequiresGrad();
        const yc = T.embedding(wc, ids.cuda);
        const yp = T.embedding(wp, ids.cpu);
        notes.add(compare('embedding', yc, yp));
        const g = randn([8, 50, 64], dtype);
        yc.backward(g.cuda);
        yp.backward(g.cpu);
        notes.add(compare('embedding grad', wc.grad!, wp.grad!, GRAD_TOL(dtype)));
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `indexSelect / indexAdd ${dtype} over each axis of [6,7,8] with duplicate indices, and gradients`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const axis of [0, 1, 2]) {
          const x = randn([6, 7, 8], dtype);
          const n = x.cpu.shape[axis]!;
          const index = randint([11], 0, n);
          const xc = x.cuda.detach().setRequiresGrad();
          const xp = x.cpu.detach().setRequiresGrad();
          const yc = T.indexSelect(xc, axis, index.cuda);
          const yp = T.indexSelect(xp, axis, index.cpu);
          notes.add(compare(`indexSelect axis ${axis}`, yc, yp));
          const g = randn([...yp.shape], dtype);
          yc.backward(g.cuda);
          yp.backward(g.cpu);
          notes.add(compare(`indexSelect grad axis ${axis}`, xc.grad!, xp.grad!, GRAD_TOL(dtype)));
          const src = randn([...yp.shape], dtype);
          notes.add(
            compare(
              `indexAdd axis ${axis}`,
              T.indexAdd(x.cuda, axis, index.cuda, src.cuda),
              T.indexAdd(x.cpu, axis, index.cpu, src.cpu),
              GRAD_TOL(dtype),
            ),
          );
        }
        return notes.toString();
      }),
  })),
  {
    name: 'MoE-sized combine: indexAdd of [16384, 1024] f32 rows into [8192, 1024] (every row hit twice)',
    run: () =>
      scoped(() => {
        const base = randn([8192, 1024]);
        const src = randn([16384, 1024]);
        const idx = Int32Array.from({ length: 16384 }, (_, i) => (i * 7919) % 8192);
        const index = { cpu: T.tensor(idx), cuda: T.tensor(idx, { device: 'cuda' }) };
        return compare(
          'moe combine',
          T.indexAdd(base.cuda, 0, index.cuda, src.cuda),
          T.indexAdd(base.cpu, 0, index.cpu, src.cpu),
          { atol: 1e-5, rtol: 1e-5 },
        );
      }),
  },
  {
    name: 'indexSelect / indexAdd / gather / scatterAdd on i32',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const x = randint([9, 10], -50, 50);
        const index = randint([13], 0, 9);
        notes.add(
          compare(
            'i32 indexSelect',
            T.indexSelect(x.cuda, 0, index.cuda),
            T.indexSelect(x.cpu, 0, index.cpu),
          ),
        );
        const src = randint([13, 10], -5, 5);
        notes.add(
          compare(
            'i32 indexAdd',
            T.indexAdd(x.cuda, 0, index.cuda, src.cuda),
            T.indexAdd(x.cpu, 0, index.cpu, src.cpu),
          ),
        );
        const gi = randint([9, 4], 0, 10);
        notes.add(compare('i32 gather', T.gather(x.cuda, 1, gi.cuda), T.gather(x.cpu, 1, gi.cpu)));
        const s2 = randint([9, 4], -5, 5);
        notes.add(
          compare(
            'i32 scatterAdd',
            T.scatterAdd(x.cuda, 1, gi.cuda, s2.cuda),
            T.scatterAdd(x.cpu, 1, gi.cpu, s2.cpu),
          ),
        );
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `gather / scatterAdd ${dtype} along each axis (index smaller than x, src larger than index), gradients`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const axis of [0, 1, 2]) {
          const x = randn([5, 6, 7], dtype);
          const shape = [4, 5, 6];
          shape[axis] = 9;
          const index = randint(shape, 0, x.cpu.shape[axis]!);
          const xc = x.cuda.detach().setRequiresGrad();
          const xp = x.cpu.detach().setRequiresGrad();
          const yc = T.gather(xc, axis, index.cuda);
          const yp = T.gather(xp, axis, index.cpu);
          notes.add(compare(`gather axis ${axis}`, yc, yp));
          const g = randn(shape, dtype);
          yc.backward(g.cuda);
          yp.backward(g.cpu);
          notes.add(compare(`gather grad axis ${axis}`, xc.grad!, xp.grad!, GRAD_TOL(dtype)));
          const srcShape = shape.map((d) => d + 1);
          const src = randn(srcShape, dtype);
          const base = randn([5, 6, 7], dtype);
          const sc = src.cuda.detach().setRequiresGrad();
          const sp = src.cpu.detach().setRequiresGrad();
          const zc = T.scatterAdd(base.cuda, axis, index.cuda, sc);
          const zp = T.scatterAdd(base.cpu, axis, index.cpu, sp);
          notes.add(compare(`scatterAdd axis ${axis}`, zc, zp, GRAD_TOL(dtype)));
          const h = randn([5, 6, 7], dtype);
          zc.backward(h.cuda);
          zp.backward(h.cpu);
          notes.add(compare(`scatterAdd src grad axis ${axis}`, sc.grad!, sp.grad!, GRAD_TOL(dtype)));
        }
        return notes.toString();
      }),
  })),
];
