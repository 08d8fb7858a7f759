// Global load balance over the whole accumulated batch (GRIN's global balance, issue 13): with
// gradAccum > 1 and lbMode 'global', the balance loss of every micro-batch uses the expert counts
// f of all micro-batches of the step on all data-parallel ranks, not its own. f must be known
// before the first backward, so a counting pass runs the step's micro-batches forward first,
// without a graph and with the very draws the real forwards will make, sums their counts and
// all-reduces them once. It costs one forward per micro-batch and no memory beyond one
// micro-batch; keeping every micro-batch's graph until the last forward would cost no compute but
// gradAccum times the activation memory, which is what accumulation exists to avoid.
// Test: cd apps/trainer && npx vitest run src/train/global-balance.test.ts
import { pipelineForward } from '@grin-moe/parallel';
import { balanceCounts } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import type { PipelineRun } from './pipeline-run.js';

/** True when the step's micro-batches share one f: global counts and more than one micro-batch. */
export function balancesOverAccumulation(config: TrainConfig): boolean {
  return config.optim.lbMode === 'global' && config.optim.gradAccum > 1;
}

/**
 * The [L, E+1] counts table (balanceCounts) of step `run.step`'s whole accumulated batch, summed
 * over micro-batches and data-parallel ranks. `run.generator` does not move: the real forwards
 * draw the same numbers again.
 */
export async function accumulatedCounts(run: TrainRun): Promise<T.Tensor> {
  const { config, par } = run;
  const scratch = run.generator.clone();
  let summed_LF: T.Tensor | null = null;
  for (let micro = 0; micro < config.optim.gradAccum; micro++) {
    const draws = par.draws(scratch);
    const table_LF = T.noGrad(() =>
      T.tidy(() => {
        const ids = microBatchIds(run, micro);
        const out = run.placed
          .compute()
          .forward(ids, { training: true, generator: draws, ...config.regularize });
        return balanceCounts(out.balance);
      }),
    );
    par.settle(scratch, draws);
    summed_LF = addCounts(summed_LF, table_LF);
  }
  return countsOverRanks(run, summed_LF!);
}

/**
 * A pipeline stage's counting pass (--pp, --pp with --tp): every micro-batch forward through the
 * stages, where countMicro runs this stage on it and returns the stage's [L, E+1] table and what
 * the next stage receives (a placeholder on the last stage); the tables summed, then all-reduced
 * over the stage's data-parallel group.
 */
export async function pipelineCounts(
  run: TrainRun,
  pipe: PipelineRun,
  hiddenSize: number,
  countMicro: (micro: number, input: T.Tensor | null) => Promise<{ table_LF: T.Tensor; out: T.Tensor }>,
): Promise<T.Tensor> {
  const o = run.config.optim;
  let summed_LF: T.Tensor | null = null;
  await pipelineForward(
    pipe.groups.stages,
    {
      inputShape: () => [run.par.shard(0, o.batchSize).count, run.config.data.seqLen, hiddenSize],
      async forward(micro, input) {
        const { table_LF, out } = await countMicro(micro, input);
        summed_LF = addCounts(summed_LF, table_LF);
        return out;
      },
    },
    o.gradAccum,
  );
  return countsOverRanks(run, summed_LF!);
}

/** summed_LF + table_LF (either may be the first), the two inputs disposed. */
function addCounts(summed_LF: T.Tensor | null, table_LF: T.Tensor): T.Tensor {
  if (!summed_LF) return table_LF;
  const next_LF = T.noGrad(() => T.add(summed_LF, table_LF));
  summed_LF.dispose();
  table_LF.dispose();
  return next_LF;
}

/** The sum over the data-parallel group (this rank's table disposed when a new one comes back). */
async function countsOverRanks(run: TrainRun, summed_LF: T.Tensor): Promise<T.Tensor> {
  const global_LF = await run.par.allReduce(summed_LF);
  if (global_LF !== summed_LF) summed_LF.dispose();
  return global_LF;
}
