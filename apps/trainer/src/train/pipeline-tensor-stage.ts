// One pipeline stage whose decoder layers are tensor-parallel (`grin train --pp M --tp K`): the
// stage's layers run as TP segments (attention and MoE, partial outputs all-reduced over the
// stage's TP group, tensor-parallel-forward.ts), the embedding on the first stage and the final
// norm + lm_head on the last, replicated over TP as under --tp alone. Its backward is the TP
// backward over the stage's segments (tensor-parallel-step.ts): seeded with the gradient at the
// stage's output (or the cross-entropy on the last stage), it gives the gradient at the stage's
// input, replicated over TP, for the previous stage. Shape legend: B batch, S positions, D hidden
// size, V vocab, L the stage's layers, E experts.
// Test: cd apps/trainer && npx vitest run src/train/pipeline-tensor-parallel.test.ts
import { rotaryTables } from '@grin-moe/model-grin';
import { allReduceTensor, type ProcessGroup } from '@grin-moe/parallel';
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import type { StageSlice } from './pipeline-stage.js';
import { addAllReduced, type SegmentRecord } from './tensor-parallel-forward.js';
import {
  attentionSegment,
  embedSegment,
  headSegment,
  moeSegment,
  type SegmentInputs,
  segmentParams,
} from './tensor-parallel-segments.js';
import type { TensorParallelShard } from './tensor-parallel-shard.js';
import { backwardSegment } from './tensor-parallel-step.js';

export interface TensorStageOptions {
  training: boolean;
  /** Every TP rank of the stage passes one in the same state: the same draws, the same picks. */
  generator?: T.Generator;
  neftuneAlpha?: number;
  /** Build the graphs for tensorStageBackward (false: evaluation and counting passes). */
  grad: boolean;
  /** The last stage's norm and lm_head (default true); a counting pass needs only the routing. */
  head?: boolean;
}

export interface TensorStagePass {
  /** The next stage's activation [B,S,D] (a leaf of the residual stream), or the logits [B,S,V]. */
  out: T.Tensor;
  /** This stage's layers' statistics, in layer order (the same on every TP rank). */
  balance: BalanceStats[];
  segments: SegmentRecord[];
  /** The previous stage's activation (the caller's), or null on the first stage. */
  input_BSD: T.Tensor | null;
  /** First stage: the embedding output, whose graph reaches the embedding weight. */
  embedded_BSD: T.Tensor | null;
  /** Last stage with its head: the final LayerNorm's input leaf. */
  headInput_BSD: T.Tensor | null;
  owned: T.Tensor[];
}

/** Runs this TP rank's part of the stage; the stage's TP ranks call it together, alike. */
export async function tensorStageForward(
  group: ProcessGroup,
  shard: TensorParallelShard,
  slice: StageSlice,
  ids_BS: T.Tensor,
  input_BSD: T.Tensor | null,
  options: TensorStageOptions,
): Promise<TensorStagePass> {
  if ((slice.stage === 0) !== (input_BSD === null))
    throw new Error(
      `pipeline stage ${slice.stage} (--tp ${shard.tp}): ${slice.stage === 0 ? 'the first stage embeds the ids itself' : 'needs the previous stage’s hidden states'}`,
    );
  const { grad } = options;
  const run = <R>(segment: () => R): R => (grad ? segment() : T.noGrad(segment));
  const { cos, sin } = rotaryTables(shard.config, 0, ids_BS.shape[1]!, shard.dtype, shard.device);
  const owned = [cos, sin];
  const inputs: SegmentInputs = {
    cos_SD: cos,
    sin_SD: sin,
    training: options.training,
    generator: options.generator,
  };
  const params = segmentParams(shard);
  let embedded_BSD: T.Tensor | null = null;
  let x_BSD: T.Tensor;
  if (input_BSD) x_BSD = input_BSD;
  else {
    embedded_BSD = run(() => embedSegment(shard, ids_BS, options));
    const leaf = embedded_BSD.detach();
    x_BSD = grad ? leaf.setRequiresGrad(true) : leaf;
  }
  const segments: SegmentRecord[] = [];
  const balance: BalanceStats[] = [];
  for (let layer = slice.first; layer < slice.end; layer++) {
    const attended_BSD = run(() => attentionSegment(shard, params, layer, x_BSD, inputs));
    segments.push({ layer, kind: 'attention', input_BSD: x_BSD, partial_BSD: attended_BSD });
    const h_BSD = await addAllReduced(group, x_BSD, attended_BSD, grad);
    const mixed = run(() => moeSegment(shard, params, layer, h_BSD, inputs));
    segments.push({ layer, kind: 'moe', input_BSD: h_BSD, partial_BSD: mixed.partial_BSD });
    balance.push(mixed.balance);
    x_BSD = await addAllReduced(group, h_BSD, mixed.partial_BSD, grad);
  }
  const pass = { balance, segments, input_BSD, embedded_BSD, owned };
  if (slice.stage < slice.stages - 1 || options.head === false)
    return { ...pass, out: x_BSD, headInput_BSD: null };
  return { ...pass, out: run(() => headSegment(shard, x_BSD)), headInput_BSD: x_BSD };
}

