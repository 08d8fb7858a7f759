// CPU kernels for the neural-network ops: softmax / log-softmax (max-subtracted), layer norm and
// its backward (PyTorch's biased variance), rotate-half RoPE, fused cross-entropy and its backward.
// Sums accumulate in JS numbers (f64) whatever the storage dtype. Mirrors torch.nn.functional.
// Test: cd packages/tensor && npx vitest run src/ops/nn
import { registerKernel } from '../core/registry.js';
import { formatShape, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { broadcastStrides, dense, type FloatArray, raw, stridedOffsets } from './backend.js';

export function requireFloat(op: string, t: Tensor, name: string): void {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') {
    throw new TypeError(`${op} (cpu): ${name} must be f32 or f64, got ${t.describe()}`);
  }
}

/** A contiguous shape read as [outer, n, inner] around `axis`. */
export function aroundAxis(
  shape: readonly number[],
  axis: number,
): { outer: number; n: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return { outer, n: shape[axis]!, inner };
}

function softmaxKernel(log: boolean) {
  const op = log ? 'log_softmax' : 'softmax';
  return ([x]: Tensor[], { axis }: { axis: number }) => {
    requireFloat(op, x!, 'x');
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const src = dense<FloatArray>(x!);
    const dst = dense<FloatArray>(out);
    const { outer, n, inner } = aroundAxis(x!.shape, axis);
    const e = new Float64Array(n);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * n * inner + i;
        let m = -Infinity;
        for (let j = 0; j < n; j++) {
          const v = src[base + j * inner]!;
          if (v > m || Number.isNaN(v)) m = v;
        }
        // An all -inf row gives NaN (exp(-inf - -inf)), as in PyTorch.
        let s = 0;
        for (let j = 0; j < n; j++) s += e[j] = Math.exp(src[base + j * inner]! - m);
        if (log) {
          const lse = m + Math.log(s);
          for (let j = 0; j < n; j++) dst[base + j * inner] = src[base + j * inner]! - lse;
        } else {
          for (let j = 0; j < n; j++) dst[base + j * inner] = e[j]! / s;
        }
      }
    }
    return [out];
  };
}
registerKernel('softmax', 'cpu', softmaxKernel(false));
registerKernel('log_softmax', 'cpu', softmaxKernel(true));

/**
 * inputs [x, weight?, bias?] -> [y, mean, rstd]; mean/rstd have x's shape without the last axis.
 * weight and bias shapes and dtypes are checked by the op (ops/nn.ts layerNorm).
 */
registerKernel('layer_norm', 'cpu', (inputs, { eps, hasWeight, hasBias }) => {
  const x = inputs[0]!;
  const weight = hasWeight ? inputs[1] : undefined;
  const bias = hasBias ? inputs[hasWeight ? 2 : 1] : undefined;
  requireFloat('layer_norm', x, 'x');
  const d = x.shape[x.rank - 1]!;
  const rows = x.shape.slice(0, -1);
  const [y, mean, rstd] = [
    allocate(x.shape, x.dtype, x.device),
    allocate(rows, x.dtype, x.device),
    allocate(rows, x.dtype, x.device),
  ];
  const [src, dst, mu, rs] = [
    dense<FloatArray>(x),
    dense<FloatArray>(y),
    dense<FloatArray>(mean),
    dense<FloatArray>(rstd),
  ];
  const w = weight ? dense<FloatArray>(weight) : null;
  const b = bias ? dense<FloatArray>(bias) : null;
  for (let r = 0; r < mu.length; r++) {
    const base = r * d;
    let s = 0;
    for (let j = 0; j < d; j++) s += src[base + j]!;
    const m = s / d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (src[base + j]! - m) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    mu[r] = m;
    rs[r] = inv;
    for (let j = 0; j < d; j++) {
      const h = (src[base + j]! - m) * inv;
      dst[base + j] = (w ? h * w[j]! : h) + (b ? b[j]! : 0);
    }
  }
  return [y, mean, rstd];
});

