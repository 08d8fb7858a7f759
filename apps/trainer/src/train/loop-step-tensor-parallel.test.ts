// The DP average of a TP rank's gradients (averageOverReplicas): every gradient becomes the mean
// over the replicas; a parameter only some replicas reached is averaged with zeros for the others
// (as one process's sum over the whole batch would be); one no replica reached keeps no gradient,
// so AdamW skips it as one process would (an expert no token picked).
// Test: cd apps/trainer && npx vitest run src/train/loop-step-tensor-parallel.test.ts
import { localWorld } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { averageOverReplicas } from './loop-step-tensor-parallel.js';

describe('averageOverReplicas', () => {
  it('averages present gradients, counts absent ones as zeros, and leaves untouched parameters without', async () => {
    const world = localWorld(2);
    // Per rank: [reached on both, reached on rank 0 only, reached nowhere].
    const params = world.map(() => [T.zeros([2]), T.zeros([3]), T.zeros([1])]);
    params[0]![0]!.grad = T.tensor([1, 2]);
    params[1]![0]!.grad = T.tensor([3, 6]);
    params[0]![1]!.grad = T.tensor([4, 8, 2]);
    await Promise.all(world.map((g, r) => averageOverReplicas(g, params[r]!)));
    for (const [a, b, c] of params) {
      expect(Array.from(a!.grad!.toArray())).toEqual([2, 4]);
      expect(Array.from(b!.grad!.toArray())).toEqual([2, 4, 1]);
      expect(c!.grad).toBeNull();
    }
    await Promise.all(world.map((g) => g.close()));
  });
});
