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

/** a and b share a dtype: checked by the public ops (tensor's ops/elementwise.ts) or the caller. */
function binary(op: string, code: number, a: Tensor, b: Tensor, outDType: DType): Tensor {
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
    // Autograd calls this kernel directly, with no public op in front to check the dtypes.
    if (g!.dtype !== x!.dtype)
      throw new TypeError(
        `silu_backward: dtypes differ (${x!.describe()} and ${g!.describe()}); cast one first`,
      );
    return [binary('silu_backward', SILU_BACKWARD, x!, g!, x!.dtype)];
  },
  { strided: true },
);

registerKernel(
  'where',
  'cuda',
  ([cond, a, b]) => {
    // dtypes: checked by the op (tensor's ops/elementwise.ts where)
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
    const shape = x!.shape; // mask dtype and shape: checked by the op (tensor's ops/elementwise.ts)
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
