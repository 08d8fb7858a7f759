// The fused AdamW update on CPU: one pass over param, grad and both moments, in place.
import { registerKernel } from '../core/registry.js';
import { dense, type FloatArray } from './backend.js';

registerKernel('adamw_step', 'cpu', ([param, grad, m, v], { lr, beta1, beta2, eps, weightDecay, step }) => {
  const p = dense<FloatArray>(param!);
  const g = dense<FloatArray>(grad!);
  const m1 = dense<FloatArray>(m!);
  const m2 = dense<FloatArray>(v!);
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
  return [];
});
