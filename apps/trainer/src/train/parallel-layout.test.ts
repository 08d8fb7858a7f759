// The dp x pp x tp layout: rank r is TP rank r mod tp of replica (r / tp) mod dp of stage r / (tp x dp)
// (with tp 1: stage r / dp of replica r mod dp), every rank's DP, pipeline and TP sub-groups hold the
// ranks they should (checked by all-reducing each rank's number over them; at dp 2 x pp 2 x tp 2 the
// pipeline joins the TP ranks of the same index), and layoutProblems names
// each flag or field that does not fit with the value that would.
// Test: cd apps/trainer && npx vitest run src/train/parallel-layout.test.ts
import { localWorld } from '@grin-moe/parallel';
import { describe, expect, it } from 'vitest';
import { mergeConfig } from './config.js';
import { tinyConfig } from './fixtures.js';
import { layoutProblems, pipelineGroups, rankPlace, tensorParallelGroups } from './parallel-layout.js';

describe('dp x pp x tp layout', () => {
  it('places rank r at stage r / dp of replica r mod dp when tp is 1', () => {
    expect([0, 1, 2, 3, 4, 5].map((r) => rankPlace(r, { dp: 2, pp: 3, tp: 1 }))).toEqual(
      [0, 1, 2, 3, 4, 5].map((r) => ({
        dp: 2,
        pp: 3,
        tp: 1,
        stage: Math.floor(r / 2),
        replica: r % 2,
        tensorRank: 0,
      })),
    );
    expect(() => rankPlace(6, { dp: 2, pp: 3, tp: 1 })).toThrow(
      /rank 6 is not one of the 6 ranks of --dp 2 --pp 3 --tp 1/,
    );
  });

  it('puts tensor parallel fastest, then data parallel, then pipeline (Megatron’s order)', () => {
    const layout = { dp: 2, pp: 2, tp: 2 };
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((r) => rankPlace(r, layout))).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((r) => ({
        ...layout,
        stage: Math.floor(r / 4),
        replica: Math.floor(r / 2) % 2,
        tensorRank: r % 2,
      })),
    );
  });

  it('builds each rank’s TP group (its replica’s shards) and DP group (the replicas of its shard)', async () => {
    const world = localWorld(6);
    const groups = world.map((g) => tensorParallelGroups(g, { dp: 3, pp: 1, tp: 2 }));
    const sums = await Promise.all(
      groups.map(async ({ tensor, replicas }, rank) => {
        const overTensor = Float32Array.of(rank);
        const overReplicas = Float32Array.of(rank);
        await Promise.all([tensor.allReduce(overTensor), replicas.allReduce(overReplicas)]);
        return [overTensor[0], overReplicas[0], tensor.rank, replicas.rank];
      }),
    );
    // Replica d holds ranks 2d, 2d+1; shard t is held by ranks t, t+2, t+4.
    expect(sums).toEqual([
      [1, 6, 0, 0],
      [1, 9, 1, 0],
      [5, 6, 0, 1],
      [5, 9, 1, 1],
      [9, 6, 0, 2],
      [9, 9, 1, 2],
    ]);
    await Promise.all(world.map((g) => g.close()));
  });

  it('builds each rank’s DP group (its stage’s replicas) and pipeline (its replica’s stages)', async () => {
    const world = localWorld(6);
    const groups = world.map((g) => pipelineGroups(g, { dp: 2, pp: 3, tp: 1 }));
    const sums = await Promise.all(
      groups.map(async ({ replicas, stages }, rank) => {
        const overReplicas = Float32Array.of(rank);
        const overStages = Float32Array.of(rank);
        await Promise.all([replicas.allReduce(overReplicas), stages.allReduce(overStages)]);
        return [overReplicas[0], overStages[0], replicas.rank, stages.rank];
      }),
    );
    // Stage s holds ranks 2s, 2s+1; replica d holds ranks d, d+2, d+4.
    expect(sums).toEqual([
      [1, 6, 0, 0],
      [1, 9, 1, 0],
      [5, 6, 0, 1],
      [5, 9, 1, 1],
      [9, 6, 0, 2],
      [9, 9, 1, 2],
    ]);
    await Promise.all(world.map((g) => g.close()));
  });

  it('builds each rank’s TP group (its stage’s shards), DP group and pipeline (of its TP rank) at dp 2 x pp 2 x tp 2', async () => {
    const world = localWorld(8);
    const groups = world.map((g) => pipelineGroups(g, { dp: 2, pp: 2, tp: 2 }));
    const sums = await Promise.all(
      groups.map(async ({ tensor, replicas, stages }, rank) => {
        const values = [rank, rank, rank].map((r) => Float32Array.of(r));
        await Promise.all([
          tensor!.allReduce(values[0]!),
          replicas.allReduce(values[1]!),
          stages.allReduce(values[2]!),
        ]);
        return [...values.map((v) => v[0]), tensor!.rank, replicas.rank, stages.rank];
      }),
    );
    // Rank r: TP rank r % 2 of replica (r / 2) % 2 of stage r / 4. TP group {r, r ^ 1}; DP group
    // {r, r ^ 2}; pipeline {r, r ^ 4}.
    expect(sums).toEqual(
      [0, 1, 2, 3, 4, 5, 6, 7].map((r) => [
        r + (r ^ 1),
        r + (r ^ 2),
        r + (r ^ 4),
        r % 2,
        Math.floor(r / 2) % 2,
        Math.floor(r / 4),
      ]),
    );
    expect(groups.map((g) => g.tensor === undefined)).toEqual(Array(8).fill(false));
    await Promise.all(world.map((g) => g.close()));
  });

  it('names the flag and what would do for each layout the config cannot take', () => {
    const config = tinyConfig('/tmp', '/tmp/none.jsonl'); // 2 layers, batch 4 x 16 tokens
    expect(layoutProblems(config, { dp: 2, pp: 2, tp: 1 })).toEqual([]);
    expect(layoutProblems(config, { dp: 1, pp: 3, tp: 1 })).toEqual([
      '--pp 3 needs at most 2 stages (model.numLayers is 2; each stage holds one decoder layer at least): pass --pp 2 or fewer',
    ]);
    expect(layoutProblems(config, { dp: 3, pp: 1, tp: 1 })).toEqual([
      '--dp 3 needs optim.batchSize (4) to divide by 3: use a batch size that is a multiple of 3',
    ]);
    const shortRows = mergeConfig(config, { data: { seqLen: 3 } }, 'test');
    expect(layoutProblems(shortRows, { dp: 4, pp: 1, tp: 1 })).toEqual([
      "--dp 4 needs each rank's tokens (batchSize / dp x seqLen = 1 x 3) to divide by 4, so each rank's random draws are exactly its rows' share: change optim.batchSize or data.seqLen",
    ]);
    expect(layoutProblems(mergeConfig(config, { device: 'cuda' }, 'test'), { dp: 1, pp: 2, tp: 1 })).toEqual([
      '--pp 2 runs on the CPU only (activations travel through the grpc group as CPU tensors): use --device cpu or --pp 1',
    ]);
    expect(layoutProblems(mergeConfig(config, { device: 'cuda' }, 'test'), { dp: 2, pp: 1, tp: 1 })).toEqual([
      '--dp 2 runs on the CPU only (gradients travel through the grpc group as CPU tensors; NCCL data parallelism is planned): use --device cpu or --dp 1',
    ]);
  });

  it('names what --tp needs: kv heads and intermediate size it divides, the CPU, no expert dropout', () => {
    const config = tinyConfig('/tmp', '/tmp/none.jsonl'); // 2 heads over 1 kv head, intermediate 24
    expect(layoutProblems(config, { dp: 1, pp: 1, tp: 2 })).toEqual([
      '--tp 2 needs model.numKvHeads (1; numHeads 2) to divide by 2: each rank takes whole key/value heads and their query heads',
    ]);
    const split = mergeConfig(config, { model: { numHeads: 4, numKvHeads: 2 } }, 'test');
    expect(layoutProblems(split, { dp: 2, pp: 1, tp: 2 })).toEqual([]);
    expect(layoutProblems(split, { dp: 1, pp: 1, tp: 5 })).toEqual([
      '--tp 5 needs model.numKvHeads (2; numHeads 4) to divide by 5: each rank takes whole key/value heads and their query heads',
      '--tp 5 needs model.intermediateSize (24) to divide by 5: each rank takes intermediateSize / tp of every expert',
    ]);
    expect(layoutProblems(split, { dp: 2, pp: 2, tp: 2 })).toEqual([]); // dp x pp x tp composes
    expect(layoutProblems(mergeConfig(split, { device: 'cuda' }, 'test'), { dp: 1, pp: 1, tp: 2 })).toEqual([
      '--tp 2 runs on the CPU only (partial sums travel through the grpc group as CPU tensors): use --device cpu or --tp 1',
    ]);
    const dropout = mergeConfig(split, { regularize: { expertDropout: 0.2 } }, 'test');
    expect(layoutProblems(dropout, { dp: 1, pp: 1, tp: 2 })).toEqual([
      '--tp 2 does not support regularize.expertDropout (0.2): each rank would need its columns of the one expert mask; set it to 0 or use --tp 1',
    ]);
  });
});
