// Gradient rules of the random and dropless-MoE ops, written with runKernel so they run on every
// backend with the *_grad / *_backward kernels. random_scale is its own derivative (the same draws
// regenerated from the saved reservation); the permute is integer bookkeeping.
// Test: cd packages/tensor && npx vitest run src/ops
import type { Tensor } from '../../core/tensor.js';
import { full } from '../../ops/creation.js';
import { runKernel } from '../../ops/dispatch.js';
import type { RulesFor } from './types.js';

type MoeOps =
  | 'random'
  | 'sum_squares'
  | 'sum_squares_many'
  | 'random_scale'
  | 'moe_permute'
  | 'grouped_linear'
  | 'grouped_linear_input_grad'
  | 'grouped_linear_weight_grad'
  | 'moe_dispatch'
  | 'moe_combine'
  | 'moe_combine_backward'
  | 'silu_glu'
  | 'silu_glu_backward';

export const moeRules = {
  random: 'nondifferentiable',
  sum_squares: 'nondifferentiable',
  sum_squares_many: 'nondifferentiable',
  moe_permute: 'nondifferentiable',
  grouped_linear_input_grad: 'nondifferentiable',
  grouped_linear_weight_grad: 'nondifferentiable',
  moe_combine_backward: 'nondifferentiable',
  silu_glu_backward: 'nondifferentiable',

  random_scale: {
    backward: (ctx, [g]) => [runKernel('random_scale', g!.device, [g!], ctx.attrs)[0]!],
  },
  grouped_linear: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [x, ...weights] = ctx.inputs as Tensor[];
      const [needX, ...needWeights] = ctx.needsInputGrad;
      const dx = needX
        ? runKernel('grouped_linear_input_grad', g!.device, [g!, ...weights], ctx.attrs)[0]!
        : null;
      if (!needWeights.some(Boolean)) return [dx];
      const dweights = runKernel('grouped_linear_weight_grad', g!.device, [g!, x!], ctx.attrs);
      return [
        dx,
        ...dweights.map((dw, i) => {
          if (needWeights[i]) return dw;
          dw.dispose();
          return null;
        }),
      ];
    },
  },
  moe_dispatch: {
    saveInputs: [1],
    backward: (ctx, [g]) => {
      // each token's K copies sum back: the combine with weights of 1 (no atomics)
      const position = ctx.inputs[1]!;
      const ones = full([...position.shape], 1, { dtype: g!.dtype, device: g!.device });
      const [dx] = runKernel('moe_combine', g!.device, [g!, ones, position], {});
      ones.dispose();
      return [dx!, null];
    },
  },
  moe_combine: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [y, weights, position] = ctx.inputs as [Tensor, Tensor, Tensor];
      const [dy, dweights] = runKernel('moe_combine_backward', g!.device, [g!, y, weights, position], {});
      return [dy!, dweights!, null];
    },
  },
  silu_glu: {
    saveInputs: [0],
    backward: (ctx, [g]) => [runKernel('silu_glu_backward', g!.device, [g!, ctx.inputs[0]!], {})[0]!],
  },
} satisfies RulesFor<MoeOps>;
