// Layout and conversion ops: contiguous copies, clone, cast, concat/split, slice scatter and
// the in-place updates used by optimizers (outside autograd).
// Test: cd packages/tensor && npx vitest run src/ops

import { isGradEnabled, noGrad } from '../autograd/mode.js';
import { recordNode } from '../autograd/record.js';
import type { DType } from '../core/dtype.js';
import { hooks } from '../core/hooks.js';
import { broadcastShapes, formatShape, normalizeAxis } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { onesLike } from './creation.js';
import { commonDevice, runKernel, runOp } from './dispatch.js';
import { add } from './elementwise.js';

export function contiguous(x: Tensor): Tensor {
  return x.isContiguous() ? x.identity() : runOp('contiguous', [x], {})[0]!;
}

/** A copy with its own storage, connected to autograd like the identity. */
export function clone(x: Tensor): Tensor {
  return runOp('contiguous', [x], {})[0]!;
}

export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x.identity();
  return runOp('cast', [x], { dtype })[0]!;
}

export function concat(xs: Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const a = normalizeAxis('concat', axis, xs[0]!.rank);
  for (const t of xs) {
    const ok =
      t.rank === xs[0]!.rank &&
      t.dtype === xs[0]!.dtype &&
      t.shape.every((d, i) => i === a || d === xs[0]!.shape[i]);
    if (!ok)
      throw new RangeError(`concat: ${xs.map((x) => x.describe()).join(', ')} do not agree off axis ${axis}`);
  }
  return runOp('concat', xs, { axis: a })[0]!;
}

/** Splits along `axis` into pieces of the given sizes: views, no copy; their gradients meet in one concat. */
export function split(x: Tensor, sizes: number[], axis = 0): Tensor[] {
  const a = normalizeAxis('split', axis, x.rank);
  if (sizes.some((d) => !Number.isInteger(d) || d < 0) || sizes.reduce((s, d) => s + d, 0) !== x.shape[a]) {
    throw new RangeError(`split: sizes [${sizes}] do not add up to axis ${axis} of ${formatShape(x.shape)}`);
  }
  let at = 0;
  const pieces = noGrad(() =>
    sizes.map((size) => {
      const ranges = x.shape.map((_, i): [number, number] | null => (i === a ? [at, at + size] : null));
      at += size;
      return x.slice(...ranges);
    }),
  );
  recordNode('split', [x], pieces, { axis: a, sizes: [...sizes] });
  return pieces;
}

/** base with the strided region starting at `starts` (step `steps`) replaced by src. */
export function sliceScatter(base: Tensor, src: Tensor, starts: number[], steps?: number[]): Tensor {
  return runOp('slice_scatter', [base, src], { starts, steps: steps ?? starts.map(() => 1) })[0]!;
}

function assertNoGradTarget(op: string, dst: Tensor): void {
  if (isGradEnabled() && (dst.requiresGrad || dst.gradNode)) {
    throw new Error(
      `${op}: in-place update of ${dst.describe()} which autograd tracks; run it inside noGrad()`,
    );
  }
}

/** An in-place source must have dst's dtype and broadcast to dst's shape (dst cannot grow). */
function requireInPlaceSource(op: string, dst: Tensor, src: Tensor): void {
  if (dst.dtype !== src.dtype)
    throw new TypeError(
      `${op}: dtypes differ (${dst.describe()} <- ${src.describe()}); cast the source first`,
    );
  const shape = broadcastShapes(op, dst.shape, src.shape);
  if (shape.length !== dst.rank || shape.some((n, i) => n !== dst.shape[i]))
    throw new RangeError(
      `${op}: ${src.describe()} does not broadcast to the destination's shape ${formatShape(dst.shape)}`,
    );
}

/** dst += alpha * src, in place (optimizers and accumulation only). */
export function addInPlace(dst: Tensor, src: Tensor, alpha = 1): void {
  assertNoGradTarget('addInPlace', dst);
  requireInPlaceSource('addInPlace', dst, src);
  if (dst.dtype === 'bool') throw new TypeError(`addInPlace: ${dst.describe()} is bool; add needs numbers`);
  runKernel('add_inplace', commonDevice('addInPlace', [dst, src]), [dst, src], { alpha });
}

/** dst[...] = src, in place. */
export function copyInPlace(dst: Tensor, src: Tensor): void {
  assertNoGradTarget('copyInPlace', dst);
  requireInPlaceSource('copyInPlace', dst, src);
  runKernel('copy_inplace', commonDevice('copyInPlace', [dst, src]), [dst, src], {});
}

hooks.contiguous = contiguous;
hooks.clone = clone;
hooks.add = (a, b) => add(a, b);
hooks.onesLike = (t) => onesLike(t);
