// The forward passes of `grin train --pp M --tp K` besides the step's own: a TP stage's forward at
// its place in the single process's random stream (every TP rank of the stage at the same place,
// each forward checking how much it drew, as under --pp), and the forward-only pass through the
// pipeline that counts the step's whole accumulated batch for global balance (balance-counts.ts
// says why), summed over the stage's DP group.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import { balanceCounts } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { pipelineCounts } from './balance-counts.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import { generatorAt, type PipelineRun } from './pipeline-run.js';
import {
  disposeTensorStage,
  type TensorStageOptions,
  type TensorStagePass,
  tensorStageForward,
} from './pipeline-tensor-stage.js';

/** This rank's part of the stage on `micro`, drawing at the stage's place in the step's stream. */
export async function tensorStageAt(
  run: TrainRun,
  pipe: PipelineRun,
  start: T.GeneratorState,
  micro: number,
  ids: T.Tensor,
  input: T.Tensor | null,
  options: Omit<TensorStageOptions, 'generator' | 'neftuneAlpha'>,
): Promise<TensorStagePass> {
  const from = generatorAt(start, BigInt(micro) * pipe.draws.perMicro + pipe.draws.before);
  const draws = run.par.draws(from);
  const pass = await tensorStageForward(pipe.groups.tensor!, pipe.shard!, pipe.slice, ids, input, {
    ...options,
    neftuneAlpha: run.config.regularize.neftuneAlpha,
    generator: draws,
  });
  const drawn = draws.counter - from.counter;
  if (drawn !== pipe.draws.own) {
    disposeTensorStage(pass, false);
    throw new Error(
      `pipeline stage ${pipe.slice.stage} (tensor rank ${pipe.groups.place.tensorRank}): micro-batch ${micro} drew ${drawn} Philox blocks, ${pipe.draws.own} expected; the stages cannot find their place in the single process's random stream`,
    );
  }
  return pass;
}

/**
 * This stage's [L, E+1] balance counts over the step's whole accumulated batch and its DP group:
 * the micro-batches run forward through the pipeline first, without a graph, with the draws the
 * real forwards then make.
 */
export async function accumulatedTensorStageCounts(
  run: TrainRun,
  pipe: PipelineRun,
  start: T.GeneratorState,
): Promise<T.Tensor> {
  const lastStage = pipe.slice.stage === pipe.slice.stages - 1;
  return pipelineCounts(run, pipe, pipe.shard!.config.hiddenSize, async (micro, input) => {
    const ids = microBatchIds(run, micro);
    const pass = await tensorStageAt(run, pipe, start, micro, ids, input, {
      training: true,
      grad: false,
      head: false,
    });
    ids.dispose();
    const table_LF = T.noGrad(() => T.tidy(() => balanceCounts(pass.balance)));
    // The last stage sends nothing on; pipelineForward takes its scalar.
    disposeTensorStage(pass, !lastStage);
    return { table_LF, out: lastStage ? T.zeros([1]) : pass.out };
  });
}
