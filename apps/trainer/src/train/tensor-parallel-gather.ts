// The whole model (and its AdamW state) of a `grin train --tp` run, gathered on rank 0 for what rank
// 0 writes: checkpoints and the routing report. Replica 0's TP ranks all-gather their slices
// (gatherTensorParallel, gatherTensorParallelOptimizer), so a checkpoint is the single process's
// model.safetensors and optimizer.safetensors (numbered over the whole model) and resumes at any
// --dp/--tp. Memory on replica 0's ranks: the whole model (and its moments) while rank 0 writes.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-train.test.ts
import { GrinModel } from '@grin-moe/model-grin';
import type * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import type { GatheredRun } from './pipeline-gather.js';
import { gatherTensorParallel } from './tensor-parallel.js';
import { gatherTensorParallelOptimizer } from './tensor-parallel-optimizer.js';
import type { TensorParallelRun } from './tensor-parallel-rank.js';

/**
 * On rank 0: the whole model, with the optimizer state when `withOptimizer`. Every rank of replica
 * 0 must call it at the same point (the others of the run return null at once).
 */
export async function gatherTensorParallelRun(
  run: TrainRun,
  tp: TensorParallelRun,
  withOptimizer: boolean,
): Promise<GatheredRun | null> {
  const { place, tensor } = tp.groups;
  if (place.replica !== 0) return null;
  const params = await gatherTensorParallel(tensor, tp.shard, 'values');
  const own = run.optimizer.stateDict();
  const state = withOptimizer ? await gatherTensorParallelOptimizer(tensor, tp.shard, own) : null;
  const made: T.Tensor[] = [...params.values(), ...Object.values(state?.tensors ?? {})];
  const release = () => {
    for (const t of made) t.dispose();
  };
  if (place.tensorRank !== 0) {
    release();
    return null;
  }
  return {
    model: new GrinModel(tp.shard.config, params, 'f32', 'cpu'),
    optimizer: {
      lr: run.optimizer.lr,
      stateDict: () => state ?? { step: own.step, tensors: {} },
    },
    release,
  };
}
