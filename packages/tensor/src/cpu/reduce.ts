// CPU reductions: sum over any set of axes (accumulated in f64) and max over one axis with the
// index of the first maximum (NaN wins, as in PyTorch).
// Test: cd packages/tensor && npx vitest run src/ops
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { dense, raw, stridedOffsets } from './backend.js';
import { requireNumeric } from './elementwise.js';

/** Offsets of the kept positions and of the reduced block, for a contiguous input. */
function split(x: Tensor, axes: readonly number[]) {
  const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const kept = stridedOffsets(
    keptAxes.map((i) => x.shape[i]!),
    keptAxes.map((i) => x.strides[i]!),
    x.offset,
  );
  const reduced = stridedOffsets(
    axes.map((i) => x.shape[i]!),
    axes.map((i) => x.strides[i]!),
    0,
  );
  return { kept, reduced };
}

function outShape(x: Tensor, axes: readonly number[], keepdim: boolean): number[] {
  return keepdim
    ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : x.shape.filter((_, i) => !axes.includes(i));
}

registerKernel('sum', 'cpu', ([x], { axes, keepdim }) => {
  requireNumeric('sum', x!);
  const out = allocate(outShape(x!, axes, keepdim), x!.dtype === 'bool' ? 'i32' : x!.dtype, x!.device);
  const dst = dense(out);
  const src = raw(x!);
  const rank = x!.rank;
  const isPrefix = axes.every((a, i) => a === i);
  const isSuffix = axes.every((a, i) => a === rank - axes.length + i);
  const reducedCount = axes.reduce((acc, a) => acc * x!.shape[a]!, 1);
  if (isSuffix) {
    // contiguous input: each output is the sum of one run of `reducedCount` elements
    for (let i = 0, base = x!.offset; i < dst.length; i++, base += reducedCount) {
      let acc = 0;
      for (let j = 0; j < reducedCount; j++) acc += src[base + j]!;
      dst[i] = acc;
    }
    return [out];
  }
  if (isPrefix) {
    // sum of `reducedCount` rows of length dst.length (bias gradients): accumulate row by row
    const n = dst.length;
    const acc = new Float64Array(n);
    for (let r = 0, base = x!.offset; r < reducedCount; r++, base += n)
      for (let j = 0; j < n; j++) acc[j]! += src[base + j]!;
    dst.set(acc);
    return [out];
  }
  const { kept, reduced } = split(x!, axes);
  for (let i = 0; i < kept.length; i++) {
    let acc = 0;
    const base = kept[i]!;
    for (let j = 0; j < reduced.length; j++) acc += src[base + reduced[j]!]!;
    dst[i] = acc;
  }
  return [out];
});

registerKernel('max', 'cpu', ([x], { axis, keepdim }) => {
  requireNumeric('max', x!); // an empty axis: checked by the op (ops/reduce.ts)
  const shape = outShape(x!, [axis], keepdim);
  const values = allocate(shape, x!.dtype, x!.device);
  const indices = allocate(shape, 'i32', x!.device);
  const v = dense(values);
  const ix = dense(indices);
  const src = raw(x!);
  const { kept } = split(x!, [axis]);
  const n = x!.shape[axis]!;
  const stride = x!.strides[axis]!;
  for (let i = 0; i < kept.length; i++) {
    const base = kept[i]!;
    let best = src[base]!;
    let at = 0;
    for (let j = 1; j < n && !Number.isNaN(best); j++) {
      const value = src[base + j * stride]!;
      if (value > best || Number.isNaN(value)) {
        best = value;
        at = j;
      }
    }
    v[i] = best;
    ix[i] = at;
  }
  return [values, indices];
});

// The squares rounded to the dtype, then summed in f64 and rounded once: what sum(mul(x, x)) gives.
registerKernel('sum_squares', 'cpu', ([x]) => {
  if (x!.dtype !== 'f32' && x!.dtype !== 'f64')
    throw new TypeError(`sum_squares (cpu): x must be f32 or f64, got ${x!.describe()}`);
  const values = dense<Float32Array | Float64Array>(x!);
  const round = x!.dtype === 'f32' ? Math.fround : (v: number) => v;
  let total = 0;
  for (let i = 0; i < values.length; i++) total += round(values[i]! * values[i]!);
  const out = allocate([], x!.dtype, x!.device);
  dense<Float32Array | Float64Array>(out)[0] = total;
  return [out];
});
