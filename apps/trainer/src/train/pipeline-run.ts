// What a pipeline stage of `grin train --pp` carries through the run (prepared once, before the
// first step): its slice of the layers and only its own parameters (the others are freed), the
// numbering of the whole model's parameters that checkpoints and optimizer state use, the DP
// gradient buckets of its parameters, and where its random draws sit in the single process's
// stream. The draws: every forward draws a fixed number of Philox blocks per stage for a batch of
// a given shape, so stage s of micro-batch m starts at the step's counter + m x (blocks of all
// stages) + (blocks of stages before s); the counts are measured once here by a forward of the
// whole model (still whole at this point) on a batch of the micro-batch's shape, and every real
// forward checks its own count, so a data-dependent draw would stop the run instead of drifting.
// Under --tp too, the stage's parameters are then cut to this TP rank's shard (tensor-parallel.ts):
// the split layers draw what the whole ones do (expert dropout, the one draw that would differ,
// is refused under --tp).
// Test: cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import type { GrinModel } from '@grin-moe/model-grin';
import { GradientBuckets } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import type { StepParallel } from './data-parallel.js';
import type { PipelineGroups } from './parallel-layout.js';
import { type StageSlice, stageForward, stageOwns, stageSlice } from './pipeline-stage.js';
import { shardParameters, type TensorParallelShard } from './tensor-parallel-shard.js';

export interface StageDraws {
  /** Blocks the stages before this one draw per micro-batch. */
  before: bigint;
  /** Blocks this stage draws per micro-batch. */
  own: bigint;
  /** Blocks the whole model draws per micro-batch. */
  perMicro: bigint;
}

export interface PipelineRun {
  groups: PipelineGroups;
  slice: StageSlice;
  /** This stage's parameters by checkpoint name, in checkpoint order (under --tp, its shard's). */
  params: Map<string, T.Tensor>;
  /** Under --tp: this TP rank's shard of the stage (its params are `params`). */
  shard: TensorParallelShard | null;
  /** Every parameter of the whole model, in checkpoint order: the optimizer state's numbering. */
  whole: Array<{ name: string; shape: number[] }>;
  /** The whole-model number of each of this stage's parameters, in this stage's order. */
  wholeIndex: number[];
  draws: StageDraws;
  /** The stage's gradients averaged over its DP group (null without data parallelism). */
  buckets: GradientBuckets | null;
}

/** Splits the freshly built or loaded whole `model` down to this rank's stage; frees the rest. */
export function preparePipelineStage(config: TrainConfig, model: GrinModel, par: StepParallel): PipelineRun {
  const groups = par.pipeline!;
  const { pp, stage } = groups.place;
  if (model.config.tieWordEmbeddings)
    throw new Error(
      `train --pp ${pp}: the model ties lm_head to the embedding (tie_word_embeddings), which would live on the first and the last stage; untie it or use --pp 1`,
    );
  const slices = Array.from({ length: pp }, (_, s) => stageSlice(model.config.numHiddenLayers, pp, s));
  const perStage = measureStageDraws(config, model, slices, par);
  const before = perStage.slice(0, stage).reduce((a, b) => a + b, 0n);
  const slice = slices[stage]!;
  const params = new Map<string, T.Tensor>();
  const whole: PipelineRun['whole'] = [];
  const wholeIndex: number[] = [];
  for (const [name, t] of model.params) {
    whole.push({ name, shape: [...t.shape] });
    if (!stageOwns(slice, name)) {
      t.dispose();
      continue;
    }
    wholeIndex.push(whole.length - 1);
    params.set(name, t);
  }
  const draws = { before, own: perStage[stage]!, perMicro: perStage.reduce((a, b) => a + b, 0n) };
  if (groups.tensor) {
    const { tp, tensorRank } = groups.place;
    const shard = shardParameters(model, params, tp, tensorRank, (name) => stageOwns(slice, name));
    for (const t of params.values()) t.dispose();
    // The DP average runs after the TP sums (loop-step-pipeline-tensor.ts), not in buckets.
    return { groups, slice, params: shard.params, shard, whole, wholeIndex, draws, buckets: null };
  }
  return {
    groups,
    slice,
    params,
    shard: null,
    whole,
    wholeIndex,
    draws,
    buckets: groups.replicas.size > 1 ? new GradientBuckets(groups.replicas, [...params.values()]) : null,
  };
}

/** Philox blocks each stage draws per micro-batch of this rank's shape, in training mode. */
function measureStageDraws(
  config: TrainConfig,
  model: GrinModel,
  slices: StageSlice[],
  par: StepParallel,
): bigint[] {
  const rows = par.shard(0, config.optim.batchSize).count;
  const draws = par.draws(new T.Generator(0));
  return T.noGrad(() =>
    T.tidy(() => {
      const ids = T.zeros([rows, config.data.seqLen], { dtype: 'i32' });
      let hidden: T.Tensor | null = null;
      return slices.map((slice) => {
        const start = draws.counter;
        hidden = stageForward(model, slice, ids, hidden, {
          training: true,
          generator: draws,
          ...config.regularize,
          head: false,
        }).out;
        return draws.counter - start;
      });
    }),
  );
}

/** A generator at `blocks` past `state`'s counter (same key). */
export function generatorAt(state: T.GeneratorState, blocks: bigint): T.Generator {
  return T.Generator.fromState({ ...state, counter: String(BigInt(state.counter) + blocks) });
}

/** The optimizer state of the whole model (checkpoint numbering) cut down to this stage's own. */
export function stageOptimizerState(
  state: { step: number; tensors: Record<string, T.Tensor> },
  run: PipelineRun,
): { step: number; tensors: Record<string, T.Tensor> } {
  const tensors: Record<string, T.Tensor> = {};
  for (const [key, t] of Object.entries(state.tensors)) {
    const [slot, index] = key.split('.') as [string, string];
    const local = run.wholeIndex.indexOf(Number(index));
    if (local >= 0) tensors[`${slot}.${local}`] = t;
  }
  return { step: state.step, tensors };
}
