// The fused AdamW steps on cuda, in place: f32 (or bf16) params and grads, f32 moments (bf16 ones,
// stochastically rounded, in the mixed step), as
// torch.optim.AdamW (decoupled decay, then the bias-corrected step), the gradient first multiplied
// by the optional scale input (one f32: the clip coefficient, read on the device). Sizes and the
// mixed step's dtypes are checked once by the optimizer (@grin-moe/tensor). Mirrors cpu/optim.ts.
// Test: tests/optim.test.ts (GPU).
import { registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';

/** The kernels' scalar arguments: lr, betas, eps, decoupled decay factor, bias corrections. */
function hyper(a: {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number;
}) {
  return [
    a.lr,
    a.beta1,
    a.beta2,
    a.eps,
    1 - a.lr * a.weightDecay,
    1 - a.beta1 ** a.step,
    1 - a.beta2 ** a.step,
  ] as const;
}

/** The optional scale input: one f32 on this device, or 0 (no scale). */
function scaleAddress(scale: Tensor | undefined): number {
  if (scale && scale.dtype !== 'f32')
    throw new TypeError(`adamw_step (cuda): the gradient scale must be f32, got ${scale.describe()}`);
  return scale ? addr(scale) : 0;
}

registerKernel('adamw_step', 'cuda', ([param, grad, m, v, scale], attrs) => {
  if (m!.dtype !== 'f32' || v!.dtype !== 'f32')
    throw new TypeError(`adamw_step (cuda): moments must be f32, got ${m!.describe()} and ${v!.describe()}`);
  native().adamw(
    dev(param!),
    dtypeCode(param!.dtype),
    dtypeCode(grad!.dtype),
    addr(param!),
    addr(grad!),
    addr(m!),
    addr(v!),
    param!.size,
    ...hyper(attrs),
    scaleAddress(scale),
  );
  return [];
});

// Mixed precision: a bf16 parameter re-rounded (nearest-even) from an f32 master copy that takes
// the same update, moments f32 or bf16 (csrc/optim.cu). Mirrors adamw_step_mixed in cpu/optim.ts.
registerKernel('adamw_step_mixed', 'cuda', ([param, grad, master, m, v, scale], attrs) => {
  if (m!.dtype !== v!.dtype)
    throw new TypeError(
      `adamw_step_mixed (cuda): moments differ in dtype: ${m!.describe()}, ${v!.describe()}`,
    );
  native().adamwMixed(
    dev(param!),
    dtypeCode(grad!.dtype),
    addr(param!),
    addr(grad!),
    addr(master!),
    addr(m!),
    addr(v!),
    param!.size,
    ...hyper(attrs),
    scaleAddress(scale),
    dtypeCode(m!.dtype),
    attrs.salt ?? 0,
  );
  return [];
});
