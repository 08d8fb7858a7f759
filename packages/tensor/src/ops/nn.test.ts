// softmax, logSoftmax, layerNorm, rope (+ ropeTables), crossEntropy and dropout: forward against
// inline reference loops, backward against f64 finite differences, over shape tables that include
// non-contiguous views. Run: cd packages/tensor && npx vitest run src/ops/nn
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { Generator } from '../random/generator.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const values = (n: number, scale = 0.37, shift = 0.2) =>
  Array.from({ length: n }, (_, i) => Math.sin(i * scale + shift) * 1.3 + 0.05 * (i % 7));
const f64 = (shape: number[], scale?: number, shift?: number) =>
  T.tensor(values(numel(shape), scale, shift), { shape, dtype: 'f64', requiresGrad: true });
const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);

/** Applies fn to every 1-d lane of `data` (shape) along `axis`, in place of a copy. */
function alongAxis(
  data: number[],
  shape: number[],
  axis: number,
  fn: (lane: number[]) => number[],
): number[] {
  const inner = numel(shape.slice(axis + 1));
  const n = shape[axis]!;
  const out = [...data];
  for (let o = 0; o < numel(shape.slice(0, axis)); o++) {
    for (let i = 0; i < inner; i++) {
      const at = (j: number) => o * n * inner + j * inner + i;
      const lane = fn(Array.from({ length: n }, (_, j) => data[at(j)]!));
      lane.forEach((v, j) => (out[at(j)] = v));
    }
  }
  return out;
}
const refSoftmax = (lane: number[]) => {
  const m = Math.max(...lane);
  const e = lane.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const refLogSoftmax = (lane: number[]) => {
  const m = Math.max(...lane);
  const lse = m + Math.log(lane.reduce((a, v) => a + Math.exp(v - m), 0));
  return lane.map((v) => v - lse);
};

describe.each([
  ['softmax', T.softmax, refSoftmax],
  ['logSoftmax', T.logSoftmax, refLogSoftmax],
] as const)('%s', (_name, op, ref) => {
  it.each([
    [[5], -1],
    [[3, 4], -1],
    [[3, 4], 0],
    [[2, 3, 4], 1],
    [[2, 1, 3], -1],
  ])('matches the reference and finite differences on %j along %i', (shape, axis) => {
    const x = f64(shape);
    const a = axis < 0 ? axis + shape.length : axis;
    expectAllClose(op(x, axis), alongAxis(host(x), shape, a, ref), { atol: 1e-12 });
    gradcheck((t) => op(t, axis), [x]);
  });
  it('works on a transposed view and stays finite for large logits', () => {
    const x = f64([4, 3]);
    const view = x.transpose();
    expectAllClose(op(view), alongAxis(host(view), [3, 4], 1, ref), { atol: 1e-12 });
    gradcheck((t) => op(t.transpose(), -1), [x]);
    const big = T.tensor([1000, 1001, 999, -1000]);
    expectAllClose(op(big), ref([1000, 1001, 999, -1000]), { atol: 1e-5 });
  });
  it('rejects integer input and a bad axis', () => {
    expect(() => op(T.tensor([1, 2], { dtype: 'i32' }))).toThrow(/must be f32 or f64, got i32\[2\]/);
    expect(() => op(T.zeros([2, 2]), 2)).toThrow(/axis 2 is out of range for a tensor of rank 2/);
  });
});

function refLayerNorm(
  data: number[],
  d: number,
  w: number[] | null,
  b: number[] | null,
  eps: number,
): number[] {
  const out: number[] = [];
  for (let r = 0; r < data.length / d; r++) {
    const row = data.slice(r * d, r * d + d);
    const mean = row.reduce((a, v) => a + v, 0) / d;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / d;
    row.forEach((v, j) =>
      out.push(((v - mean) / Math.sqrt(variance + eps)) * (w ? w[j]! : 1) + (b ? b[j]! : 0)),
    );
  }
  return out;
}

describe('layerNorm', () => {
  it.each([
    [[4], true, true],
    [[3, 5], true, true],
    [[2, 3, 4], true, false],
    [[2, 3, 4], false, true],
    [[3, 6], false, false],
  ])('on %j (weight %s, bias %s) matches the reference and finite differences', (shape, hasW, hasB) => {
    const d = shape[shape.length - 1]!;
    const x = f64(shape);
    const w = hasW ? f64([d], 0.9, 1.0) : null;
    const b = hasB ? f64([d], 1.7, 0.4) : null;
    const y = T.layerNorm(x, w, b, 1e-5);
    expectAllClose(y, refLayerNorm(host(x), d, w && host(w), b && host(b), 1e-5), { atol: 1e-10 });
    gradcheck(
      (...ts) => T.layerNorm(ts[0]!, hasW ? ts[1] : null, hasB ? ts[hasW ? 2 : 1] : null),
      [x, ...(w ? [w] : []), ...(b ? [b] : [])],
    );
  });
  it('normalizes a transposed view and a large eps like PyTorch (biased variance)', () => {
    const x = f64([5, 3]);
    const w = f64([5], 0.9, 1.0);
    const view = x.transpose();
    expectAllClose(T.layerNorm(view, w, null, 0.1), refLayerNorm(host(view), 5, host(w), null, 0.1), {
      atol: 1e-10,
    });
    gradcheck((a, b) => T.layerNorm(a!.transpose(), b, null, 0.1), [x, w]);
    expectAllClose(T.layerNorm(T.tensor([1, 3])), [-1, 1], { atol: 1e-5 });
  });
  it('names the mismatched weight', () => {
    expect(() => T.layerNorm(T.zeros([2, 4]), T.ones([3]))).toThrow(
      /layerNorm: weight f32\[3\] on cpu must be \[4\]/,
    );
    // Checked in the op, once for every backend (the kernels trust weight and bias).
    expect(() => T.layerNorm(T.zeros([2, 4]), null, T.zeros([2, 4]))).toThrow(
      'layerNorm: bias f32[2,4] on cpu must be [4], the last axis of x f32[2,4] on cpu',
    );
    expect(() => T.layerNorm(T.zeros([2, 4]), T.ones([4], { dtype: 'f64' }))).toThrow(
      'layerNorm: weight f64[4] on cpu must have the dtype of x f32[2,4] on cpu',
    );
  });
});

function refRope(
  x: number[],
  xShape: number[],
  cos: number[],
  sin: number[],
  tableShape: number[],
): number[] {
  const d = xShape[xShape.length - 1]!;
  const h = d / 2;
  const shape = T.broadcastShapes('test', xShape, tableShape);
  const c = T.tensor(cos, { shape: tableShape, dtype: 'f64' }).expand(shape).toArray() as Float64Array;
  const s = T.tensor(sin, { shape: tableShape, dtype: 'f64' }).expand(shape).toArray() as Float64Array;
  return x.map((v, i) => {
    const j = i % d;
    const rotated = j < h ? -x[i + h]! : x[i - h]!;
    return v * c[i]! + rotated * s[i]!;
  });
}

describe('rope', () => {
  it.each([
    [
      [3, 4],
      [3, 4],
    ],
    [
      [2, 3, 5, 6],
      [5, 6],
    ],
    [
      [2, 2, 3, 4],
      [2, 1, 3, 4],
    ],
  ])('x %j with tables %j matches the reference and finite differences', (xShape, tableShape) => {
    const x = f64(xShape);
    const cos = T.tensor(values(numel(tableShape), 0.5, 0.1), { shape: tableShape, dtype: 'f64' });
    const sin = T.tensor(values(numel(tableShape), 0.8, 0.7), { shape: tableShape, dtype: 'f64' });
    expectAllClose(T.rope(x, cos, sin), refRope(host(x), xShape, host(cos), host(sin), tableShape), {
      atol: 1e-12,
    });
    gradcheck((a) => T.rope(a!, cos, sin), [x]);
  });
  it('reads a [B,S,H,D] projection transposed to [B,H,S,D] through its strides', () => {
    const x = f64([2, 3, 2, 4]);
    const { cos, sin } = T.ropeTables([0, 1, 2], 4, 10000, { dtype: 'f64' });
    const view = x.transpose(1, 2);
    expectAllClose(T.rope(view, cos, sin), refRope(host(view), [2, 2, 3, 4], host(cos), host(sin), [3, 4]), {
      atol: 1e-12,
    });
    gradcheck((a) => T.rope(a!.transpose(1, 2), cos, sin), [x]);
  });
  it('ropeTables: inv_freq = 1/theta^(2i/D), frequencies duplicated, longrope factors and mscale', () => {
    const { cos, sin } = T.ropeTables([0, 3, 7], 4, 100, { dtype: 'f64' });
    const inv = [1, 1 / 10];
    const want = (f: (v: number) => number) =>
      [0, 3, 7].flatMap((p) => [...inv, ...inv].map((w) => f(p * w)));
    expectAllClose(cos, want(Math.cos), { atol: 1e-15 });
    expectAllClose(sin, want(Math.sin), { atol: 1e-15 });
    const scaling = { shortFactor: [1, 2], longFactor: [4, 8], factor: 1.5, originalMaxPositions: 5 };
    const short = T.ropeTables([0, 3], 4, 100, { dtype: 'f64', scaling });
    expectAllClose(
      short.cos,
      [0, 3].flatMap((p) => [1, 0.05, 1, 0.05].map((w) => 1.5 * Math.cos(p * w))),
      { atol: 1e-15 },
    );
    const long = T.ropeTables([0, 3, 7], 4, 100, { dtype: 'f64', scaling });
    expectAllClose(
      long.sin,
      [0, 3, 7].flatMap((p) => [0.25, 0.0125, 0.25, 0.0125].map((w) => 1.5 * Math.sin(p * w))),
      { atol: 1e-15 },
    );
    const f32 = T.ropeTables(T.tensor([0, 1, 2, 3], { dtype: 'i32' }), 8);
    expect(f32.cos.dtype).toBe('f32');
    expect(f32.cos.shape).toEqual([4, 8]);
  });
  it('names bad shapes', () => {
    expect(() => T.rope(T.zeros([2, 3]), T.zeros([2, 3]), T.zeros([2, 3]))).toThrow(
      /rope: the last axis of x f32\[2,3\].* must be even/,
    );
    expect(() => T.rope(T.zeros([2, 4]), T.zeros([3, 4]), T.zeros([2, 4]))).toThrow(
      /rope \(cos against x\): shapes \[2,4\] and \[3,4\] do not broadcast/,
    );
    expect(() => T.ropeTables([0], 5)).toThrow(/headDim must be a positive even integer, got 5/);
    expect(() => T.ropeTables([0], 4, 10, { scaling: { shortFactor: [1] } })).toThrow(
      /shortFactor has 1 entries, expected headDim\/2 = 2/,
    );
  });
});

function refCrossEntropy(
  logits: number[],
  v: number,
  targets: number[],
  ignore: number,
): { losses: number[]; count: number } {
  let count = 0;
  const losses = targets.map((t, i) => {
    if (t === ignore) return 0;
    count++;
    return -refLogSoftmax(logits.slice(i * v, i * v + v))[t]!;
  });
  return { losses, count };
}

describe('crossEntropy', () => {
  const targets = T.tensor([2, -100, 0, 4, 2], { dtype: 'i32' });
  it.each(['mean', 'sum', 'none'] as const)(
    'reduction %s matches the reference and finite differences',
    (reduction) => {
      const logits = f64([5, 5]);
      const { losses, count } = refCrossEntropy(host(logits), 5, host(targets), -100);
      const total = losses.reduce((a, b) => a + b, 0);
      const want = reduction === 'none' ? losses : reduction === 'sum' ? [total] : [total / count];
      expectAllClose(T.crossEntropy(logits, targets, { reduction }), want, { atol: 1e-12 });
      gradcheck((x) => T.crossEntropy(x!, targets, { reduction }), [logits]);
      gradcheck((x) => T.crossEntropy(x!.transpose(), targets, { reduction }), [f64([5, 5], 0.9)]);
    },
  );
  it('takes [B,S,V] logits with [B,S] targets and a custom ignoreIndex', () => {
    const logits = f64([2, 3, 4]);
    const t = T.tensor(
      [
        [1, 3, 0],
        [2, 2, 1],
      ],
      { dtype: 'i32' },
    );
    const { losses } = refCrossEntropy(host(logits), 4, host(t), 1);
    const none = T.crossEntropy(logits, t, { ignoreIndex: 1, reduction: 'none' });
    expect(none.shape).toEqual([2, 3]);
    expectAllClose(none, losses, { atol: 1e-12 });
    gradcheck((x) => T.crossEntropy(x!, t, { ignoreIndex: 1 }), [logits]);
  });
  it('gives NaN (0/0) when every target is ignored, and zero gradients', () => {
    const logits = f64([2, 3]);
    const loss = T.crossEntropy(logits, T.tensor([-100, -100], { dtype: 'i32' }));
    expect(loss.item()).toBeNaN();
    loss.backward();
    expectAllClose(logits.grad!, new Array(6).fill(0));
  });
  it('names the position, target and class count of a bad target', () => {
    expect(() => T.crossEntropy(T.zeros([3, 4]), T.tensor([0, 4, 1], { dtype: 'i32' }))).toThrow(
      'cross_entropy: target 4 at position 1 is out of range for 4 classes (valid 0..3, or ignoreIndex -100)',
    );
    expect(() => T.crossEntropy(T.zeros([3, 4]), T.tensor([0, 1], { dtype: 'i32' }))).toThrow(
      /logits f32\[3,4\].* must be \[...,V\] over targets i32\[2\]/,
    );
    expect(() => T.crossEntropy(T.zeros([2, 4]), T.tensor([0, 1]))).toThrow(
      'crossEntropy: targets must be i32, got f32[2] on cpu',
    );
  });
});

describe('dropout', () => {
  it('keeps x when p = 0 or not training, zeroes all when p = 1', () => {
    const x = f64([3, 4]);
    expectAllClose(T.dropout(x, 0.5, { training: false }), host(x));
    expectAllClose(T.dropout(x, 0), host(x));
    expectAllClose(T.dropout(x, 1), new Array(12).fill(0));
    expect(() => T.dropout(x, 1.5)).toThrow(/dropout: p must be in \[0, 1\], got 1.5/);
  });
  it('scales kept values by 1/(1-p), reproduces with a seed and passes the mask to the gradient', () => {
    const x = T.tensor(new Float64Array(4000).fill(1), {
      shape: [40, 100],
      dtype: 'f64',
      requiresGrad: true,
    });
    const y = T.dropout(x, 0.25, { generator: new Generator(7) });
    const kept = host(y);
    expect(kept.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-15)).toBe(true);
    const fraction = kept.filter((v) => v !== 0).length / kept.length;
    expect(Math.abs(fraction - 0.75)).toBeLessThan(0.03);
    expect(host(T.dropout(x, 0.25, { generator: new Generator(7) }))).toEqual(kept);
    T.sum(y).backward();
    expect(host(x.grad!)).toEqual(kept);
    gradcheck((a) => T.dropout(a!, 0.5, { generator: new Generator(3) }), [f64([3, 4])]);
  });
});

describe('memory', () => {
  it('frees every temporary of layerNorm, softmax, rope and crossEntropy, forward and backward', () => {
    const x = f64([2, 3, 4]);
    const w = f64([4], 0.9, 1.0);
    const { cos, sin } = T.ropeTables([0, 1, 2], 4, 10000, { dtype: 'f64' });
    const targets = T.tensor([0, 1, 2, 3, 0, -100], { dtype: 'i32' });
    expectNoLeaks(
      () =>
        T.tidy(() => {
          const h = T.rope(T.layerNorm(x, w, null), cos, sin);
          const loss = T.add(
            T.crossEntropy(T.logSoftmax(h), targets.reshape([2, 3])),
            T.sum(T.softmax(h, 1)),
          );
          loss.backward();
        }),
      2, // x.grad, w.grad
    );
    expect(x.grad?.shape).toEqual([2, 3, 4]);
  });
});
