// The whole model (and its AdamW state) of a `grin train --pp` run, gathered on rank 0 for what
// rank 0 writes: checkpoints and the routing report. Replica 0's stages send their parameters (and
// optimizer moments) to its first stage in one message each; rank 0 numbers them as one process
// would, so a checkpoint is the single process's model.safetensors and optimizer.safetensors and
// resumes at any --dp/--pp. Memory on rank 0: the whole model (and its moments) while it writes.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import { GrinModel } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import type { TrainRun } from './loop-state.js';
import type { PipelineRun } from './pipeline-run.js';
import { stageOwns, stageSlice } from './pipeline-stage.js';

export interface GatheredRun {
  model: GrinModel;
  /** What writeCheckpoint reads of an optimizer, numbered over the whole model. */
  optimizer: { lr: number; stateDict(): { step: number; tensors: Record<string, T.Tensor> } };
  /** Frees what was received (this stage's own tensors stay). */
  release(): void;
}

/**
 * On rank 0: the whole model, with the optimizer state when `withOptimizer`. Every rank of replica
 * 0 must call it at the same point (the others return null at once).
 */
export async function gatherWholeRun(
  run: TrainRun,
  pipe: PipelineRun,
  withOptimizer: boolean,
): Promise<GatheredRun | null> {
  if (pipe.groups.place.replica !== 0) return null;
  return gatherStages(run, pipe, [...pipe.params.values()], run.optimizer.stateDict(), withOptimizer);
}

/**
 * The stages' whole parameters (in each stage's order) and optimizer states (numbered in each
 * stage's order) on the first stage, from one rank of each stage of replica 0; null elsewhere.
 */
export async function gatherStages(
  run: TrainRun,
  pipe: PipelineRun,
  ownTensors: T.Tensor[],
  own: { step: number; tensors: Record<string, T.Tensor> },
  withOptimizer: boolean,
): Promise<GatheredRun | null> {
  const { place, stages } = pipe.groups;
  // Optimizer slots (exp_avg, exp_avg_sq, ...), the same on every stage.
  const slots = withOptimizer
    ? [...new Set(Object.keys(own.tensors).map((k) => k.split('.')[0]!))].sort()
    : [];
  if (place.stage > 0) {
    const parts = [
      ...ownTensors,
      ...slots.flatMap((slot) => ownTensors.map((_, j) => own.tensors[`${slot}.${j}`]!)),
    ];
    await stages.send(concatenated(parts), 0);
    return null;
  }
  const received: T.Tensor[] = [];
  const params = new Map<string, T.Tensor>();
  const state: Record<string, T.Tensor> = {};
  pipe.wholeIndex.forEach((w, j) => {
    params.set(pipe.whole[w]!.name, ownTensors[j]!);
    for (const slot of slots) state[`${slot}.${w}`] = own.tensors[`${slot}.${j}`]!;
  });
  for (let stage = 1; stage < place.pp; stage++) {
    const slice = stageSlice(run.placed.config.numHiddenLayers, place.pp, stage);
    const indices = pipe.whole.flatMap((p, w) => (stageOwns(slice, p.name) ? [w] : []));
    const sizes = indices.map((w) => pipe.whole[w]!.shape.reduce((a, b) => a * b, 1));
    const perCopy = sizes.reduce((a, b) => a + b, 0);
    const data = new Float32Array(perCopy * (1 + slots.length));
    await stages.recv(data, stage);
    let offset = 0;
    const take = (w: number) => {
      const shape = pipe.whole[w]!.shape;
      const size = shape.reduce((a, b) => a * b, 1);
      const t = T.tensor(data.slice(offset, offset + size), { shape });
      offset += size;
      received.push(t);
      return t;
    };
    for (const w of indices) params.set(pipe.whole[w]!.name, take(w));
    for (const slot of slots) for (const w of indices) state[`${slot}.${w}`] = take(w);
  }
  const ordered = new Map(pipe.whole.map(({ name }) => [name, params.get(name)!]));
  return {
    model: new GrinModel(run.placed.config, ordered, 'f32', 'cpu'),
    optimizer: { lr: run.optimizer.lr, stateDict: () => ({ step: own.step, tensors: state }) },
    release: () => {
      for (const t of received) t.dispose();
    },
  };
}

function concatenated(parts: T.Tensor[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, t) => a + t.size, 0));
  let offset = 0;
  for (const t of parts) {
    out.set(t.toArray() as Float32Array, offset);
    offset += t.size;
  }
  return out;
}