/**
 * inputs [g, x, mean, rstd, weight?] -> [dx, dweight, dbias], with xhat = (x - mean) * rstd,
 * gh = g * weight: dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)); dweight = sum(g * xhat),
 * dbias = sum(g) over every leading position (both returned even when the op had no weight/bias).
 */
registerKernel('layer_norm_backward', 'cpu', (inputs, { hasWeight }) => {
  const [g, x, mean, rstd] = inputs as [Tensor, Tensor, Tensor, Tensor];
  requireFloat('layer_norm_backward', x, 'x');
  if (!shapesEqual(g.shape, x.shape))
    throw new RangeError(`layer_norm_backward: grad ${g.describe()} does not match x ${x.describe()}`);
  const d = x.shape[x.rank - 1]!;
  const dx = allocate(x.shape, x.dtype, x.device);
  const dweight = allocate([d], x.dtype, x.device);
  const dbias = allocate([d], x.dtype, x.device);
  const [gs, src, mu, rs, out] = [g, x, mean, rstd, dx].map((t) => dense<FloatArray>(t)) as FloatArray[];
  const w = hasWeight ? dense<FloatArray>(inputs[4]!) : null;
  const [dw, db] = [new Float64Array(d), new Float64Array(d)];
  for (let r = 0; r < mu!.length; r++) {
    const base = r * d;
    const [m, inv] = [mu![r]!, rs![r]!];
    let sumGh = 0;
    let sumGhXhat = 0;
    for (let j = 0; j < d; j++) {
      const gv = gs![base + j]!;
      const xhat = (src![base + j]! - m) * inv;
      const gh = w ? gv * w[j]! : gv;
      sumGh += gh;
      sumGhXhat += gh * xhat;
      dw[j] += gv * xhat;
      db[j] += gv;
    }
    const [meanGh, meanGhXhat] = [sumGh / d, sumGhXhat / d];
    for (let j = 0; j < d; j++) {
      const xhat = (src![base + j]! - m) * inv;
      const gh = w ? gs![base + j]! * w[j]! : gs![base + j]!;
      out![base + j] = inv * (gh - meanGh - xhat * meanGhXhat);
    }
  }
  dense<FloatArray>(dweight).set(dw);
  dense<FloatArray>(dbias).set(db);
  return [dx, dweight, dbias];
});

/**
 * y = x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x[h:], x[:h]) (h = D/2); with
 * transpose (the backward): y = x * cos + R^T(x * sin), R^T(u) = cat(u[h:], -u[:h]).
 * cos and sin broadcast to x; every input is read through its strides.
 */
registerKernel(
  'rope',
  'cpu',
  ([x, cos, sin], { transpose }) => {
    requireFloat('rope', x!, 'x');
    const d = x!.shape[x!.rank - 1]!;
    const h = d / 2;
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const dst = dense<FloatArray>(out);
    const [xs, cs, ss] = [raw<FloatArray>(x!), raw<FloatArray>(cos!), raw<FloatArray>(sin!)];
    // Offsets of each row start (all axes but the last), then a tight loop along the row.
    const outer = x!.shape.slice(0, -1);
    const cStrides = broadcastStrides(cos!, x!.shape);
    const sStrides = broadcastStrides(sin!, x!.shape);
    const xo = stridedOffsets(outer, x!.strides.slice(0, -1), x!.offset);
    const co = stridedOffsets(outer, cStrides.slice(0, -1), cos!.offset);
    const so = stridedOffsets(outer, sStrides.slice(0, -1), sin!.offset);
    const [xi, ci, si] = [
      x!.strides[x!.rank - 1]!,
      cStrides[cStrides.length - 1]!,
      sStrides[sStrides.length - 1]!,
    ];
    const sign = transpose ? -1 : 1;
    for (let r = 0, base = 0; r < xo.length; r++, base += d) {
      const x0 = xo[r]!;
      const c0 = co[r]!;
      const s0 = so[r]!;
      for (let j = 0; j < h; j++) {
        const xa = xs[x0 + j * xi]!;
        const xb = xs[x0 + (j + h) * xi]!;
        const ca = cs[c0 + j * ci]!;
        const cb = cs[c0 + (j + h) * ci]!;
        // forward: sin at the output's own position; transpose: sin at the input's position
        const sa = ss[s0 + (transpose ? j + h : j) * si]!;
        const sb = ss[s0 + (transpose ? j : j + h) * si]!;
        dst[base + j] = xa * ca - sign * xb * sa;
        dst[base + j + h] = xb * cb + sign * xa * sb;
      }
    }
    return [out];
  },
  { strided: true },
);

