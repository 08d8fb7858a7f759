// Fused CPU kernels for the hot paths of training: the attention softmax (scale, causal and
// sliding-window mask, softmax in one pass, and its backward in one pass) and the SiLU gradient.
// Each replaces a chain of elementwise ops that would otherwise stream [B,H,S,S] several times.
import { registerKernel } from '../core/registry.js';
import { allocate } from '../ops/dispatch.js';
import { type FloatArray, dense } from './backend.js';
import { requireNumeric } from './elementwise.js';

/** Keys [lo, hi] that query row i (of S, against Skv keys, queries last) may attend to. */
export function visibleKeys(i: number, S: number, Skv: number, causal: boolean, window: number): [number, number] {
  const q = i + (Skv - S);
  const hi = causal ? Math.min(q, Skv - 1) : Skv - 1;
  const lo = window > 0 ? Math.max(0, q - window + 1) : 0;
  return [lo, hi];
}

registerKernel('attention_softmax', 'cpu', ([x], { scale, causal, window }) => {
  requireNumeric('attention_softmax', x!);
  const Skv = x!.shape[x!.rank - 1]!;
  const S = x!.shape[x!.rank - 2]!;
  const out = allocate(x!.shape, x!.dtype, x!.device);
  const src = dense<FloatArray>(x!);
  const dst = dense<FloatArray>(out);
  const rows = x!.size / Skv;
  for (let r = 0; r < rows; r++) {
    const base = r * Skv;
    const [lo, hi] = visibleKeys(r % S, S, Skv, causal, window);
    dst.fill(0, base, base + Skv);
    if (hi < lo) {
      dst.fill(Number.NaN, base, base + Skv); // every key masked: 0/0, as softmax of all -inf
      continue;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let k = lo; k <= hi; k++) max = Math.max(max, src[base + k]! * scale);
    let sum = 0;
    for (let k = lo; k <= hi; k++) {
      const e = Math.exp(src[base + k]! * scale - max);
      dst[base + k] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let k = lo; k <= hi; k++) dst[base + k]! *= inv;
  }
  return [out];
});

registerKernel('attention_softmax_backward', 'cpu', ([y, g], { scale }) => {
  const Skv = y!.shape[y!.rank - 1]!;
  const out = allocate(y!.shape, y!.dtype, y!.device);
  const ys = dense<FloatArray>(y!);
  const gs = dense<FloatArray>(g!);
  const dst = dense<FloatArray>(out);
  for (let base = 0; base < ys.length; base += Skv) {
    let dot = 0;
    for (let k = 0; k < Skv; k++) dot += ys[base + k]! * gs[base + k]!;
    for (let k = 0; k < Skv; k++) dst[base + k] = scale * ys[base + k]! * (gs[base + k]! - dot);
  }
  return [out];
});

registerKernel('silu_backward', 'cpu', ([x, g]) => {
  requireNumeric('silu_backward', x!, g!);
  const out = allocate(x!.shape, x!.dtype, x!.device);
  const xs = dense<FloatArray>(x!);
  const gs = dense<FloatArray>(g!);
  const dst = dense<FloatArray>(out);
  for (let i = 0; i < dst.length; i++) {
    const v = xs[i]!;
    const s = 1 / (1 + Math.exp(-v));
    dst[i] = gs[i]! * s * (1 + v * (1 - s));
  }
  return [out];
});
