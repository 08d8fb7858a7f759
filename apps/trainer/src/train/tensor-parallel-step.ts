// Forward and backward of one micro-batch under tensor parallelism (see tensor-parallel.ts). The
// backward runs segment by segment in reverse, like pipeline stages: a segment's root is its
// partial output dotted with the (replicated) upstream gradient, its backward gives this rank's
// part of the gradient at its input, and the all-reduce of that part plus the residual path is
// the upstream gradient of the segment below. The load-balancing loss, computed alike on every
// rank, enters the backward on rank 0 only, so that the sums over ranks count it once.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel.test.ts
import { nextTokenLoss, type RoutingTrace } from '@grin-moe/model-grin';
import { allReduceTensor, type ProcessGroup } from '@grin-moe/parallel';
import { type BalanceLossOptions, balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import {
  disposePass,
  type TensorParallelForwardOptions,
  tensorParallelForward,
} from './tensor-parallel-forward.js';
import type { TensorParallelShard } from './tensor-parallel-shard.js';

export interface TensorParallelStepOptions extends Omit<TensorParallelForwardOptions, 'grad'> {
  /** As balanceLoss takes it; in global mode `allReduce` is the data-parallel group's sum. */
  balance: BalanceLossOptions;
  /** Multiplies the loss before the backward (1 / gradAccum when accumulating); default 1. */
  lossScale?: number;
  /** Return the logits (the caller then disposes them). */
  keepLogits?: boolean;
}

export interface TensorParallelStepResult {
  /** Mean next-token cross-entropy, unscaled. */
  crossEntropy: number;
  /** The load-balancing loss, unscaled. */
  auxLoss: number;
  logits_BSV?: T.Tensor;
  /** With `trace`: every layer's picks (the caller disposes them). */
  routing?: RoutingTrace[];
}

/** Takes the gradient a leaf accumulated (the leaf no longer owns it). */
function takeGrad(leaf: T.Tensor, where: string): T.Tensor {
  const grad = leaf.grad;
  if (!grad) throw new Error(`tensor parallel: ${where} got no gradient`);
  leaf.grad = null;
  return grad;
}

/**
 * Forward and backward of `ids_BS` on this rank: gradients accumulate in the shard's parameters
 * (call finishTensorParallelGradients once after the last micro-batch of a step). Every rank of
 * the TP group calls it with the same ids and a generator in the same state.
 */
export async function tensorParallelStep(
  group: ProcessGroup,
  shard: TensorParallelShard,
  ids_BS: T.Tensor,
  options: TensorParallelStepOptions,
): Promise<TensorParallelStepResult> {
  const scale = options.lossScale ?? 1;
  const pass = await tensorParallelForward(group, shard, ids_BS, { ...options, grad: true });
  let fractions_LE: T.Tensor | undefined;
  try {
    // On detached statistics: the value and the load fractions, and no graph that no backward frees.
    const detached = pass.balance.map((b) => ({ ...b, meanProbs_E: b.meanProbs_E.detach() }));
    const balanced = await balanceLoss(detached, options.balance);
    for (const b of detached) b.meanProbs_E.dispose();
    fractions_LE = balanced.fractions_LE;
    const auxLoss = balanced.loss.item();
    balanced.loss.dispose();
    const ce = nextTokenLoss(pass.logits_BSV, ids_BS);
    const crossEntropy = ce.item();
    T.tidy(() => T.mul(ce, scale).backward());
    ce.dispose();
    let upstream_BSD = takeGrad(pass.headInput_BSD, 'the final LayerNorm’s input');
    // Weight zero off rank 0: the term's backward still runs there, which frees its graph.
    const auxWeight = shard.rank === 0 ? options.balance.alpha * shard.config.numLocalExperts * scale : 0;
    for (const segment of [...pass.segments].reverse()) {
      const balanceTerm =
        segment.kind === 'moe'
          ? {
              meanProbs_E: pass.balance[segment.layer]!.meanProbs_E,
              fractions_E: fractions_LE.select(0, segment.layer),
              weight: auxWeight,
            }
          : null;
      backwardSegment(segment.partial_BSD, upstream_BSD, balanceTerm);
      balanceTerm?.fractions_E.dispose();
      const part_BSD = takeGrad(segment.input_BSD, `layer ${segment.layer}'s ${segment.kind} input`);
      const sum_BSD = await allReduceTensor(group, part_BSD);
      part_BSD.dispose();
      const next_BSD = T.noGrad(() => T.add(upstream_BSD, sum_BSD));
      sum_BSD.dispose();
      upstream_BSD.dispose();
      upstream_BSD = next_BSD;
    }
    T.backward(pass.embedded_BSD, upstream_BSD);
    upstream_BSD.dispose();
    const result: TensorParallelStepResult = { crossEntropy, auxLoss };
    if (options.keepLogits) {
      result.logits_BSV = pass.logits_BSV.detach();
    }
    if (pass.routing) {
      result.routing = pass.routing;
      pass.routing = undefined;
    }
    return result;
  } finally {
    fractions_LE?.dispose();
    disposePass(pass);
  }
}

/**
 * backward of sum(partial * upstream) (+ weight * sum(f * P) of this layer's balance term): the
 * gradient reaching the partial output is exactly `upstream`, and the one reaching the mean router
 * probabilities P is what balanceLoss's own backward would give them.
 */
export function backwardSegment(
  partial_BSD: T.Tensor,
  upstream_BSD: T.Tensor,
  balanceTerm: { meanProbs_E: T.Tensor; fractions_E: T.Tensor; weight: number } | null,
): void {
  T.tidy(() => {
    let root = T.sum(T.mul(partial_BSD, upstream_BSD));
    if (balanceTerm) {
      const { meanProbs_E, fractions_E, weight } = balanceTerm;
      root = T.add(root, T.mul(T.sum(T.mul(fractions_E, meanProbs_E)), weight));
    }
    root.backward();
  });
}
