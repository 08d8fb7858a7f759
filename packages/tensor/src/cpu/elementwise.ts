// CPU kernels for elementwise ops: unary maps over contiguous data, binary/ternary ops with
// broadcasting over strided inputs (a flat loop when layouts already agree).
// Test: cd packages/tensor && npx vitest run src/ops
import type { DType } from '../core/dtype.js';
import { registerKernel } from '../core/registry.js';
import { broadcastShapes } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { broadcastStrides, dense, type NumArray, raw, stridedOffsets } from './backend.js';
import { mapStrided, zipStrided } from './strided.js';

export function requireNumeric(op: string, ...ts: Tensor[]): void {
  for (const t of ts) {
    if (t.dtype === 'bf16')
      throw new TypeError(
        `${op} (cpu): bf16 is storage-only on the CPU backend; cast ${t.describe()} to f32 first`,
      );
  }
}

// Each op is an expression over `a` (and `b`), compiled into a row loop once (strided.ts).
const unary: Record<string, string> = {
  neg: '-a',
  exp: 'Math.exp(a)',
  log: 'Math.log(a)',
  sqrt: 'Math.sqrt(a)',
  rsqrt: '1 / Math.sqrt(a)',
  abs: 'Math.abs(a)',
  silu: 'a / (1 + Math.exp(-a))',
  sigmoid: '1 / (1 + Math.exp(-a))',
  tanh: 'Math.tanh(a)',
  relu: '(a > 0 ? a : 0)',
};

for (const [op, expr] of Object.entries(unary)) {
  registerKernel(
    op as 'exp',
    'cpu',
    ([x]) => {
      requireNumeric(op, x!);
      const out = allocate(x!.shape, x!.dtype, x!.device);
      mapStrided(expr, dense(out), x!.shape, raw(x!), x!.strides, x!.offset);
      return [out];
    },
    { strided: true },
  );
}

registerKernel(
  'pow',
  'cpu',
  ([x], { exponent }) => {
    requireNumeric('pow', x!);
    const out = allocate(x!.shape, x!.dtype, x!.device);
    const expr = exponent === 2 ? 'a * a' : exponent === 3 ? 'a * a * a' : `a ** (${exponent})`;
    mapStrided(expr, dense(out), x!.shape, raw(x!), x!.strides, x!.offset);
    return [out];
  },
  { strided: true },
);

const arithmetic: Record<string, string> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  div: 'a / b',
  maximum: '(a >= b || a !== a ? a : b)',
  minimum: '(a <= b || a !== a ? a : b)',
};
const comparison: Record<string, string> = {
  eq: '(a === b ? 1 : 0)',
  ne: '(a !== b ? 1 : 0)',
  lt: '(a < b ? 1 : 0)',
  le: '(a <= b ? 1 : 0)',
  gt: '(a > b ? 1 : 0)',
  ge: '(a >= b ? 1 : 0)',
};

function binaryKernel(op: string, expr: string, outDType: (d: DType) => DType) {
  return ([a, b]: Tensor[]) => {
    requireNumeric(op, a!, b!); // dtypes agree: checked by the op (ops/elementwise.ts)
    const shape = broadcastShapes(op, a!.shape, b!.shape);
    const out = allocate(shape, outDType(a!.dtype), a!.device);
    zipStrided(
      expr,
      dense(out),
      shape,
      raw(a!),
      broadcastStrides(a!, shape),
      a!.offset,
      raw(b!),
      broadcastStrides(b!, shape),
      b!.offset,
    );
    return [out];
  };
}

for (const [op, expr] of Object.entries(arithmetic)) {
  registerKernel(
    op as 'add',
    'cpu',
    binaryKernel(op, expr, (d) => d),
    { strided: true },
  );
}
for (const [op, expr] of Object.entries(comparison)) {
  registerKernel(
    op as 'eq',
    'cpu',
    binaryKernel(op, expr, () => 'bool'),
    { strided: true },
  );
}

registerKernel(
  'where',
  'cpu',
  ([cond, a, b]) => {
    requireNumeric('where', a!, b!); // dtypes: checked by the op (ops/elementwise.ts where)
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
    requireNumeric('masked_fill', x!); // mask dtype and shape: checked by the op (ops/elementwise.ts)
    const shape = x!.shape;
    const out = allocate(shape, x!.dtype, x!.device);
    zipStrided(
      `(b ? (${value}) : a)`,
      dense(out),
      shape,
      raw(x!),
      x!.strides,
      x!.offset,
      raw(mask!),
      broadcastStrides(mask!, shape),
      mask!.offset,
    );
    return [out];
  },
  { strided: true },
);

export type { NumArray };