type Reduction = 'mean' | 'sum' | 'none';

/** Checks target i and says whether it counts (false for ignoreIndex). */
function targetCounts(op: string, t: number, i: number, v: number, ignoreIndex: number): boolean {
  if (t === ignoreIndex) return false;
  if (t < 0 || t >= v) {
    throw new RangeError(
      `${op}: target ${t} at position ${i} is out of range for ${v} classes (valid 0..${v - 1}, or ignoreIndex ${ignoreIndex})`,
    );
  }
  return true;
}

/** Row i's log-sum-exp, max-subtracted. */
function logSumExp(x: FloatArray, base: number, v: number): number {
  let m = -Infinity;
  for (let j = 0; j < v; j++) if (x[base + j]! > m || Number.isNaN(x[base + j]!)) m = x[base + j]!;
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let j = 0; j < v; j++) s += Math.exp(x[base + j]! - m);
  return m + Math.log(s);
}

/** -log softmax(logits)[target] per row; 'mean' divides by the counted rows (0 rows -> 0/0 = NaN). */
registerKernel('cross_entropy', 'cpu', ([logits, targets], { ignoreIndex, reduction }) => {
  requireFloat('cross_entropy', logits!, 'logits'); // shapes, targets' dtype: checked by the op (ops/nn.ts)
  const [n, v] = logits!.shape as [number, number];
  const x = dense<FloatArray>(logits!);
  const t = dense<Int32Array>(targets!);
  const out = allocate(reduction === 'none' ? [n] : [], logits!.dtype, logits!.device);
  const dst = dense<FloatArray>(out);
  let total = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    let loss = 0;
    if (targetCounts('cross_entropy', t[i]!, i, v, ignoreIndex)) {
      loss = logSumExp(x, i * v, v) - x[i * v + t[i]!]!;
      count++;
    }
    if (reduction === 'none') dst[i] = loss;
    total += loss;
  }
  if (reduction !== 'none') dst[0] = reduction === 'sum' ? total : total / count;
  return [out];
});

/** inputs [g, logits, targets] -> [dlogits]: (softmax - onehot) * g (/ count for 'mean'). */
registerKernel('cross_entropy_backward', 'cpu', ([g, logits, targets], { ignoreIndex, reduction }) => {
  requireFloat('cross_entropy_backward', logits!, 'logits');
  const [n, v] = logits!.shape as [number, number];
  const want = reduction === 'none' ? [n] : [];
  if (!shapesEqual(g!.shape, want)) {
    throw new RangeError(
      `cross_entropy_backward: grad ${g!.describe()} must be ${formatShape(want)} for reduction '${reduction}'`,
    );
  }
  const [x, gs] = [dense<FloatArray>(logits!), dense<FloatArray>(g!)];
  const t = dense<Int32Array>(targets!);
  const out = allocate(logits!.shape, logits!.dtype, logits!.device);
  const dst = dense<FloatArray>(out);
  let count = 0;
  for (let i = 0; i < n; i++) if (targetCounts('cross_entropy_backward', t[i]!, i, v, ignoreIndex)) count++;
  for (let i = 0; i < n; i++) {
    const base = i * v;
    if (t[i] === ignoreIndex) {
      dst.fill(0, base, base + v);
      continue;
    }
    const scale = reduction === 'none' ? gs[i]! : reduction === 'sum' ? gs[0]! : gs[0]! / count;
    const lse = logSumExp(x, base, v);
    for (let j = 0; j < v; j++) dst[base + j] = (Math.exp(x[base + j]! - lse) - (j === t[i] ? 1 : 0)) * scale;
  }
  return [out];
});

export type { Reduction };
