// Custom autograd functions: a forward and a hand-written backward, recorded as one node.
// SparseMixer-v2 uses this: its router gradient is not the derivative of its forward value.
// Test: cd packages/tensor && npx vitest run src/core src/ops src/testing (every gradient check runs through it)
import { Tensor } from '../core/tensor.js';
import { noGrad } from './mode.js';
import { needsGrad, recordNode } from './record.js';

export interface CustomContext {
  /** Keeps tensors for backward (as extra handles, released after backward). */
  save(...tensors: Tensor[]): void;
  readonly saved: Tensor[];
  /** Whether input i needs a gradient. */
  readonly needsInputGrad: boolean[];
  /** Free-form values the forward wants to pass to backward. */
  data: Record<string, unknown>;
}

export interface CustomOpDefinition<E> {
  forward(ctx: CustomContext, inputs: Tensor[], extra: E): Tensor[];
  /** Gradients for each input (null/undefined where none), given each output's gradient. */
  backward(ctx: CustomContext, grads: Array<Tensor | null>): Array<Tensor | null | undefined>;
  /** Outputs that carry no gradient (indices, masks). */
  nondifferentiableOutputs?: readonly number[];
}

export function customOp<E = undefined>(name: string, def: CustomOpDefinition<E>) {
  return (inputs: Tensor[], extra: E): Tensor[] => {
    const recording = needsGrad(inputs);
    const saved: Tensor[] = [];
    const ctx: CustomContext = {
      save: (...ts) => {
        if (recording) for (const t of ts) saved.push(t.alias({ track: false }));
      },
      saved,
      needsInputGrad: inputs.map((t) => t.requiresGrad),
      data: {},
    };
    const outputs = noGrad(() => def.forward(ctx, inputs, extra));
    for (const out of outputs) {
      if (!(out instanceof Tensor))
        throw new TypeError(`customOp '${name}': forward must return an array of tensors`);
    }
    recordNode(
      `custom:${name}`,
      inputs,
      outputs,
      extra,
      {
        nondifferentiableOutputs: def.nondifferentiableOutputs,
        backward: (_, grads) => def.backward(ctx, grads),
      },
      saved,
    );
    return outputs;
  };
}
