// How `grin train --dp D --pp P --tp K` lays its D x P x K ranks out, and the checks made before any
// rank starts. Megatron's order: tensor parallel fastest, then data parallel, then pipeline, so
// rank r is TP rank r mod K of replica floor(r / K) mod D of stage floor(r / (K x D)). TP ranks are
// neighbours (on a GPU host they would share the fastest links); with K = 1 this is the dp x pp
// layout (stage floor(r / D), replica r mod D). Rank 0 is TP rank 0 of replica 0 of stage 0: it
// logs and writes. Sub-groups: each stage's D ranks of one TP rank form a DP group (gradients and
// balance counts); each replica's P ranks of one TP rank its pipeline; each replica's K ranks of a
// stage its TP group.
// Test: cd apps/trainer && npx vitest run src/train/parallel-layout.test.ts
import type { ProcessGroup } from '@grin-moe/parallel';
import type { TrainConfig } from './config.js';

export interface ParallelLayout {
  dp: number;
  pp: number;
  tp: number;
}

export interface RankPlace extends ParallelLayout {
  /** Pipeline stage of this rank, 0..pp-1. */
  stage: number;
  /** Data-parallel replica of this rank, 0..dp-1 (its rank in its DP group). */
  replica: number;
  /** Tensor-parallel rank, 0..tp-1 (its rank in its TP group). */
  tensorRank: number;
}

/** `--dp 2 --pp 1 --tp 2`, as the messages name a layout. */
export function layoutFlags({ dp, pp, tp }: ParallelLayout): string {
  return `--dp ${dp} --pp ${pp} --tp ${tp}`;
}

export function rankPlace(rank: number, layout: ParallelLayout): RankPlace {
  const { dp, pp, tp } = layout;
  if (!Number.isInteger(rank) || rank < 0 || rank >= dp * pp * tp)
    throw new RangeError(`rank ${rank} is not one of the ${dp * pp * tp} ranks of ${layoutFlags(layout)}`);
  return {
    dp,
    pp,
    tp,
    stage: Math.floor(rank / (tp * dp)),
    replica: Math.floor(rank / tp) % dp,
    tensorRank: rank % tp,
  };
}

/** The world rank at this place. */
export function rankAt(layout: ParallelLayout, stage: number, replica: number, tensorRank: number): number {
  return (stage * layout.dp + replica) * layout.tp + tensorRank;
}