/** What the backward adds to the gradient besides the upstream one. */
export interface TensorStageLoss {
  /** Last stage: the graph's cross-entropy (over the logits), times `scale`. */
  crossEntropy: T.Tensor | null;
  scale: number;
  /** Per layer of the stage: the load fractions of balanceLoss, [L, E]. */
  fractions_LE: T.Tensor;
  /** alpha x E x scale on TP rank 0, 0 on the others (the term is counted once over TP). */
  balanceWeight: number;
}

/** Takes the gradient a leaf accumulated (the leaf no longer owns it). */
function takeGrad(leaf: T.Tensor, where: string): T.Tensor {
  const grad = leaf.grad;
  if (!grad) throw new Error(`pipeline stage (tensor parallel): ${where} got no gradient`);
  leaf.grad = null;
  return grad;
}

/**
 * The stage's backward: gradients accumulate in the shard's parameters; returns the gradient at the
 * stage's input (null on the first stage), the same on every TP rank. `upstream_BSD` (the gradient
 * at `pass.out`, null on the last stage) stays the caller's.
 */
export async function tensorStageBackward(
  group: ProcessGroup,
  pass: TensorStagePass,
  upstream: T.Tensor | null,
  loss: TensorStageLoss,
  first: number,
): Promise<T.Tensor | null> {
  let upstream_BSD: T.Tensor;
  if (upstream) upstream_BSD = upstream;
  else {
    if (!loss.crossEntropy || !pass.headInput_BSD)
      throw new Error('pipeline stage (tensor parallel): the last stage’s backward needs its cross-entropy');
    const ce = loss.crossEntropy;
    T.tidy(() => T.mul(ce, loss.scale).backward());
    upstream_BSD = takeGrad(pass.headInput_BSD, 'the final LayerNorm’s input');
  }
  for (const segment of [...pass.segments].reverse()) {
    const fractions_E = segment.kind === 'moe' ? loss.fractions_LE.select(0, segment.layer - first) : null;
    backwardSegment(
      segment.partial_BSD,
      upstream_BSD,
      fractions_E
        ? {
            meanProbs_E: pass.balance[segment.layer - first]!.meanProbs_E,
            fractions_E,
            weight: loss.balanceWeight,
          }
        : null,
    );
    fractions_E?.dispose();
    const part_BSD = takeGrad(segment.input_BSD, `layer ${segment.layer}'s ${segment.kind} input`);
    const sum_BSD = await allReduceTensor(group, part_BSD);
    part_BSD.dispose();
    const next_BSD = T.noGrad(() => T.add(upstream_BSD, sum_BSD));
    sum_BSD.dispose();
    if (upstream_BSD !== upstream) upstream_BSD.dispose();
    upstream_BSD = next_BSD;
  }
  if (!pass.embedded_BSD) return upstream_BSD;
  T.backward(pass.embedded_BSD, upstream_BSD);
  upstream_BSD.dispose();
  return null;
}

/** Frees what a pass made: not its input (the caller's) nor, with `keepOut`, its output. */
export function disposeTensorStage(pass: TensorStagePass, keepOut: boolean): void {
  for (const t of pass.owned) t.dispose();
  for (const s of pass.segments) {
    if (s.input_BSD !== pass.input_BSD) s.input_BSD.dispose();
    s.partial_BSD.dispose();
  }
  for (const b of pass.balance) {
    b.counts_E.dispose();
    b.meanProbs_E.dispose();
  }
  pass.embedded_BSD?.dispose();
  if (pass.headInput_BSD) pass.headInput_BSD.dispose();
  if (!keepOut && pass.out !== pass.input_BSD) pass.out.dispose();
}
