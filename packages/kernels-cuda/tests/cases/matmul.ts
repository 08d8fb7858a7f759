// GPU-vs-CPU checks for matmul and linear through cuBLASLt and through cuBLAS: odd and large
// shapes, transposed operands read via strides, batched and broadcast batches (including batch axes
// that do not merge into one strided call), K = 0 and empty outputs, in f32 and bf16 (f32
// accumulate); linear's fused bias / bias-gradient epilogues and the unfused fallback.
import * as T from '@grin-moe/tensor';
import { type GemmImplementation, gemmInfo, setGemmImplementation, setGemmTuning } from '../../src/index.js';
import { type Case, compare, DTYPES, type Dt, Notes, randn, scoped } from './harness.js';
import { forwardBackward } from './nn.js';

/** [a shape, b shape, transpose a?, transpose b?] */
export type MatmulShapes = Array<[number[], number[], boolean, boolean]>;

const TABLE: MatmulShapes = [
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
  // router-gate shapes (x w^T, N <= 32)
  [[1000, 256], [256, 16], false, true],
  [[65, 128], [128, 8], false, true],
  [[129, 96], [96, 31], false, true],
  [[33, 4096], [4096, 16], false, true],
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

/** matmul on cuda vs cpu for each shape of `table` (random inputs, tolerances scaled by sqrt(K)). */
export function matmulChecks(table: MatmulShapes, dtype: Dt, notes: Notes): void {
  const view = (t: T.Tensor, trans: boolean) => (trans ? t.transpose() : t);
  for (const [sa, sb, ta, tb] of table) {
    const a = randn(stored(sa, ta), dtype);
    const b = randn(stored(sb, tb), dtype);
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
}

const IMPLS: GemmImplementation[] = ['cublasLt', 'cublas'];

/** Runs fn with matmul on `impl`, then back on the default (cuBLASLt). */
function using<R>(impl: GemmImplementation, fn: () => R): R {
  setGemmImplementation(impl);
  try {
    return fn();
  } finally {
    setGemmImplementation('cublasLt');
  }
}

/** [x shape, out features, bias, x transposed (last two axes), weight stored transposed] */
const LINEAR: Array<[number[], number, boolean, boolean, boolean]> = [
  [[8, 16], 24, true, false, false],
  [[2, 5, 32], 48, true, false, false],
  [[2, 5, 32], 48, false, false, false],
  [[300, 64], 16, false, false, false], // router gate
  [[40, 24], 32, true, true, false], // x read through a transpose (dense copy)
  [[33, 40], 17, true, false, true], // weight stored [in, out]
  [[7, 5], 3, true, false, false], // 10-byte bf16 rows: unaligned for the vector kernels
  [[1, 128], 256, true, false, false],
  [[70, 128], 20, true, false, false], // a gate-sized layer with a bias
];

export const cases: Case[] = [
  ...IMPLS.flatMap((impl) =>
    DTYPES.map((dtype) => ({
      name: `linear ${dtype} through ${impl}: forward and gradients vs cpu (${LINEAR.length} shapes, bias epilogues)`,
      run: () =>
        scoped(() =>
          using(impl, () => {
            const notes = new Notes();
            const before = gemmInfo();
            for (const [xs, out, hasBias, xT, wT] of LINEAR) {
              const k = xs[xs.length - 1]!;
              const x = randn(stored(xs, xT), dtype);
              const w = randn(wT ? [k, out] : [out, k], dtype, 0.5);
              const b = randn([out], dtype);
              const view = (t: T.Tensor, trans: boolean) => (trans ? t.transpose() : t);
              const tol =
                dtype === 'f32'
                  ? { atol: 2e-5 * Math.sqrt(k), rtol: 1e-4 }
                  : { atol: (2e-2 * Math.sqrt(k)) / 4, rtol: 1.6e-2 };
              notes.add(
                forwardBackward(
                  `linear [${xs}]${xT ? 'T' : ''} -> ${out}${hasBias ? ' + b' : ''}${wT ? ' (w^T stored)' : ''}`,
                  hasBias ? [x, w, b] : [x, w],
                  (xi, wi, bi) => T.linear(view(xi!, xT), view(wi!, wT), bi),
                  dtype,
                  dtype === 'bf16'
                    ? { atol: Math.max(0.1, tol.atol * 4), rtol: 2e-2 }
                    : { atol: 1e-4 * Math.sqrt(k), rtol: 1e-4 },
                ),
              );
            }
            const after = gemmInfo();
            // every GEMM went to the library asked for (Lt may hand a call to cuBLAS when it has no
            // plan); Lt fused biases and bias gradients, cuBLAS never does
            const lt = after.ltCalls - before.ltCalls;
            const cublas = after.cublasCalls - before.cublasCalls;
            const fused = after.fusedEpilogues - before.fusedEpilogues;
            if (lt + cublas !== 3 * LINEAR.length)
              throw new Error(
                `${lt + cublas} GEMMs for ${LINEAR.length} linear forward + backward passes (want 3 each)`,
              );
            if (impl === 'cublas' && (lt !== 0 || fused !== 0))
              throw new Error(`cublas chosen, yet cuBLASLt ran ${lt} GEMMs (${fused} fused)`);
            if (impl === 'cublasLt' && (lt === 0 || fused === 0))
              throw new Error(`cuBLASLt ran ${lt} of ${lt + cublas} GEMMs and fused ${fused} epilogues`);
            return `${notes}; GEMMs: ${lt} cuBLASLt (${fused} fused epilogues), ${cublas} cuBLAS`;
          }),
        ),
    })),
  ),
  ...IMPLS.flatMap((impl) =>
    DTYPES.map((dtype) => ({
      name: `matmul ${dtype} through ${impl} over ${TABLE.length} shapes (transposes, batches, broadcasting, rank-1 products)`,
      run: () =>
        scoped(() =>
          using(impl, () => {
            const notes = new Notes();
            matmulChecks(TABLE, dtype, notes);
            return notes.toString();
          }),
        ),
    })),
  ),
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
  ...DTYPES.map((dtype) => ({
    name: `GEMM tuning 'all' (${dtype}): every matmul shape, linear forward + backward and a 1024 x 4096 x 2048 product match the cpu, and plans were timed`,
    run: () =>
      scoped(() => {
        setGemmTuning('all');
        try {
          const notes = new Notes();
          const before = gemmInfo().tunedPlans;
          matmulChecks(TABLE, dtype, notes);
          const a = randn([1024, 4096], dtype);
          const b = randn([4096, 2048], dtype);
          // timed twice over (tuning, then the kept algorithm) on the same output
          for (const pass of ['first call', 'second call'])
            notes.add(
              compare(
                `large, ${pass}`,
                T.matmul(a.cuda, b.cuda),
                T.matmul(a.cpu, b.cpu),
                dtype === 'f32' ? { atol: 3e-3, rtol: 1e-4 } : { atol: 0.4, rtol: 1.6e-2 },
              ),
            );
          for (const [xs, out, hasBias] of LINEAR.slice(0, 4)) {
            const k = xs[xs.length - 1]!;
            notes.add(
              forwardBackward(
                `linear [${xs}] -> ${out}${hasBias ? ' + b' : ''}`,
                hasBias
                  ? [randn(xs, dtype), randn([out, k], dtype, 0.5), randn([out], dtype)]
                  : [randn(xs, dtype), randn([out, k], dtype, 0.5)],
                (xi, wi, bi) => T.linear(xi!, wi!, bi),
                dtype,
                dtype === 'bf16' ? { atol: 0.1, rtol: 2e-2 } : { atol: 1e-4 * Math.sqrt(k), rtol: 1e-4 },
              ),
            );
          }
          const info = gemmInfo();
          if (info.tuning !== 'all')
            throw new Error(`gemmInfo says tuning is '${info.tuning}' after setGemmTuning('all')`);
          const tuned = info.tunedPlans - before;
          // the large product has several candidate algorithms on any Hopper cuBLASLt
          if (tuned < 1) throw new Error('no cuBLASLt plan was timed with tuning on');
          return `${notes}; ${tuned} plans timed`;
        } finally {
          setGemmTuning('grouped');
        }
      }),
  })),
  {
    name: 'the cuBLASLt plan cache stays bounded (4200 distinct row counts, as MoE experts produce)',
    run: () =>
      scoped(() => {
        const w = randn([8, 8]);
        const x = randn([4200, 8]);
        let last = '';
        for (let m = 1; m <= 4200; m++)
          T.tidy(() => {
            const y = T.matmul(x.cuda.slice([0, m]), w.cuda);
            if (m % 1000 === 0 || m === 4200)
              last = compare(`rows ${m}`, y, T.matmul(x.cpu.slice([0, m]), w.cpu), {
                atol: 1e-5,
                rtol: 1e-5,
              });
          });
        const { plans } = gemmInfo();
        if (plans > 4096) throw new Error(`${plans} cuBLASLt plans cached (bound 4096)`);
        return `${last}; ${plans} plans cached`;
      }),
  },
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
