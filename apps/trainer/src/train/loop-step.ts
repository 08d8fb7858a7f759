// The step of `grin train`: gradient accumulation over micro-batches (this rank's rows of each),
// cross-entropy plus the load-balancing loss (in global mode with gradAccum > 1, balanced against
// the counts of the whole accumulated batch: balance-counts.ts), gradients finished across ranks,
// clipped, and AdamW applied unless the loss is not finite. The loss sums stay on the device; a
// step reads them back once, together with the gradient norm. A pipeline stage (--pp) steps in
// loop-step-pipeline.ts instead, a TP rank (--tp) in loop-step-tensor-parallel.ts, a TP rank of a
// stage (--pp with --tp) in loop-step-pipeline-tensor.ts.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts src/train/data-parallel.test.ts src/train/global-balance.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { accumulatedCounts, balancesOverAccumulation } from './balance-counts.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import { pipelineTrainStep } from './loop-step-pipeline.js';
import { pipelineTensorTrainStep } from './loop-step-pipeline-tensor.js';
import { tensorParallelTrainStep } from './loop-step-tensor-parallel.js';

export interface StepLosses {
  /** Mean cross-entropy over the step's micro-batches (and ranks). */
  loss: number;
  auxLoss: number;
  gradNorm: number;
}

/** Runs step `run.step` (already advanced); the optimizer moves only when the loss is finite. */
export async function trainStep(run: TrainRun): Promise<StepLosses> {
  if (run.pipeline?.shard) return pipelineTensorTrainStep(run, run.pipeline);
  if (run.pipeline) return pipelineTrainStep(run, run.pipeline);
  if (run.tensorParallel) return tensorParallelTrainStep(run, run.tensorParallel);
  const { optimizer, par, placed } = run;
  const o = run.config.optim;
  optimizer.lr = run.schedule(run.step);
  const counts_LF = balancesOverAccumulation(run.config) ? await accumulatedCounts(run) : null;
  let sums_2: T.Tensor | null = null;
  for (let micro = 0; micro < o.gradAccum; micro++) sums_2 = await microStep(run, micro, sums_2, counts_LF);
  counts_LF?.dispose();
  await par.finishGradients();
  // The clip coefficient stays on the device: AdamW applies it as it reads each gradient.
  let clipScale: T.Tensor | null = null;
  const [localLossSum, localAuxSum, gradNorm] = T.tidy(() => {
    const { norm, scale } = T.gradNormScale(placed.parameters(), o.clip);
    clipScale = scale.alias({ track: false }); // outlives this scope, until the step is taken
    return Array.from(T.concat([sums_2!, T.cast(norm, 'f32').reshape([1])]).toArray() as Float32Array);
  }) as [number, number, number];
  sums_2!.dispose();
  const gradScale = clipScale as unknown as T.Tensor;
  try {
    const [lossSum, auxSum] = await par.averageSums(Float32Array.of(localLossSum, localAuxSum));
    const loss = lossSum / o.gradAccum;
    if (Number.isFinite(loss)) {
      // on the side stream the step overlaps the next forward, which waits per parameter
      if (run.sideStep) run.sideStep((fence) => optimizer.stepOnce({ gradScale, afterParam: fence }));
      else optimizer.stepOnce({ gradScale });
    }
    return { loss, auxLoss: auxSum / o.gradAccum, gradNorm };
  } finally {
    gradScale.dispose();
    optimizer.zeroGrad();
  }
}

/**
 * Forward and backward of one micro-batch; returns `sums_2` plus its (cross-entropy, aux) pair.
 * `counts_LF`: the whole accumulated batch's counts, or null to count this micro-batch's own.
 */
async function microStep(
  run: TrainRun,
  micro: number,
  sums_2: T.Tensor | null,
  counts_LF: T.Tensor | null,
): Promise<T.Tensor> {
  const { config, par, generator } = run;
  const o = config.optim;
  const scope = new T.Scope();
  try {
    const ids = microBatchIds(run, micro); // this rank's rows of the global micro-batch
    const draws = par.draws(generator);
    const out = par
      .model(run.placed, micro === o.gradAccum - 1)
      .forward(ids, { training: true, generator: draws, ...config.regularize });
    par.settle(generator, draws);
    const ce = nextTokenLoss(out.logits_BSV, ids);
    const { loss: aux } = await balanceLoss(out.balance, {
      alpha: o.lbAlpha,
      mode: o.lbMode,
      allReduce: par.allReduce,
      counts_LF: counts_LF ?? undefined,
    });
    const total = T.div(T.add(ce, aux), o.gradAccum);
    total.backward();
    const pair_2 = T.noGrad(() =>
      T.concat([T.cast(ce, 'f32').reshape([1]), T.cast(aux, 'f32').reshape([1])]),
    );
    const next_2: T.Tensor = sums_2 ? T.add(sums_2, pair_2) : pair_2;
    sums_2?.dispose();
    return next_2.alias({ track: false }); // outlives the micro-step's scope
  } finally {
    scope.dispose();
  }
}
