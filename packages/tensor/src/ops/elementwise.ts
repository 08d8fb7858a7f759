// Elementwise ops with broadcasting. Numbers are accepted where a tensor is and become 0-d
// tensors of the other operand's dtype and device. Dtypes and the mask's shape are checked here,
// once for every backend; broadcasting is checked where the kernels compute the output shape.
// Test: cd packages/tensor && npx vitest run src/ops/elementwise
import { broadcastShapes, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { scalarLike } from './creation.js';
import { runOp } from './dispatch.js';

export type Operand = Tensor | number;

function pair(a: Operand, b: Operand): [Tensor, Tensor, Tensor | null] {
  if (typeof a !== 'number' && typeof b !== 'number') return [a, b, null];
  if (typeof a === 'number' && typeof b === 'number')
    throw new TypeError('elementwise op: at least one operand must be a tensor');
  if (typeof a === 'number') {
    const s = scalarLike(b as Tensor, a);
    return [s, b as Tensor, s];
  }
  const s = scalarLike(a, b as number);
  return [a, s, s];
}

function binary(
  op: 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge',
) {
  return (a: Operand, b: Operand): Tensor => {
    const [x, y, temp] = pair(a, b);
    try {
      if (x.dtype !== y.dtype)
        throw new TypeError(`${op}: dtypes differ (${x.describe()} and ${y.describe()}); cast one first`);
      return runOp(op, [x, y], {})[0]!;
    } finally {
      temp?.dispose();
    }
  };
}

export const add = binary('add');
export const sub = binary('sub');
export const mul = binary('mul');
export const div = binary('div');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const eq = binary('eq');
export const ne = binary('ne');
export const lt = binary('lt');
export const le = binary('le');
export const gt = binary('gt');
export const ge = binary('ge');

const unary =
  (op: 'neg' | 'exp' | 'log' | 'sqrt' | 'rsqrt' | 'abs' | 'silu' | 'sigmoid' | 'tanh' | 'relu') =>
  (x: Tensor) =>
    runOp(op, [x], {})[0]!;

export const neg = unary('neg');
export const exp = unary('exp');
export const log = unary('log');
export const sqrt = unary('sqrt');
export const rsqrt = unary('rsqrt');
export const abs = unary('abs');
export const silu = unary('silu');
export const sigmoid = unary('sigmoid');
export const tanh = unary('tanh');
export const relu = unary('relu');

export function pow(x: Tensor, exponent: number): Tensor {
  return runOp('pow', [x], { exponent })[0]!;
}

export function square(x: Tensor): Tensor {
  return pow(x, 2);
}

/** where(cond, a, b): a where cond is true, else b (broadcast). */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  const like = typeof a === 'number' ? (b as Tensor) : a;
  const x = typeof a === 'number' ? scalarLike(like, a) : a;
  const y = typeof b === 'number' ? scalarLike(like, b) : b;
  try {
    if (cond.dtype !== 'bool') throw new TypeError(`where: condition must be bool, got ${cond.describe()}`);
    if (x.dtype !== y.dtype)
      throw new TypeError(`where: dtypes differ (${x.describe()} and ${y.describe()})`);
    return runOp('where', [cond, x, y], {})[0]!;
  } finally {
    if (x !== a) x.dispose();
    if (y !== b) y.dispose();
  }
}

export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (mask.dtype !== 'bool') throw new TypeError(`maskedFill: mask must be bool, got ${mask.describe()}`);
  if (!shapesEqual(broadcastShapes('maskedFill', x.shape, mask.shape), x.shape)) {
    throw new RangeError(`maskedFill: mask ${mask.describe()} must broadcast to the input ${x.describe()}`);
  }
  return runOp('masked_fill', [x, mask], { value })[0]!;
}
