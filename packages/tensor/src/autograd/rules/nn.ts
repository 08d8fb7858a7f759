// Gradient rules for the neural-network and indexing ops (softmax, layer norm, embedding,
// RoPE, gather/scatter, index select/add, top-k, cross-entropy). Written with the op API and
// runKernel, so they run on any backend that has the forward (and *_backward) kernels.
// The *_backward kernels are not differentiable themselves (no double backward).
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)

import { shapesEqual } from '../../core/shape.js';
import type { Tensor } from '../../core/tensor.js';
import { zeros } from '../../ops/creation.js';
import { runKernel } from '../../ops/dispatch.js';
import * as ew from '../../ops/elementwise.js';
import { gather, indexAdd, indexSelect, scatterAdd } from '../../ops/indexing.js';
import { sliceScatter } from '../../ops/layout.js';
import { sum } from '../../ops/reduce.js';
import type { RulesFor } from './types.js';

type NnOps =
  | 'softmax'
  | 'log_softmax'
  | 'layer_norm'
  | 'layer_norm_backward'
  | 'embedding'
  | 'rope'
  | 'gather'
  | 'scatter_add'
  | 'index_select'
  | 'index_add'
  | 'topk'
  | 'cross_entropy'
  | 'cross_entropy_backward';

const zerosOf = (shape: number[], like: Tensor) => zeros(shape, { dtype: like.dtype, device: like.device });

export const nnRules = {
  layer_norm_backward: 'nondifferentiable',
  cross_entropy_backward: 'nondifferentiable',

  softmax: {
    saveOutputs: [0],
    backward: (ctx, [g]) => {
      const y = ctx.outputs[0]!;
      return [ew.mul(y, ew.sub(g!, sum(ew.mul(g!, y), ctx.attrs.axis, true)))];
    },
  },
  log_softmax: {
    saveOutputs: [0],
    backward: (ctx, [g]) => [ew.sub(g!, ew.mul(ew.exp(ctx.outputs[0]!), sum(g!, ctx.attrs.axis, true)))],
  },
  layer_norm: {
    saveInputs: [0, 1],
    saveOutputs: [1, 2],
    nondifferentiableOutputs: [1, 2],
    backward: (ctx, [g]) => {
      const { eps, hasWeight, hasBias } = ctx.attrs;
      const [x, weight] = ctx.inputs as [Tensor, Tensor | undefined];
      const inputs = [g!, x, ctx.outputs[1]!, ctx.outputs[2]!, ...(hasWeight ? [weight!] : [])];
      const [dx, dweight, dbias] = runKernel('layer_norm_backward', g!.device, inputs, { eps, hasWeight });
      return [dx, ...(hasWeight ? [dweight] : []), ...(hasBias ? [dbias] : [])];
    },
  },
  embedding: {
    saveInputs: [1],
    backward: (ctx, [g]) => {
      const [v, d] = ctx.inputShapes[0] as [number, number];
      const ids = ctx.inputs[1]!.reshape([-1]);
      return [indexAdd(zerosOf([v, d], g!), 0, ids, g!.reshape([-1, d])), null];
    },
  },
  rope: {
    saveInputs: [1, 2],
    backward: (ctx, [g]) => {
      const [, cos, sin] = ctx.inputs as [undefined, Tensor, Tensor];
      return [
        runKernel('rope', g!.device, [g!, cos, sin], { transpose: !ctx.attrs.transpose })[0],
        null,
        null,
      ];
    },
  },
  gather: {
    saveInputs: [1],
    backward: (ctx, [g]) => [
      scatterAdd(zerosOf(ctx.inputShapes[0]!, g!), ctx.attrs.axis, ctx.inputs[1]!, g!),
      null,
    ],
  },
  scatter_add: {
    saveInputs: [1],
    backward: (ctx, [g]) => {
      const index = ctx.inputs[1]!;
      const srcShape = ctx.inputShapes[2]!;
      let src: Tensor | null = null;
      if (ctx.needsInputGrad[2]) {
        src = gather(g!, ctx.attrs.axis, index);
        // torch lets src be larger than index; the positions past it received nothing.
        if (!shapesEqual(src.shape, srcShape))
          src = sliceScatter(
            zerosOf(srcShape, g!),
            src,
            srcShape.map(() => 0),
          );
      }
      return [g!.alias(), null, src];
    },
  },
  index_select: {
    saveInputs: [1],
    backward: (ctx, [g]) => [
      indexAdd(zerosOf(ctx.inputShapes[0]!, g!), ctx.attrs.axis, ctx.inputs[1]!, g!),
      null,
    ],
  },
  index_add: {
    saveInputs: [1],
    backward: (ctx, [g]) => [
      g!.alias(),
      null,
      ctx.needsInputGrad[2] ? indexSelect(g!, ctx.attrs.axis, ctx.inputs[1]!) : null,
    ],
  },
  topk: {
    saveOutputs: [1],
    nondifferentiableOutputs: [1],
    // The picked indices are distinct along the axis, so scatter-add is a plain scatter.
    backward: (ctx, [g]) => [
      scatterAdd(zerosOf(ctx.inputShapes[0]!, g!), ctx.attrs.axis, ctx.outputs[1]!, g!),
    ],
  },
  cross_entropy: {
    saveInputs: [0, 1],
    backward: (ctx, [g]) => {
      const [logits, targets] = ctx.inputs as [Tensor, Tensor];
      return [runKernel('cross_entropy_backward', g!.device, [g!, logits, targets], ctx.attrs)[0], null];
    },
  },
} satisfies RulesFor<NnOps>;
