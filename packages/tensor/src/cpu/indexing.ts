// CPU kernels for the indexing ops: embedding, gather / scatter_add (torch semantics), index_select /
// index_add (the MoE dispatch and combine) and top-k. Indices are i32; an out-of-range index
// throws, naming its value, where it sits and the valid range. Accumulation happens in f64.
// Test: cd packages/tensor && npx vitest run src/ops/indexing
import { registerKernel } from '../core/registry.js';
import { contiguousStrides } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { dense, type NumArray, stridedOffsets } from './backend.js';
import { requireNumeric } from './elementwise.js';
import { aroundAxis } from './nn.js';

/** "[i,j,k]" for flat row-major position `flat` of `shape` (for error messages only). */
function coordinates(shape: readonly number[], flat: number): string {
  const out = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return `[${out.join(',')}]`;
}

function outOfRange(op: string, value: number, where: string, what: string, size: number): RangeError {
  return new RangeError(
    `${op}: index ${value} at ${where} is out of range for ${what} (valid 0..${size - 1})`,
  );
}

/** An accumulator copy of `base` (f64 for floats, so duplicate adds round once). */
function accumulator(base: Tensor): Float64Array {
  return Float64Array.from(dense(base) as ArrayLike<number>);
}

function writeBack(base: Tensor, acc: Float64Array): Tensor {
  const out = allocate(base.shape, base.dtype, base.device);
  dense(out).set(acc);
  return out;
}

// Shapes and dtypes are checked by the ops (ops/indexing.ts); these kernels check index values.
registerKernel('embedding', 'cpu', ([weight, ids]) => {
  const [v, d] = weight!.shape as [number, number];
  const out = allocate([...ids!.shape, d], weight!.dtype, weight!.device);
  const [src, dst, id] = [dense(weight!), dense(out), dense<Int32Array>(ids!)];
  for (let i = 0; i < id.length; i++) {
    const row = id[i]!;
    if (row < 0 || row >= v) {
      throw new RangeError(
        `embedding: id ${row} at ${coordinates(ids!.shape, i)} of ids ${ids!.describe()} is out of range for a table of V=${v} rows (valid 0..${v - 1})`,
      );
    }
    (dst as NumArray).set((src as NumArray).subarray(row * d, row * d + d), i * d);
  }
  return [out];
});

/** Offsets into a contiguous `t` of each index position, with the `axis` coordinate left at 0. */
function baseOffsets(index: Tensor, t: Tensor, axis: number): { at: Int32Array; stride: number } {
  const strides = contiguousStrides(t.shape);
  const stride = strides[axis]!;
  strides[axis] = 0;
  return { at: stridedOffsets(index.shape, strides, 0), stride };
}

registerKernel('gather', 'cpu', ([x, index], { axis }) => {
  const out = allocate(index!.shape, x!.dtype, x!.device);
  const [src, dst, ix] = [dense(x!), dense(out), dense<Int32Array>(index!)];
  const { at, stride } = baseOffsets(index!, x!, axis);
  const size = x!.shape[axis]!;
  for (let i = 0; i < dst.length; i++) {
    const k = ix[i]!;
    if (k < 0 || k >= size)
      throw outOfRange(
        'gather',
        k,
        `index${coordinates(index!.shape, i)}`,
        `axis ${axis} of x ${x!.describe()}`,
        size,
      );
    dst[i] = src[at[i]! + k * stride]!;
  }
  return [out];
});

/** inputs [base, index, src]: out = base; out[..index[i]..] += src[i] for every index position i. */
registerKernel('scatter_add', 'cpu', ([base, index, src], { axis }) => {
  requireNumeric('scatter_add', base!, src!);
  const acc = accumulator(base!);
  const [values, ix] = [dense(src!), dense<Int32Array>(index!)];
  const { at, stride } = baseOffsets(index!, base!, axis);
  const from = stridedOffsets(index!.shape, contiguousStrides(src!.shape), 0);
  const size = base!.shape[axis]!;
  for (let i = 0; i < ix.length; i++) {
    const k = ix[i]!;
    if (k < 0 || k >= size)
      throw outOfRange(
        'scatter_add',
        k,
        `index${coordinates(index!.shape, i)}`,
        `axis ${axis} of base ${base!.describe()}`,
        size,
      );
    acc[at[i]! + k * stride] += values[from[i]!]!;
  }
  return [writeBack(base!, acc)];
});

registerKernel('index_select', 'cpu', ([x, index], { axis }) => {
  const { outer, n, inner } = aroundAxis(x!.shape, axis);
  const ix = dense<Int32Array>(index!);
  const m = ix.length;
  const shape = x!.shape.map((d, i) => (i === axis ? m : d));
  const out = allocate(shape, x!.dtype, x!.device);
  const [src, dst] = [dense(x!) as NumArray, dense(out) as NumArray];
  for (let i = 0; i < m; i++) {
    if (ix[i]! < 0 || ix[i]! >= n)
      throw outOfRange(
        'index_select',
        ix[i]!,
        `position ${i} of index`,
        `axis ${axis} of x ${x!.describe()}`,
        n,
      );
  }
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const from = (o * n + ix[i]!) * inner;
      dst.set(src.subarray(from, from + inner), (o * m + i) * inner);
    }
  }
  return [out];
});

/** inputs [base, index, src]: out = base; out[.., index[i], ..] += src[.., i, ..] (duplicates add up). */
registerKernel('index_add', 'cpu', ([base, index, src], { axis }) => {
  requireNumeric('index_add', base!, src!);
  const { outer, n, inner } = aroundAxis(base!.shape, axis);
  const ix = dense<Int32Array>(index!);
  const m = ix.length;
  const acc = accumulator(base!);
  const values = dense(src!);
  for (let i = 0; i < m; i++) {
    if (ix[i]! < 0 || ix[i]! >= n)
      throw outOfRange(
        'index_add',
        ix[i]!,
        `position ${i} of index`,
        `axis ${axis} of base ${base!.describe()}`,
        n,
      );
  }
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const to = (o * n + ix[i]!) * inner;
      const from = (o * m + i) * inner;
      for (let j = 0; j < inner; j++) acc[to + j] += values[from + j]!;
    }
  }
  return [writeBack(base!, acc)];
});

/** The k largest along `axis`, largest first; ties keep the lower index first; NaN counts as largest. */
registerKernel('topk', 'cpu', ([x], { k, axis }) => {
  requireNumeric('topk', x!);
  const { outer, n, inner } = aroundAxis(x!.shape, axis);
  const shape = x!.shape.map((d, i) => (i === axis ? k : d));
  const values = allocate(shape, x!.dtype, x!.device);
  const indices = allocate(shape, 'i32', x!.device);
  const [src, vs, is] = [dense(x!), dense(values), dense<Int32Array>(indices)];
  const order = new Array<number>(n);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * n * inner + i;
      const at = (j: number) => src[base + j * inner]!;
      for (let j = 0; j < n; j++) order[j] = j;
      order.sort((a, b) => {
        const [va, vb] = [at(a), at(b)];
        const [na, nb] = [Number.isNaN(va), Number.isNaN(vb)];
        if (na || nb) return na && nb ? a - b : na ? -1 : 1;
        return va !== vb ? vb - va : a - b;
      });
      for (let j = 0; j < k; j++) {
        const to = o * k * inner + j * inner + i;
        vs[to] = at(order[j]!);
        is[to] = order[j]!;
      }
    }
  }
  return [values, indices];
});
