// One PhiMoE decoder layer (transformers' PhimoeDecoderLayer), pre-LN with LayerNorm (weight and
// bias, eps = rms_norm_eps): h = x + Attn(LN1(x)); out = h + MoE(LN2(h)).
// Shape legend: B batch, S positions, D hidden size, Dh head dim.
// Test: cd packages/model-grin && npx vitest run src/parity
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import { add, type Generator, layerNorm, type Tensor, tidy } from '@grin-moe/tensor';
import type { GrinConfig } from '../config.js';
import { type AttentionImplementation, attention, type LayerKvCache } from './attention.js';
import { type MoeImplementation, moe, type RoutingTrace } from './moe.js';
import { layerPrefix, type ParameterMap, param } from './names.js';

export interface DecoderInputs {
  cos_SD: Tensor;
  sin_SD: Tensor;
  training: boolean;
  cache?: LayerKvCache;
  generator?: Generator;
  trace?: boolean;
  moeImplementation?: MoeImplementation;
  attentionImplementation?: AttentionImplementation;
  /** Dropout probability on the experts' hidden activation (training only). */
  expertDropout?: number;
  /** Packed documents: true where a query may not see a key of another document, [B, S, S]. */
  blocked_BSS?: Tensor;
}

export function decoderLayer(
  config: GrinConfig,
  params: ParameterMap,
  layer: number,
  x_BSD: Tensor,
  inputs: DecoderInputs,
): { out_BSD: Tensor; balance: BalanceStats; routing?: RoutingTrace } {
  const prefix = layerPrefix(layer);
  const norm = (name: string, t: Tensor) =>
    layerNorm(
      t,
      param(params, `${prefix}.${name}.weight`),
      param(params, `${prefix}.${name}.bias`),
      config.rmsNormEps,
    );
  return tidy(() => {
    const attended_BSD = attention(
      config,
      params,
      `${prefix}.self_attn`,
      norm('input_layernorm', x_BSD),
      inputs,
    );
    const h_BSD = add(x_BSD, attended_BSD);
    const { out_BSD, balance, routing } = moe(
      config,
      params,
      layer,
      norm('post_attention_layernorm', h_BSD),
      inputs,
    );
    return routing
      ? { out_BSD: add(h_BSD, out_BSD), balance, routing }
      : { out_BSD: add(h_BSD, out_BSD), balance };
  });
}
