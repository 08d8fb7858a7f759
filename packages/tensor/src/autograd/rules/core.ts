// Gradient rules for views, layout, elementwise, reduction and matmul ops. Each rule is
// written with the op API, so it runs on any backend that has the forward kernels.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)

import { isFloat } from '../../core/dtype.js';
import type { Tensor } from '../../core/tensor.js';
import { arange, zeros } from '../../ops/creation.js';
import { runKernel, runOp } from '../../ops/dispatch.js';
import * as ew from '../../ops/elementwise.js';
import { cast, concat, copyInPlace, sliceScatter, split } from '../../ops/layout.js';
import { matmul } from '../../ops/linalg.js';
import { sumTo } from '../../ops/reduce.js';
import type { RulesFor } from './types.js';

type CoreOps =
  | 'split'
  | 'silu_backward'
  | 'attention_softmax'
  | 'attention_softmax_backward'
  | 'sdpa'
  | 'sdpa_backward'
  | 'full'
  | 'arange'
  | 'contiguous'
  | 'cast'
  | 'concat'
  | 'slice_scatter'
  | 'reshape'
  | 'permute'
  | 'expand'
  | 'slice'
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'silu'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'pow'
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'maximum'
  | 'minimum'
  | 'eq'
  | 'ne'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge'
  | 'where'
  | 'masked_fill'
  | 'sum'
  | 'max'
  | 'matmul'
  | 'linear'
  | 'linear_weight_grad'
  | 'add_inplace'
  | 'copy_inplace'
  | 'adamw_step'
  | 'adamw_step_mixed';

const x0 = (ctx: { inputs: Array<Tensor | undefined> }) => ctx.inputs[0]!;
const y0 = (ctx: { outputs: Array<Tensor | undefined> }) => ctx.outputs[0]!;

