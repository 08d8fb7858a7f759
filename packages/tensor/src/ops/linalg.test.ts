// linear (one op: y = x w^T + b) and its weight gradient (linear_weight_grad): forward against an
// inline reference loop, backward against f64 finite differences and against the composed
// matmul + add it replaces, for every subset of inputs that needs a gradient.
// Run: cd packages/tensor && npx vitest run src/ops/linalg
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const input = (shape: number[], shift: number, dtype: 'f64' | 'f32' = 'f64') =>
  T.tensor(
    Array.from({ length: numel(shape) }, (_, i) => Math.sin(i * 0.61 + shift) * 1.1),
    { shape, dtype, requiresGrad: true },
  );
const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);

describe('linear', () => {
  it('computes x w^T + b over any leading axes (reference loop)', () => {
    const x = input([2, 3, 4], 0.1);
    const w = input([5, 4], 0.7);
    const b = input([5], 1.3);
    const y = T.linear(x, w, b);
    expect(y.shape).toEqual([2, 3, 5]);
    const [X, W, B] = [host(x), host(w), host(b)];
    const want: number[] = [];
    for (let r = 0; r < 6; r++)
      for (let o = 0; o < 5; o++) {
        let acc = B[o]!;
        for (let i = 0; i < 4; i++) acc += X[r * 4 + i]! * W[o * 4 + i]!;
        want.push(acc);
      }
    expectAllClose(host(y), want, { atol: 1e-12 });
    expectAllClose(
      host(T.linear(x, w)),
      want.map((v, i) => v - B[i % 5]!),
      { atol: 1e-12 },
    );
  });

  it('has f64 gradients that match finite differences, with and without bias', () => {
    const x = input([3, 2, 4], 0.2);
    const w = input([3, 4], 0.9);
    const b = input([3], 1.7);
    gradcheck((a, c, d) => T.linear(a!, c!, d!), [x, w, b]);
    gradcheck((a, c) => T.linear(a!, c!), [x, w]);
  });

  it('gives the gradients of matmul + add for every subset of inputs that needs one', () => {
    for (const needs of [
      [true, true, true],
      [true, false, false],
      [false, true, false],
      [false, false, true],
      [false, true, true],
    ]) {
      const make = () => [input([4, 6], 0.3, 'f32'), input([5, 6], 0.8, 'f32'), input([5], 1.1, 'f32')];
      const fused = make();
      const composed = make();
      for (const set of [fused, composed]) set.forEach((t, i) => (t.requiresGrad = needs[i]!));
      const gy = T.tensor(
        Array.from({ length: 20 }, (_, i) => Math.cos(i)),
        { shape: [4, 5] },
      );
      T.linear(fused[0]!, fused[1]!, fused[2]!).backward(gy);
      T.add(T.matmul(composed[0]!, composed[1]!.transpose()), composed[2]!).backward(gy);
      for (let i = 0; i < 3; i++) {
        if (!needs[i]) {
          expect(fused[i]!.grad).toBeNull();
          continue;
        }
        expectAllClose(host(fused[i]!.grad!), host(composed[i]!.grad!), { atol: 1e-5 });
      }
    }
  });

  it('linear_weight_grad returns g^T x and the row sum of g', () => {
    const g = input([2, 3, 2], 0.4);
    const x = input([2, 3, 4], 1.4);
    const [dw, db] = T.runKernel('linear_weight_grad', 'cpu', [g, x], { hasBias: true });
    const [G, X] = [host(g), host(x)];
    const wantW = Array.from({ length: 8 }, (_, k) => {
      const [o, i] = [Math.floor(k / 4), k % 4];
      let acc = 0;
      for (let r = 0; r < 6; r++) acc += G[r * 2 + o]! * X[r * 4 + i]!;
      return acc;
    });
    expectAllClose(host(dw!), wantW, { atol: 1e-12 });
    expectAllClose(
      host(db!),
      [0, 1].map((o) => [0, 1, 2, 3, 4, 5].reduce((a, r) => a + G[r * 2 + o]!, 0)),
      {
        atol: 1e-12,
      },
    );
  });

  it('names the shapes it got on bad input', () => {
    const x = input([2, 4], 0);
    expect(() => T.linear(x, input([5, 3], 0))).toThrow(/expected x \[\.\.\., in\] and weight \[out, in\]/);
    expect(() => T.linear(x, input([5, 4], 0), input([4], 0))).toThrow(/bias must be \[5\]/);
    expect(() => T.linear(x, input([5, 4], 0, 'f32'))).toThrow(/dtypes differ/);
  });

  it('frees everything it allocates', () => {
    const x = input([3, 4], 0.1);
    const w = input([2, 4], 0.2);
    const b = input([2], 0.3);
    expectNoLeaks(() => {
      T.tidy(() => T.sum(T.linear(x, w, b)).backward());
      for (const t of [x, w, b]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  });
});
