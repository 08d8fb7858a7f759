// The tensor-parallel parameter layout: each rank's slices of q/k/v/o and of every expert's
// w1/w3/w2 (shapes and contents), the gather back to full HF-named tensors bit for bit, and a
// checkpoint saved under tp=2 after training steps that loads at tp=1 and re-shards to the same bits.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel-shard.test.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel, saveModel } from '@grin-moe/model-grin';
import { localWorld } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import {
  clipTensorParallelGradients,
  gatherShards,
  gatherTensorParallelModel,
  shardAxis,
  shardForTensorParallel,
} from './tensor-parallel.js';
import { batch, freshModel, rankStep, tpConfig } from './tensor-parallel-fixtures.js';

const bits = (t: T.Tensor) => Array.from(t.toArray() as Float32Array);

describe('tensor-parallel shards', () => {
  it.each([1, 2, 4])('tp=%i: heads and expert slices per rank, gathered back bit for bit', (tp) => {
    const model = freshModel('f32');
    const shards = Array.from({ length: tp }, (_, r) => shardForTensorParallel(model, tp, r));
    const { hiddenSize: D, headDim: Dh, intermediateSize: I } = tpConfig;
    const [H, Hkv] = [tpConfig.numAttentionHeads / tp, tpConfig.numKeyValueHeads / tp];
    const layer = 'model.layers.1';
    const expert = `${layer}.block_sparse_moe.experts.3`;
    const shapes: Record<string, number[]> = {
      [`${layer}.self_attn.q_proj.weight`]: [H * Dh, D],
      [`${layer}.self_attn.q_proj.bias`]: [H * Dh],
      [`${layer}.self_attn.k_proj.weight`]: [Hkv * Dh, D],
      [`${layer}.self_attn.v_proj.bias`]: [Hkv * Dh],
      [`${layer}.self_attn.o_proj.weight`]: [D, H * Dh],
      [`${layer}.self_attn.o_proj.bias`]: [D],
      [`${layer}.block_sparse_moe.gate.weight`]: [tpConfig.numLocalExperts, D],
      [`${expert}.w1.weight`]: [I / tp, D],
      [`${expert}.w3.weight`]: [I / tp, D],
      [`${expert}.w2.weight`]: [D, I / tp],
      'lm_head.weight': [tpConfig.vocabSize, D],
    };
    for (const shard of shards) {
      for (const [name, shape] of Object.entries(shapes))
        expect(shard.params.get(name)!.shape, name).toEqual(shape);
      // rank r holds rows r*I/tp.. of w1 and the same columns of w2: one slice of the intermediate dim
      const w1 = model.params.get(`${expert}.w1.weight`)!;
      const rows = [shard.rank * (I / tp), (shard.rank + 1) * (I / tp)] as [number, number];
      expect(bits(shard.params.get(`${expert}.w1.weight`)!)).toEqual(bits(w1.slice(rows)));
      const w2 = model.params.get(`${expert}.w2.weight`)!;
      expect(bits(shard.params.get(`${expert}.w2.weight`)!)).toEqual(bits(w2.slice(null, rows)));
      expect(shard.params.get(`${expert}.w1.weight`)).not.toBe(w1); // the shard owns its tensors
    }
    const full = gatherShards(
      tpConfig,
      shards.map((s) => s.params),
    );
    expect([...full.keys()]).toEqual([...model.params.keys()]);
    for (const [name, t] of model.params) expect(bits(full.get(name)!), name).toEqual(bits(t));
    expect(shardAxis('model.layers.0.self_attn.o_proj.bias')).toBeNull(); // added once, by rank 0
  });

  it('a checkpoint saved under tp=2 after training steps loads at tp=1 and re-shards to the same bits', async () => {
    const groups = localWorld(2);
    const shards = groups.map((g) => shardForTensorParallel(freshModel('f32'), 2, g.rank));
    const optimizers = shards.map((s) => new T.AdamW([...s.params.values()], { lr: 0.01 }));
    const generators = shards.map(() => new T.Generator(5));
    for (let step = 0; step < 2; step++)
      await Promise.all(
        groups.map(async (g, r) => {
          await rankStep(g, shards[r]!, batch(step), generators[r]!);
          await clipTensorParallelGradients(g, shards[r]!, 1);
          optimizers[r]!.stepOnce();
          optimizers[r]!.zeroGrad();
        }),
      );
    const gathered = await Promise.all(groups.map((g, r) => gatherTensorParallelModel(g, shards[r]!)));
    const dir = mkdtempSync(join(tmpdir(), 'grin-tp-'));
    try {
      saveModel(dir, gathered[0]!); // rank 0 writes; every rank holds the same full tensors
      const loaded = loadModel(dir);
      for (const [name, t] of loaded.params) {
        expect(bits(t), name).toEqual(bits(gathered[0]!.params.get(name)!));
        expect(bits(t), name).toEqual(bits(gathered[1]!.params.get(name)!));
      }
      const initial = freshModel('f32');
      const moved = [...loaded.params].some(
        ([name, t]) => `${bits(t)}` !== `${bits(initial.params.get(name)!)}`,
      );
      expect(moved).toBe(true); // the steps changed the weights, so the round trip is not of the init
      for (const shard of shards) {
        const again = shardForTensorParallel(loaded, 2, shard.rank);
        for (const [name, t] of shard.params) expect(bits(again.params.get(name)!), name).toEqual(bits(t));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
