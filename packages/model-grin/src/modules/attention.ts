// Self-attention of PhiMoE (transformers' PhimoeAttention, eager path): q/k/v/o projections with
// biases, grouped KV heads, rotate-half RoPE over the full head dim, causal sliding window, and an
// optional KV cache trimmed to what the window can still see; packed documents are kept apart by a
// mask of the key positions of other documents. Two implementations of one softmax(q k^T) v: `eager`
// (transformers' eager path: scores, fused masked softmax, values; the CPU reference) and `fused`
// (the `sdpa` op: online softmax with no [S, Skv] scores, FlashAttention-style on cuda), which 'auto'
// takes off the CPU when no document mask is given. Shape legend: B batch, S new
// positions, Skv cached + new keys, D hidden size, H query heads, Hkv key/value heads, Dh head dim.
// Test: cd packages/model-grin && npx vitest run src/modules/attention src/parity src/generate
import {
  attentionSoftmax,
  clone,
  concat,
  linear,
  maskedFill,
  matmul,
  rope,
  scaledDotProductAttention,
  type Tensor,
  tidy,
} from '@grin-moe/tensor';
import type { GrinConfig } from '../config.js';
import { optionalParam, type ParameterMap, param } from './names.js';

/** Keys and values of one layer, after RoPE, for the positions just before the next call's. */
export interface LayerKvCache {
  key_BHkvSD: Tensor | null;
  value_BHkvSD: Tensor | null;
}

export interface AttentionInputs {
  cos_SD: Tensor;
  sin_SD: Tensor;
  cache?: LayerKvCache;
  /** Packed documents: true where query s may not see key s' (another document), [B, S, S] bool. */
  blocked_BSS?: Tensor;
  attentionImplementation?: AttentionImplementation;
}

/**
 * 'auto' (the default): `fused` off the CPU unless packed documents need their mask, else `eager`.
 * 'fused' with packed documents is refused: the fused op takes no mask.
 */
export type AttentionImplementation = 'auto' | 'eager' | 'fused';

/** Whether this call runs the fused op (checks the choice; see AttentionImplementation). */
export function usesFusedAttention(
  implementation: AttentionImplementation | undefined,
  device: string,
  blocked_BSS: Tensor | undefined,
): boolean {
  const choice = implementation ?? 'auto';
  if (choice !== 'auto' && choice !== 'eager' && choice !== 'fused')
    throw new RangeError(`attention: implementation must be 'auto', 'eager' or 'fused', got '${choice}'`);
  if (choice === 'fused' && blocked_BSS)
    throw new RangeError(
      "attention: implementation 'fused' cannot apply packed documents' mask (documents_BS); use 'eager' or 'auto'",
    );
  return choice === 'fused' || (choice === 'auto' && device !== 'cpu' && !blocked_BSS);
}

export function attention(
  config: GrinConfig,
  params: ParameterMap,
  prefix: string,
  x_BSD: Tensor,
  inputs: AttentionInputs,
): Tensor {
  const [B, S] = x_BSD.shape as [number, number, number];
  const { numAttentionHeads: H, numKeyValueHeads: Hkv, headDim: Dh } = config;
  const project = (name: string) =>
    linear(x_BSD, param(params, `${prefix}.${name}.weight`), optionalParam(params, `${prefix}.${name}.bias`));
  return tidy(() => {
    const heads = (t_BSX: Tensor, count: number) => t_BSX.reshape([B, S, count, Dh]).transpose(1, 2);
    const q_BHSD = rope(heads(project('q_proj'), H), inputs.cos_SD, inputs.sin_SD);
    let k_BHkvSD = rope(heads(project('k_proj'), Hkv), inputs.cos_SD, inputs.sin_SD);
    let v_BHkvSD = heads(project('v_proj'), Hkv);
    const cache = inputs.cache;
    if (cache?.key_BHkvSD && cache.value_BHkvSD) {
      k_BHkvSD = concat([cache.key_BHkvSD, k_BHkvSD], 2);
      v_BHkvSD = concat([cache.value_BHkvSD, v_BHkvSD], 2);
    }
    const window = config.slidingWindow ?? undefined;
    const out_BHSD = usesFusedAttention(inputs.attentionImplementation, x_BSD.device, inputs.blocked_BSS)
      ? scaledDotProductAttention(q_BHSD, k_BHkvSD, v_BHkvSD, { causal: true, slidingWindow: window })
      : eagerAttention(q_BHSD, k_BHkvSD, v_BHkvSD, window, inputs.blocked_BSS);
    if (cache) updateCache(cache, k_BHkvSD, v_BHkvSD, window);
    const out_BSD = out_BHSD.transpose(1, 2).reshape([B, S, H * Dh]);
    return linear(
      out_BSD,
      param(params, `${prefix}.o_proj.weight`),
      optionalParam(params, `${prefix}.o_proj.bias`),
    );
  });
}

