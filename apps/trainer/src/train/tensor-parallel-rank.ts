// The run-level side of `grin train --tp K` (and `--dp D --tp K`, D x K ranks): a TP rank reads,
// draws and counts as a data-parallel rank of its shard's DP group does (its replica's rows of each
// batch, its rows' share of the single process's draws, balance counts summed over the replicas);
// the K ranks of a replica read the same rows with generators in the same state, so they route
// alike. The logged sums average over the DP group (TP ranks hold the same values); stop decisions
// and readiness span the whole run. The step, evaluation and checkpoints are in
// loop-step-tensor-parallel.ts, tensor-parallel-evaluate.ts and tensor-parallel-gather.ts.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-train.test.ts
import type { GrinModel } from '@grin-moe/model-grin';
import type { ProcessGroup } from '@grin-moe/parallel';
import { type StepParallel, splitModelRank } from './data-parallel.js';
import { type ParallelLayout, type TensorParallelGroups, tensorParallelGroups } from './parallel-layout.js';
import { shardForTensorParallel, type TensorParallelShard } from './tensor-parallel.js';

export function tensorParallelRank(world: ProcessGroup, layout: ParallelLayout): StepParallel {
  const groups = tensorParallelGroups(world, layout);
  return { ...splitModelRank(world, groups.replicas, 'tensor parallel'), tensorParallel: groups };
}

/** What a TP rank carries through the run: its groups and its shard of the model. */
export interface TensorParallelRun {
  groups: TensorParallelGroups;
  shard: TensorParallelShard;
}

/** Cuts the freshly built or loaded whole `model` down to this rank's shard and frees the model. */
export function prepareTensorParallelRank(model: GrinModel, par: StepParallel): TensorParallelRun {
  const groups = par.tensorParallel!;
  const shard = shardForTensorParallel(model, groups.place.tp, groups.place.tensorRank);
  model.dispose();
  return { groups, shard };
}
