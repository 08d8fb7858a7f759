// cuda matmul and linear through cuBLASLt (csrc/cublaslt.cpp; cublasGemmStridedBatchedEx where Lt
// has no plan or setGemmImplementation('cublas') says so), f32 accumulate: batched over broadcast
// batch axes, with transposed operands read through strides as the CPU kernel does. Row-major
// C = A B is computed as column-major C^T = B^T A^T, so B goes first. Batch axes that do not merge
// into one strided batch become several calls. linear fuses its bias into the GEMM (Lt's BIAS
// epilogue) and linear_weight_grad its bias gradient into the dw GEMM (BGRADB). Mirrors
// cpu/matmul.ts. Test: tests/matmul.test.ts.
import {
  allocate,
  broadcastShapes,
  itemSize,
  noGrad,
  registerKernel,
  runKernel,
  type Tensor,
} from '@grin-moe/tensor';
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
      if (a.rank === 2 && b.rank === 2) {
        // the common case (every linear layer): one GEMM, no batch bookkeeping on the host
        const out = allocate([M, N], a.dtype, a.device);
        if (out.size > 0 && K > 0) product(a, b, out, EPI_NONE, null);
        else if (out.size > 0)
          native().fill(dev(a), itemSize(out.dtype), addr(out), valueBits(out.dtype, 0), out.size);
        return [out];
      }
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

// ---- linear: y = x w^T (+ b) and its weight gradient, with cuBLASLt epilogues -----------------

const EPI_NONE = 0;
const EPI_BIAS = 1;
const EPI_BGRADB = 2;

/** x [..., K] as a [rows, K] matrix with unit column stride (a dense copy when it is not one). */
function rowsOf(x: Tensor, temps: Tensor[]): Tensor {
  const K = x.shape[x.rank - 1]!;
  if (x.isContiguous()) return x.rank === 2 ? x : track(x.reshape([-1, K]), temps);
  return track(dense(x, temps).reshape([-1, K]), temps);
}
function track(t: Tensor, temps: Tensor[]): Tensor {
  temps.push(t);
  return t;
}

/**
 * out [M, N] = a [M, K] b [K, N] for 2-D operands that cuBLAS can read (row-major product as the
 * column-major out^T = b^T a^T), with an epilogue on the column-major problem. Returns whether the
 * epilogue was applied (false: the library had no fused kernel and the caller must finish).
 */
function product(a: Tensor, b: Tensor, out: Tensor, epilogue: number, bias: Tensor | null): boolean {
  const la = matrixLayout(a)!;
  const lb = matrixLayout(b)!;
  const [M, K] = a.shape as [number, number];
  const N = b.shape[1]!;
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
    throw new RangeError('matmul (cuda): a dimension is above 2^31 - 1');
  const applied = native().gemm(
    dev(out),
    dtypeCode(out.dtype),
    lb.trans ? 1 : 0,
    la.trans ? 1 : 0,
    N,
    M,
    K,
    addr(b),
    lb.ld,
    0,
    addr(a),
    la.ld,
    0,
    addr(out),
    N,
    0,
    1,
    epilogue,
    bias ? addr(bias) : 0,
  );
  return applied === 1 || epilogue === EPI_NONE;
}

registerKernel('linear', 'cuda', (inputs, { hasBias }) => noGrad(() => linear(inputs, hasBias)), {
  strided: true,
});

function linear(inputs: Tensor[], hasBias: boolean): Tensor[] {
  const [x, w, b] = inputs as [Tensor, Tensor, Tensor | undefined];
  if (x.dtype !== 'f32' && x.dtype !== 'bf16')
    throw new TypeError(`linear (cuda): needs f32 or bf16 operands, got ${x.describe()}`);
  const temps: Tensor[] = [];
  try {
    const N = w.shape[0]!;
    const out = allocate([...x.shape.slice(0, -1), N], x.dtype, x.device);
    if (out.size === 0) return [out];
    const x2 = rowsOf(x, temps);
    const wT = track(matrixLayout(w) ? w.transpose() : dense(w, temps).transpose(), temps);
    const bias = hasBias ? (b!.isContiguous() ? b! : dense(b!, temps)) : null;
    if (x2.shape[1] === 0) {
      // an empty inner dimension: y is the bias (or 0), as the CPU kernel gives
      native().fill(dev(out), itemSize(out.dtype), addr(out), valueBits(out.dtype, 0), out.size);
      if (!bias) return [out];
      const [y] = runKernel('add', out.device, [out, bias], {});
      out.dispose();
      return [y!];
    }
    const out2 = track(out.reshape([-1, N]), temps);
    if (product(x2, wT, out2, bias ? EPI_BIAS : EPI_NONE, bias)) return [out];
    const [y] = runKernel('add', out.device, [out, bias!], {}); // no fused kernel for this call
    out.dispose();
    return [y!];
  } finally {
    for (const t of temps) t.dispose();
  }
}

registerKernel(
  'linear_weight_grad',
  'cuda',
  (inputs, { hasBias }) => noGrad(() => linearWeightGrad(inputs, hasBias)),
  { strided: true },
);

/** [dw, db?] of linear from its output gradient g and input x (views made here are not recorded). */
function linearWeightGrad(inputs: Tensor[], hasBias: boolean): Tensor[] {
  const [g, x] = inputs as [Tensor, Tensor];
  const temps: Tensor[] = [];
  try {
    const g2 = rowsOf(g, temps);
    const x2 = rowsOf(x, temps);
    const [N, K] = [g2.shape[1]!, x2.shape[1]!];
    const dw = allocate([N, K], g.dtype, g.device);
    const db = hasBias ? allocate([N], g.dtype, g.device) : null;
    if (g2.shape[0] === 0) {
      for (const t of db ? [dw, db] : [dw])
        native().fill(dev(t), itemSize(t.dtype), addr(t), valueBits(t.dtype, 0), t.size);
      return db ? [dw, db] : [dw];
    }
    if (dw.size === 0 && !db) return [dw];
    // dw [N, K] = g^T x; BGRADB sums op(B) = g over the GEMM's k (the rows), which is db
    const g2T = track(g2.transpose(), temps);
    if (dw.size > 0 && product(g2T, x2, dw, db ? EPI_BGRADB : EPI_NONE, db)) return db ? [dw, db] : [dw];
    db!.dispose(); // no fused kernel for this call (or no dw to fuse with)
    const [sum] = runKernel('sum', g.device, [g2], { axes: [0], keepdim: false });
    return [dw, sum!];
  } finally {
    for (const t of temps) t.dispose();
  }
}
