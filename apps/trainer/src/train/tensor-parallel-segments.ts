// The synchronous pieces of a tensor-parallel forward (see tensor-parallel.ts): the embedding and
// the head run whole on every rank; each decoder layer is two segments, attention and MoE, that
// read the replicated residual stream and return this rank's PARTIAL sum of the block's output.
// They call model-grin's own attention and moe with the rank's config and shard, so the numerics
// are the single-device model's. Shape legend: B batch, S positions, D hidden size, V vocab.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel.test.ts
import {
  attention,
  layerPrefix,
  type MoeImplementation,
  moe,
  neftuneNoise,
  type ParameterMap,
  type RoutingTrace,
} from '@grin-moe/model-grin';
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { TensorParallelShard } from './tensor-parallel-shard.js';

export interface SegmentInputs {
  cos_SD: T.Tensor;
  sin_SD: T.Tensor;
  training: boolean;
  /** Every rank passes a generator in the same state: the same draws, so the same picks. */
  generator?: T.Generator;
  moeImplementation?: MoeImplementation;
  /** Packed documents: true where a query may not see a key of another document, [B, S, S]. */
  blocked_BSS?: T.Tensor;
  trace?: boolean;
}

function param(params: ParameterMap, name: string): T.Tensor {
  const t = params.get(name);
  if (!t) throw new Error(`tensor parallel: parameter '${name}' is missing from this rank's shard`);
  return t;
}

/**
 * The parameters this rank's segments read: all of its shard, except that a row-parallel bias
 * (o_proj's) is added by rank 0 alone, so that the sum over ranks holds it once.
 */
export function segmentParams(shard: TensorParallelShard): ParameterMap {
  if (shard.rank === 0) return shard.params;
  return new Map([...shard.params].filter(([name]) => !/\.self_attn\.o_proj\.bias$/.test(name)));
}

function layerNorm(config: TensorParallelShard['config'], params: ParameterMap, prefix: string, x: T.Tensor) {
  return T.layerNorm(
    x,
    param(params, `${prefix}.weight`),
    param(params, `${prefix}.bias`),
    config.rmsNormEps,
  );
}

/** Token embeddings (plus NEFTune noise in training), the same on every rank. */
export function embedSegment(
  shard: TensorParallelShard,
  ids_BS: T.Tensor,
  options: { training: boolean; neftuneAlpha?: number; generator?: T.Generator },
): T.Tensor {
  return T.tidy(() => {
    const x_BSD = T.embedding(param(shard.params, 'model.embed_tokens.weight'), ids_BS);
    return options.training && options.neftuneAlpha
      ? neftuneNoise(x_BSD, options.neftuneAlpha, options.generator)
      : x_BSD;
  });
}

/** LN1, this rank's query and kv heads, and its columns of o_proj: a partial [B,S,D]. */
export function attentionSegment(
  shard: TensorParallelShard,
  params: ParameterMap,
  layer: number,
  x_BSD: T.Tensor,
  inputs: SegmentInputs,
): T.Tensor {
  const prefix = layerPrefix(layer);
  return T.tidy(() =>
    attention(
      shard.local,
      params,
      `${prefix}.self_attn`,
      layerNorm(shard.config, params, `${prefix}.input_layernorm`, x_BSD),
      inputs,
    ),
  );
}

/**
 * LN2, the replicated router (jitter and picks drawn alike on every rank), and every expert's
 * slice of the intermediate dim: a partial [B,S,D], the layer's balance statistics (the same on
 * every rank) and, with `trace`, its picks.
 */
export function moeSegment(
  shard: TensorParallelShard,
  params: ParameterMap,
  layer: number,
  h_BSD: T.Tensor,
  inputs: SegmentInputs,
): { partial_BSD: T.Tensor; balance: BalanceStats; routing?: RoutingTrace } {
  const prefix = layerPrefix(layer);
  return T.tidy(() => {
    const { out_BSD, balance, routing } = moe(
      shard.local,
      params,
      layer,
      layerNorm(shard.config, params, `${prefix}.post_attention_layernorm`, h_BSD),
      {
        training: inputs.training,
        generator: inputs.generator,
        trace: inputs.trace,
        moeImplementation: inputs.moeImplementation,
      },
    );
    return routing ? { partial_BSD: out_BSD, balance, routing } : { partial_BSD: out_BSD, balance };
  });
}

/** Final LayerNorm and lm_head (with its bias), whole on every rank: logits [B,S,V]. */
export function headSegment(shard: TensorParallelShard, x_BSD: T.Tensor): T.Tensor {
  const p = shard.params;
  return T.tidy(() => {
    const normed_BSD = layerNorm(shard.config, p, 'model.norm', x_BSD);
    const head = shard.config.tieWordEmbeddings
      ? param(p, 'model.embed_tokens.weight')
      : param(p, 'lm_head.weight');
    return T.linear(normed_BSD, head, p.get('lm_head.bias') ?? null);
  });
}
