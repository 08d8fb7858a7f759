// Which rows a micro-batch of `grin train` reads: micro-batch m of step n takes rows
// [((n-1) * gradAccum + m) * batchSize, ...) of the training windows, and this rank its shard of
// them (data parallelism). The step, the balance-counting pass and every pipeline stage read the
// same rows through this one function.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/global-balance.test.ts
import * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';

/** This rank's rows of micro-batch `micro` of step `run.step` (already advanced), as i32 [rows, S]. */
export function microBatchIds(run: TrainRun, micro: number): T.Tensor {
  const { config, par } = run;
  const o = config.optim;
  const first = ((run.step - 1) * o.gradAccum + micro) * o.batchSize;
  const shard = par.shard(first, o.batchSize);
  return T.tensor(run.data.train.sampler.rows(shard.first, shard.count), {
    shape: [shard.count, config.data.seqLen],
    dtype: 'i32',
    device: run.placed.device,
  });
}
