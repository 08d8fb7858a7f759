// Validation under `grin train --pp`: the fixed validation windows go through replica 0's stages
// forward only, in batches of optim.batchSize rows as evaluate() takes them in one process; the
// last stage's cross-entropy reaches every rank through one all-reduce, so every rank keeps the
// same best and last validation loss (and the same decisions that depend on them).
// Test: cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import { pipelineForward } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import type { PipelineRun } from './pipeline-run.js';
import { stageForward } from './pipeline-stage.js';

/** Mean next-token cross-entropy over the validation windows, in eval mode; the same on every rank. */
export async function validateThroughPipeline(run: TrainRun, pipe: PipelineRun): Promise<number> {
  const { ids, rows } = run.data.validation;
  const S = run.config.data.seqLen;
  const B = run.config.optim.batchSize;
  const { config, dtype, device } = run.placed;
  const model = { config, params: pipe.params, dtype, device };
  const rowsOf = (batch: number) => Math.min(B, rows - batch * B);
  const batches = Math.ceil(rows / B);
  let total = 0;
  if (pipe.groups.place.replica === 0) {
    const losses = await pipelineForward(
      pipe.groups.stages,
      {
        inputShape: (batch) => [rowsOf(batch), S, config.hiddenSize],
        forward: (batch, input) =>
          T.noGrad(() =>
            T.tidy(() => {
              const batch_BS = T.tensor(ids.subarray(batch * B * S, (batch * B + rowsOf(batch)) * S), {
                shape: [rowsOf(batch), S],
                dtype: 'i32',
              });
              const { out } = stageForward(model, pipe.slice, batch_BS, input, { training: false });
              return pipe.slice.stage === pipe.slice.stages - 1 ? nextTokenLoss(out, batch_BS) : out;
            }),
          ),
      },
      batches,
    );
    losses.forEach((loss, batch) => {
      total += loss * rowsOf(batch);
    });
  }
  const sum = Float64Array.of(total);
  await pipe.groups.world.allReduce(sum, 'sum');
  return sum[0]! / rows;
}
