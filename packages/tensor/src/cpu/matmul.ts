// CPU matmul: batched GEMM over broadcast batch axes. f32 goes to the WebAssembly SIMD GEMM
// (cpu/gemm), f64 to the plain reference loop; both read transposed operands via strides.
// Test: cd packages/tensor && npx vitest run src/ops

import { noGrad } from '../autograd/mode.js';
import { registerKernel } from '../core/registry.js';
import { broadcastShapes } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate, runKernel } from '../ops/dispatch.js';
import { dense, type FloatArray, raw, stridedOffsets } from './backend.js';
import { requireNumeric } from './elementwise.js';
import { gemmRef } from './gemm/gemm-ref.js';
import { runProducts } from './gemm/gemm-run.js';

/** How a matrix operand is read: as is, or transposed, with its row stride. */
function matrixLayout(t: Tensor): { trans: boolean; ld: number } | null {
  const r = t.rank;
  const [rows, cols] = [t.shape[r - 2]!, t.shape[r - 1]!];
  const [rs, cs] = [t.strides[r - 2]!, t.strides[r - 1]!];
  if (cs === 1 || cols === 1) return { trans: false, ld: rows === 1 ? Math.max(cols, 1) : rs };
  if (rs === 1 || rows === 1) return { trans: true, ld: cols === 1 ? Math.max(rows, 1) : cs };
  return null;
}

registerKernel(
  'matmul',
  'cpu',
  (inputs) => {
    let [a, b] = inputs as [Tensor, Tensor];
    requireNumeric('matmul', a, b);
    const temps: Tensor[] = [];
    let la = matrixLayout(a);
    if (!la) {
      a = runKernel('contiguous', a.device, [a], {})[0]!;
      temps.push(a);
      la = matrixLayout(a)!;
    }
    let lb = matrixLayout(b);
    if (!lb) {
      b = runKernel('contiguous', b.device, [b], {})[0]!;
      temps.push(b);
      lb = matrixLayout(b)!;
    }
    const M = a.shape[a.rank - 2]!;
    const K = a.shape[a.rank - 1]!;
    const N = b.shape[b.rank - 1]!;
    const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
    const out = allocate([...batch, M, N], a.dtype, a.device);
    const batchOffsets = (t: Tensor) => {
      const lead = batch.length - (t.rank - 2);
      const strides = batch.map((d, i) => (i < lead || t.shape[i - lead] !== d ? 0 : t.strides[i - lead]!));
      return stridedOffsets(batch, strides, t.offset);
    };
    const ao = batchOffsets(a);
    const bo = batchOffsets(b);
    const C = dense<FloatArray>(out);
    const A = raw<FloatArray>(a);
    const B = raw<FloatArray>(b);
    if (C instanceof Float32Array) {
      // One dispatch for every product of the batch: small attention GEMMs share the workers.
      const products = Array.from(ao, (offA, i) => ({
        A: A as Float32Array,
        offA,
        B: B as Float32Array,
        offB: bo[i]!,
        C,
        offC: i * M * N,
      }));
      if (K === 0) C.fill(0);
      else if (M > 0 && N > 0)
        runProducts(
          { transA: la.trans, transB: lb.trans, M, N, K, alpha: 1, beta: 0, lda: la.ld, ldb: lb.ld, ldc: N },
          products,
        );
    } else {
      for (let i = 0; i < ao.length; i++)
        gemmRef(la.trans, lb.trans, M, N, K, 1, A, ao[i]!, la.ld, B, bo[i]!, lb.ld, 0, C, i * M * N, N);
    }
    for (const t of temps) t.dispose();
    return [out];
  },
  { strided: true },
);

// linear and its weight gradient as the matmul kernel plus an add / a row sum: the reference the
// fused backends (cuBLASLt epilogues) are tested against. Views made here are not recorded.
registerKernel('linear', 'cpu', (inputs, { hasBias }) =>
  noGrad(() => {
    const [x, w, b] = inputs as [Tensor, Tensor, Tensor | undefined];
    const wT = w.transpose(0, 1);
    const [y] = runKernel('matmul', x.device, [x, wT], {});
    wT.dispose();
    if (!hasBias) return [y!];
    const [out] = runKernel('add', x.device, [y!, b!], {});
    y!.dispose();
    return [out!];
  }),
);

registerKernel('linear_weight_grad', 'cpu', (inputs, { hasBias }) =>
  noGrad(() => {
    const [g, x] = inputs as [Tensor, Tensor];
    const g2 = g.reshape([-1, g.shape[g.rank - 1]!]);
    const x2 = x.reshape([-1, x.shape[x.rank - 1]!]);
    const g2T = g2.transpose();
    const [dw] = runKernel('matmul', g.device, [g2T, x2], {});
    const db = hasBias ? runKernel('sum', g.device, [g2], { axes: [0], keepdim: false }) : [];
    for (const t of [g2, x2, g2T]) t.dispose();
    return [dw!, ...db];
  }),
);
