// What a tensor-parallel step does with its gradients and weights across the TP group: sum the
// partial gradients of the replicated parameters used inside the segments, clip by the global norm
// (split parameters' squares summed over ranks, replicated ones counted once), and gather full
// HF-named tensors (values for a checkpoint that loads at any --tp, gradients for comparison).
// Test: cd apps/trainer && npx vitest run src/train/tensor-parallel.test.ts
import { GrinModel, type ParameterMap } from '@grin-moe/model-grin';
import type { ProcessGroup } from '@grin-moe/parallel';
import * as T from '@grin-moe/tensor';
import { checkGroup } from './tensor-parallel-forward.js';
import {
  gatherShards,
  isPartialGradient,
  shardAxis,
  type TensorParallelShard,
} from './tensor-parallel-shard.js';

type FloatArray = Float32Array | Float64Array;

function hostArray(dtype: T.DType, length: number): FloatArray {
  if (dtype === 'f32') return new Float32Array(length);
  if (dtype === 'f64') return new Float64Array(length);
  throw new TypeError(`tensor parallel: tensors of dtype ${dtype} are not carried (f32 or f64)`);
}

/** The tensors' values laid end to end in one host array (zeros where a tensor is null). */
function flatten(dtype: T.DType, shapes: number[][], tensors: Array<T.Tensor | null>): FloatArray {
  const sizes = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const flat = hostArray(
    dtype,
    sizes.reduce((a, b) => a + b, 0),
  );
  let at = 0;
  tensors.forEach((t, i) => {
    if (t) flat.set(t.toArray() as FloatArray, at);
    at += sizes[i]!;
  });
  return flat;
}

/** Cuts a flat host array back into tensors of these shapes, starting at `from`. */
function unflatten(
  flat: FloatArray,
  shapes: number[][],
  dtype: T.DType,
  device: string,
  from = 0,
): T.Tensor[] {
  let at = from;
  return shapes.map((shape) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const t = T.tensor(flat.subarray(at, at + size).slice(), { shape, dtype, device });
    at += size;
    return t;
  });
}

/**
 * Sums over the TP group the gradients that each rank holds only a part of (LayerNorms, router
 * gate, o_proj bias), in one all-reduce. Once per optimizer step, after the last micro-batch: the
 * parts accumulate linearly, so reducing their sum once is exact.
 */
export async function finishTensorParallelGradients(
  group: ProcessGroup,
  shard: TensorParallelShard,
): Promise<void> {
  checkGroup(group, shard);
  const partial = [...shard.params].filter(([name]) => isPartialGradient(name)).map(([, p]) => p);
  if (partial.length === 0 || shard.tp === 1) return;
  const shapes = partial.map((p) => [...p.shape]);
  const flat = flatten(
    shard.dtype,
    shapes,
    partial.map((p) => p.grad),
  );
  await group.allReduce(flat, 'sum');
  const sums = unflatten(flat, shapes, shard.dtype, shard.device);
  partial.forEach((p, i) => {
    p.grad?.dispose();
    // Owned by the parameter, as backward leaves it: no caller's Scope may dispose it.
    p.grad = sums[i]!.alias({ track: false });
    sums[i]!.dispose();
  });
}

/**
 * The model's global gradient L2 norm (split parameters' squares summed over the ranks, replicated
 * ones counted once) and torch's clip coefficient min(maxNorm / (norm + 1e-6), 1), the same on
 * every rank: for clipTensorParallelGradients, or for AdamW's stepOnce({ gradScale }).
 */
