// Validation under `grin train --pp M --tp K`: the fixed validation windows go forward through
// replica 0's TP-split stages (no graph), in batches of optim.batchSize rows as evaluate() takes
// them in one process; the last stage's TP rank 0 holds the cross-entropy, which reaches every
// rank through one all-reduce, so every rank keeps the same best and last validation loss.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import { pipelineForward } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import type { PipelineRun } from './pipeline-run.js';
import { disposeTensorStage, tensorStageForward } from './pipeline-tensor-stage.js';

/** Mean next-token cross-entropy over the validation windows, in eval mode; the same on every rank. */
export async function validateThroughTensorPipeline(run: TrainRun, pipe: PipelineRun): Promise<number> {
  const { ids, rows } = run.data.validation;
  const S = run.config.data.seqLen;
  const B = run.config.optim.batchSize;
  const { place, stages, tensor, world } = pipe.groups;
  const lastStage = pipe.slice.stage === pipe.slice.stages - 1;
  const rowsOf = (batch: number) => Math.min(B, rows - batch * B);
  let total = 0;
  if (place.replica === 0) {
    const losses = await pipelineForward(
      stages,
      {
        inputShape: (batch) => [rowsOf(batch), S, pipe.shard!.config.hiddenSize],
        async forward(batch, input) {
          const batch_BS = T.tensor(ids.subarray(batch * B * S, (batch * B + rowsOf(batch)) * S), {
            shape: [rowsOf(batch), S],
            dtype: 'i32',
          });
          const pass = await tensorStageForward(tensor!, pipe.shard!, pipe.slice, batch_BS, input, {
            training: false,
            grad: false,
          });
          const out = lastStage ? T.noGrad(() => nextTokenLoss(pass.out, batch_BS)) : pass.out;
          disposeTensorStage(pass, !lastStage);
          batch_BS.dispose();
          return out;
        },
      },
      Math.ceil(rows / B),
    );
    // Every TP rank of the last stage holds the losses: TP rank 0 counts them.
    if (place.tensorRank === 0)
      losses.forEach((loss, batch) => {
        total += loss * rowsOf(batch);
      });
  }
  const sum = Float64Array.of(total);
  await world.allReduce(sum, 'sum');
  return sum[0]! / rows;
}
