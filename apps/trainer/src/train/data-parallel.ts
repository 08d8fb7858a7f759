// The data-parallel side of `grin train`: what the training loop asks of the run's ranks. One
// process (`singleProcess`) answers with identities; a DP rank (`dataParallel`) reads its shard of
// each batch, draws its rows' share of the single process's random numbers, sums the balance
// counts over the group in one call, averages gradients in buckets during backward, and agrees
// with the other ranks on logged sums and stop decisions. Only rank 0 writes the run directory.
// Test: cd apps/trainer && npx vitest run src/train/data-parallel.test.ts
import { GrinModel } from '@grin-moe/model-grin';
import {
  dataShard,
  GradientBuckets,
  globalCounts,
  type ProcessGroup,
  ShardedGenerator,
} from '@grin-moe/parallel';
import type { AllReduceSum } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { PlacedModel } from './device.js';
import type { PipelineGroups, TensorParallelGroups } from './parallel-layout.js';

export interface StepParallel {
  /** Rank 0 of the run: the only one that logs and writes metrics, checkpoints and reports. */
  readonly isRoot: boolean;
  readonly size: number;
  /** Rows [first, first+count) of the global micro-batch this rank reads. */
  shard(first: number, count: number): { first: number; count: number };
  /** The stream this rank's forward draws from (its rows' share of `generator`'s draws). */
  draws(generator: T.Generator): T.Generator;
  /** After the forward: `generator` continues from where the rank's stream ended. */
  settle(generator: T.Generator, used: T.Generator): void;
  /** balanceLoss's sum over the data-parallel group. */
  readonly allReduce: AllReduceSum;
  /** The model to run; `last` marks the micro-step whose backward reduces the gradients. */
  model(placed: PlacedModel, last: boolean): GrinModel;
  /** After the last backward: every gradient is the group average. */
  finishGradients(): Promise<void>;
  /** The mean over ranks of per-rank sums (the logged loss), in place; returns `values`. */
  averageSums(values: Float32Array): Promise<Float32Array>;
  /** True on every rank when it is true on any (stop decisions stay in step). */
  any(flag: boolean): Promise<boolean>;
  /** Waits until rank 0 has prepared the run directory. */
  ready(): Promise<void>;
  /** Under --pp: this rank's stage and groups (pipeline-parallel.ts); the step then runs 1F1B. */
  readonly pipeline?: PipelineGroups;
  /** Under --tp: this rank's place and groups (tensor-parallel-rank.ts); the step then runs TP segments. */
  readonly tensorParallel?: TensorParallelGroups;
}

export const singleProcess: StepParallel = {
  isRoot: true,
  size: 1,
  shard: (first, count) => ({ first, count }),
  draws: (generator) => generator,
  settle: () => {},
  allReduce: (t) => T.clone(t),
  model: (placed) => placed.compute(),
  finishGradients: async () => {},
  averageSums: async (values) => values,
  any: async (flag) => flag,
  ready: async () => {},
};

export function dataParallel(group: ProcessGroup, options: { bucketBytes?: number } = {}): StepParallel {
  let buckets: GradientBuckets | null = null;
  return {
    isRoot: group.rank === 0,
    size: group.size,
    shard(first, count) {
      const part = dataShard(count, group.size, group.rank);
      return { first: first + part.first, count: part.count };
    },
    draws: (generator) => new ShardedGenerator(generator, group.size, group.rank),
    settle: (generator, used) => generator.setState(used.getState()),
    allReduce: globalCounts(group),
    model(placed, last) {
      const model = placed.compute();
      if (!last) return model;
      buckets ??= new GradientBuckets(group, model.parameters(), options.bucketBytes);
      const tapped = buckets.tapped();
      const names = model.namedParameters().map(([name]) => name);
      return new GrinModel(
        model.config,
        new Map(names.map((name, i) => [name, tapped[i]!])),
        model.dtype,
        model.device,
      );
    },
    finishGradients: () => buckets?.finish() ?? Promise.resolve(),
    async averageSums(values) {
      await group.allReduce(values, 'avg');
      return values;
    },
    async any(flag) {
      const value = Float32Array.of(flag ? 1 : 0);
      await group.allReduce(value, 'max');
      return value[0] === 1;
    },
    ready: () => group.barrier(),
  };
}

/**
 * A rank whose step is run by a split model (pipeline stages, tensor-parallel shards): it reads,
 * draws and counts as a rank of its shard's DP group (`replicas`), while the root, the stop
 * decisions and readiness span the whole run (`world`). `label` names the path in the errors of
 * the two calls the split step makes itself.
 */
export function splitModelRank(world: ProcessGroup, replicas: ProcessGroup, label: string): StepParallel {
  return {
    ...dataParallel(replicas),
    isRoot: world.rank === 0,
    size: world.size,
    model() {
      throw new Error(`${label}: the split step runs the model's parts itself`);
    },
    finishGradients() {
      throw new Error(`${label}: gradients are finished by the split step`);
    },
    async any(flag) {
      const value = Float32Array.of(flag ? 1 : 0);
      await world.allReduce(value, 'max');
      return value[0] === 1;
    },
    ready: () => world.barrier(),
  };
}
