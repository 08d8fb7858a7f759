// The shared test helpers must be able to fail: gradcheck refuses inputs that carry no gradient
// (it would compare nothing), passes a correct rule and catches a wrong one; expectAllClose names
// the worst element. Run: cd packages/tensor && npx vitest run src/testing
import { describe, expect, it } from 'vitest';
import { customOp } from './autograd/custom.js';
import { mul, tensor } from './ops/index.js';
import { expectAllClose, gradcheck } from './testing.js';

const f64 = (values: number[], requiresGrad = true) =>
  tensor(Float64Array.from(values), { shape: [values.length], dtype: 'f64', requiresGrad });

/** square with a hand-written backward that is off by `factor` (1: correct). */
const square = (factor: number) =>
  customOp(`square-x${factor}`, {
    forward: (ctx, [x]) => {
      ctx.save(x!);
      return [mul(x!, x!)];
    },
    backward: (ctx, [g]) => [mul(mul(g!, ctx.saved[0]!), tensor(2 * factor, { dtype: 'f64' }))],
  });

describe('gradcheck', () => {
  it('refuses when no input requires grad', () => {
    const a = f64([1, 2, 3], false);
    const b = f64([4, 5, 6], false);
    expect(() => gradcheck((x, y) => mul(x!, y!), [a, b])).toThrow(
      'gradcheck: none of the 2 inputs requires grad, so no gradient would be checked; create them with requiresGrad: true',
    );
  });

  it('passes a correct backward and catches a wrong one', () => {
    expect(() => gradcheck((x) => square(1)([x!], undefined)[0]!, [f64([0.5, -1.5, 2])])).not.toThrow();
    expect(() => gradcheck((x) => square(1.01)([x!], undefined)[0]!, [f64([0.5, -1.5, 2])])).toThrow(
      /gradient of input 0/,
    );
  });

  it('checks only the inputs that require grad', () => {
    expect(() => gradcheck((x, y) => mul(x!, y!), [f64([1, 2]), f64([3, 4], false)])).not.toThrow();
  });
});

describe('expectAllClose', () => {
  it('passes within tolerance and names the worst element outside it', () => {
    expect(() => expectAllClose([1, 2, 3], [1, 2, 3 + 1e-9], { atol: 1e-8, rtol: 0 })).not.toThrow();
    expect(() => expectAllClose([1, 2, 3], [1, 2.5, 3], { atol: 1e-3, rtol: 0 })).toThrow(
      'values: element 1 is 2, expected 2.5 (atol 0.001, rtol 0; max abs error 5.000e-1)',
    );
  });
});
