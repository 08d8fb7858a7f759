// The step of `grin train --pp M --tp K` on one TP rank of one stage: the step's gradient-
// accumulation micro-batches run under 1F1B (pipelineStep) with the stage's own asynchronous
// backward (pipeline-tensor-stage.ts: segment by segment, all-reduces over the stage's TP group in
// between). Each TP rank of a stage pipelines with the TP rank of the same index in the next stage.
// Draws are at the stage's place in the single process's stream, as under --pp, the same on the
// stage's TP ranks; balance counts as under --pp (over the DP group; in global mode with gradAccum
// > 1, over the whole accumulated batch, pipeline-tensor-counts.ts) and the balance loss enters the
// backward on TP rank 0 only, as under --tp. Then: TP finish (replicated in-segment parameters'
// parts summed), DP average over the stage's DP group, the global norm over every stage and shard
// (replicated parameters counted once) in the one all-reduce over the run that also carries the
// losses, clip, AdamW on the shard.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import { pipelineStep } from '@grin-moe/parallel';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { balancesOverAccumulation } from './balance-counts.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import type { StepLosses } from './loop-step.js';
import { averageOverReplicas } from './loop-step-tensor-parallel.js';
import { generatorAt, type PipelineRun } from './pipeline-run.js';
import { accumulatedTensorStageCounts, tensorStageAt } from './pipeline-tensor-counts.js';
import { disposeTensorStage, type TensorStagePass, tensorStageBackward } from './pipeline-tensor-stage.js';
import { finishTensorParallelGradients } from './tensor-parallel.js';
import { shardAxis } from './tensor-parallel-shard.js';

interface MicroRecord {
  pass: TensorStagePass;
  ids: T.Tensor;
  crossEntropy: T.Tensor | null;
  fractions_LE: T.Tensor;
}

/** Runs step `run.step` (already advanced) on this rank; the optimizer moves only when the loss is finite. */
export async function pipelineTensorTrainStep(run: TrainRun, pipe: PipelineRun): Promise<StepLosses> {
  const { optimizer, config } = run;
  const o = config.optim;
  const { place, world, stages, replicas } = pipe.groups;
  const tensor = pipe.groups.tensor!;
  const shard = pipe.shard!;
  const last = place.stage === place.pp - 1;
  optimizer.lr = run.schedule(run.step);
  const start = run.generator.getState();
  const counts_LF = balancesOverAccumulation(config)
    ? await accumulatedTensorStageCounts(run, pipe, start)
    : null;
  const balanceWeight = place.tensorRank === 0 ? (o.lbAlpha * shard.config.numLocalExperts) / o.gradAccum : 0;
  const records = new Map<number, MicroRecord>();
  let crossEntropySum = 0;
  let auxSum = 0;
  try {
    await pipelineStep(
      stages,
      {
        inputShape: () => [run.par.shard(0, o.batchSize).count, config.data.seqLen, shard.config.hiddenSize],
        async forward(micro, input) {
          const ids = microBatchIds(run, micro);
          const pass = await tensorStageAt(run, pipe, start, micro, ids, input, {
            training: true,
            grad: true,
          });
          // On detached statistics: the value and the load fractions; the backward adds the term.
          const detached = pass.balance.map((b) => ({ ...b, meanProbs_E: b.meanProbs_E.detach() }));
          const balanced = await balanceLoss(detached, {
            alpha: o.lbAlpha,
            mode: o.lbMode,
            allReduce: run.par.allReduce,
            counts_LF: counts_LF ?? undefined,
          });
          for (const b of detached) b.meanProbs_E.dispose();
          auxSum += balanced.loss.item() as number;
          balanced.loss.dispose();
          const crossEntropy = last ? nextTokenLoss(pass.out, ids) : null;
          records.set(micro, { pass, ids, crossEntropy, fractions_LE: balanced.fractions_LE });
          if (!crossEntropy) return pass.out;
          const value = crossEntropy.item() as number;
          crossEntropySum += value;
          return T.tensor(Float32Array.of(value / o.gradAccum), { shape: [1] });
        },
        async backward(micro, upstream) {
          const record = records.get(micro)!;
          records.delete(micro);
          try {
            return await tensorStageBackward(
              tensor,
              record.pass,
              upstream,
              {
                crossEntropy: record.crossEntropy,
                scale: 1 / o.gradAccum,
                fractions_LE: record.fractions_LE,
                balanceWeight,
              },
              pipe.slice.first,
            );
          } finally {
            freeRecord(record, last);
          }
        },
      },
      o.gradAccum,
    );
  } finally {
    for (const record of records.values()) freeRecord(record, last);
    counts_LF?.dispose();
  }
  run.generator.setState(generatorAt(start, BigInt(o.gradAccum) * pipe.draws.perMicro).getState());
  try {
    await finishTensorParallelGradients(tensor, shard);
    await averageOverReplicas(replicas, [...shard.params.values()]);
    // After the DP average the replicas agree: replica 0 alone adds its squares, and of the
    // replicated parameters only TP rank 0.
    const squares = place.replica === 0 ? sumOfSquares(shard.params, place.tensorRank === 0) : 0;
    const first = place.tensorRank === 0;
    const totals = Float64Array.of(last && first ? crossEntropySum : 0, first ? auxSum : 0, squares);
    await world.allReduce(totals, 'sum');
    const gradNorm = Math.sqrt(totals[2]!);
    scaleGradients(shard.params, Math.min(o.clip / (gradNorm + 1e-6), 1)); // torch's clip_grad_norm_
    const loss = totals[0]! / place.dp / o.gradAccum;
    if (Number.isFinite(loss)) optimizer.stepOnce();
    return { loss, auxLoss: totals[1]! / place.dp / o.gradAccum, gradNorm };
  } finally {
    optimizer.zeroGrad();
  }
}

function freeRecord(record: MicroRecord, last: boolean): void {
  // pipelineStep frees what the forward returned: the activation (not the last stage's logits).
  disposeTensorStage(record.pass, !last);
  record.crossEntropy?.dispose();
  record.fractions_LE.dispose();
  record.ids.dispose();
}

/** Squares of the split parameters' gradients (this rank's slices) and, with `replicated`, the others'. */
function sumOfSquares(params: Map<string, T.Tensor>, replicated: boolean): number {
  return T.noGrad(() =>
    T.tidy(() => {
      let total: T.Tensor | null = null;
      for (const [name, p] of params) {
        if (!p.grad || (!replicated && shardAxis(name) === null)) continue;
        const square = T.sumSquares(p.grad);
        total = total ? T.add(total, square) : square;
      }
      return total ? (total.item() as number) : 0;
    }),
  );
}

function scaleGradients(params: Map<string, T.Tensor>, factor: number): void {
  if (factor === 1) return;
  T.noGrad(() => {
    for (const p of params.values()) if (p.grad) T.tidy(() => T.copyInPlace(p.grad!, T.mul(p.grad!, factor)));
  });
}
