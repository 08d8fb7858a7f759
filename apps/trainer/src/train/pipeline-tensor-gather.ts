// The whole model (and its AdamW state) of a `grin train --pp M --tp K` run, gathered on rank 0 for
// what rank 0 writes: checkpoints and the routing report. Within each stage of replica 0 the TP
// ranks all-gather their slices and moments (tensor-parallel-gradients.ts and
// tensor-parallel-optimizer.ts, limited to the stage's parameters); then each stage's TP rank 0
// sends the whole stage to rank 0 as under --pp (pipeline-gather.ts). So a checkpoint is the single
// process's model.safetensors and optimizer.safetensors and resumes at any --dp/--pp/--tp.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import type * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import { type GatheredRun, gatherStages } from './pipeline-gather.js';
import type { PipelineRun } from './pipeline-run.js';
import { gatherTensorParallel } from './tensor-parallel.js';
import { gatherTensorParallelOptimizer } from './tensor-parallel-optimizer.js';

/** On rank 0: the whole model (with the optimizer state when `withOptimizer`); replica 0's ranks call it together. */
export async function gatherTensorPipelineRun(
  run: TrainRun,
  pipe: PipelineRun,
  withOptimizer: boolean,
): Promise<GatheredRun | null> {
  const { place, tensor } = pipe.groups;
  if (place.replica !== 0) return null;
  const shard = pipe.shard!;
  const full = await gatherTensorParallel(tensor!, shard, 'values');
  const own = run.optimizer.stateDict();
  const state = withOptimizer
    ? await gatherTensorParallelOptimizer(tensor!, shard, own)
    : { step: own.step, tensors: {} };
  const made: T.Tensor[] = [...full.values(), ...Object.values(state.tensors)];
  const release = () => {
    for (const t of made) t.dispose();
  };
  if (place.tensorRank !== 0) {
    release();
    return null;
  }
  const stage = [...shard.params.keys()].map((name) => full.get(name)!);
  const gathered = await gatherStages(run, pipe, stage, state, withOptimizer);
  if (!gathered) {
    release();
    return null;
  }
  return {
    ...gathered,
    release: () => {
      gathered.release();
      release();
    },
  };
}
