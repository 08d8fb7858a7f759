// The step of `grin train --pp` on one stage: the step's gradient-accumulation micro-batches are
// the pipeline's micro-batches, run under 1F1B (pipelineStep). Each stage draws at its place in
// the single process's stream (pipeline-run.ts), adds its own layers' balance loss (counts summed
// over its DP group; in global mode with gradAccum > 1, over the whole accumulated batch, counted
// by a forward-only pass first) to its backward, and averages its gradients over its DP group. The
// last stage adds the cross-entropy. One all-reduce over the run then gives every rank the step's
// loss, balance loss and the global gradient norm (squares summed over stages), so every stage
// clips with the same factor and skips the update alike when the loss is not finite.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-parallel.test.ts
import { nextTokenLoss } from '@grin-moe/model-grin';
import { pipelineStep } from '@grin-moe/parallel';
import { balanceCounts, balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { balancesOverAccumulation, pipelineCounts } from './balance-counts.js';
import { microBatchIds } from './loop-batch.js';
import type { TrainRun } from './loop-state.js';
import type { StepLosses } from './loop-step.js';
import { generatorAt, type PipelineRun } from './pipeline-run.js';
import { type StageModel, stageForward } from './pipeline-stage.js';

/** Runs step `run.step` (already advanced) on this stage; the optimizer moves only when the loss is finite. */
export async function pipelineTrainStep(run: TrainRun, pipe: PipelineRun): Promise<StepLosses> {
  const { optimizer, config } = run;
  const o = config.optim;
  const { place, world, stages } = pipe.groups;
  const last = place.stage === place.pp - 1;
  optimizer.lr = run.schedule(run.step);
  const start = run.generator.getState();
  const counts_LF = balancesOverAccumulation(config) ? await accumulatedStageCounts(run, pipe, start) : null;
  let crossEntropySum = 0;
  let auxSum = 0;
  await pipelineStep(
    stages,
    {
      inputShape: () => [
        run.par.shard(0, o.batchSize).count,
        config.data.seqLen,
        run.placed.config.hiddenSize,
      ],
      async forward(micro, input) {
        const ids = microBatchIds(run, micro);
        // The micro-step that ends the accumulation runs on the tapped parameters (DP reduction).
        const model = stageModel(run, pipe, micro === o.gradAccum - 1);
        const { out, balance } = forwardAt(run, pipe, start, micro, model, ids, input);
        const { loss: aux, fractions_LE } = await balanceLoss(balance, {
          alpha: o.lbAlpha,
          mode: o.lbMode,
          allReduce: run.par.allReduce,
          counts_LF: counts_LF ?? undefined,
        });
        fractions_LE.dispose();
        auxSum += aux.item() as number;
        const result = T.tidy(() => {
          if (!last) return { activation: out, loss: T.div(aux, o.gradAccum) };
          const crossEntropy = nextTokenLoss(out, ids);
          crossEntropySum += crossEntropy.item() as number;
          return T.div(T.add(crossEntropy, aux), o.gradAccum);
        });
        // The graph keeps what backward needs; these handles are done.
        for (const stats of balance) {
          stats.counts_E.dispose();
          stats.meanProbs_E.dispose();
        }
        aux.dispose();
        ids.dispose();
        if (last) out.dispose();
        return result;
      },
    },
    o.gradAccum,
  );
  counts_LF?.dispose();
  run.generator.setState(generatorAt(start, BigInt(o.gradAccum) * pipe.draws.perMicro).getState());
  await pipe.buckets?.finish();
  const params = [...pipe.params.values()];
  // Replicas hold the same averaged gradients: replica 0 alone adds its squares.
  const squares = place.replica === 0 ? sumOfSquares(params) : 0;
  const totals = Float64Array.of(last ? crossEntropySum : 0, auxSum, squares);
  await world.allReduce(totals, 'sum');
  const gradNorm = Math.sqrt(totals[2]!);
  scaleGradients(params, Math.min(o.clip / (gradNorm + 1e-6), 1)); // torch's clip_grad_norm_
  const loss = totals[0]! / place.dp / o.gradAccum;
  if (Number.isFinite(loss)) optimizer.stepOnce();
  optimizer.zeroGrad();
  return { loss, auxLoss: totals[1]! / place.dp / o.gradAccum, gradNorm };
}

/** This stage's parameters as a model to run; on the last micro-step, the DP-tapped views. */
function stageModel(run: TrainRun, pipe: PipelineRun, last: boolean): StageModel {
  const { config, dtype, device } = run.placed;
  if (!last || !pipe.buckets) return { config, params: pipe.params, dtype, device };
  const tapped = pipe.buckets.tapped();
  const names = [...pipe.params.keys()];
  return { config, params: new Map(names.map((name, i) => [name, tapped[i]!])), dtype, device };
}

/** The stage's forward of `micro`, drawing at its place in the stream; checks how much it drew. */
function forwardAt(
  run: TrainRun,
  pipe: PipelineRun,
  start: T.GeneratorState,
  micro: number,
  model: StageModel,
  ids: T.Tensor,
  input: T.Tensor | null,
  options: { training: boolean; head?: boolean } = { training: true },
) {
  const from = generatorAt(start, BigInt(micro) * pipe.draws.perMicro + pipe.draws.before);
  const draws = run.par.draws(from);
  const output = stageForward(model, pipe.slice, ids, input, {
    ...run.config.regularize,
    ...options,
    generator: draws,
  });
  const drawn = draws.counter - from.counter;
  if (drawn !== pipe.draws.own)
    throw new Error(
      `pipeline stage ${pipe.slice.stage}: micro-batch ${micro} drew ${drawn} Philox blocks, ${pipe.draws.own} expected; the stages cannot find their place in the single process's random stream`,
    );
  return output;
}

/**
 * This stage's layers' counts over the step's whole accumulated batch and its DP group: the
 * micro-batches run forward through the pipeline first, without a graph, with the draws the real
 * forwards then make (balance-counts.ts says why).
 */
async function accumulatedStageCounts(
  run: TrainRun,
  pipe: PipelineRun,
  start: T.GeneratorState,
): Promise<T.Tensor> {
  const { config, dtype, device } = run.placed;
  const model: StageModel = { config, params: pipe.params, dtype, device };
  return pipelineCounts(run, pipe, config.hiddenSize, async (micro, input) =>
    T.noGrad(() =>
      T.tidy(() => {
        const ids = microBatchIds(run, micro);
        const { out, balance } = forwardAt(run, pipe, start, micro, model, ids, input, {
          training: true,
          head: false,
        });
        // The last stage sends nothing on; pipelineForward takes its scalar.
        const last = pipe.slice.stage === pipe.slice.stages - 1;
        return { table_LF: balanceCounts(balance), out: last ? T.zeros([1]) : out };
      }),
    ),
  );
}

function sumOfSquares(params: T.Tensor[]): number {
  return T.noGrad(() =>
    T.tidy(() => {
      let total: T.Tensor | null = null;
      for (const p of params)
        if (p.grad) total = total ? T.add(total, T.sumSquares(p.grad)) : T.sumSquares(p.grad);
      return total ? (total.item() as number) : 0;
    }),
  );
}

function scaleGradients(params: T.Tensor[], factor: number): void {
  if (factor === 1) return;
  T.noGrad(() => {
    for (const p of params) if (p.grad) T.tidy(() => T.copyInPlace(p.grad!, T.mul(p.grad!, factor)));
  });
}
