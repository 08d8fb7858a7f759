// cuda matmul through cuBLAS (cublasGemmStridedBatchedEx, f32 accumulate): batched over broadcast
// batch axes, with transposed operands read through strides as the CPU kernel does. Row-major
// C = A B is computed as column-major C^T = B^T A^T, so B goes first. Batch axes that do not merge
// into one strided batch become several calls. Mirrors cpu/matmul.ts. Test: tests/matmul.test.ts.
import { allocate, broadcastShapes, itemSize, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native, valueBits } from '../backend.js';
import { mergeAxes } from '../layout.js';
import { copyInto } from './layout.js';

const INT_MAX = 2 ** 31 - 1;

/** How cuBLAS can read a matrix operand: as stored, or transposed, with its leading dimension. */
function matrixLayout(t: Tensor): { trans: boolean; ld: number } | null {
  const r = t.rank;
  const [rows, cols] = [t.shape[r - 2]!, t.shape[r - 1]!];
  const [rs, cs] = [t.strides[r - 2]!, t.strides[r - 1]!];
  let layout: { trans: boolean; ld: number } | null = null;
  if (cs === 1 || cols === 1) layout = { trans: false, ld: rows === 1 ? Math.max(cols, 1) : rs };
  else if (rs === 1 || rows === 1) layout = { trans: true, ld: cols === 1 ? Math.max(rows, 1) : cs };
  if (!layout) return null;
  const need = Math.max(1, layout.trans ? rows : cols);
  return layout.ld >= need && layout.ld <= INT_MAX ? layout : null;
}

function dense(t: Tensor, temps: Tensor[]): Tensor {
  const out = allocate(t.shape, t.dtype, t.device);
  copyInto(out, t);
  temps.push(out);
  return out;
}

registerKernel(
  'matmul',
  'cuda',
  (inputs) => {
    let [a, b] = inputs as [Tensor, Tensor];
    if (a.dtype !== b.dtype || (a.dtype !== 'f32' && a.dtype !== 'bf16'))
      throw new TypeError(
        `matmul (cuda): needs two f32 or two bf16 operands, got ${a.describe()} and ${b.describe()}`,
      );
    const temps: Tensor[] = [];
    try {
      let la = matrixLayout(a);
      if (!la) la = matrixLayout((a = dense(a, temps)))!;
      let lb = matrixLayout(b);
      if (!lb) lb = matrixLayout((b = dense(b, temps)))!;
      const M = a.shape[a.rank - 2]!;
      const K = a.shape[a.rank - 1]!;
      const N = b.shape[b.rank - 1]!;
      const batch = broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2));
      const out = allocate([...batch, M, N], a.dtype, a.device);
      const d = dev(a);
      if (out.size === 0) return [out];
      if (K === 0) {
        native().fill(d, itemSize(out.dtype), addr(out), valueBits(out.dtype, 0), out.size);
        return [out];
      }
      if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
        throw new RangeError('matmul (cuda): a dimension is above 2^31 - 1');
      const batchStrides = (t: Tensor) => {
        const lead = batch.length - (t.rank - 2);
        return batch.map((s, i) => (i < lead || t.shape[i - lead] !== s ? 0 : t.strides[i - lead]!));
      };
      const outStrides = batch.map((_, i) => batch.slice(i + 1).reduce((acc, s) => acc * s, M * N));
      const merged = mergeAxes(batch, [outStrides, batchStrides(a), batchStrides(b)]);
      // The innermost merged batch axis goes to cuBLAS; any outer ones are looped here.
      const inner = merged.shape.length ? merged.shape[merged.shape.length - 1]! : 1;
      const innerStride = merged.strides.map((s) => (s.length ? s[s.length - 1]! : 0));
      const outerShape = merged.shape.slice(0, -1);
      const outerStrides = merged.strides.map((s) => s.slice(0, -1));
      const calls = outerShape.reduce((acc, s) => acc * s, 1);
      const size = itemSize(a.dtype);
      const index = outerShape.map(() => 0);
      for (let call = 0; call < calls; call++) {
        const off = outerStrides.map((s) => s.reduce((acc, st, i) => acc + st * index[i]!, 0));
        native().gemm(
          d,
          dtypeCode(a.dtype),
          lb.trans ? 1 : 0,
          la.trans ? 1 : 0,
          N,
          M,
          K,
          addr(b) + off[2]! * size,
          lb.ld,
          innerStride[2]!,
          addr(a) + off[1]! * size,
          la.ld,
          innerStride[1]!,
          addr(out) + off[0]! * size,
          N,
          innerStride[0]!,
          inner,
        );
        for (let i = index.length - 1; i >= 0 && ++index[i]! === outerShape[i]; i--) index[i] = 0;
      }
      return [out];
    } finally {
      for (const t of temps) t.dispose();
    }
  },
  { strided: true },
);
