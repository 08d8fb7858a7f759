// Random tensors through the `random` kernel against the Generator's own host draws (same seed,
// same values, same counter afterwards), and the fused randomScale against mul(x, rand) with its
// regenerated gradient. Run: cd packages/tensor && npx vitest run src/ops/random
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose } from '../testing.js';

const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);

describe('random ops replay the generator stream', () => {
  it.each([
    [
      'rand f32',
      (g: T.Generator) => T.rand([5, 3], { generator: g, low: -2, high: 3 }),
      (g: T.Generator) => g.uniform(15, 'f32', -2, 3),
    ],
    [
      'rand f64',
      (g: T.Generator) => T.rand([7], { generator: g, dtype: 'f64' }),
      (g: T.Generator) => g.uniform(7, 'f64'),
    ],
    [
      'randn f32 (odd n)',
      (g: T.Generator) => T.randn([3, 3], { generator: g, mean: 1, std: 2 }),
      (g: T.Generator) => g.normal(9, 'f32', 1, 2),
    ],
    [
      'randn f64',
      (g: T.Generator) => T.randn([5], { generator: g, dtype: 'f64' }),
      (g: T.Generator) => g.normal(5, 'f64'),
    ],
    [
      'randExponential f32',
      (g: T.Generator) => T.randExponential([10], { generator: g, rate: 2 }),
      (g: T.Generator) => g.exponential(10, 'f32', 2),
    ],
  ])('%s: same values and the same counter after', (_, drawTensor, drawHost) => {
    const viaOp = new T.Generator(1234);
    const viaHost = new T.Generator(1234);
    const first = drawTensor(viaOp);
    expect(host(first)).toEqual(Array.from(drawHost(viaHost)));
    expect(viaOp.getState()).toEqual(viaHost.getState());
    // and the next draw continues the same stream
    expect(host(T.rand([3], { generator: viaOp }))).toEqual(Array.from(viaHost.uniform(3)));
  });

  it('refuses bad parameters before reserving any block', () => {
    const g = new T.Generator(5);
    expect(() => T.rand([2], { generator: g, low: 1, high: 1 })).toThrow('need finite low < high');
    expect(() => T.randn([2], { generator: g, std: -1 })).toThrow('std >= 0');
    expect(g.counter).toBe(0n);
  });
});

describe('randomScale', () => {
  it.each([['f32'], ['f64']] as const)(
    '%s: equals x * rand(low, high) of the same stream, gradient the draws',
    (dtype) => {
      const x = T.tensor(
        Array.from({ length: 12 }, (_, i) => Math.cos(i) * 3),
        { shape: [4, 3], dtype, requiresGrad: true },
      );
      const fused = new T.Generator(99);
      const plain = new T.Generator(99);
      const y = T.randomScale(x, { low: 0.99, high: 1.01, generator: fused });
      const noise = T.rand([4, 3], { low: 0.99, high: 1.01, dtype, generator: plain });
      expect(host(y)).toEqual(host(T.mul(x, noise)));
      expect(fused.getState()).toEqual(plain.getState());
      T.sum(T.mul(y, T.full([4, 3], 2, { dtype }))).backward();
      expectAllClose(x.grad!, T.mul(noise, T.full([4, 3], 2, { dtype })), { atol: 0, rtol: 0 });
    },
  );
});
