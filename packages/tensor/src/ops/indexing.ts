// Indexing ops: embedding lookup, torch.gather / scatter_add, index_select / index_add (the MoE
// dispatch and combine: duplicates accumulate) and top-k. All out-of-place; indices are i32.
// Shapes and dtypes are checked here, once for every backend; index values are checked by the
// kernels (they live on the device).
// Test: cd packages/tensor && npx vitest run src/ops/indexing
import { formatShape, normalizeAxis } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { runOp } from './dispatch.js';

function requireI32(op: string, index: Tensor, name: string): void {
  if (index.dtype !== 'i32') throw new TypeError(`${op}: ${name} must be i32, got ${index.describe()}`);
}

/** Rows of weight [V, D] picked by i32 ids [...] -> [..., D]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  requireI32('embedding', ids, 'ids');
  if (weight.rank !== 2) throw new RangeError(`embedding: weight must be [V,D], got ${weight.describe()}`);
  return runOp('embedding', [weight, ids], {})[0]!;
}

/** torch's gather/scatter shape rule: index has t's rank and fits inside t on every axis but `axis`. */
function checkFits(op: string, index: Tensor, t: Tensor, name: string, axis: number | null): void {
  if (index.rank !== t.rank || index.shape.some((n, i) => i !== axis && n > t.shape[i]!)) {
    const which = axis === null ? 'every axis' : `every axis but ${axis}`;
    throw new RangeError(
      `${op}: index ${index.describe()} must have the rank of ${name} ${t.describe()} and be no larger on ${which}`,
    );
  }
}

function requireSameDtype(op: string, src: Tensor, base: Tensor): void {
  if (src.dtype !== base.dtype) {
    throw new TypeError(`${op}: src ${src.describe()} must have the dtype of base ${base.describe()}`);
  }
}

/** out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (torch.gather). index has x's rank. */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  requireI32('gather', index, 'index');
  const a = normalizeAxis('gather', axis, x.rank);
  checkFits('gather', index, x, 'x', a);
  return runOp('gather', [x, index], { axis: a })[0]!;
}

/** base with src[i][j][k] added at [i][index[i][j][k]][k] for axis 1 (torch.scatter_add, out of place). */
export function scatterAdd(base: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  requireI32('scatterAdd', index, 'index');
  const a = normalizeAxis('scatterAdd', axis, base.rank);
  checkFits('scatterAdd', index, base, 'base', a);
  checkFits('scatterAdd', index, src, 'src', null);
  requireSameDtype('scatterAdd', src, base);
  return runOp('scatter_add', [base, index, src], { axis: a })[0]!;
}

function checkIndex1d(op: string, index: Tensor): void {
  requireI32(op, index, 'index');
  if (index.rank !== 1) throw new RangeError(`${op}: index must be 1-d, got ${index.describe()}`);
}

/** The slices x[..., index[i], ...] along `axis`, stacked in index order. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  checkIndex1d('indexSelect', index);
  return runOp('index_select', [x, index], { axis: normalizeAxis('indexSelect', axis, x.rank) })[0]!;
}

/** base with src[..., i, ...] added into base[..., index[i], ...]; repeated indices add up. */
export function indexAdd(base: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  checkIndex1d('indexAdd', index);
  requireSameDtype('indexAdd', src, base);
  const a = normalizeAxis('indexAdd', axis, base.rank);
  const want = base.shape.map((d, i) => (i === a ? index.shape[0]! : d));
  if (formatShape(src.shape) !== formatShape(want)) {
    throw new RangeError(
      `indexAdd: src ${src.describe()} must be ${formatShape(want)}: base ${base.describe()} with axis ${axis} the length of index ${index.describe()}`,
    );
  }
  return runOp('index_add', [base, index, src], { axis: a })[0]!;
}

/**
 * The k largest entries along `axis`, largest first, and their i32 indices. Ties go to the lower
 * index first (stable); NaN counts as larger than everything. Only values carry a gradient.
 */
export function topk(x: Tensor, k: number, axis = -1): { values: Tensor; indices: Tensor } {
  const a = normalizeAxis('topk', axis, x.rank);
  if (!Number.isInteger(k) || k < 0 || k > x.shape[a]!) {
    throw new RangeError(
      `topk: k=${k} must be an integer in 0..${x.shape[a]} (axis ${axis} of ${x.describe()})`,
    );
  }
  const [values, indices] = runOp('topk', [x], { k, axis: a });
  return { values: values!, indices: indices! };
}
