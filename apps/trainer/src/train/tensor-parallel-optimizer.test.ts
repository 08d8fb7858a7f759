// AdamW state across --tp: after 3 steps at tp=2 (f64, SparseMixer sampling, jitter, balance loss),
// the ranks' moments gathered are the single process's optimizer state under its numbering, and
// the single process's state sharded is each rank's own; a state that numbers past the model is named.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-optimizer.test.ts
import { localWorld } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { shardForTensorParallel } from './tensor-parallel.js';
import {
  batch,
  freshModel,
  rankStep,
  referenceStep,
  relativeDifference,
} from './tensor-parallel-fixtures.js';
import { gatherTensorParallelOptimizer, shardOptimizerState } from './tensor-parallel-optimizer.js';

describe('AdamW state under tensor parallelism', () => {
  it('gathers to the single process’s state and shards back to each rank’s own (f64, tp=2)', async () => {
    const model = freshModel('f64');
    const groups = localWorld(2);
    const shards = groups.map((g) => shardForTensorParallel(model, g.size, g.rank));
    const options = { lr: 0.01, weightDecay: 0.1 };
    const reference = new T.AdamW(model.parameters(), options);
    const ranks = shards.map((s) => new T.AdamW([...s.params.values()], options));
    for (let step = 0; step < 3; step++) {
      const ids = batch(step);
      const single = await referenceStep(model, ids, new T.Generator(11 + step));
      single.logits_BSV.dispose();
      reference.stepOnce();
      reference.zeroGrad();
      await Promise.all(
        groups.map(async (g, r) => {
          const out = await rankStep(g, shards[r]!, ids, new T.Generator(11 + step));
          out.logits_BSV.dispose();
          ranks[r]!.stepOnce();
          ranks[r]!.zeroGrad();
        }),
      );
    }
    const expected = reference.stateDict();
    const gathered = await Promise.all(
      groups.map((g, r) => gatherTensorParallelOptimizer(g, shards[r]!, ranks[r]!.stateDict())),
    );
    let worst = 0;
    for (const state of gathered) {
      expect(state.step).toBe(expected.step);
      expect(Object.keys(state.tensors).sort()).toEqual(Object.keys(expected.tensors).sort());
      for (const [key, t] of Object.entries(expected.tensors)) {
        expect(state.tensors[key]!.shape, key).toEqual(t.shape);
        worst = Math.max(worst, relativeDifference(state.tensors[key]!, t));
      }
    }
    expect(worst).toBeLessThan(1e-12);
    // The single process's state cut down to each rank is that rank's own (shapes and values).
    shards.forEach((shard, r) => {
      const { state, made } = shardOptimizerState(expected, shard);
      const own = ranks[r]!.stateDict();
      expect(Object.keys(state.tensors).sort()).toEqual(Object.keys(own.tensors).sort());
      for (const [key, t] of Object.entries(own.tensors)) {
        expect(state.tensors[key]!.shape, key).toEqual(t.shape);
        expect(relativeDifference(state.tensors[key]!, t), key).toBeLessThan(1e-12);
      }
      for (const t of made) t.dispose();
    });
    console.log(
      `AdamW moments gathered at tp=2 vs one process: max relative difference ${worst.toExponential(2)}`,
    );
    await Promise.all(groups.map((g) => g.close()));
  });

  it('names a state entry that numbers a parameter the model does not have', () => {
    const shard = shardForTensorParallel(freshModel('f64'), 2, 0);
    const count = shard.params.size;
    expect(() =>
      shardOptimizerState({ step: 1, tensors: { [`exp_avg.${count}`]: T.zeros([1]) } }, shard),
    ).toThrow(
      `tensor parallel: optimizer state 'exp_avg.${count}' numbers a parameter past the model's ${count}`,
    );
  });
});
