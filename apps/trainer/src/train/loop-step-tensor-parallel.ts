// The step of `grin train --tp K` on one TP rank (tensor-parallel.ts has the split): each
// gradient-accumulation micro-batch runs tensorParallelStep over the TP group on this replica's rows,
// with the replica's share of the single process's draws (the same on its K ranks, so they route
// alike) and the balance counts summed over the DP group (in global mode with gradAccum > 1, the
// whole accumulated batch's, counted by a forward-only pass first, as in one process). Then the
// partial gradients of replicated parameters are summed over the TP group, every gradient is
// averaged over the DP group (the shards have the same shapes on every replica), clipped with the
// model's global norm (split parameters' squares summed over the TP group; after the DP average
// every replica holds the same gradients, so no DP term) and AdamW steps the shard.
// Test: cd apps/trainer && npx vitest run src/train/loop-step-tensor-parallel.test.ts src/train/tensor-parallel-train.test.ts
import type { ProcessGroup } from '@grin-moe/parallel';
import { balanceCounts } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { balancesOverAccumulation } from './balance-counts.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import type { StepLosses } from './loop-step.js';
import {
  clipTensorParallelGradients,
  disposePass,
  finishTensorParallelGradients,
  tensorParallelForward,
  tensorParallelStep,
} from './tensor-parallel.js';
import type { TensorParallelRun } from './tensor-parallel-rank.js';

/** Runs step `run.step` (already advanced) on this TP rank; the optimizer moves only when the loss is finite. */
export async function tensorParallelTrainStep(run: TrainRun, tp: TensorParallelRun): Promise<StepLosses> {
  const { optimizer, config, par } = run;
  const o = config.optim;
  const { shard, groups } = tp;
  optimizer.lr = run.schedule(run.step);
  const counts_LF = balancesOverAccumulation(config) ? await accumulatedShardCounts(run, tp) : null;
  let crossEntropySum = 0;
  let auxSum = 0;
  try {
    for (let micro = 0; micro < o.gradAccum; micro++) {
      const ids = microBatchIds(run, micro); // this replica's rows of the global micro-batch
      const draws = par.draws(run.generator);
      try {
        const out = await tensorParallelStep(groups.tensor, shard, ids, {
          training: true,
          generator: draws,
          ...config.regularize,
          balance: {
            alpha: o.lbAlpha,
            mode: o.lbMode,
            allReduce: par.allReduce,
            counts_LF: counts_LF ?? undefined,
          },
          lossScale: 1 / o.gradAccum,
        });
        crossEntropySum += out.crossEntropy;
        auxSum += out.auxLoss;
      } finally {
        ids.dispose();
      }
      par.settle(run.generator, draws);
    }
  } finally {
    counts_LF?.dispose();
  }
  try {
    await finishTensorParallelGradients(groups.tensor, shard);
    await averageOverReplicas(groups.replicas, [...shard.params.values()]);
    const gradNorm = await clipTensorParallelGradients(groups.tensor, shard, o.clip);
    const [lossSum, auxTotal] = await par.averageSums(Float32Array.of(crossEntropySum, auxSum));
    const loss = lossSum! / o.gradAccum;
    if (Number.isFinite(loss)) optimizer.stepOnce();
    return { loss, auxLoss: auxTotal! / o.gradAccum, gradNorm };
  } finally {
    optimizer.zeroGrad();
  }
}

/**
 * Every gradient averaged over the replicas, in one all-reduce. A parameter no micro-batch reached
 * on any replica (an expert nobody picked) keeps no gradient, so AdamW skips it as one process would.
 */
export async function averageOverReplicas(replicas: ProcessGroup, params: T.Tensor[]): Promise<void> {
  if (replicas.size === 1) return;
  const sizes = params.map((p) => p.size);
  const total = sizes.reduce((a, b) => a + b, 0);
  // The gradients end to end, then one flag per parameter: 1 where this rank has a gradient.
  const flat = new Float32Array(total + params.length);
  let at = 0;
  params.forEach((p, i) => {
    if (p.dtype !== 'f32') throw new TypeError(`tensor parallel: gradients of dtype ${p.dtype} (f32 only)`);
    if (p.grad) {
      flat.set(p.grad.toArray() as Float32Array, at);
      flat[total + i] = 1;
    }
    at += sizes[i]!;
  });
  await replicas.allReduce(flat, 'sum');
  at = 0;
  params.forEach((p, i) => {
    const from = at;
    at += sizes[i]!;
    if (flat[total + i] === 0) return;
    const mean = flat.slice(from, at).map((v) => v / replicas.size);
    const average = T.tensor(mean, { shape: [...p.shape], device: p.device });
    p.grad?.dispose();
    // Owned by the parameter, as backward leaves it: no caller's Scope may dispose it.
    p.grad = average.alias({ track: false });
    average.dispose();
  });
}

/**
 * This shard's [L, E+1] balance counts of the step's whole accumulated batch, summed over the DP
 * group: the micro-batches run forward over the TP group first, without a graph, with the draws the
 * real forwards then make (balance-counts.ts says why). `run.generator` does not move.
 */
async function accumulatedShardCounts(run: TrainRun, tp: TensorParallelRun): Promise<T.Tensor> {
  const { config, par } = run;
  const scratch = run.generator.clone();
  let summed_LF: T.Tensor | null = null;
  for (let micro = 0; micro < config.optim.gradAccum; micro++) {
    const ids = microBatchIds(run, micro);
    const draws = par.draws(scratch);
    const pass = await tensorParallelForward(tp.groups.tensor, tp.shard, ids, {
      training: true,
      grad: false,
      generator: draws,
      ...config.regularize,
    });
    par.settle(scratch, draws);
    const table_LF = T.noGrad(() => T.tidy(() => balanceCounts(pass.balance)));
    disposePass(pass);
    ids.dispose();
    const next_LF: T.Tensor = summed_LF ? T.noGrad(() => T.add(summed_LF!, table_LF)) : table_LF;
    if (summed_LF) {
      summed_LF.dispose();
      table_LF.dispose();
    }
    summed_LF = next_LF;
  }
  const global_LF = await par.allReduce(summed_LF!);
  if (global_LF !== summed_LF) summed_LF!.dispose();
  return global_LF;
}
