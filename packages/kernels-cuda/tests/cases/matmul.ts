// GPU-vs-CPU checks for matmul through cuBLAS: odd and large shapes, transposed operands read via
// strides, batched and broadcast batches (including batch axes that do not merge into one
// strided call), K = 0 and empty outputs, in f32 and bf16 (f32 accumulate).
import * as T from '@grin-moe/tensor';
import { type Case, compare, DTYPES, Notes, randn, scoped } from './harness.js';

/** [a shape, b shape, transpose a?, transpose b?] */
const TABLE: Array<[number[], number[], boolean, boolean]> = [
  [[1, 1], [1, 1], false, false],
  [[7, 5], [5, 3], false, false],
  [[33, 65], [65, 17], false, false],
  [[64, 128], [128, 256], true, false],
  [[64, 128], [128, 256], false, true],
  [[65, 31], [31, 129], true, true],
  [[1, 300], [300, 1], false, false],
  [[4, 8, 16], [4, 16, 8], false, false],
  [[4, 8, 16], [16, 8], false, false],
  [[2, 1, 9, 10], [3, 10, 11], false, true],
  [[5, 3, 12, 7], [5, 1, 7, 6], true, false],
  [[8, 1], [1, 6], false, false],
  [[8, 0 + 3], [3, 1], false, false],
  // router-gate shapes (x w^T, N <= 32): the skinny kernel, vector (K % 8 == 0) and scalar paths
  [[300, 64], [64, 16], false, true],
  [[37, 100], [100, 5], false, true],
  [[1, 40, 24], [24, 32], false, true],
  [[50, 48], [48, 33], false, true],
];

/** The shape to create so that .transpose() gives `shape`. */
function stored(shape: number[], trans: boolean): number[] {
  if (!trans || shape.length < 2) return shape;
  const s = [...shape];
  [s[s.length - 2], s[s.length - 1]] = [s[s.length - 1]!, s[s.length - 2]!];
  return s;
}

export const cases: Case[] = [
  ...DTYPES.map((dtype) => ({
    name: `matmul ${dtype} over ${TABLE.length} shapes (transposes, batches, broadcasting, rank-1 products)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        for (const [sa, sb, ta, tb] of TABLE) {
          const a = randn(stored(sa, ta), dtype);
          const b = randn(stored(sb, tb), dtype);
          const view = (t: T.Tensor, trans: boolean) => (trans ? t.transpose() : t);
          const k = sa[sa.length - 1]!;
          const tol =
            dtype === 'f32'
              ? { atol: 2e-5 * Math.sqrt(k), rtol: 1e-4 }
              : { atol: (2e-2 * Math.sqrt(k)) / 4, rtol: 1.6e-2 };
          notes.add(
            compare(
              `matmul [${sa}]${ta ? 'T' : ''} x [${sb}]${tb ? 'T' : ''}`,
              T.matmul(view(a.cuda, ta), view(b.cuda, tb)),
              T.matmul(view(a.cpu, ta), view(b.cpu, tb)),
              tol,
            ),
          );
        }
        return notes.toString();
      }),
  })),
  ...DTYPES.map((dtype) => ({
    name: `matmul ${dtype} 1024 x 2048 x 1536, and a batch whose axes do not merge (stepped slice)`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randn([1024, 2048], dtype);
        const b = randn([2048, 1536], dtype);
        const tol = dtype === 'f32' ? { atol: 2e-3, rtol: 1e-4 } : { atol: 0.3, rtol: 1.6e-2 };
        notes.add(compare('large', T.matmul(a.cuda, b.cuda), T.matmul(a.cpu, b.cpu), tol));
        const x = randn([6, 4, 10, 12], dtype);
        const y = randn([12, 5], dtype);
        const view = (t: T.Tensor) => t.slice([0, 6, 2], [1, 4]);
        notes.add(
          compare(
            'stepped batch',
            T.matmul(view(x.cuda), y.cuda),
            T.matmul(view(x.cpu), y.cpu),
            dtype === 'f32' ? undefined : { atol: 5e-2, rtol: 1.6e-2 },
          ),
        );
        return notes.toString();
      }),
  })),
  {
    name: 'matmul with K = 0 (zeros) and with an empty output',
    run: () =>
      scoped(() => {
        const notes = new Notes();
        notes.add(
          compare(
            'K=0',
            T.matmul(T.zeros([3, 0], { device: 'cuda' }), T.zeros([0, 4], { device: 'cuda' })),
            T.zeros([3, 4]),
          ),
        );
        notes.add(
          compare(
            'M=0',
            T.matmul(T.zeros([0, 5], { device: 'cuda' }), T.ones([5, 4], { device: 'cuda' })),
            T.zeros([0, 4]),
          ),
        );
        return notes.toString();
      }),
  },
  ...DTYPES.map((dtype) => ({
    name: `matmul gradients (autograd on cuda vs cpu) ${dtype}`,
    run: () =>
      scoped(() => {
        const notes = new Notes();
        const a = randn([3, 17, 24], dtype);
        const b = randn([24, 9], dtype);
        const g = randn([3, 17, 9], dtype);
        const [ac, bc] = [a.cuda.detach().setRequiresGrad(), b.cuda.detach().setRequiresGrad()];
        const [ap, bp] = [a.cpu.detach().setRequiresGrad(), b.cpu.detach().setRequiresGrad()];
        T.matmul(ac, bc).backward(g.cuda);
        T.matmul(ap, bp).backward(g.cpu);
        const tol = dtype === 'f32' ? { atol: 1e-4, rtol: 1e-4 } : { atol: 0.1, rtol: 1.6e-2 };
        notes.add(compare('grad a', ac.grad!, ap.grad!, tol));
        notes.add(compare('grad b', bc.grad!, bp.grad!, tol));
        return notes.toString();
      }),
  })),
];
