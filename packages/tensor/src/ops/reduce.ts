// Reductions: sum and mean over axes, max/argmax over one axis, and sumTo (the gradient of
// broadcasting: sum a tensor back down to a broadcastable shape).
// Test: cd packages/tensor && npx vitest run src/ops

import { backendOf } from '../core/backend.js';
import { hasKernel } from '../core/registry.js';
import { formatShape, normalizeAxis, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { runKernel, runOp } from './dispatch.js';
import { mul } from './elementwise.js';
import { cast } from './layout.js';

function axesOf(op: string, x: Tensor, axis: number | number[] | undefined): number[] {
  if (axis === undefined) return [...Array(x.rank).keys()];
  const list = (Array.isArray(axis) ? axis : [axis]).map((a) => normalizeAxis(op, a, x.rank));
  if (new Set(list).size !== list.length) throw new RangeError(`${op}: repeated axis in [${list}]`);
  return list.sort((a, b) => a - b);
}

export function sum(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  return runOp('sum', [x], { axes: axesOf('sum', x, axis), keepdim })[0]!;
}

export function mean(x: Tensor, axis?: number | number[], keepdim = false): Tensor {
  const axes = axesOf('mean', x, axis);
  const count = axes.reduce((a, i) => a * x.shape[i]!, 1);
  const total = sum(x, axes, keepdim);
  const out = mul(total, 1 / count);
  total.dispose();
  return out;
}

/** Maximum values and the index of the first maximum along `axis`. */
export function maxWithIndices(
  x: Tensor,
  axis: number,
  keepdim = false,
): { values: Tensor; indices: Tensor } {
  const a = normalizeAxis('max', axis, x.rank);
  // Checked here, once for every backend.
  if (x.shape[a] === 0) throw new RangeError(`max: axis ${a} of ${x.describe()} is empty`);
  const [values, indices] = runOp('max', [x], { axis: a, keepdim });
  return { values: values!, indices: indices! };
}

export function max(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = maxWithIndices(x, axis, keepdim);
  indices.dispose();
  return values;
}

export function argmax(x: Tensor, axis: number, keepdim = false): Tensor {
  const { values, indices } = maxWithIndices(x, axis, keepdim);
  values.dispose();
  return indices;
}

/** Sums `x` down to `shape`, which must broadcast to x's shape. */
export function sumTo(x: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(x.shape, shape)) return x.identity();
  const lead = x.rank - shape.length;
  if (lead < 0)
    throw new RangeError(`sumTo: cannot sum ${formatShape(x.shape)} to the larger ${formatShape(shape)}`);
  const axes: number[] = [];
  x.shape.forEach((d, i) => {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && d !== 1) axes.push(i);
    else if (shape[i - lead] !== d)
      throw new RangeError(`sumTo: ${formatShape(shape)} does not broadcast to ${formatShape(x.shape)}`);
  });
  const summed = runOp('sum', [x], { axes, keepdim: true })[0]!;
  const out = summed.reshape([...shape]);
  summed.dispose();
  return out;
}

/** The sum of x * x as a 0-d tensor (f32, or f64 for f64 x), accumulated in f32 or wider: gradient norms. */
export function sumSquares(x: Tensor): Tensor {
  if (hasKernel('sum_squares', backendOf(x.device).name))
    return runKernel('sum_squares', x.device, [x], {})[0]!;
  const wide = x.dtype === 'f64' || x.dtype === 'f32' ? x : cast(x, 'f32'); // a backend without the fused op
  const squares = mul(wide, wide);
  const total = sum(squares);
  squares.dispose();
  if (wide !== x) wide.dispose();
  return total;
}
