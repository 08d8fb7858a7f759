// cuda kernels for the indexing ops: embedding, index_select / index_add (MoE dispatch and combine),
// gather / scatter_add (torch semantics). Adds accumulate with atomics into f32 (bf16 rounds once
// at the end), so repeated indices sum in an unspecified order. Out-of-range indices are reported
// at the next host read (kernels cannot throw without a sync). Mirrors cpu/indexing.ts.
// Test: tests/indexing.test.ts (GPU).
import { allocate, contiguousStrides, itemSize, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';
import { dimsMeta } from '../layout.js';

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

// Shapes and dtypes are checked by the ops (tensor's ops/indexing.ts), once for every backend.
registerKernel('embedding', 'cuda', ([weight, ids]) => {
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

registerKernel('index_select', 'cuda', ([x, index], { axis }) => {
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
  const { outer, n, inner } = aroundAxis(base!.shape, axis);
  const m = index!.size;
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

/** Strides of a contiguous `t` with the `axis` entry zeroed, and that axis's stride. */
function axisStrides(t: Tensor, axis: number): { strides: number[]; stride: number } {
  const strides = contiguousStrides(t.shape);
  const stride = strides[axis]!;
  strides[axis] = 0;
  return { strides, stride };
}

registerKernel('gather', 'cuda', ([x, index], { axis }) => {
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