/**
 * transformers' eager_attention_forward: scores q k^T / sqrt(Dh), causal sliding-window mask,
 * softmax, values. Queries sit at the last S of the Skv key positions. transformers takes this
 * softmax in float32 even for a float64 model; here f64 stays f64 (the numerics reference, smooth
 * for finite differences), which is what bounds f64 parity with the dumps at ~1e-6.
 */
export function eagerAttention(
  q_BHSD: Tensor,
  k_BHkvSD: Tensor,
  v_BHkvSD: Tensor,
  window: number | undefined,
  blocked_BSS?: Tensor,
): Tensor {
  const [B, H, S, Dh] = q_BHSD.shape as [number, number, number, number];
  const [, Hkv, Skv] = k_BHkvSD.shape as [number, number, number];
  const rep = H / Hkv;
  return tidy(() => {
    // GQA without copying keys/values: head h = g * rep + r uses kv head g, so group the query
    // heads as [B, Hkv, rep] and let the batched matmul broadcast k and v over rep.
    const q_BGRSD = q_BHSD.reshape([B, Hkv, rep, S, Dh]);
    const k_BG1SD = k_BHkvSD.reshape([B, Hkv, 1, Skv, Dh]);
    const v_BG1SD = v_BHkvSD.reshape([B, Hkv, 1, Skv, Dh]);
    let scores_BGRSSkv = matmul(q_BGRSD, k_BG1SD.transpose(-2, -1));
    if (blocked_BSS)
      scores_BGRSSkv = maskedFill(scores_BGRSSkv, blocked_BSS.reshape([B, 1, 1, S, Skv]), -Infinity);
    const probs_BGRSSkv = attentionSoftmax(scores_BGRSSkv, {
      scale: 1 / Math.sqrt(Dh),
      causal: true,
      window: window ?? 0,
    });
    return matmul(probs_BGRSSkv, v_BG1SD).reshape([B, H, S, Dh]);
  });
}

/**
 * Keeps the last window - 1 keys: the next query, at position q, sees keys k with q - k < window,
 * that is the window - 1 before it plus its own. Copies, so the old storage is freed.
 */
function updateCache(
  cache: LayerKvCache,
  k_BHkvSD: Tensor,
  v_BHkvSD: Tensor,
  window: number | undefined,
): void {
  const skv = k_BHkvSD.shape[2]!;
  const keep = window === undefined ? skv : Math.min(skv, window - 1);
  cache.key_BHkvSD?.dispose();
  cache.value_BHkvSD?.dispose();
  cache.key_BHkvSD = cache.value_BHkvSD = null;
  if (keep === 0) return;
  const trim = (t: Tensor) => t.slice(null, null, [skv - keep, skv]);
  const [key, value] = tidy(() => [clone(trim(k_BHkvSD)), clone(trim(v_BHkvSD))]);
  // The caller's scope would dispose them; the cache owns these handles.
  cache.key_BHkvSD = key!.alias({ track: false });
  cache.value_BHkvSD = value!.alias({ track: false });
  key!.dispose();
  value!.dispose();
}
