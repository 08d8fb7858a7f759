// The fused AdamW update on CPU: one pass over param, grad and both moments, in place; and its
// mixed-precision form, where a bf16 parameter (raw bits on this backend) is re-rounded from an f32
// master copy that takes the update, with f32 moments or bf16 ones stored by stochastic rounding
// (optim/rounding.ts). An optional scale input (one f32: the clip coefficient)
// multiplies the gradient as it is read, rounded as mul(grad, scale) would round it. Sizes and dtypes are checked once by the optimizer (optim/optimizer.ts).
// Test: cd packages/tensor && npx vitest run src/optim

import type { OpAttrs } from '../core/op-types.js';
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { bf16BitsToF32Array, f32ToBf16Bits } from '../io/half-float.js';
import { momentDraw, stochasticBf16Bits } from '../optim/rounding.js';
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

/**
 * A gradient as numbers: bf16 is stored as raw bits on this backend, so it is widened first; with
 * a scale, a scaled copy, each product rounded to f32 as mul(grad, scale) rounds it (f64 stays f64).
 */
function gradValues(grad: Tensor, scale: Tensor | undefined): FloatArray {
  const values =
    grad.dtype === 'bf16'
      ? bf16BitsToF32Array(dense(grad) as unknown as Uint16Array)
      : dense<FloatArray>(grad);
  if (!scale) return values;
  const s = dense<FloatArray>(scale)[0]!;
  const scaled = grad.dtype === 'f64' ? new Float64Array(values.length) : new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) scaled[i] = values[i]! * s;
  return scaled;
}

registerKernel('adamw_step', 'cpu', ([param, grad, m, v, scale], attrs) => {
  if (param!.dtype === 'bf16')
    throw new TypeError(
      `adamw_step (cpu): a bf16 parameter ${param!.describe()} needs adamw_step_mixed (f32 master weights)`,
    );
  adamw(
    dense<FloatArray>(param!),
    gradValues(grad!, scale),
    dense<FloatArray>(m!),
    dense<FloatArray>(v!),
    attrs,
  );
  return [];
});

registerKernel('adamw_step_mixed', 'cpu', ([param, grad, master, m, v, scale], attrs) => {
  const upper = dense<FloatArray>(master!);
  const g = gradValues(grad!, scale);
  if (m!.dtype === 'bf16') adamwBf16Moments(upper, g, m!, v!, attrs);
  else adamw(upper, g, dense<FloatArray>(m!), dense<FloatArray>(v!), attrs);
  const bits = dense(param!) as unknown as Uint16Array;
  for (let i = 0; i < upper.length; i++) bits[i] = f32ToBf16Bits(upper[i]!);
  return [];
});

/**
 * The update with bf16 moments: they are widened, updated in f32 and the update reads them before
 * they are stored back, each stochastically rounded with its element's draw (as csrc/optim.cu).
 */
function adamwBf16Moments(
  master: FloatArray,
  g: FloatArray,
  m: Tensor,
  v: Tensor,
  attrs: OpAttrs['adamw_step_mixed'],
): void {
  const [mBits, vBits] = [dense(m) as unknown as Uint16Array, dense(v) as unknown as Uint16Array];
  const [m1, m2] = [bf16BitsToF32Array(mBits), bf16BitsToF32Array(vBits)];
  adamw(master, g, m1, m2, attrs);
  const salt = attrs.salt ?? 0;
  for (let i = 0; i < m1.length; i++) {
    const draw = momentDraw(salt, i);
    mBits[i] = stochasticBf16Bits(m1[i]!, draw & 0xffff);
    vBits[i] = stochasticBf16Bits(m2[i]!, draw >>> 16);
  }
}