export const coreRules = {
  full: 'nondifferentiable',
  arange: 'nondifferentiable',
  eq: 'nondifferentiable',
  ne: 'nondifferentiable',
  lt: 'nondifferentiable',
  le: 'nondifferentiable',
  gt: 'nondifferentiable',
  ge: 'nondifferentiable',
  add_inplace: 'nondifferentiable',
  copy_inplace: 'nondifferentiable',
  adamw_step: 'nondifferentiable',
  adamw_step_mixed: 'nondifferentiable',
  linear_weight_grad: 'nondifferentiable',

  contiguous: { backward: (_, [g]) => [g!.alias()] },
  cast: {
    backward: (ctx, [g]) => [isFloat(ctx.inputDtypes[0]!) ? cast(g!, ctx.inputDtypes[0]!) : null],
  },
  concat: {
    backward: (ctx, [g]) =>
      split(
        g!,
        ctx.inputShapes.map((s) => s[ctx.attrs.axis]!),
        ctx.attrs.axis,
      ),
  },
  slice_scatter: {
    backward: (ctx, [g]) => {
      const { starts, steps } = ctx.attrs;
      const srcShape = ctx.inputShapes[1]!;
      const hole = zeros(srcShape, { dtype: g!.dtype, device: g!.device });
      const region = g!.slice(
        ...starts.map((s, i): [number, number, number] => [
          s,
          s + (srcShape[i]! - 1) * steps[i]! + 1,
          steps[i]!,
        ]),
      );
      return [sliceScatter(g!, hole, starts, steps), region];
    },
  },

  split: {
    backward: (ctx, grads) => {
      const { axis, sizes } = ctx.attrs;
      const shape = ctx.inputShapes[0]!;
      const pieces = grads.map(
        (g, i) =>
          g ??
          zeros(
            shape.map((d, k) => (k === axis ? sizes[i]! : d)),
            { dtype: ctx.inputDtypes[0]!, device: grads.find((x) => x)!.device },
          ),
      );
      return [concat(pieces, axis)];
    },
  },
  reshape: { backward: (ctx, [g]) => [g!.reshape(ctx.inputShapes[0]!)] },
  permute: {
    backward: (ctx, [g]) => {
      const inverse = new Array<number>(ctx.attrs.dims.length);
      ctx.attrs.dims.forEach((d, i) => {
        inverse[d] = i;
      });
      return [g!.permute(inverse)];
    },
  },
  expand: { backward: (ctx, [g]) => [sumTo(g!, ctx.inputShapes[0]!)] },
  slice: {
    backward: (ctx, [g]) => {
      // zeros, then the gradient copied into the sliced region (backward runs without grad)
      const out = zeros(ctx.inputShapes[0]!, { dtype: g!.dtype, device: g!.device });
      const { starts, ends, steps } = ctx.attrs;
      const region = out.slice(...starts.map((s, i): [number, number, number] => [s, ends[i]!, steps[i]!]));
      copyInPlace(region, g!);
      region.dispose();
      return [out];
    },
  },

  neg: { backward: (_, [g]) => [ew.neg(g!)] },
  exp: { saveOutputs: [0], backward: (ctx, [g]) => [ew.mul(g!, y0(ctx))] },
  log: { saveInputs: [0], backward: (ctx, [g]) => [ew.div(g!, x0(ctx))] },
  sqrt: { saveOutputs: [0], backward: (ctx, [g]) => [ew.div(ew.mul(g!, 0.5), y0(ctx))] },
  rsqrt: {
    saveOutputs: [0],
    backward: (ctx, [g]) => [ew.mul(ew.mul(g!, -0.5), ew.pow(y0(ctx), 3))],
  },
  abs: {
    saveInputs: [0],
    backward: (ctx, [g]) => {
      const x = x0(ctx);
      return [ew.where(ew.gt(x, 0), g!, ew.where(ew.lt(x, 0), ew.neg(g!), 0))];
    },
  },
  silu: {
    saveInputs: [0],
    // d/dx x*s(x) = s + x*s*(1-s), one fused pass
    backward: (ctx, [g]) => [runOp('silu_backward', [x0(ctx), g!], {})[0]!],
  },
  silu_backward: 'nondifferentiable',
  attention_softmax: {
    saveOutputs: [0],
    backward: (ctx, [g]) => [
      runOp('attention_softmax_backward', [y0(ctx), g!], { scale: ctx.attrs.scale })[0]!,
    ],
  },
  attention_softmax_backward: 'nondifferentiable',
  sdpa: {
    saveInputs: 'all',
    saveOutputs: [0, 1],
    nondifferentiableOutputs: [1],
    // FlashAttention-2: probabilities are recomputed from the saved row log-sum-exp, tile by tile
    backward: (ctx, [g]) => {
      if (!g) return [null, null, null];
      const [q, k, v] = ctx.inputs as [Tensor, Tensor, Tensor];
      const [out, lse] = ctx.outputs as [Tensor, Tensor];
      const [dq, dk, dv] = runOp('sdpa_backward', [q, k, v, out, lse, g], ctx.attrs);
      return [dq!, dk!, dv!];
    },
  },
  sdpa_backward: 'nondifferentiable',
  sigmoid: { saveOutputs: [0], backward: (ctx, [g]) => [ew.mul(g!, ew.mul(y0(ctx), ew.sub(1, y0(ctx))))] },
  tanh: { saveOutputs: [0], backward: (ctx, [g]) => [ew.mul(g!, ew.sub(1, ew.square(y0(ctx))))] },
  relu: { saveInputs: [0], backward: (ctx, [g]) => [ew.where(ew.gt(x0(ctx), 0), g!, 0)] },
  pow: {
    saveInputs: [0],
    backward: (ctx, [g]) => {
      const p = ctx.attrs.exponent;
      return [ew.mul(g!, ew.mul(ew.pow(x0(ctx), p - 1), p))];
    },
  },

  add: { backward: (ctx, [g]) => [sumTo(g!, ctx.inputShapes[0]!), sumTo(g!, ctx.inputShapes[1]!)] },
  sub: { backward: (ctx, [g]) => [sumTo(g!, ctx.inputShapes[0]!), sumTo(ew.neg(g!), ctx.inputShapes[1]!)] },
  mul: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      return [
        ctx.needsInputGrad[0] ? sumTo(ew.mul(g!, b), ctx.inputShapes[0]!) : null,
        ctx.needsInputGrad[1] ? sumTo(ew.mul(g!, a), ctx.inputShapes[1]!) : null,
      ];
    },
  },
  div: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      const ga = ew.div(g!, b);
      return [
        sumTo(ga, ctx.inputShapes[0]!),
        ctx.needsInputGrad[1] ? sumTo(ew.neg(ew.div(ew.mul(ga, a), b)), ctx.inputShapes[1]!) : null,
      ];
    },
  },
  maximum: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      const pickA = ew.ge(a, b); // ties send the gradient to the first operand
      return [
        sumTo(ew.where(pickA, g!, 0), ctx.inputShapes[0]!),
        sumTo(ew.where(pickA, 0, g!), ctx.inputShapes[1]!),
      ];
    },
  },
  minimum: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      const pickA = ew.le(a, b);
      return [
        sumTo(ew.where(pickA, g!, 0), ctx.inputShapes[0]!),
        sumTo(ew.where(pickA, 0, g!), ctx.inputShapes[1]!),
      ];
    },
  },
  where: {
    saveInputs: [0],
    backward: (ctx, [g]) => {
      const cond = x0(ctx);
      return [
        null,
        sumTo(ew.where(cond, g!, 0), ctx.inputShapes[1]!),
        sumTo(ew.where(cond, 0, g!), ctx.inputShapes[2]!),
      ];
    },
  },
  masked_fill: {
    saveInputs: [1],
    backward: (ctx, [g]) => [ew.maskedFill(g!, ctx.inputs[1]!, 0), null],
  },

  sum: {
    backward: (ctx, [g]) => {
      const shape = ctx.inputShapes[0]!;
      const kept = shape.map((d, i) => (ctx.attrs.axes.includes(i) ? 1 : d));
      return [g!.reshape(kept).expand(shape)];
    },
  },
  max: {
    saveOutputs: [1],
    nondifferentiableOutputs: [1],
    backward: (ctx, [g]) => {
      const shape = ctx.inputShapes[0]!;
      const { axis } = ctx.attrs;
      const kept = shape.map((d, i) => (i === axis ? 1 : d));
      const positions = arange(shape[axis]!, { device: g!.device }).reshape(
        shape.map((d, i) => (i === axis ? d : 1)),
      );
      const hit = ew.eq(positions, ctx.outputs[1]!.reshape(kept));
      return [ew.where(hit, g!.reshape(kept), 0)];
    },
  },
  matmul: {
    saveInputs: 'all',
    backward: (ctx, [g]) => {
      const [a, b] = ctx.inputs as [Tensor, Tensor];
      return [
        ctx.needsInputGrad[0] ? sumTo(matmul(g!, b.transpose()), ctx.inputShapes[0]!) : null,
        ctx.needsInputGrad[1] ? sumTo(matmul(a.transpose(), g!), ctx.inputShapes[1]!) : null,
      ];
    },
  },
  linear: {
    saveInputs: [0, 1],
    backward: (ctx, [g]) => {
      const [x, w] = ctx.inputs as [Tensor, Tensor];
      const { hasBias } = ctx.attrs;
      const [needX, needW, needB = false] = ctx.needsInputGrad;
      // dx = g w as one [rows, out] x [out, in] product (g flattened when it is a view)
      const dx = needX ? matmul(g!.reshape([-1, w.shape[0]!]), w).reshape(ctx.inputShapes[0]!) : null;
      let dw: Tensor | null = null;
      let db: Tensor | null = null;
      if (needW || (hasBias && needB)) {
        const [gw, gb] = runKernel('linear_weight_grad', g!.device, [g!, x], { hasBias: hasBias && needB });
        if (needW) dw = gw!;
        else gw!.dispose();
        db = gb ?? null;
      }
      return hasBias ? [dx, dw, db] : [dx, dw];
    },
  },
} satisfies RulesFor<CoreOps>;
