// Validation under `grin train --tp K`: replica 0's TP ranks run the fixed validation windows
// forward together (the TP segments, no graph), in batches of optim.batchSize rows as evaluate()
// takes them in one process; the value reaches every rank through one all-reduce over the run, so
// every rank keeps the same best and last validation loss.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-train.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import { disposePass, tensorParallelForward } from './tensor-parallel.js';
import type { TensorParallelRun } from './tensor-parallel-rank.js';

/** Mean next-token cross-entropy over the validation windows, in eval mode; the same on every rank. */
export async function validateTensorParallel(run: TrainRun, tp: TensorParallelRun): Promise<number> {
  const { ids, rows } = run.data.validation;
  const S = run.config.data.seqLen;
  const B = run.config.optim.batchSize;
  let total = 0;
  if (tp.groups.place.replica === 0) {
    for (let r = 0; r < rows; r += B) {
      const n = Math.min(B, rows - r);
      const batch_BS = T.tensor(ids.subarray(r * S, (r + n) * S), { shape: [n, S], dtype: 'i32' });
      const pass = await tensorParallelForward(tp.groups.tensor, tp.shard, batch_BS, {
        training: false,
        grad: false,
      });
      total += T.noGrad(() => T.tidy(() => nextTokenLoss(pass.logits_BSV, batch_BS).item())) * n;
      disposePass(pass);
      batch_BS.dispose();
    }
  }
  // Replica 0's TP ranks all hold the total: count it once.
  const sum = Float64Array.of(tp.groups.place.replica === 0 && tp.groups.place.tensorRank === 0 ? total : 0);
  await tp.groups.world.allReduce(sum, 'sum');
  return sum[0]! / rows;
}
