// Dispatch: finds the kernel for (op, device of the inputs), hands it contiguous inputs unless it
// takes strided ones, and records the application for autograd. No host sync happens here.
// Test: cd packages/tensor && npx vitest run src/ops

import { recordNode } from '../autograd/record.js';
import { backendOf } from '../core/backend.js';
import type { DType } from '../core/dtype.js';
import type { OpAttrs, OpName } from '../core/op-types.js';
import { getKernel } from '../core/registry.js';
import { checkShape, contiguousStrides, numel, type Shape } from '../core/shape.js';
import { Tensor } from '../core/tensor.js';

export function commonDevice(op: string, inputs: readonly Tensor[]): string {
  const device = inputs[0]!.device;
  for (const t of inputs) {
    t.assertAlive(op);
    if (t.device !== device) {
      throw new Error(
        `${op}: inputs are on different devices (${inputs.map((x) => x.device).join(', ')}); move them with .to()`,
      );
    }
  }
  return device;
}

export function runOp<K extends OpName>(op: K, inputs: Tensor[], attrs: OpAttrs[K]): Tensor[] {
  const device = commonDevice(op, inputs);
  const outputs = runKernel(op, device, inputs, attrs);
  recordNode(op, inputs, outputs, attrs);
  return outputs;
}

/** Runs a kernel without recording it (creation ops, in-place ops, backward helpers). */
export function runKernel<K extends OpName>(
  op: K,
  device: string,
  inputs: Tensor[],
  attrs: OpAttrs[K],
): Tensor[] {
  const backend = backendOf(device);
  const entry = getKernel(op, backend.name);
  backend.beforeKernel?.(inputs);
  const temps: Tensor[] = [];
  const args = entry.strided
    ? inputs
    : inputs.map((t) => {
        if (t.isContiguous()) return t;
        const dense = runKernel('contiguous', device, [t], {})[0]!;
        temps.push(dense);
        return dense;
      });
  try {
    return (entry.kernel as (i: Tensor[], a: OpAttrs[K], d: string) => Tensor[])(args, attrs, device);
  } finally {
    for (const t of temps) t.dispose();
  }
}

/** A new contiguous tensor with unspecified contents: what kernels write their outputs into. */
export function allocate(shape: Shape, dtype: DType, device: string): Tensor {
  const dims = checkShape('allocate', shape);
  const storage = backendOf(device).allocate(dtype, numel(dims), device);
  return new Tensor(storage, dims, contiguousStrides(dims), 0, device);
}
