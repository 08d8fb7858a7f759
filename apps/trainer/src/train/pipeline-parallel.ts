// The run-level side of `grin train --dp D --pp P` (D x P ranks): a stage rank reads, draws and
// counts as a data-parallel rank of its stage's DP group does (its replica's shard of each batch,
// its rows' share of the draws, balance counts summed over the replicas), while stop decisions and
// readiness span the whole run. What differs in the step, evaluation and checkpoints is in
// loop-step-pipeline.ts, pipeline-evaluate.ts and pipeline-gather.ts.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import type { ProcessGroup } from '@grin-moe/parallel';
import { type StepParallel, splitModelRank } from './data-parallel.js';
import { type ParallelLayout, pipelineGroups } from './parallel-layout.js';

export function pipelineParallel(world: ProcessGroup, layout: ParallelLayout): StepParallel {
  const groups = pipelineGroups(world, layout);
  return {
    ...splitModelRank(world, groups.replicas, 'pipeline stage'),
    async averageSums(values) {
      await world.allReduce(values, 'avg');
      return values;
    },
    pipeline: groups,
  };
}
