// AdamW's state under tensor parallelism. Each rank's optimizer runs over its shard's parameters,
// numbered in the shard's order, which is the whole model's parameter order (the numbering of a
// one-process optimizer.safetensors); its moments have the shapes of its slices. Gathering
// concatenates the split moments along their parameter's axis (replicated ones are the same on
// every rank: same gradients, same updates) into the one-process state, and sharding cuts such a
// state down to one rank's slices, so optimizer state moves between any --tp and back.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-optimizer.test.ts
import type { ProcessGroup } from '@grin-moe/parallel';
import type * as T from '@grin-moe/tensor';
import { gatherPicked } from './tensor-parallel-gradients.js';
import { shardAxis, sliceForRank, type TensorParallelShard } from './tensor-parallel-shard.js';

export interface OptimizerState {
  step: number;
  /** `${slot}.${index}`: exp_avg.3, exp_avg_sq.3, ... */
  tensors: Record<string, T.Tensor>;
}

function slotsOf(state: OptimizerState): string[] {
  return [...new Set(Object.keys(state.tensors).map((key) => key.slice(0, key.lastIndexOf('.'))))].sort();
}

/**
 * The one-process optimizer state from every TP rank's `state` (each rank's own AdamW stateDict()),
 * on every rank of `group`; new tensors, for the caller to dispose. Every rank calls it together.
 */
export async function gatherTensorParallelOptimizer(
  group: ProcessGroup,
  shard: TensorParallelShard,
  state: OptimizerState,
): Promise<OptimizerState> {
  const names = [...shard.params.keys()];
  const tensors: Record<string, T.Tensor> = {};
  for (const slot of slotsOf(state)) {
    const missing = names.findIndex((_, index) => !state.tensors[`${slot}.${index}`]);
    if (missing >= 0)
      throw new Error(
        `tensor parallel: optimizer slot '${slot}' has no tensor for '${names[missing]}' (${slot}.${missing})`,
      );
    const full = await gatherPicked(group, shard, (_, index) => state.tensors[`${slot}.${index}`]!);
    names.forEach((name, index) => {
      tensors[`${slot}.${index}`] = full.get(name)!;
    });
  }
  return { step: state.step, tensors };
}

/**
 * One rank's part of a one-process optimizer state (numbered over the whole model, as a checkpoint
 * holds it): split moments sliced as their parameters are, replicated ones as they are. `made`
 * lists the new tensors (the slices), for the caller to dispose once the optimizer has copied them.
 */
export function shardOptimizerState(
  state: OptimizerState,
  shard: TensorParallelShard,
): { state: OptimizerState; made: T.Tensor[] } {
  const names = [...shard.params.keys()];
  const tensors: Record<string, T.Tensor> = {};
  const made: T.Tensor[] = [];
  for (const [key, t] of Object.entries(state.tensors)) {
    const index = Number(key.slice(key.lastIndexOf('.') + 1));
    const name = names[index];
    if (name === undefined)
      throw new Error(
        `tensor parallel: optimizer state '${key}' numbers a parameter past the model's ${names.length}`,
      );
    const axis = shardAxis(name);
    if (axis === null) {
      tensors[key] = t;
      continue;
    }
    const slice = sliceForRank(t, axis, shard.tp, shard.rank);
    made.push(slice);
    tensors[key] = slice;
  }
  return { state: { step: state.step, tensors }, made };
}
