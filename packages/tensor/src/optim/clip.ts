// Gradient clipping by global L2 norm, computed on the device: the norm comes back as a 0-d
// tensor and the scale is applied without reading it on the host (no sync in the train step),
// either here (clipGradNorm) or by the optimizer as it reads the gradients (gradNormScale).
// Test: cd packages/tensor && npx vitest run src/optim

import { noGrad } from '../autograd/mode.js';
import { backendOf } from '../core/backend.js';
import { tidy } from '../core/memory.js';
import { hasKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { runKernel } from '../ops/dispatch.js';
import { add, div, minimum, mul, sqrt } from '../ops/elementwise.js';
import { cast, copyInPlace } from '../ops/layout.js';
import { sumSquares } from '../ops/reduce.js';

/**
 * The joint L2 norm of every .grad and torch's clip coefficient min(maxNorm / (norm + 1e-6), 1),
 * both on the device (f32; f64 when the gradients are f64), the gradients untouched: pass `scale`
 * to the optimizer's stepOnce({ gradScale }) and the update applies it as it reads each gradient.
 */
export function gradNormScale(params: Tensor[], maxNorm: number): { norm: Tensor; scale: Tensor } {
  if (!(maxNorm > 0)) throw new RangeError(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) throw new Error('clipGradNorm: no parameter has a gradient');
      let total: Tensor | null = null;
      const device = grads[0]!.device;
      if (grads.every((g) => g.device === device) && hasKernel('sum_squares_many', backendOf(device).name)) {
        // one call for every gradient (the same sums and order as the loop below)
        total = runKernel('sum_squares_many', device, grads, {})[0]!;
      } else {
        for (const g of grads) {
          const sq = sumSquares(g); // one pass, f32 accumulation, no f32 copy of a bf16 gradient
          total = total ? add(total, sq.dtype === total.dtype ? sq : cast(sq, total.dtype)) : sq;
        }
      }
      const norm = sqrt(total!);
      // torch.nn.utils.clip_grad_norm_: coef = min(max_norm / (norm + 1e-6), 1)
      return { norm, scale: minimum(div(maxNorm, add(norm, 1e-6)), 1) };
    }),
  );
}

/** Scales every .grad so that their joint L2 norm is at most maxNorm; returns the norm before. */
export function clipGradNorm(params: Tensor[], maxNorm: number): Tensor {
  const { norm, scale } = gradNormScale(params, maxNorm);
  noGrad(() => {
    for (const p of params)
      if (p.grad)
        tidy(() =>
          copyInPlace(
            p.grad!,
            mul(p.grad!, scale.dtype === p.grad!.dtype ? scale : cast(scale, p.grad!.dtype)),
          ),
        );
  });
  scale.dispose();
  return norm;
}