export async function tensorParallelGradNorm(
  group: ProcessGroup,
  shard: TensorParallelShard,
  maxNorm: number,
): Promise<{ norm: number; scale: number }> {
  checkGroup(group, shard);
  if (!(maxNorm > 0)) throw new RangeError(`tensorParallelGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  // Squares summed on the device, read once: [split parameters (this rank's slices), replicated].
  const squares = T.noGrad(() =>
    T.tidy(() => {
      const totals: Array<T.Tensor | null> = [null, null];
      for (const [name, p] of shard.params) {
        if (!p.grad) continue;
        const which = shardAxis(name) === null ? 1 : 0;
        const sq = T.sumSquares(p.grad); // f32 (f64 for f64), as clipGradNorm sums them
        totals[which] = totals[which] ? T.add(totals[which]!, sq) : sq;
      }
      return Float64Array.from(totals.map((t) => (t ? t.item() : 0)));
    }),
  );
  const split = Float64Array.of(squares[0]!);
  await group.allReduce(split, 'sum');
  const norm = Math.sqrt(split[0]! + squares[1]!);
  return { norm, scale: Math.min(maxNorm / (norm + 1e-6), 1) };
}

/** Scales every gradient of the shard so that the global norm is at most maxNorm; returns the norm. */
export async function clipTensorParallelGradients(
  group: ProcessGroup,
  shard: TensorParallelShard,
  maxNorm: number,
): Promise<number> {
  const { norm, scale } = await tensorParallelGradNorm(group, shard, maxNorm);
  if (scale < 1)
    T.noGrad(() => {
      for (const p of shard.params.values())
        if (p.grad) T.tidy(() => T.copyInPlace(p.grad!, T.mul(p.grad!, scale)));
    });
  return norm;
}

/**
 * Full HF-named tensors on every rank: the split ones all-gathered (one call for all of them) and
 * concatenated along their axis, the replicated ones copied. `what` picks values or gradients
 * (finish them first); a missing gradient gathers as zeros.
 */
export async function gatherTensorParallel(
  group: ProcessGroup,
  shard: TensorParallelShard,
  what: 'values' | 'gradients',
): Promise<ParameterMap> {
  return gatherPicked(group, shard, (p) => (what === 'values' ? p : p.grad));
}

/**
 * As gatherTensorParallel, for any tensors shaped like this rank's parameters (e.g. AdamW moments):
 * `pick` gives the one for each parameter (with its index in the shard's order), null for zeros.
 */
export async function gatherPicked(
  group: ProcessGroup,
  shard: TensorParallelShard,
  pick: (parameter: T.Tensor, index: number) => T.Tensor | null,
): Promise<ParameterMap> {
  checkGroup(group, shard);
  const indexed = [...shard.params].map(([name, p], index) => ({ name, p, index }));
  const split = indexed.filter(({ name }) => shardAxis(name) !== null);
  const shapes = split.map(({ p }) => [...p.shape]);
  const mine = flatten(
    shard.dtype,
    shapes,
    split.map(({ p, index }) => pick(p, index)),
  );
  const all = hostArray(shard.dtype, mine.length * shard.tp);
  await group.allGather(mine, all);
  const made: T.Tensor[] = []; // what this function allocates besides the result
  const zeros = (p: T.Tensor) => {
    const t = T.zerosLike(p);
    made.push(t);
    return t;
  };
  const ranks: ParameterMap[] = [];
  for (let r = 0; r < shard.tp; r++) {
    const pieces = unflatten(all, shapes, shard.dtype, shard.device, r * mine.length);
    made.push(...pieces);
    const map: ParameterMap = new Map(split.map(({ name }, i) => [name, pieces[i]!]));
    for (const { name, p, index } of indexed)
      if (shardAxis(name) === null) map.set(name, pick(p, index) ?? zeros(p));
    ranks.push(map);
  }
  const full = gatherShards(shard.config, ranks, shard.owns);
  for (const t of made) t.dispose();
  return full;
}

/** The whole model rebuilt from the ranks' shards, e.g. for rank 0 to save a checkpoint. */
export async function gatherTensorParallelModel(
  group: ProcessGroup,
  shard: TensorParallelShard,
): Promise<GrinModel> {
  return new GrinModel(
    shard.config,
    await gatherTensorParallel(group, shard, 'values'),
    shard.dtype,
    shard.device,
  );
}
