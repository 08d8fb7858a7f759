// The report step of `grin train`: each step's metrics line (metrics.jsonl, root rank) and progress
// bar, and at the end the routing report (on a CPU copy: its batches are host tensors; under --pp
// and --tp on the whole model gathered on rank 0) and the run's summary.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/routing.test.ts
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainRun, TrainSummary } from './loop-state.js';
import type { StepLosses } from './loop-step.js';
import { gatherWholeRun } from './pipeline-gather.js';
import { gatherTensorPipelineRun } from './pipeline-tensor-gather.js';
import { writeRoutingReport } from './routing.js';
import { gatherTensorParallelRun } from './tensor-parallel-gather.js';

/** The metrics record of the step just taken; evaluation may add val_loss and val_ppl. */
export function stepRecord(run: TrainRun, losses: StepLosses, stepSeconds: number): Record<string, number> {
  return {
    step: run.step,
    tokens: run.tokensSeen,
    loss: losses.loss,
    lr: run.optimizer.lr,
    grad_norm: losses.gradNorm,
    tokens_per_s: run.tokensPerStep / stepSeconds,
    aux_loss: losses.auxLoss,
  };
}

export function reportStep(run: TrainRun, record: Record<string, number>): void {
  const { step, config } = run;
  if (run.par.isRoot) appendFileSync(join(run.runDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
  // Steps per second of this process only: a resumed run's earlier steps took no time here.
  const rate =
    (step - (run.data.resumed?.state.step ?? 0)) / Math.max(1e-9, (performance.now() - run.started) / 1000);
  run.progress.update({
    step,
    total: config.optim.steps,
    tokensPerSecond: record.tokens_per_s!,
    loss: record.loss!,
    lr: run.optimizer.lr,
    etaSeconds: (config.optim.steps - step) / rate,
  });
}

/** Writes the routing report, frees the device copy and sums the run up. */
export async function finishReport(run: TrainRun, stoppedEarly: string | null): Promise<TrainSummary> {
  const { placed, data, config } = run;
  if (run.pipeline || run.tensorParallel) {
    const gathered = run.pipeline?.shard
      ? await gatherTensorPipelineRun(run, run.pipeline, false)
      : run.pipeline
        ? await gatherWholeRun(run, run.pipeline, false)
        : await gatherTensorParallelRun(run, run.tensorParallel!, false);
    try {
      if (gathered) writeRoutingReport(run.runDir, gathered.model, data.validation, config, data.tokenizer);
    } finally {
      gathered?.release();
    }
  } else {
    const cpu = placed.toCpu();
    try {
      if (run.par.isRoot) writeRoutingReport(run.runDir, cpu.model, data.validation, config, data.tokenizer);
    } finally {
      if (cpu.copied) cpu.model.dispose();
    }
  }
  if (placed.device !== 'cpu') placed.dispose();
  const { unigram } = data;
  return {
    runDir: run.runDir,
    steps: run.step,
    finalValLoss: run.lastValLoss,
    unigramCrossEntropy: unigram.validationCrossEntropy,
    unigramTrainEntropy: unigram.trainEntropy,
    improvement: 1 - run.lastValLoss / unigram.validationCrossEntropy,
    stoppedEarly,
  };
}
