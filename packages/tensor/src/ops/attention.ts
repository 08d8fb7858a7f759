// Scaled dot-product attention: the fused `sdpa` op (online softmax, no [S,Skv] scores on cuda;
// gradient recomputed from the row log-sum-exp) unless an explicit mask is given, then the composite
// (matmul, masked fill with -inf, softmax, matmul). Both with grouped KV heads (transformers' repeat_kv) and the causal sliding window of transformers'
// eager path for Phi-3.5-MoE. Shape legend: B batch, H query heads, Hkv key/value heads,
// S queries, Skv keys, D head dim. Test: cd packages/tensor && npx vitest run src/ops/attention
import { tidy } from '../core/memory.js';
import type { Tensor } from '../core/tensor.js';
import { tensor } from './creation.js';
import { runOp } from './dispatch.js';
import { add, eq, maskedFill, mul } from './elementwise.js';
import { matmul } from './linalg.js';
import { softmax } from './nn.js';

export interface AttentionOptions {
  /** Query at absolute position q sees key k only if k <= q. */
  causal?: boolean;
  /** Query at absolute position q sees key k only if q - k < slidingWindow (Phi-3.5-MoE: 2047). */
  slidingWindow?: number;
  /** Multiplies q.k; default 1/sqrt(D). */
  scale?: number;
  /**
   * Extra mask broadcast to [B,H,S,Skv]: bool (true = may attend, as torch SDPA) or float
   * (added to the scores, e.g. 0 / -inf padding masks).
   */
  mask?: Tensor;
}

/** [B, Hkv, S, D] -> [B, Hkv * nRep, S, D]; head h reads key/value head floor(h / nRep). */
export function repeatKv(x_BHkvSD: Tensor, nRep: number): Tensor {
  if (nRep === 1) return x_BHkvSD.identity();
  const [b, hkv, s, d] = x_BHkvSD.shape as [number, number, number, number];
  return tidy(() =>
    x_BHkvSD
      .unsqueeze(2)
      .expand([b, hkv, nRep, s, d])
      .reshape([b, hkv * nRep, s, d]),
  );
}

/**
 * Bool [S, Skv], true where a query may NOT see a key. Queries sit at the last S absolute positions
 * (q = i + Skv - S, as with a KV cache); null when nothing is masked.
 */
export function attentionBlockMask(
  s: number,
  skv: number,
  { causal = false, slidingWindow }: Pick<AttentionOptions, 'causal' | 'slidingWindow'>,
  device = 'cpu',
): Tensor | null {
  if (!causal && slidingWindow === undefined) return null;
  const offset = skv - s;
  const blocked = new Uint8Array(s * skv);
  for (let i = 0; i < s; i++) {
    for (let k = 0; k < skv; k++) {
      const distance = i + offset - k;
      blocked[i * skv + k] =
        (causal && distance < 0) || (slidingWindow !== undefined && distance >= slidingWindow) ? 1 : 0;
    }
  }
  return tensor(blocked, { shape: [s, skv], dtype: 'bool', device });
}

function checkShapes(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): void {
  const all = `q ${q.describe()}, k ${k.describe()}, v ${v.describe()}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new RangeError(
      `scaledDotProductAttention: q, k, v must be [B,H,S,D], [B,Hkv,Skv,D], [B,Hkv,Skv,Dv]; got ${all}`,
    );
  }
  const [b, h, s, d] = q.shape as [number, number, number, number];
  const [bk, hkv, skv, dk] = k.shape as [number, number, number, number];
  if (bk !== b || dk !== d)
    throw new RangeError(`scaledDotProductAttention: k must be [${b},Hkv,Skv,${d}] to match q; got ${all}`);
  if (v.shape[0] !== b || v.shape[1] !== hkv || v.shape[2] !== skv) {
    throw new RangeError(
      `scaledDotProductAttention: v must be [${b},${hkv},${skv},Dv] to match k; got ${all}`,
    );
  }
  if (hkv === 0 || h % hkv !== 0) {
    throw new RangeError(
      `scaledDotProductAttention: key/value heads (${hkv}) must divide query heads (${h}); got ${all}`,
    );
  }
  if (q.dtype !== k.dtype || q.dtype !== v.dtype)
    throw new TypeError(`scaledDotProductAttention: dtypes differ; got ${all}`);
  if (options.causal && skv < s) {
    throw new RangeError(
      `scaledDotProductAttention: causal attention needs at least as many keys (${skv}) as queries (${s})`,
    );
  }
  const w = options.slidingWindow;
  if (w !== undefined && !(Number.isInteger(w) && w > 0)) {
    throw new RangeError(`scaledDotProductAttention: slidingWindow must be a positive integer, got ${w}`);
  }
}

/**
 * softmax(q k^T * scale + masks) v over [B,H,S,D] queries and [B,Hkv,Skv,D] keys/values
 * (H % Hkv == 0). A query row that every mask blocks gives NaN, as the eager path does. Without
 * `mask` this is one fused op (`sdpa`); with one, the composite of matmuls and a softmax.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: AttentionOptions = {},
): Tensor {
  checkShapes(q, k, v, options);
  const [, h, s, d] = q.shape as [number, number, number, number];
  const [, hkv, skv] = k.shape as [number, number, number];
  const scale = options.scale ?? 1 / Math.sqrt(d);
  if (!options.mask) {
    const attrs = { scale, window: options.slidingWindow ?? 0, causal: options.causal ?? false };
    return tidy(() => runOp('sdpa', [q, k, v], attrs)[0]!);
  }
  return tidy(() => {
    const keys = repeatKv(k, h / hkv);
    const values = repeatKv(v, h / hkv);
    let scores = mul(matmul(q, keys.transpose(-2, -1)), scale);
    const blocked = attentionBlockMask(s, skv, options, q.device);
    if (blocked) scores = maskedFill(scores, blocked, -Infinity);
    const extra = options.mask;
    if (extra)
      scores = extra.dtype === 'bool' ? maskedFill(scores, eq(extra, 0), -Infinity) : add(scores, extra);
    return matmul(softmax(scores, -1), values);
  });
}

/**
 * softmax(scale * scores_BHSSkv) over keys with transformers' causal sliding-window mask (query i
 * of S sits at key position i + Skv - S and sees keys k <= it with q - k < window; window 0: none),
 * fused into one pass forward and one backward.
 */
export function attentionSoftmax(
  scores: Tensor,
  options: { scale: number; causal?: boolean; window?: number },
): Tensor {
  if (scores.rank < 2)
    throw new RangeError(`attentionSoftmax: scores must be [..., S, Skv], got ${scores.describe()}`);
  const window = options.window ?? 0;
  if (!Number.isInteger(window) || window < 0)
    throw new RangeError(`attentionSoftmax: window must be an integer >= 0, got ${window}`);
  return runOp('attention_softmax', [scores], {
    scale: options.scale,
    causal: options.causal ?? true,
    window,
  })[0]!;
}
