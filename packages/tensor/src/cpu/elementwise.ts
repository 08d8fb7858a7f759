// CPU kernels for elementwise ops: unary maps over contiguous data, binary/ternary ops with
// broadcasting over strided inputs (a flat loop when layouts already agree).
import type { DType } from '../core/dtype.js';
import { registerKernel } from '../core/registry.js';
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { broadcastStrides, dense, type NumArray, raw, stridedOffsets } from './backend.js';

export function requireNumeric(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype === 'bf16')
      throw new TypeError(
        `${op} (cpu): bf16 is storage-only on the CPU backend; cast ${t.describe()} to f32 first`,
      );
  }
}

const unary: Record<string, (x: number) => number> = {
  neg: (x) => -x,
  exp: Math.exp,
  log: Math.log,
  sqrt: Math.sqrt,
  rsqrt: (x) => 1 / Math.sqrt(x),
  abs: Math.abs,
  silu: (x) => x / (1 + Math.exp(-x)),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  relu: (x) => (x > 0 ? x : 0),
};

for (const [op, fn] of Object.entries(unary)) {
  registerKernel(op as 'exp', 'cpu', ([x]) => {
    requireNumeric(op, x!);
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const src = dense(x!);
    const dst = dense(out);
    for (let i = 0; i < src.length; i++) dst[i] = fn(src[i]!);
    return [out];
  });
}

registerKernel('pow', 'cpu', ([x], { exponent }) => {
  requireNumeric('pow', x!);
  const out = allocate(x!.shape, x!.dtype, x!.device);
  const src = dense(x!);
  const dst = dense(out);
  if (exponent === 2) for (let i = 0; i < src.length; i++) dst[i] = src[i]! * src[i]!;
  else for (let i = 0; i < src.length; i++) dst[i] = src[i]! ** exponent;
  return [out];
});

type Binary = (a: number, b: number) => number;
const arithmetic: Record<string, Binary> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  maximum: (a, b) => (a >= b || Number.isNaN(a) ? a : b),
  minimum: (a, b) => (a <= b || Number.isNaN(a) ? a : b),
};
const comparison: Record<string, Binary> = {
  eq: (a, b) => (a === b ? 1 : 0),
  ne: (a, b) => (a !== b ? 1 : 0),
  lt: (a, b) => (a < b ? 1 : 0),
  le: (a, b) => (a <= b ? 1 : 0),
  gt: (a, b) => (a > b ? 1 : 0),
  ge: (a, b) => (a >= b ? 1 : 0),
};

function binaryKernel(op: string, fn: Binary, outDType: (d: DType) => DType) {
  return ([a, b]: Tensor[]) => {
    requireNumeric(op, a!, b!);
    if (a!.dtype !== b!.dtype)
      throw new TypeError(`${op}: dtypes differ (${a!.describe()} and ${b!.describe()}); cast one first`);
    const shape = broadcastShapes(op, a!.shape, b!.shape);
    const out = allocate(shape, outDType(a!.dtype), a!.device);
    const dst = dense(out);
    const x = raw(a!);
    const y = raw(b!);
    if (a!.isContiguous() && b!.isContiguous() && shapesEqual(a!.shape, b!.shape)) {
      const ao = a!.offset;
      const bo = b!.offset;
      for (let i = 0; i < dst.length; i++) dst[i] = fn(x[ao + i]!, y[bo + i]!);
    } else if (b!.size === 1) {
      const s = y[b!.offset]!;
      const ao = stridedOffsets(shape, broadcastStrides(a!, shape), a!.offset);
      for (let i = 0; i < dst.length; i++) dst[i] = fn(x[ao[i]!]!, s);
    } else {
      const ao = stridedOffsets(shape, broadcastStrides(a!, shape), a!.offset);
      const bo = stridedOffsets(shape, broadcastStrides(b!, shape), b!.offset);
      for (let i = 0; i < dst.length; i++) dst[i] = fn(x[ao[i]!]!, y[bo[i]!]!);
    }
    return [out];
  };
}

for (const [op, fn] of Object.entries(arithmetic)) {
  registerKernel(
    op as 'add',
    'cpu',
    binaryKernel(op, fn, (d) => d),
    { strided: true },
  );
}
for (const [op, fn] of Object.entries(comparison)) {
  registerKernel(
    op as 'eq',
    'cpu',
    binaryKernel(op, fn, () => 'bool'),
    { strided: true },
  );
}

registerKernel(
  'where',
  'cpu',
  ([cond, a, b]) => {
    requireNumeric('where', a!, b!);
    if (cond!.dtype !== 'bool') throw new TypeError(`where: condition must be bool, got ${cond!.describe()}`);
    if (a!.dtype !== b!.dtype)
      throw new TypeError(`where: dtypes differ (${a!.describe()} and ${b!.describe()})`);
    const shape = broadcastShapes('where', cond!.shape, a!.shape, b!.shape);
    const out = allocate(shape, a!.dtype, a!.device);
    const dst = dense(out);
    const [c, x, y] = [raw(cond!), raw(a!), raw(b!)];
    const co = stridedOffsets(shape, broadcastStrides(cond!, shape), cond!.offset);
    const ao = stridedOffsets(shape, broadcastStrides(a!, shape), a!.offset);
    const bo = stridedOffsets(shape, broadcastStrides(b!, shape), b!.offset);
    for (let i = 0; i < dst.length; i++) dst[i] = c[co[i]!] ? x[ao[i]!]! : y[bo[i]!]!;
    return [out];
  },
  { strided: true },
);

registerKernel(
  'masked_fill',
  'cpu',
  ([x, mask], { value }) => {
    requireNumeric('masked_fill', x!);
    if (mask!.dtype !== 'bool')
      throw new TypeError(`masked_fill: mask must be bool, got ${mask!.describe()}`);
    const shape = broadcastShapes('masked_fill', x!.shape, mask!.shape);
    if (!shapesEqual(shape, x!.shape)) {
      throw new RangeError(
        `masked_fill: mask ${mask!.describe()} must broadcast to the input ${x!.describe()}`,
      );
    }
    const out = allocate(shape, x!.dtype, x!.device);
    const dst = dense(out);
    const [m, src] = [raw(mask!), raw(x!)];
    const xo = stridedOffsets(shape, x!.strides, x!.offset);
    const mo = stridedOffsets(shape, broadcastStrides(mask!, shape), mask!.offset);
    for (let i = 0; i < dst.length; i++) dst[i] = m[mo[i]!] ? value : src[xo[i]!]!;
    return [out];
  },
  { strided: true },
);

export type { NumArray };
