// Global load balance over the whole accumulated batch (GRIN's global balance, issue 13): with
// gradAccum > 1 and lbMode 'global', the balance loss of every micro-batch uses the expert counts
// f of all micro-batches of the step on all data-parallel ranks, not its own. f must be known
// before the first backward, so a counting pass runs the step's micro-batches forward first,
// without a graph and with the very draws the real forwards will make, sums their counts and
// all-reduces them once. It costs one forward per micro-batch and no memory beyond one
// micro-batch; keeping every micro-batch's graph until the last forward would cost no compute but
// gradAccum times the activation memory, which is what accumulation exists to avoid.
// Test: cd apps/trainer && npx vitest run src/train/global-balance.test.ts
import { balanceCounts } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { TrainConfig } from './config.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';

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
