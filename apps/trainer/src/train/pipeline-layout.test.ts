// The dp x pp layout: rank r is stage floor(r / dp) of replica r mod dp, every rank's DP and pipeline
// sub-groups hold the ranks they should (checked by all-reducing each rank's number over them), and
// layoutProblems names each flag or field that does not fit with the value that would.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-layout.test.ts
import { localWorld } from '@grin-moe/parallel';
import { describe, expect, it } from 'vitest';
import { mergeConfig } from './config.js';
import { tinyConfig } from './fixtures.js';
import { layoutProblems, pipelineGroups, rankPlace } from './pipeline-layout.js';

describe('dp x pp layout', () => {
  it('places rank r at stage r / dp of replica r mod dp', () => {
    expect([0, 1, 2, 3, 4, 5].map((r) => rankPlace(r, { dp: 2, pp: 3 }))).toEqual(
      [0, 1, 2, 3, 4, 5].map((r) => ({ dp: 2, pp: 3, stage: Math.floor(r / 2), replica: r % 2 })),
    );
    expect(() => rankPlace(6, { dp: 2, pp: 3 })).toThrow(/rank 6 is not one of the 6 ranks of --dp 2 --pp 3/);
  });

  it('builds each rank’s DP group (its stage’s replicas) and pipeline (its replica’s stages)', async () => {
    const world = localWorld(6);
    const groups = world.map((g) => pipelineGroups(g, { dp: 2, pp: 3 }));
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

  it('names the flag and what would do for each layout the config cannot take', () => {
    const config = tinyConfig('/tmp', '/tmp/none.jsonl'); // 2 layers, batch 4 x 16 tokens
    expect(layoutProblems(config, { dp: 2, pp: 2 })).toEqual([]);
    expect(layoutProblems(config, { dp: 1, pp: 3 })).toEqual([
      '--pp 3 needs at most 2 stages (model.numLayers is 2; each stage holds one decoder layer at least): pass --pp 2 or fewer',
    ]);
    expect(layoutProblems(config, { dp: 3, pp: 1 })).toEqual([
      '--dp 3 needs optim.batchSize (4) to divide by 3: use a batch size that is a multiple of 3',
    ]);
    const shortRows = mergeConfig(config, { data: { seqLen: 3 } }, 'test');
    expect(layoutProblems(shortRows, { dp: 4, pp: 1 })).toEqual([
      "--dp 4 needs each rank's tokens (batchSize / dp x seqLen = 1 x 3) to divide by 4, so each rank's random draws are exactly its rows' share: change optim.batchSize or data.seqLen",
    ]);
    expect(layoutProblems(mergeConfig(config, { device: 'cuda' }, 'test'), { dp: 1, pp: 2 })).toEqual([
      '--pp 2 runs on the CPU only (activations travel through the grpc group as CPU tensors): use --device cpu or --pp 1',
    ]);
  });
});
