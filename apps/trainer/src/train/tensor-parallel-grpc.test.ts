// Tensor parallelism over the real `grpc` process group (each rank with its own Store client, peer
// server and HTTP/2 streams on loopback, all ranks in this process): 3 training steps at tp=2 in
// f64 against the single process (losses, picks, every gradient) and then the gathered weights.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-grpc.test.ts
import { closeAll, grpcWorlds } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import {
  clipTensorParallelGradients,
  gatherTensorParallel,
  shardForTensorParallel,
} from './tensor-parallel.js';
import {
  batch,
  freshModel,
  gradientOf,
  rankStep,
  referenceStep,
  relativeDifference,
} from './tensor-parallel-fixtures.js';

describe('tensor parallelism over the grpc group', () => {
  it('3 AdamW steps at tp=2 in f64: losses, picks, gradients and weights of the single process', async () => {
    const worlds = await grpcWorlds(2);
    try {
      const groups = worlds.map((w) => w.group);
      const reference = freshModel('f64');
      const referenceOptimizer = new T.AdamW(reference.parameters(), { lr: 0.01 });
      const referenceGenerator = new T.Generator(7);
      const shards = groups.map((g) => shardForTensorParallel(freshModel('f64'), 2, g.rank));
      const optimizers = shards.map((s) => new T.AdamW([...s.params.values()], { lr: 0.01 }));
      const generators = shards.map(() => new T.Generator(7));
      for (let step = 0; step < 3; step++) {
        const ids = batch(step);
        const expected = await referenceStep(reference, ids, referenceGenerator);
        const outcomes = await Promise.all(
          groups.map((g, r) => rankStep(g, shards[r]!, ids, generators[r]!)),
        );
        const gradients = await Promise.all(
          groups.map((g, r) => gatherTensorParallel(g, shards[r]!, 'gradients')),
        );
        for (const [rank, got] of outcomes.entries()) {
          expect(
            Math.abs(got.crossEntropy - expected.crossEntropy),
            `rank ${rank} step ${step}`,
          ).toBeLessThan(1e-11);
          got.routing.forEach((layer, l) =>
            expect(layer.experts_TK.toArray()).toEqual(expected.routing[l]!.experts_TK.toArray()),
          );
          for (const [name, p] of reference.namedParameters())
            expect(relativeDifference(gradients[rank]!.get(name)!, gradientOf(p)), name).toBeLessThan(1e-11);
        }
        T.clipGradNorm(reference.parameters(), 4);
        referenceOptimizer.stepOnce();
        referenceOptimizer.zeroGrad();
        await Promise.all(
          groups.map(async (g, r) => {
            await clipTensorParallelGradients(g, shards[r]!, 4);
            optimizers[r]!.stepOnce();
            optimizers[r]!.zeroGrad();
          }),
        );
      }
      const weights = await Promise.all(groups.map((g, r) => gatherTensorParallel(g, shards[r]!, 'values')));
      for (const [name, p] of reference.namedParameters())
        for (const full of weights) expect(relativeDifference(full.get(name)!, p), name).toBeLessThan(1e-11);
    } finally {
      await closeAll(worlds);
    }
  }, 60_000);
});
