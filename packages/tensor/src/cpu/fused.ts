// Fused CPU kernels for the hot paths of training: the attention softmax (scale, causal and
// sliding-window mask, softmax in one pass, and its backward in one pass) and the SiLU gradient.
// Each replaces a chain of elementwise ops that would otherwise stream [B,H,S,S] several times.
// Test: cd packages/tensor && npx vitest run src/ops
import { registerKernel } from '../core/registry.js';
import { allocate } from '../ops/dispatch.js';
import { dense, type FloatArray } from './backend.js';
import { requireNumeric } from './elementwise.js';

/** Keys [lo, hi] that query row i (of S, against Skv keys, queries last) may attend to. */
export function visibleKeys(
  i: number,
  S: number,
  Skv: number,
  causal: boolean,
  window: number,
): [number, number] {
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

/**
 * Fused attention, the numerics reference for every backend: per (batch, head, query) a loop over
 * the visible keys in f64. Head h reads key/value head floor(h / (H / Hkv)). Outputs the attention
 * [B,H,S,Dv] and the row log-sum-exp of the scaled scores [B,H,S] (-inf and a NaN row when a query
 * sees no key, as softmax over all -inf).
 */
registerKernel('sdpa', 'cpu', ([q, k, v], { scale, window, causal }) => {
  requireNumeric('sdpa', q!, k!, v!);
  const [B, H, S, D] = q!.shape as [number, number, number, number];
  const [, Hkv, Skv] = k!.shape as [number, number, number];
  const Dv = v!.shape[3]!;
  const group = H / Hkv;
  const out = allocate([B, H, S, Dv], q!.dtype, q!.device);
  const lse = allocate([B, H, S], q!.dtype === 'f64' ? 'f64' : 'f32', q!.device);
  const [qs, ks, vs] = [dense<FloatArray>(q!), dense<FloatArray>(k!), dense<FloatArray>(v!)];
  const [os, ls] = [dense<FloatArray>(out), dense<FloatArray>(lse)];
  const scores = new Float64Array(Skv);
  const acc = new Float64Array(Dv);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * Skv;
      for (let i = 0; i < S; i++) {
        const row = (b * H + h) * S + i;
        const [lo, hi] = visibleKeys(i, S, Skv, causal, window);
        if (hi < lo) {
          ls[row] = Number.NEGATIVE_INFINITY;
          os.fill(Number.NaN, row * Dv, (row + 1) * Dv);
          continue;
        }
        let max = Number.NEGATIVE_INFINITY;
        for (let j = lo; j <= hi; j++) {
          let dot = 0;
          for (let e = 0; e < D; e++) dot += qs[row * D + e]! * ks[(kvBase + j) * D + e]!;
          scores[j] = dot * scale;
          max = Math.max(max, scores[j]!);
        }
        let sum = 0;
        acc.fill(0);
        for (let j = lo; j <= hi; j++) {
          const p = Math.exp(scores[j]! - max);
          sum += p;
          for (let e = 0; e < Dv; e++) acc[e]! += p * vs[(kvBase + j) * Dv + e]!;
        }
        for (let e = 0; e < Dv; e++) os[row * Dv + e] = acc[e]! / sum;
        ls[row] = max + Math.log(sum);
      }
    }
  }
  return [out, lse];
});

/**
 * Gradient of sdpa from [q, k, v, out, lse, dOut]: p = exp(scale q.k - lse), dv += p dOut,
 * ds = p (dOut.v - dOut.out), dq += scale ds k, dk += scale ds q (summed over the heads of a group).
 */
registerKernel('sdpa_backward', 'cpu', ([q, k, v, o, lse, g], { scale, window, causal }) => {
  requireNumeric('sdpa_backward', q!, k!, v!, o!, g!);
  const [B, H, S, D] = q!.shape as [number, number, number, number];
  const [, Hkv, Skv] = k!.shape as [number, number, number];
  const Dv = v!.shape[3]!;
  const group = H / Hkv;
  const grads = [q!, k!, v!].map((t) => allocate(t.shape, t.dtype, t.device));
  const [qs, ks, vs, os, ls, gs] = [q, k, v, o, lse, g].map((t) => dense<FloatArray>(t!));
  const dq = new Float64Array(q!.size);
  const dk = new Float64Array(k!.size);
  const dv = new Float64Array(v!.size);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * Skv;
      for (let i = 0; i < S; i++) {
        const row = (b * H + h) * S + i;
        const [lo, hi] = visibleKeys(i, S, Skv, causal, window);
        const rowLse = ls![row]!;
        if (hi < lo || rowLse === Number.NEGATIVE_INFINITY) continue;
        let delta = 0; // dOut . out = sum_j p_j (dOut . v_j)
        for (let e = 0; e < Dv; e++) delta += gs![row * Dv + e]! * os![row * Dv + e]!;
        for (let j = lo; j <= hi; j++) {
          const kv = kvBase + j;
          let dot = 0;
          for (let e = 0; e < D; e++) dot += qs![row * D + e]! * ks![kv * D + e]!;
          const p = Math.exp(dot * scale - rowLse);
          let dp = 0;
          for (let e = 0; e < Dv; e++) {
            dv[kv * Dv + e]! += p * gs![row * Dv + e]!;
            dp += gs![row * Dv + e]! * vs![kv * Dv + e]!;
          }
          const ds = p * (dp - delta) * scale;
          for (let e = 0; e < D; e++) {
            dq[row * D + e]! += ds * ks![kv * D + e]!;
            dk[kv * D + e]! += ds * qs![row * D + e]!;
          }
        }
      }
    }
  }
  dense<FloatArray>(grads[0]!).set(dq);
  dense<FloatArray>(grads[1]!).set(dk);
  dense<FloatArray>(grads[2]!).set(dv);
  return grads;
});
