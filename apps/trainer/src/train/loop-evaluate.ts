// The evaluate step of `grin train`: mean next-token cross-entropy over the fixed validation
// windows, in eval mode on the model's device, run on the root rank every eval.every steps and at
// the last step (the best value is checkpointed). Pipeline stages (pipeline-evaluate.ts) and TP
// ranks (tensor-parallel-evaluate.ts; both: pipeline-tensor-evaluate.ts) evaluate together, and every rank gets the value.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import { GrinModel, nextTokenLoss } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import type { PlacedModel } from './device.js';
import type { TrainRun } from './loop-state.js';
import { validateThroughPipeline } from './pipeline-evaluate.js';
import { validateThroughTensorPipeline } from './pipeline-tensor-evaluate.js';
import { validateTensorParallel } from './tensor-parallel-evaluate.js';

/** Evaluates when the step is due, adding val_loss and val_ppl to the step's metrics record. */
export async function evaluateIfDue(run: TrainRun, record: Record<string, number>): Promise<void> {
  const { step, config } = run;
  if (step % config.eval.every !== 0 && step !== config.optim.steps) return;
  // Data parallel: rank 0 holds the whole model and evaluates alone.
  if (!run.par.isRoot && !run.pipeline && !run.tensorParallel) return;
  const valLoss = await validate(run);
  run.lastValLoss = valLoss;
  record.val_loss = valLoss;
  record.val_ppl = Math.exp(valLoss);
  run.bestValLoss = run.bestValLoss === null ? valLoss : Math.min(run.bestValLoss, valLoss);
  run.progress.log(
    `step ${step}: validation loss ${valLoss.toFixed(4)} (perplexity ${Math.exp(valLoss).toFixed(2)})`,
  );
}

export async function validate(run: TrainRun): Promise<number> {
  if (run.pipeline?.shard) return validateThroughTensorPipeline(run, run.pipeline);
  if (run.pipeline) return validateThroughPipeline(run, run.pipeline);
  if (run.tensorParallel) return validateTensorParallel(run, run.tensorParallel);
  const { validation } = run.data;
  return evaluate(run.placed, validation.ids, validation.rows, run.config);
}

/** Mean next-token cross-entropy over the fixed validation windows, in eval mode, on the model's device. */
export function evaluate(
  source: GrinModel | PlacedModel,
  ids: Int32Array,
  rows: number,
  config: TrainConfig,
): number {
  const S = config.data.seqLen;
  const B = config.optim.batchSize;
  let total = 0;
  let count = 0;
  T.noGrad(() => {
    for (let r = 0; r < rows; r += B) {
      const n = Math.min(B, rows - r);
      T.tidy(() => {
        const model = source instanceof GrinModel ? source : source.compute();
        const batch = T.tensor(ids.subarray(r * S, (r + n) * S), {
          shape: [n, S],
          dtype: 'i32',
          device: model.device,
        });
        const { logits_BSV } = model.forward(batch, { training: false });
        total += nextTokenLoss(logits_BSV, batch).item() * n;
        count += n;
      });
    }
  });
  return total / count;
}
