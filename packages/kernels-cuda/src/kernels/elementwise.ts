// cuda kernels for the elementwise ops: unary maps, binary ops and comparisons with broadcasting,
// where, masked_fill and the fused SiLU gradient. Inputs are read through their strides (no
// contiguous copies); outputs are contiguous. bf16 computes in f32. Mirrors cpu/elementwise.ts.
// Test: tests/elementwise.test.ts (GPU).
import { allocate, broadcastShapes, type DType, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native, valueBits } from '../backend.js';
import { broadcastStrides, layoutMeta } from '../layout.js';

const UNARY = [
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'abs',
  'silu',
  'sigmoid',
  'tanh',
  'relu',
  'pow',
] as const;
const INT_UNARY = new Set(['neg', 'abs', 'relu']);
const BINARY = [
  'add',
  'sub',
  'mul',
  'div',
  'maximum',
  'minimum',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
] as const;
const SILU_BACKWARD = 12;
const COMPARISONS = new Set(['eq', 'ne', 'lt', 'le', 'gt', 'ge']);

function requireFloat(op: string, t: Tensor): void {
  if (t.dtype !== 'f32' && t.dtype !== 'bf16')
    throw new TypeError(`${op} (cuda): needs f32 or bf16, got ${t.describe()}`);
}

function unary(op: (typeof UNARY)[number], x: Tensor, exponent = 0): Tensor {
  if (!(INT_UNARY.has(op) && x.dtype === 'i32')) requireFloat(op, x);
  const out = allocate(x.shape, x.dtype, x.device);
  const { meta, flat } = layoutMeta(op, x.shape, [out.strides, x.strides]);
  native().unary(
    dev(x),
    dtypeCode(x.dtype),
    UNARY.indexOf(op),
    exponent,
    addr(out),
    addr(x),
    x.size,
    meta,
    flat ? 1 : 0,
  );
  return out;
}

for (const op of UNARY) {
  if (op === 'pow') continue;
  registerKernel(op, 'cuda', ([x]) => [unary(op, x!)], { strided: true });
}
registerKernel('pow', 'cuda', ([x], { exponent }) => [unary('pow', x!, exponent)], { strided: true });

function binary(op: string, code: number, a: Tensor, b: Tensor, outDType: DType): Tensor {
  if (a.dtype !== b.dtype)
    throw new TypeError(`${op}: dtypes differ (${a.describe()} and ${b.describe()}); cast one first`);
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = allocate(shape, outDType, a.device);
  const { meta, flat } = layoutMeta(op, shape, [
    out.strides,
    broadcastStrides(a, shape),
    broadcastStrides(b, shape),
  ]);
  native().binary(
    dev(a),
    dtypeCode(a.dtype),
    code,
    addr(out),
    addr(a),
    addr(b),
    out.size,
    meta,
    flat ? 1 : 0,
  );
  return out;
}

BINARY.forEach((op, code) => {
  registerKernel(
    op,
    'cuda',
    ([a, b]) => [binary(op, code, a!, b!, COMPARISONS.has(op) ? 'bool' : a!.dtype)],
    { strided: true },
  );
});

registerKernel(
  'silu_backward',
  'cuda',
  ([x, g]) => {
    requireFloat('silu_backward', x!);
    return [binary('silu_backward', SILU_BACKWARD, x!, g!, x!.dtype)];
  },
  { strided: true },
);

registerKernel(
  'where',
  'cuda',
  ([cond, a, b]) => {
    if (cond!.dtype !== 'bool') throw new TypeError(`where: condition must be bool, got ${cond!.describe()}`);
    if (a!.dtype !== b!.dtype)
      throw new TypeError(`where: dtypes differ (${a!.describe()} and ${b!.describe()})`);
    const shape = broadcastShapes('where', cond!.shape, a!.shape, b!.shape);
    const out = allocate(shape, a!.dtype, a!.device);
    const { meta } = layoutMeta('where', shape, [
      out.strides,
      broadcastStrides(cond!, shape),
      broadcastStrides(a!, shape),
      broadcastStrides(b!, shape),
    ]);
    native().where(dev(a!), dtypeCode(a!.dtype), addr(out), addr(cond!), addr(a!), addr(b!), out.size, meta);
    return [out];
  },
  { strided: true },
);

registerKernel(
  'masked_fill',
  'cuda',
  ([x, mask], { value }) => {
    if (mask!.dtype !== 'bool')
      throw new TypeError(`masked_fill: mask must be bool, got ${mask!.describe()}`);
    const shape = broadcastShapes('masked_fill', x!.shape, mask!.shape);
    if (shape.length !== x!.rank || shape.some((d, i) => d !== x!.shape[i]))
      throw new RangeError(
        `masked_fill: mask ${mask!.describe()} must broadcast to the input ${x!.describe()}`,
      );
    const out = allocate(shape, x!.dtype, x!.device);
    const { meta } = layoutMeta('masked_fill', shape, [
      out.strides,
      x!.strides,
      broadcastStrides(mask!, shape),
    ]);
    const bits = valueBits(x!.dtype, value);
    native().maskedFill(dev(x!), dtypeCode(x!.dtype), addr(out), addr(x!), addr(mask!), bits, out.size, meta);
    return [out];
  },
  { strided: true },
);
