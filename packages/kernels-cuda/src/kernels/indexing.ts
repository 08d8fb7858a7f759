// cuda kernels for the indexing ops: embedding, index_select / index_add (MoE dispatch and combine),
// gather / scatter_add (torch semantics). Adds accumulate with atomics into f32 (bf16 rounds once
// at the end), so repeated indices sum in an unspecified order. Out-of-range indices are reported
// at the next host read (kernels cannot throw without a sync). Mirrors cpu/indexing.ts.
// Test: tests/indexing.test.ts (GPU).
import {
  allocate,
  contiguousStrides,
  formatShape,
  itemSize,
  registerKernel,
  type Tensor,
} from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';
import { dimsMeta } from '../layout.js';

function requireIndex(op: string, t: Tensor, name: string): void {
  if (t.dtype !== 'i32') throw new TypeError(`${op} (cuda): ${name} must be i32, got ${t.describe()}`);
}

function aroundAxis(shape: readonly number[], axis: number) {
  const outer = shape.slice(0, axis).reduce((a, d) => a * d, 1);
  const inner = shape.slice(axis + 1).reduce((a, d) => a * d, 1);
  return { outer, n: shape[axis]!, inner };
}

/**
 * Runs an accumulating kernel over a copy of `base`: in place for f32 / i32, through an f32
 * accumulator for bf16 (one rounding at the end, as the CPU's f64 accumulator).
 */
function accumulate(op: string, base: Tensor, run: (acc: Tensor) => void): Tensor {
  if (base.dtype === 'bool')
    throw new TypeError(`${op} (cuda): ${base.describe()} is bool; use f32, bf16 or i32`);
  const d = dev(base);
  if (base.dtype !== 'bf16') {
    const out = allocate(base.shape, base.dtype, base.device);
    native().copyBytes(d, addr(out), addr(base), base.size * itemSize(base.dtype));
    run(out);
    return out;
  }
  const acc = allocate(base.shape, 'f32', base.device);
  try {
    native().cast(d, dtypeCode('bf16'), dtypeCode('f32'), addr(acc), addr(base), base.size);
    run(acc);
    const out = allocate(base.shape, 'bf16', base.device);
    native().cast(d, dtypeCode('f32'), dtypeCode('bf16'), addr(out), addr(acc), base.size);
    return out;
  } finally {
    acc.dispose();
  }
}

registerKernel('embedding', 'cuda', ([weight, ids]) => {
  requireIndex('embedding', ids!, 'ids');
  if (weight!.rank !== 2) throw new RangeError(`embedding: weight must be [V,D], got ${weight!.describe()}`);
  const [v, d] = weight!.shape as [number, number];
  const out = allocate([...ids!.shape, d], weight!.dtype, weight!.device);
  native().embedding(
    dev(weight!),
    dtypeCode(weight!.dtype),
    addr(out),
    addr(weight!),
    addr(ids!),
    ids!.size,
    v,
    d,
  );
  return [out];
});

function checkIndex1d(op: string, index: Tensor): void {
  requireIndex(op, index, 'index');
  if (index.rank !== 1) throw new RangeError(`${op}: index must be 1-d, got ${index.describe()}`);
}

registerKernel('index_select', 'cuda', ([x, index], { axis }) => {
  checkIndex1d('index_select', index!);
  const { outer, n, inner } = aroundAxis(x!.shape, axis);
  const m = index!.size;
  const out = allocate(
    x!.shape.map((d, i) => (i === axis ? m : d)),
    x!.dtype,
    x!.device,
  );
  native().indexSelect(dev(x!), dtypeCode(x!.dtype), addr(out), addr(x!), addr(index!), outer, n, m, inner);
  return [out];
});

registerKernel('index_add', 'cuda', ([base, index, src], { axis }) => {
  checkIndex1d('index_add', index!);
  const { outer, n, inner } = aroundAxis(base!.shape, axis);
  const m = index!.size;
  const want = base!.shape.map((d, i) => (i === axis ? m : d));
  if (src!.dtype !== base!.dtype || formatShape(src!.shape) !== formatShape(want))
    throw new RangeError(`index_add: src ${src!.describe()} must be ${base!.dtype}${formatShape(want)}`);
  const out = accumulate('index_add', base!, (acc) =>
    native().indexAdd(
      dev(base!),
      dtypeCode(src!.dtype),
      addr(acc),
      addr(src!),
      addr(index!),
      outer,
      n,
      m,
      inner,
    ),
  );
  return [out];
});

function checkFits(op: string, index: Tensor, t: Tensor, name: string, axis: number | null): void {
  if (index.rank !== t.rank || index.shape.some((n, i) => i !== axis && n > t.shape[i]!)) {
    const which = axis === null ? 'every axis' : `every axis but ${axis}`;
    throw new RangeError(
      `${op}: index ${index.describe()} must have the rank of ${name} ${t.describe()} and be no larger on ${which}`,
    );
  }
}

/** Strides of a contiguous `t` with the `axis` entry zeroed, and that axis's stride. */
function axisStrides(t: Tensor, axis: number): { strides: number[]; stride: number } {
  const strides = contiguousStrides(t.shape);
  const stride = strides[axis]!;
  strides[axis] = 0;
  return { strides, stride };
}

registerKernel('gather', 'cuda', ([x, index], { axis }) => {
  requireIndex('gather', index!, 'index');
  checkFits('gather', index!, x!, 'x', axis);
  const out = allocate(index!.shape, x!.dtype, x!.device);
  const { strides, stride } = axisStrides(x!, axis);
  const meta = dimsMeta(index!.shape, strides, strides);
  native().gather(
    dev(x!),
    dtypeCode(x!.dtype),
    addr(out),
    addr(x!),
    addr(index!),
    index!.size,
    meta,
    stride,
    x!.shape[axis]!,
  );
  return [out];
});

registerKernel('scatter_add', 'cuda', ([base, index, src], { axis }) => {
  requireIndex('scatter_add', index!, 'index');
  checkFits('scatter_add', index!, base!, 'base', axis);
  checkFits('scatter_add', index!, src!, 'src', null);
  if (src!.dtype !== base!.dtype)
    throw new TypeError(
      `scatter_add: src ${src!.describe()} must have the dtype of base ${base!.describe()}`,
    );
  const { strides, stride } = axisStrides(base!, axis);
  const meta = dimsMeta(index!.shape, strides, contiguousStrides(src!.shape));
  const out = accumulate('scatter_add', base!, (acc) =>
    native().scatterAdd(
      dev(base!),
      dtypeCode(src!.dtype),
      addr(acc),
      addr(src!),
      addr(index!),
      index!.size,
      meta,
      stride,
      base!.shape[axis]!,
    ),
  );
  return [out];
});
