// The fused AdamW steps on cuda, in place: f32 (or bf16) params and grads, f32 moments, as
// torch.optim.AdamW (decoupled decay, then the bias-corrected step). Mirrors cpu/optim.ts.
// Test: tests/optim.test.ts (GPU).
import { registerKernel } from '@grin-moe/tensor';
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

registerKernel('adamw_step', 'cuda', ([param, grad, m, v], { lr, beta1, beta2, eps, weightDecay, step }) => {
  for (const t of [grad!, m!, v!]) {
    if (t.size !== param!.size)
      throw new RangeError(
        `adamw_step (cuda): ${t.describe()} does not match the parameter ${param!.describe()}`,
      );
  }
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
    ...hyper({ lr, beta1, beta2, eps, weightDecay, step }),
  );
  return [];
});

// Mixed precision: a bf16 parameter re-rounded (nearest-even) from an f32 master copy that takes
// the same update (csrc/optim.cu). Mirrors adamw_step_mixed in cpu/optim.ts.
registerKernel(
  'adamw_step_mixed',
  'cuda',
  ([param, grad, master, m, v], { lr, beta1, beta2, eps, weightDecay, step }) => {
    const where = 'adamw_step_mixed (cuda)';
    if (param!.dtype !== 'bf16')
      throw new TypeError(`${where}: the parameter must be bf16, got ${param!.describe()}`);
    for (const [what, t] of [
      ['master', master!],
      ['exp_avg', m!],
      ['exp_avg_sq', v!],
    ] as const) {
      if (t.dtype !== 'f32') throw new TypeError(`${where}: ${what} must be f32, got ${t.describe()}`);
    }
    for (const t of [grad!, master!, m!, v!]) {
      if (t.size !== param!.size)
        throw new RangeError(`${where}: ${t.describe()} does not match the parameter ${param!.describe()}`);
    }
    native().adamwMixed(
      dev(param!),
      dtypeCode(grad!.dtype),
      addr(param!),
      addr(grad!),
      addr(master!),
      addr(m!),
      addr(v!),
      param!.size,
      ...hyper({ lr, beta1, beta2, eps, weightDecay, step }),
    );
    return [];
  },
);
