// Elementwise ops: forward against closed forms, backward against finite differences, over
// shapes that broadcast and over non-contiguous views.
// Test: cd packages/tensor && npx vitest run src/ops/elementwise
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const f64 = (data: number[], shape: number[]) => T.tensor(data, { shape, dtype: 'f64', requiresGrad: true });
const ramp = (shape: number[], scale = 0.37, shift = 0.2) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return f64(
    Array.from({ length: n }, (_, i) => Math.sin(i * scale + shift) * 1.3 + 0.05 * i),
    shape,
  );
};
const positive = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  return f64(
    Array.from({ length: n }, (_, i) => 0.5 + ((i * 7) % 11) / 5),
    shape,
  );
};

const unaryCases: Array<[string, (x: T.Tensor) => T.Tensor, (v: number) => number, boolean]> = [
  ['neg', T.neg, (v) => -v, false],
  ['exp', T.exp, Math.exp, false],
  ['log', T.log, Math.log, true],
  ['sqrt', T.sqrt, Math.sqrt, true],
  ['rsqrt', T.rsqrt, (v) => 1 / Math.sqrt(v), true],
  ['abs', T.abs, Math.abs, false],
  ['silu', T.silu, (v) => v / (1 + Math.exp(-v)), false],
  ['sigmoid', T.sigmoid, (v) => 1 / (1 + Math.exp(-v)), false],
  ['tanh', T.tanh, Math.tanh, false],
  ['relu', T.relu, (v) => Math.max(v, 0), false],
  ['pow3', (x) => T.pow(x, 3), (v) => v ** 3, false],
  ['pow-1.5', (x) => T.pow(x, -1.5), (v) => v ** -1.5, true],
];

describe.each(unaryCases)('%s', (_name, op, ref, needsPositive) => {
  it.each([[[5]], [[3, 4]], [[2, 3, 4]]])('forward and backward on %j', (shape) => {
    const x = needsPositive ? positive(shape) : ramp(shape);
    const y = op(x);
    expectAllClose(y, Array.from(x.toArray() as Float64Array, ref), { atol: 1e-12, rtol: 1e-12 });
    gradcheck(op, [x]);
  });
  it('backward through a transposed view', () => {
    const x = needsPositive ? positive([3, 4]) : ramp([3, 4]);
    gradcheck((a) => op(a.transpose()), [x]);
  });
});

const binaryCases: Array<
  [string, (a: T.Tensor | number, b: T.Tensor | number) => T.Tensor, (a: number, b: number) => number]
> = [
  ['add', T.add, (a, b) => a + b],
  ['sub', T.sub, (a, b) => a - b],
  ['mul', T.mul, (a, b) => a * b],
  ['div', T.div, (a, b) => a / b],
  ['maximum', T.maximum, Math.max],
  ['minimum', T.minimum, Math.min],
];
const broadcastShapes: Array<[number[], number[]]> = [
  [[4], [4]],
  [[3, 4], [4]],
  [
    [3, 1],
    [1, 4],
  ],
  [
    [2, 3, 4],
    [3, 1],
  ],
  [[1], [2, 3]],
];

describe.each(binaryCases)('%s', (name, op, ref) => {
  it.each(broadcastShapes)('broadcasts %j with %j', (sa, sb) => {
    const a = ramp(sa);
    const b = name === 'div' ? positive(sb) : ramp(sb, 0.91, 1.1);
    const y = op(a, b);
    const shape = T.broadcastShapes('test', sa, sb);
    const ea = a.expand(shape).toArray() as Float64Array;
    const eb = b.expand(shape).toArray() as Float64Array;
    expectAllClose(
      y,
      Array.from(ea, (v, i) => ref(v, eb[i]!)),
      { atol: 1e-12 },
    );
    gradcheck(op, [a, b]);
  });
  it('takes a number on either side', () => {
    const a = positive([3]);
    expectAllClose(
      op(a, 2),
      Array.from(a.toArray() as Float64Array, (v) => ref(v, 2)),
    );
    expectAllClose(
      op(2, a),
      Array.from(a.toArray() as Float64Array, (v) => ref(2, v)),
    );
  });
});

describe('comparisons, where and masked fill', () => {
  it('compare into bool and select', () => {
    const a = T.tensor([1, 5, 3, 2]);
    const b = T.tensor([2, 5, 1, 2]);
    expect(Array.from(T.gt(a, b).toArray())).toEqual([0, 0, 1, 0]);
    expect(Array.from(T.eq(a, b).toArray())).toEqual([0, 1, 0, 1]);
    expect(T.le(a, b).dtype).toBe('bool');
    expectAllClose(T.where(T.gt(a, b), a, b), [2, 5, 3, 2]);
    expectAllClose(T.maskedFill(a, T.lt(a, 2.5), -1), [-1, 5, 3, -1]);
  });
  it('where and masked fill backward', () => {
    const a = ramp([3, 4]);
    const b = ramp([4], 1.3, 0.1);
    const cond = T.tensor([1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0], { shape: [3, 4], dtype: 'bool' });
    gradcheck((x, y) => T.where(cond, x, y), [a, b]);
    gradcheck((x) => T.maskedFill(x, T.tensor([1, 0, 0, 1], { dtype: 'bool' }), 7), [a]);
  });
  it('rejects mixed dtypes with a clear error', () => {
    expect(() => T.add(T.tensor([1]), T.tensor([1], { dtype: 'f64' }))).toThrow(
      /dtypes differ.*cast one first/,
    );
    expect(() => T.add(T.zeros([2, 3]), T.zeros([4]))).toThrow(
      /add: shapes \[2,3\] and \[4\] do not broadcast/,
    );
  });
  // Checked in the ops, once for every backend (the kernels trust them).
  it('names the op and the argument of a bad condition, mask or dtype pair', () => {
    const bool = (shape: number[]) => T.zeros(shape, { dtype: 'bool' });
    expect(() => T.mul(T.zeros([2]), T.zeros([2], { dtype: 'f64' }))).toThrow(
      'mul: dtypes differ (f32[2] on cpu and f64[2] on cpu); cast one first',
    );
    expect(() => T.where(T.zeros([2]), T.zeros([2]), T.zeros([2]))).toThrow(
      'where: condition must be bool, got f32[2] on cpu',
    );
    expect(() => T.where(bool([2]), T.zeros([2]), T.zeros([2], { dtype: 'f64' }))).toThrow(
      'where: dtypes differ (f32[2] on cpu and f64[2] on cpu)',
    );
    expect(() => T.maskedFill(T.zeros([2, 3]), T.zeros([3]), 0)).toThrow(
      'maskedFill: mask must be bool, got f32[3] on cpu',
    );
    expect(() => T.maskedFill(T.zeros([3]), bool([2, 3]), 0)).toThrow(
      'maskedFill: mask bool[2,3] on cpu must broadcast to the input f32[3] on cpu',
    );
    expect(() => T.maskedFill(T.zeros([3]), bool([2]), 0)).toThrow(
      /maskedFill: shapes \[3\] and \[2\] do not broadcast/,
    );
  });
  it('frees every temporary in a scope, forward and backward', () => {
    const x = ramp([4, 4]);
    expectNoLeaks(
      () =>
        T.tidy(() => {
          const y = T.sum(T.mul(T.exp(x), T.silu(x)));
          y.backward();
        }),
      1, // x.grad
    );
    expect(x.grad?.shape).toEqual([4, 4]);
  });
});