export interface PipelineGroups {
  place: RankPlace;
  world: ProcessGroup;
  /** This replica's stages in order, of this rank's TP rank (group rank = stage). */
  stages: ProcessGroup;
  /** This stage's replicas, of this rank's TP rank (group rank = replica). */
  replicas: ProcessGroup;
  /** With tp > 1: this stage's TP ranks of this replica (group rank = tensorRank). */
  tensor?: ProcessGroup;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The sub-groups of `world` (the run's dp x pp x tp ranks) that this rank belongs to. Activations
 * go from each TP rank of a stage to the TP rank of the same index in the next stage: they are
 * replicated over TP, so each TP rank has its own pipeline.
 */
export function pipelineGroups(world: ProcessGroup, layout: ParallelLayout): PipelineGroups {
  const place = rankPlace(world.rank, layout);
  const { dp, pp, tp, stage, replica, tensorRank: t } = place;
  // tp 1 keeps the dp x pp names.
  const suffix = tp === 1 ? '' : `.shard${t}`;
  const replicas = world.subgroup(
    `stage${stage}${suffix}`,
    range(dp).map((r) => rankAt(layout, stage, r, t)),
  );
  const stages = world.subgroup(
    `replica${replica}${suffix}`,
    range(pp).map((s) => rankAt(layout, s, replica, t)),
  );
  if (tp === 1) return { place, world, stages, replicas };
  const tensor = world.subgroup(
    `tensor.stage${stage}.replica${replica}`,
    range(tp).map((k) => rankAt(layout, stage, replica, k)),
  );
  return { place, world, stages, replicas, tensor };
}

export interface TensorParallelGroups {
  place: RankPlace;
  world: ProcessGroup;
  /** This replica's TP ranks (group rank = tensorRank). */
  tensor: ProcessGroup;
  /** The replicas holding this rank's shard (group rank = replica). */
  replicas: ProcessGroup;
}

/** The sub-groups of `world` (the run's dp x tp ranks, pp = 1) that this rank belongs to. */
export function tensorParallelGroups(world: ProcessGroup, layout: ParallelLayout): TensorParallelGroups {
  const place = rankPlace(world.rank, layout);
  if (layout.pp !== 1)
    throw new RangeError(
      `tensorParallelGroups: ${layoutFlags(layout)} (with pp > 1, pipelineGroups holds the TP groups)`,
    );
  const { dp, tp, replica, tensorRank } = place;
  const tensor = world.subgroup(
    `tensor.replica${replica}`,
    range(tp).map((t) => rankAt(layout, 0, replica, t)),
  );
  const replicas = world.subgroup(
    `data.shard${tensorRank}`,
    range(dp).map((r) => rankAt(layout, 0, r, tensorRank)),
  );
  return { place, world, tensor, replicas };
}

/**
 * What a --dp/--pp/--tp layout needs of the config, checked before any rank starts; each message
 * names the flag or field and the value that would do.
 */
export function layoutProblems(config: TrainConfig, { dp, pp, tp }: ParallelLayout): string[] {
  const problems: string[] = [];
  const layers = config.model.numLayers;
  if (pp > layers)
    problems.push(
      `--pp ${pp} needs at most ${layers} stages (model.numLayers is ${layers}; each stage holds one decoder layer at least): pass --pp ${layers} or fewer`,
    );
  if (pp > 1 && config.device !== 'cpu')
    problems.push(
      `--pp ${pp} runs on the CPU only (activations travel through the grpc group as CPU tensors): use --device cpu or --pp 1`,
    );
  if (tp > 1) problems.push(...tensorParallelProblems(config, tp));
  const o = config.optim;
  if (dp > 1) {
    if (config.device !== 'cpu')
      problems.push(
        `--dp ${dp} runs on the CPU only (gradients travel through the grpc group as CPU tensors; NCCL data parallelism is planned): use --device cpu or --dp 1`,
      );
    const rows = o.batchSize / dp;
    if (!Number.isInteger(rows))
      problems.push(
        `--dp ${dp} needs optim.batchSize (${o.batchSize}) to divide by ${dp}: use a batch size that is a multiple of ${dp}`,
      );
    else if ((rows * config.data.seqLen) % 4 !== 0)
      problems.push(
        `--dp ${dp} needs each rank's tokens (batchSize / dp x seqLen = ${rows} x ${config.data.seqLen}) to divide by 4, so each rank's random draws are exactly its rows' share: change optim.batchSize or data.seqLen`,
      );
  }
  return problems;
}

function tensorParallelProblems(config: TrainConfig, tp: number): string[] {
  const problems: string[] = [];
  const { numKvHeads, numHeads, intermediateSize } = config.model;
  if (config.device !== 'cpu')
    problems.push(
      `--tp ${tp} runs on the CPU only (partial sums travel through the grpc group as CPU tensors): use --device cpu or --tp 1`,
    );
  if (numKvHeads % tp !== 0)
    problems.push(
      `--tp ${tp} needs model.numKvHeads (${numKvHeads}; numHeads ${numHeads}) to divide by ${tp}: each rank takes whole key/value heads and their query heads`,
    );
  if (intermediateSize % tp !== 0)
    problems.push(
      `--tp ${tp} needs model.intermediateSize (${intermediateSize}) to divide by ${tp}: each rank takes intermediateSize / tp of every expert`,
    );
  if (config.regularize.expertDropout > 0)
    problems.push(
      `--tp ${tp} does not support regularize.expertDropout (${config.regularize.expertDropout}): each rank would need its columns of the one expert mask; set it to 0 or use --tp 1`,
    );
  return problems;
}
