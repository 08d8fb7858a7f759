// One tensor-parallel rank as its own process, for tensor-parallel-processes.test.ts (which bundles
// this file and starts WORLD_SIZE copies): joins the grpc world from the torchrun variables, runs
// 3 AdamW steps of the fixtures' f64 model at tp = WORLD_SIZE, and writes its losses and the
// gathered full weights as JSON to $GRIN_TP_OUT (rank 0) so the test can compare them.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-processes.test.ts
import { writeFileSync } from 'node:fs';
import { initWorld } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import {
  clipTensorParallelGradients,
  gatherTensorParallel,
  shardForTensorParallel,
} from './tensor-parallel.js';
import { batch, freshModel, rankStep } from './tensor-parallel-fixtures.js';

const world = await initWorld({ backend: 'grpc' });
try {
  const group = world.group;
  const shard = shardForTensorParallel(freshModel('f64'), group.size, group.rank);
  const optimizer = new T.AdamW([...shard.params.values()], { lr: 0.01 });
  const generator = new T.Generator(7);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const out = await rankStep(group, shard, batch(step), generator);
    losses.push(out.crossEntropy + out.auxLoss);
    await clipTensorParallelGradients(group, shard, 4);
    optimizer.stepOnce();
    optimizer.zeroGrad();
  }
  const weights = await gatherTensorParallel(group, shard, 'values');
  if (group.rank === 0) {
    const named = Object.fromEntries(
      [...weights].map(([name, t]) => [name, Array.from(t.toArray() as Float64Array)]),
    );
    writeFileSync(process.env.GRIN_TP_OUT!, JSON.stringify({ pid: process.pid, losses, weights: named }));
  }
} finally {
  await world.close();
}
