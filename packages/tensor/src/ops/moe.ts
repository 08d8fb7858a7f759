// The dropless MoE ops (DESIGN.md "The MoE layer on the GPU"): permute the T*K picks into expert
// order, run every expert as one grouped linear, apply the SiLU-GLU, and combine each token's K
// rows by a weighted gather-sum. Generic core ops: the CPU kernels (cpu/moe.ts) are the reference,
// the gradient rules are in autograd/rules/moe.ts, kernels-cuda registers the fast ones.
// Shapes: T tokens, K picks, E experts, N = T*K rows, D model width, I expert width.
// Test: cd packages/tensor && npx vitest run src/ops/moe
import type { Tensor } from '../core/tensor.js';
import { runKernel, runOp } from './dispatch.js';

export interface Permutation {
  /** Rows per expert [E] (i32). */
  counts_E: Tensor;
  /** For each expert-ordered row, the flat pick t*K + k it came from [N] (i32). */
  rowSlot_N: Tensor;
  /** For each pick (t, k), its row in expert order [T, K] (i32); a permutation of 0..N-1. */
  position_TK: Tensor;
}

/** A stable counting sort of the picks by expert; an id outside 0..E-1 is refused. */
export function moePermute(experts_TK: Tensor, numExperts: number): Permutation {
  if (experts_TK.rank !== 2 || experts_TK.dtype !== 'i32')
    throw new RangeError(`moePermute: experts must be [T, K] i32, got ${experts_TK.describe()}`);
  if (!(Number.isInteger(numExperts) && numExperts >= 1))
    throw new RangeError(`moePermute: numExperts must be a positive integer, got ${numExperts}`);
  const [counts_E, rowSlot_N, position_TK] = runKernel('moe_permute', experts_TK.device, [experts_TK], {
    numExperts,
  }) as [Tensor, Tensor, Tensor];
  return { counts_E, rowSlot_N, position_TK };
}

/**
 * y [N, parts*out]: rows of x in groups of `counts` (group e = expert e), each times its weight's
 * transpose; `weights` holds parts*E matrices [out, in], part-major (all w1, then all w3), so
 * part p of group e lands in columns p*out .. (p+1)*out.
 */
export function groupedLinear(x_NK: Tensor, weights: Tensor[], counts: number[], parts = 1): Tensor {
  const E = counts.length;
  if (x_NK.rank !== 2) throw new RangeError(`groupedLinear: x must be [N, in], got ${x_NK.describe()}`);
  if (weights.length !== parts * E)
    throw new RangeError(
      `groupedLinear: ${weights.length} weights for ${E} groups of ${parts} part(s); expected ${parts * E}`,
    );
  const [out, inFeatures] = weights[0]!.shape;
  for (const [i, w] of weights.entries()) {
    if (w.rank !== 2 || w.shape[0] !== out || w.shape[1] !== x_NK.shape[1] || w.dtype !== x_NK.dtype)
      throw new RangeError(
        `groupedLinear: weight ${i} is ${w.describe()}, expected [${out}, ${inFeatures}] ${x_NK.dtype} matching x ${x_NK.describe()}`,
      );
  }
  for (const c of counts)
    if (!(Number.isInteger(c) && c >= 0))
      throw new RangeError(`groupedLinear: counts must be non-negative integers, got [${counts}]`);
  const total = counts.reduce((a, c) => a + c, 0);
  if (total !== x_NK.shape[0])
    throw new RangeError(`groupedLinear: counts sum to ${total}, but x has ${x_NK.shape[0]} rows`);
  return runOp('grouped_linear', [x_NK, ...weights], { counts: [...counts], parts })[0]!;
}

/** x_ND with row position_TK[t, k] a copy of x_TD[t]: the tokens in expert order for the grouped linear. */
export function moeDispatch(x_TD: Tensor, position_TK: Tensor): Tensor {
  if (x_TD.rank !== 2 || position_TK.rank !== 2 || position_TK.shape[0] !== x_TD.shape[0])
    throw new RangeError(
      `moeDispatch: expected x [T, D] and position [T, K], got ${x_TD.describe()} and ${position_TK.describe()}`,
    );
  if (position_TK.dtype !== 'i32')
    throw new TypeError(`moeDispatch: position must be i32, got ${position_TK.describe()}`);
  return runOp('moe_dispatch', [x_TD, position_TK], {})[0]!;
}

/** out_TD = sum over k of weights_TK * y[position_TK]: each token reads its K rows, no atomics. */
export function moeCombine(y_ND: Tensor, weights_TK: Tensor, position_TK: Tensor): Tensor {
  if (y_ND.rank !== 2 || weights_TK.rank !== 2 || position_TK.rank !== 2)
    throw new RangeError(
      `moeCombine: expected y [N, D], weights [T, K], position [T, K], got ${y_ND.describe()}, ${weights_TK.describe()}, ${position_TK.describe()}`,
    );
  const [T, K] = weights_TK.shape as [number, number];
  if (position_TK.shape[0] !== T || position_TK.shape[1] !== K || y_ND.shape[0] !== T * K)
    throw new RangeError(
      `moeCombine: y ${y_ND.describe()} must have T*K rows for weights ${weights_TK.describe()} and position ${position_TK.describe()}`,
    );
  if (position_TK.dtype !== 'i32')
    throw new TypeError(`moeCombine: position must be i32, got ${position_TK.describe()}`);
  if (weights_TK.dtype !== y_ND.dtype)
    throw new TypeError(`moeCombine: dtypes differ (${y_ND.describe()} and ${weights_TK.describe()})`);
  return runOp('moe_combine', [y_ND, weights_TK, position_TK], {})[0]!;
}

/** silu(h[:, :I]) * h[:, I:] for h [N, 2I]: the expert GLU with w1 and w3 computed as one product. */
export function siluGlu(h_N2I: Tensor): Tensor {
  if (h_N2I.rank !== 2 || h_N2I.shape[1]! % 2 !== 0)
    throw new RangeError(`siluGlu: h must be [N, 2I], got ${h_N2I.describe()}`);
  return runOp('silu_glu', [h_N2I], {})[0]!;
}
