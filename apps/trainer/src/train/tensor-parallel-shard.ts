// The parameter layout of tensor parallelism (Megatron column/row splits, see tensor-parallel.ts):
// which checkpoint names are split and along which axis, a rank's shard of a full GrinModel, and the
// inverse that concatenates the ranks' shards back into full HF-named tensors (bit for bit).
// Shape legend: D hidden size, I expert intermediate size, Dh head dim, H / Hkv query / kv heads.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-shard.test.ts
import { type GrinConfig, type GrinModel, type ParameterMap, parameterShapes } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';

/**
 * Axis along which a parameter is split over the TP ranks, or null where every rank holds all of it.
 * Column-parallel (rows of the weight, axis 0): q/k/v projections and their biases (this rank's
 * heads), w1 and w3 of every expert (this rank's slice of the intermediate dim). Row-parallel (axis
 * 1): o_proj and w2, whose outputs are partial sums that the ranks add up.
 */
export function shardAxis(name: string): 0 | 1 | null {
  if (/\.self_attn\.[qkv]_proj\.(weight|bias)$/.test(name)) return 0;
  if (/\.self_attn\.o_proj\.weight$/.test(name)) return 1;
  if (/\.block_sparse_moe\.experts\.\d+\.w[13]\.weight$/.test(name)) return 0;
  if (/\.block_sparse_moe\.experts\.\d+\.w2\.weight$/.test(name)) return 1;
  return null;
}

/**
 * Replicated parameters used inside a layer's TP segments (the two LayerNorms, the router gate, the
 * o_proj bias): each rank's backward gives only its part of their gradient, so the group sums them.
 * Embedding, final norm and lm_head run whole on every rank and get their full gradient there.
 */
export function isPartialGradient(name: string): boolean {
  return (
    /^model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.(weight|bias)$/.test(name) ||
    /^model\.layers\.\d+\.block_sparse_moe\.gate\.weight$/.test(name) ||
    /^model\.layers\.\d+\.self_attn\.o_proj\.bias$/.test(name)
  );
}

/** Checks that `tp` ranks can split this model; the error names --tp and the counts that disagree. */
export function checkTensorParallel(config: GrinConfig, tp: number): void {
  if (!Number.isInteger(tp) || tp < 1)
    throw new RangeError(`--tp ${tp}: the tensor-parallel size must be a positive integer`);
  const { numAttentionHeads: H, numKeyValueHeads: Hkv, intermediateSize: I } = config;
  // H is a multiple of Hkv (GQA), so whole kv heads per rank give whole query groups per rank too.
  if (Hkv % tp !== 0)
    throw new RangeError(
      `--tp ${tp}: num_key_value_heads (${Hkv}) must divide by the tensor-parallel size (num_attention_heads ${H}); each rank takes whole key/value heads and their query heads`,
    );
  if (I % tp !== 0)
    throw new RangeError(
      `--tp ${tp}: intermediate_size (${I}) must divide by the tensor-parallel size; each rank takes I/tp of every expert's intermediate dim`,
    );
}

/** The config one rank computes with: its heads and its slice of every expert's intermediate dim. */
export function localConfig(config: GrinConfig, tp: number): GrinConfig {
  checkTensorParallel(config, tp);
  return {
    ...config,
    numAttentionHeads: config.numAttentionHeads / tp,
    numKeyValueHeads: config.numKeyValueHeads / tp,
    intermediateSize: config.intermediateSize / tp,
  };
}

/** One rank's share of a GrinModel under tensor parallelism. */
export interface TensorParallelShard {
  /** The full model's config (checkpoints, rotary tables, the loss). */
  readonly config: GrinConfig;
  /** Heads and intermediate size of this rank (config's divided by tp). */
  readonly local: GrinConfig;
  readonly tp: number;
  readonly rank: number;
  readonly dtype: GrinModel['dtype'];
  readonly device: string;
  /** Every parameter under its checkpoint name: this rank's slice where split, else a full copy. */
  readonly params: ParameterMap;
  /** A pipeline stage's shard holds only the stage's parameters (absent: every parameter). */
  readonly owns?: (name: string) => boolean;
}

/** Rank `rank`'s slice of `t` along `axis` (a contiguous copy), as `tp` equal parts. */
export function sliceForRank(t: T.Tensor, axis: 0 | 1, tp: number, rank: number): T.Tensor {
  const part = t.shape[axis]! / tp;
  const range: [number, number] = [rank * part, (rank + 1) * part];
  return T.noGrad(() => T.tidy(() => T.clone(axis === 0 ? t.slice(range) : t.slice(null, range))));
}

/**
 * Rank `rank` of `tp`: slices of q/k/v/o and of every expert's w1/w3/w2, copies of the rest. The
 * shard owns new tensors (leaves that require grad); the model is left as it was.
 */
export function shardForTensorParallel(model: GrinModel, tp: number, rank: number): TensorParallelShard {
  return shardParameters(model, new Map(model.namedParameters()), tp, rank);
}

/**
 * As shardForTensorParallel, for some of `model`'s parameters only (a pipeline stage's): the shard
 * holds these, and gathers only these.
 */
export function shardParameters(
  model: Pick<GrinModel, 'config' | 'dtype' | 'device'>,
  full: ParameterMap,
  tp: number,
  rank: number,
  owns?: (name: string) => boolean,
): TensorParallelShard {
  const local = localConfig(model.config, tp);
  if (!Number.isInteger(rank) || rank < 0 || rank >= tp)
    throw new RangeError(`tensor-parallel rank ${rank} is not one of 0..${tp - 1} (--tp ${tp})`);
  const params: ParameterMap = new Map();
  for (const [name, whole] of full) {
    const axis = shardAxis(name);
    const own = axis === null ? T.noGrad(() => T.clone(whole)) : sliceForRank(whole, axis, tp, rank);
    own.name = name;
    params.set(name, own.setRequiresGrad(true));
  }
  const { config, dtype, device } = model;
  return owns
    ? { config, local, tp, rank, dtype, device, params, owns }
    : { config, local, tp, rank, dtype, device, params };
}

/**
 * The full tensors from every rank's tensors under the same names (rank order): split ones
 * concatenated along their axis, replicated ones taken from rank 0. Works for values and gradients.
 * `owns` limits it to some parameters (a pipeline stage's).
 */
export function gatherShards(
  config: GrinConfig,
  ranks: ParameterMap[],
  owns: (name: string) => boolean = () => true,
): ParameterMap {
  const tp = ranks.length;
  checkTensorParallel(config, tp);
  const full: ParameterMap = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    if (!owns(name)) continue;
    const pieces = ranks.map((map, r) => {
      const t = map.get(name);
      if (!t) throw new Error(`gatherShards: rank ${r} of ${tp} has no '${name}'`);
      return t;
    });
    const axis = shardAxis(name);
    const t = T.noGrad(() => (axis === null ? T.clone(pieces[0]!) : T.concat(pieces, axis)));
    if (t.shape.join() !== shape.join())
      throw new Error(`gatherShards: '${name}' gathers to [${t.shape}], expected [${shape}] (--tp ${tp})`);
    t.name = name;
    full.set(name, t);
  }
  return full;
}
