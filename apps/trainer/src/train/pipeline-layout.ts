// How `grin train --dp D --pp P` lays its D x P ranks out, and the checks made before any rank
// starts. Rank r is pipeline stage floor(r / D) of data-parallel replica r mod D (Megatron's order:
// data parallel inside, pipeline outside), so rank 0 is the first stage of replica 0: it logs and
// writes. Each stage's D ranks form its DP group (gradients and balance counts); each replica's P
// ranks form its pipeline (activations by send/recv).
// Test: cd apps/trainer && npx vitest run src/train/pipeline-layout.test.ts
import type { ProcessGroup } from '@grin-moe/parallel';
import type { TrainConfig } from './config.js';

export interface ParallelLayout {
  dp: number;
  pp: number;
}

export interface RankPlace extends ParallelLayout {
  /** Pipeline stage of this rank, 0..pp-1. */
  stage: number;
  /** Data-parallel replica of this rank, 0..dp-1 (its rank in the stage's DP group). */
  replica: number;
}

export function rankPlace(rank: number, { dp, pp }: ParallelLayout): RankPlace {
  if (!Number.isInteger(rank) || rank < 0 || rank >= dp * pp)
    throw new RangeError(`rank ${rank} is not one of the ${dp * pp} ranks of --dp ${dp} --pp ${pp}`);
  return { dp, pp, stage: Math.floor(rank / dp), replica: rank % dp };
}

export interface PipelineGroups {
  place: RankPlace;
  world: ProcessGroup;
  /** This replica's stages in order (group rank = stage). */
  stages: ProcessGroup;
  /** This stage's replicas (group rank = replica). */
  replicas: ProcessGroup;
}

/** The sub-groups of `world` (the run's dp x pp ranks) that this rank belongs to. */
export function pipelineGroups(world: ProcessGroup, layout: ParallelLayout): PipelineGroups {
  const place = rankPlace(world.rank, layout);
  const { dp, pp, stage, replica } = place;
  const replicas = world.subgroup(
    `stage${stage}`,
    Array.from({ length: dp }, (_, r) => stage * dp + r),
  );
  const stages = world.subgroup(
    `replica${replica}`,
    Array.from({ length: pp }, (_, s) => s * dp + replica),
  );
  return { place, world, stages, replicas };
}

/**
 * What a --dp/--pp layout needs of the config, checked before any rank starts; each message names
 * the flag or field and the value that would do.
 */
export function layoutProblems(config: TrainConfig, { dp, pp }: ParallelLayout): string[] {
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
  const o = config.optim;
  if (dp > 1) {
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
