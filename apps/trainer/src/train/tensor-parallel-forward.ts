// The tensor-parallel forward over a process group (see tensor-parallel.ts): the segments of
// tensor-parallel-segments.ts run synchronously, and between them `await group.allReduce` turns
// each partial block output into the full one, added to the replicated residual stream. Each
// segment's input is a fresh leaf, so the backward (tensor-parallel-step.ts) can run segment by
// segment with an all-reduce in between, as pipeline stages pass gradients back.
// Shape legend: B batch, S positions, D hidden size, V vocab.
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel.test.ts
import { type MoeImplementation, type RoutingTrace, rotaryTables } from '@grin-moe/model-grin';
import { allReduceTensor, type ProcessGroup } from '@grin-moe/parallel';
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import {
  attentionSegment,
  embedSegment,
  headSegment,
  moeSegment,
  type SegmentInputs,
  segmentParams,
} from './tensor-parallel-segments.js';
import type { TensorParallelShard } from './tensor-parallel-shard.js';

export interface TensorParallelForwardOptions {
  training: boolean;
  /** The run's stream; every TP rank passes one in the same state (same seed, same counter). */
  generator?: T.Generator;
  /** Build the graphs for tensorParallelStep's backward (default true); false for evaluation. */
  grad?: boolean;
  /** Also return every layer's picks (identical on every rank). */
  trace?: boolean;
  moeImplementation?: MoeImplementation;
  neftuneAlpha?: number;
  /** Not under tp > 1: each rank would need its columns of the whole [N, I] mask. */
  expertDropout?: number;
  /** Packed sequences: the document of each token, i32 [B, S]. */
  documents_BS?: T.Tensor;
}

/** One segment of the backward chain: its input leaf and this rank's partial output. */
export interface SegmentRecord {
  layer: number;
  kind: 'attention' | 'moe';
  input_BSD: T.Tensor;
  partial_BSD: T.Tensor;
}

export interface TensorParallelPass {
  /** Full logits [B,S,V], the same on every rank. */
  logits_BSV: T.Tensor;
  /** Per layer, identical on every rank (the router is replicated). */
  balance: BalanceStats[];
  routing?: RoutingTrace[];
  /** The embedding output (graph to the embedding weight) and the head's input leaf. */
  embedded_BSD: T.Tensor;
  headInput_BSD: T.Tensor;
  segments: SegmentRecord[];
  /** Everything else the pass made, freed by disposePass. */
  owned: T.Tensor[];
}

/** A leaf with x's values, cut from x's graph: where one segment's backward stops. */
function leafOf(x: T.Tensor, grad: boolean): T.Tensor {
  const leaf = x.detach();
  return grad && T.isFloat(leaf.dtype) ? leaf.setRequiresGrad(true) : leaf;
}

/** residual + (sum over ranks of partial), a new leaf of the residual stream. */
export async function addAllReduced(
  group: ProcessGroup,
  residual_BSD: T.Tensor,
  partial_BSD: T.Tensor,
  grad: boolean,
): Promise<T.Tensor> {
  // allReduceTensor copies the values out, so the partial keeps its graph for the backward.
  const full_BSD = await allReduceTensor(group, partial_BSD);
  const sum_BSD = T.noGrad(() => T.add(residual_BSD, full_BSD));
  full_BSD.dispose();
  return grad ? sum_BSD.setRequiresGrad(true) : sum_BSD;
}

export function checkGroup(group: ProcessGroup, shard: TensorParallelShard): void {
  if (group.size !== shard.tp || group.rank !== shard.rank)
    throw new RangeError(
      `tensor parallel: the shard is rank ${shard.rank} of --tp ${shard.tp} but the group is rank ${group.rank} of ${group.size}`,
    );
}

/**
 * Runs the model over this rank's shard; every rank of `group` (the TP group) must call it with the
 * same ids and a generator in the same state. Not inside a Scope that another rank of this process
 * also uses: the ranks' awaits interleave.
 */
export async function tensorParallelForward(
  group: ProcessGroup,
  shard: TensorParallelShard,
  ids_BS: T.Tensor,
  options: TensorParallelForwardOptions,
): Promise<TensorParallelPass> {
  checkGroup(group, shard);
  if (ids_BS.rank !== 2 || ids_BS.dtype !== 'i32')
    throw new TypeError(`tensorParallelForward: ids must be i32 [B,S], got ${ids_BS.describe()}`);
  if (shard.tp > 1 && options.training && (options.expertDropout ?? 0) > 0)
    throw new RangeError(
      `tensor parallel: expert dropout is not supported with --tp ${shard.tp} (each rank would need its columns of the whole mask); set expertDropout to 0`,
    );
  const grad = options.grad ?? true;
  const run = <R>(segment: () => R): R => (grad ? segment() : T.noGrad(segment));
  const owned: T.Tensor[] = [];
  const S = ids_BS.shape[1]!;
  const { cos, sin } = rotaryTables(shard.config, 0, S, shard.dtype, shard.device);
  owned.push(cos, sin);
  const documents = options.documents_BS;
  const blocked_BSS = documents
    ? T.noGrad(() => T.ne(documents.unsqueeze(2), documents.unsqueeze(1)))
    : undefined;
  if (blocked_BSS) owned.push(blocked_BSS);
  const inputs: SegmentInputs = {
    cos_SD: cos,
    sin_SD: sin,
    training: options.training,
    generator: options.generator,
    moeImplementation: options.moeImplementation,
    blocked_BSS,
    trace: options.trace,
  };
  const params = segmentParams(shard);
  const embedded_BSD = run(() => embedSegment(shard, ids_BS, options));
  let x_BSD = leafOf(embedded_BSD, grad);
  const segments: SegmentRecord[] = [];
  const balance: BalanceStats[] = [];
  const routing: RoutingTrace[] = [];
  for (let layer = 0; layer < shard.config.numHiddenLayers; layer++) {
    const attended_BSD = run(() => attentionSegment(shard, params, layer, x_BSD, inputs));
    segments.push({ layer, kind: 'attention', input_BSD: x_BSD, partial_BSD: attended_BSD });
    const h_BSD = await addAllReduced(group, x_BSD, attended_BSD, grad);
    const mixed = run(() => moeSegment(shard, params, layer, h_BSD, inputs));
    segments.push({ layer, kind: 'moe', input_BSD: h_BSD, partial_BSD: mixed.partial_BSD });
    balance.push(mixed.balance);
    if (mixed.routing) routing.push(mixed.routing);
    x_BSD = await addAllReduced(group, h_BSD, mixed.partial_BSD, grad);
  }
  const logits_BSV = run(() => headSegment(shard, x_BSD));
  const pass = { logits_BSV, balance, embedded_BSD, headInput_BSD: x_BSD, segments, owned };
  return options.trace ? { ...pass, routing } : pass;
}

/** Frees what a pass made (its logits too, unless the caller took them out first). */
export function disposePass(pass: TensorParallelPass): void {
  for (const t of pass.owned) t.dispose();
  for (const s of pass.segments) {
    s.input_BSD.dispose();
    s.partial_BSD.dispose();
  }
  for (const b of pass.balance) {
    b.counts_E.dispose();
    b.meanProbs_E.dispose();
  }
  for (const r of pass.routing ?? []) {
    r.experts_TK.dispose();
    r.weights_TK.dispose();
  }
  pass.embedded_BSD.dispose();
  pass.headInput_BSD.dispose();
  pass.logits_BSV.dispose();
}
