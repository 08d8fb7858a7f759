// Test support for tensor parallelism: a small GQA MoE config that splits over 2 and 4 ranks, the
// single-process step the TP ranks must reproduce (same seed: same jitter, same SparseMixer
// samples), TP ranks run as concurrent async tasks over a group, and the relative difference used
// by every comparison (max |a - b| over max |b|). Used by the tensor-parallel*.test.ts files.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel
import {
  type GrinConfig,
  type GrinModel,
  initRandom,
  type ModelDType,
  nextTokenLoss,
  parseConfig,
  type RoutingTrace,
} from '@grin-moe/model-grin';
import type { ProcessGroup } from '@grin-moe/parallel';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import {
  finishTensorParallelGradients,
  gatherTensorParallel,
  shardForTensorParallel,
  type TensorParallelShard,
  tensorParallelStep,
} from './tensor-parallel.js';

/** 8 query heads over 4 kv heads, 4 experts of intermediate 8: splits over 2 and 4 ranks. */
export const tpConfig: GrinConfig = parseConfig({
  vocab_size: 30,
  hidden_size: 32,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  num_local_experts: 4,
  sliding_window: 5,
  initializer_range: 0.2,
  attention_bias: true,
  lm_head_bias: true,
  input_jitter_noise: 0.01,
  router_jitter_noise: 0.3, // a wide band: several experts stay in the mask, so the samples matter
  rope_theta: 10000,
});

export const [B, S] = [2, 8];
/** Large enough that counting the balance loss twice moves the gate's gradient well past 1e-5. */
export const ALPHA = 0.1;

export function batch(step: number): T.Tensor {
  const ids = Array.from({ length: B * S }, (_, i) => (step * 131 + i * 7 + ((i * i) % 5)) % 30);
  return T.tensor(ids, { shape: [B, S], dtype: 'i32' });
}

/**
 * A random model whose biases and LayerNorm weights are random too (initRandom makes them 0 and 1),
 * so that a bias added twice or a LayerNorm gradient counted once shows in every comparison.
 */
export function freshModel(dtype: ModelDType, config = tpConfig): GrinModel {
  const model = initRandom(config, new T.Generator(4), { dtype });
  const generator = new T.Generator(5);
  T.noGrad(() => {
    for (const [name, p] of model.params) {
      if (!(name.endsWith('.bias') || name.includes('norm'))) continue;
      const offset = name.endsWith('.weight') ? 1 : 0;
      T.tidy(() => T.copyInPlace(p, T.add(T.randn([...p.shape], { std: 0.2, dtype, generator }), offset)));
    }
  });
  return model;
}

/** max |a - b| / max |b| (b the reference). */
export function relativeDifference(a: T.Tensor, b: T.Tensor): number {
  const x = a.toArray() as Float32Array;
  const y = b.toArray() as Float32Array;
  if (x.length !== y.length) throw new Error(`relativeDifference: ${a.describe()} vs ${b.describe()}`);
  let worst = 0;
  let scale = 1e-30;
  for (let i = 0; i < y.length; i++) {
    worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    scale = Math.max(scale, Math.abs(y[i]!));
  }
  return worst / scale;
}

/** A parameter's gradient, zeros where backward left none (an expert no token picked). */
export function gradientOf(p: T.Tensor): T.Tensor {
  return p.grad ?? T.zerosLike(p);
}

export interface StepOutcome {
  crossEntropy: number;
  auxLoss: number;
  logits_BSV: T.Tensor;
  routing: RoutingTrace[];
}

/** The single process: forward in training mode, (CE + balance loss) * lossScale, backward into the model. */
export async function referenceStep(model: GrinModel, ids: T.Tensor, generator: T.Generator, lossScale = 1) {
  const out = model.forward(ids, { training: true, generator, trace: true });
  const ce = nextTokenLoss(out.logits_BSV, ids);
  const { loss: aux, fractions_LE } = await balanceLoss(out.balance, { alpha: ALPHA, mode: 'local' });
  T.tidy(() => T.mul(T.add(ce, aux), lossScale).backward());
  const outcome: StepOutcome = {
    crossEntropy: ce.item(),
    auxLoss: aux.item(),
    logits_BSV: out.logits_BSV,
    routing: out.routing!,
  };
  for (const t of [ce, aux, fractions_LE]) t.dispose();
  for (const b of out.balance) for (const t of [b.counts_E, b.meanProbs_E]) t.dispose();
  return outcome;
}

/** One TP rank's step: forward + backward, then its partial gradients summed over the group. */
export async function rankStep(
  group: ProcessGroup,
  shard: TensorParallelShard,
  ids: T.Tensor,
  generator: T.Generator,
): Promise<StepOutcome> {
  const result = await tensorParallelStep(group, shard, ids, {
    training: true,
    generator,
    trace: true,
    keepLogits: true,
    balance: { alpha: ALPHA, mode: 'local' },
  });
  await finishTensorParallelGradients(group, shard);
  return { ...result, logits_BSV: result.logits_BSV!, routing: result.routing! };
}

/** Every rank of `groups` (the TP group, rank order) sharding `model` and running one step. */
export async function tensorParallelRun(
  groups: ProcessGroup[],
  model: GrinModel,
  ids: T.Tensor,
  seed: number,
) {
  const shards = groups.map((g) => shardForTensorParallel(model, g.size, g.rank));
  const outcomes = await Promise.all(
    groups.map((g, r) => rankStep(g, shards[r]!, ids, new T.Generator(seed))),
  );
  const gradients = await Promise.all(groups.map((g, r) => gatherTensorParallel(g, shards[r]!, 'gradients')));
  return { shards, outcomes, gradients };
}
