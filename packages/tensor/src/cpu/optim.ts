// The fused AdamW update on CPU: one pass over param, grad and both moments, in place; and its
// mixed-precision form, where a bf16 parameter (raw bits on this backend) is re-rounded from an f32
// master copy that takes the update. Test: cd packages/tensor && npx vitest run src/optim

import type { OpAttrs } from '../core/op-types.js';
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { bf16BitsToF32Array, f32ToBf16Bits } from '../io/half-float.js';
import { dense, type FloatArray } from './backend.js';

type Attrs = OpAttrs['adamw_step'];

/** AdamW on p with gradient g, the moments m1 and m2 updated in place. */
function adamw(p: FloatArray, g: FloatArray, m1: FloatArray, m2: FloatArray, a: Attrs): void {
  const { lr, beta1, beta2, eps, weightDecay, step } = a;
  const correction1 = 1 - beta1 ** step;
  const correction2 = 1 - beta2 ** step;
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i]!;
    const mi = (m1[i] = beta1 * m1[i]! + (1 - beta1) * gi);
    const vi = (m2[i] = beta2 * m2[i]! + (1 - beta2) * gi * gi);
    // As torch.optim.AdamW: decoupled decay first, then the bias-corrected Adam step.
    p[i] = p[i]! * decay - (lr * (mi / correction1)) / (Math.sqrt(vi / correction2) + eps);
  }
}

/** A gradient as numbers: bf16 is stored as raw bits on this backend, so it is widened first. */
function gradValues(grad: Tensor): FloatArray {
  return grad.dtype === 'bf16'
    ? bf16BitsToF32Array(dense(grad) as unknown as Uint16Array)
    : dense<FloatArray>(grad);
}

registerKernel('adamw_step', 'cpu', ([param, grad, m, v], attrs) => {
  if (param!.dtype === 'bf16')
    throw new TypeError(
      `adamw_step (cpu): a bf16 parameter ${param!.describe()} needs adamw_step_mixed (f32 master weights)`,
    );
  adamw(dense<FloatArray>(param!), gradValues(grad!), dense<FloatArray>(m!), dense<FloatArray>(v!), attrs);
  return [];
});

registerKernel('adamw_step_mixed', 'cpu', ([param, grad, master, m, v], attrs) => {
  const where = 'adamw_step_mixed (cpu)';
  if (param!.dtype !== 'bf16')
    throw new TypeError(`${where}: the parameter must be bf16, got ${param!.describe()}`);
  for (const [what, t] of [
    ['master', master!],
    ['exp_avg', m!],
    ['exp_avg_sq', v!],
  ] as Array<[string, Tensor]>) {
    if (t.dtype !== 'f32') throw new TypeError(`${where}: ${what} must be f32, got ${t.describe()}`);
  }
  for (const t of [grad!, master!, m!, v!]) {
    if (t.size !== param!.size)
      throw new RangeError(`${where}: ${t.describe()} does not match the parameter ${param!.describe()}`);
  }
  const upper = dense<FloatArray>(master!);
  adamw(upper, gradValues(grad!), dense<FloatArray>(m!), dense<FloatArray>(v!), attrs);
  const bits = dense(param!) as unknown as Uint16Array;
  for (let i = 0; i < upper.length; i++) bits[i] = f32ToBf16Bits(upper[i]!);
  return [];
});
