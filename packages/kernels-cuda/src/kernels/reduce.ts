// cuda reductions: sum over any axes (f64 accumulation for floats, i64 for ints; bool sums to
// i32) and max over one axis with the first maximum's index (NaN wins). Mirrors cpu/reduce.ts.
// Test: tests/reduce.test.ts (GPU).
import { allocate, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';
import { dimsMeta, mergeAxes } from '../layout.js';

function outShape(x: Tensor, axes: readonly number[], keepdim: boolean): number[] {
  return keepdim
    ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !axes.includes(i));
}

/** Shape and strides of the chosen axes of x, merged where they are adjacent in memory. */
function group(x: Tensor, axes: readonly number[]): { shape: number[]; strides: number[] } {
  const m = mergeAxes(
    axes.map((a) => x.shape[a]!),
    [axes.map((a) => x.strides[a]!)],
  );
  return { shape: m.shape, strides: m.strides[0]! };
}

registerKernel('sum', 'cuda', ([x], { axes, keepdim }) => {
  const out = allocate(outShape(x!, axes, keepdim), x!.dtype === 'bool' ? 'i32' : x!.dtype, x!.device);
  const keptAxes = x!.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const kept = group(x!, keptAxes);
  const reduced = group(x!, axes);
  const count = reduced.shape.reduce((a, d) => a * d, 1);
  // A block per output when the reduced elements are adjacent; a thread per output otherwise.
  const rows = reduced.strides.length > 0 && reduced.strides[reduced.strides.length - 1] === 1;
  native().sum(
    dev(x!),
    dtypeCode(x!.dtype),
    addr(out),
    addr(x!),
    out.size,
    count,
    dimsMeta(kept.shape, kept.strides, kept.strides),
    dimsMeta(reduced.shape, reduced.strides, reduced.strides),
    rows || kept.shape.length === 0 ? 1 : 0,
  );
  return [out];
});

// An empty axis: checked by the op (tensor's ops/reduce.ts maxWithIndices).
registerKernel('max', 'cuda', ([x], { axis, keepdim }) => {
  const shape = outShape(x!, [axis], keepdim);
  const values = allocate(shape, x!.dtype, x!.device);
  const indices = allocate(shape, 'i32', x!.device);
  const outer = x!.shape.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = x!.shape.slice(axis + 1).reduce((a, d) => a * d, 1);
  native().max(
    dev(x!),
    dtypeCode(x!.dtype),
    addr(values),
    addr(indices),
    addr(x!),
    outer,
    x!.shape[axis]!,
    inner,
  );
  return [values, indices];
});

registerKernel('sum_squares_many', 'cuda', (xs) => {
  if (xs.length === 0) throw new RangeError('sum_squares_many (cuda): needs at least one tensor');
  const table = new Float64Array(3 * xs.length);
  xs.forEach((x, i) => {
    if (x.dtype !== 'f32' && x.dtype !== 'bf16')
      throw new TypeError(`sum_squares_many (cuda): tensor ${i} must be f32 or bf16, got ${x.describe()}`);
    table.set([addr(x), x.size, dtypeCode(x.dtype)], 3 * i);
  });
  const out = allocate([], 'f32', xs[0]!.device);
  native().sumSquaresMany(dev(xs[0]!), addr(out), table);
  return [out];
});

registerKernel('sum_squares', 'cuda', ([x]) => {
  if (x!.dtype !== 'f32' && x!.dtype !== 'bf16')
    throw new TypeError(`sum_squares (cuda): x must be f32 or bf16, got ${x!.describe()}`);
  const out = allocate([], 'f32', x!.device);
  native().sumSquares(dev(x!), dtypeCode(x!.dtype), addr(out), addr(x!), x!.size);
  return [out];
});
