// Layout ops that every backend builds the same way from one primitive, a strided copy
// (dst view <- src): concatenation and slice scatter. A backend registers them as
// registerKernel('concat', NAME, (inputs, attrs) => concatByCopies(inputs, attrs.axis, copyInto)).
// Test: cd packages/tensor && npx vitest run src/ops
import { shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from './dispatch.js';

export type CopyInto = (dst: Tensor, src: Tensor) => void;

export function concatByCopies(inputs: Tensor[], axis: number, copyInto: CopyInto): Tensor[] {
  const first = inputs[0]!;
  const shape = [...first.shape];
  shape[axis] = inputs.reduce((a, t) => a + t.shape[axis]!, 0);
  const out = allocate(shape, first.dtype, first.device);
  let at = 0;
  for (const t of inputs) {
    const region = out.slice(
      ...shape.map((_, i): [number, number] | null => (i === axis ? [at, at + t.shape[axis]!] : null)),
    );
    copyInto(region, t);
    region.dispose();
    at += t.shape[axis]!;
  }
  return [out];
}

export function sliceScatterByCopies(
  base: Tensor,
  src: Tensor,
  starts: number[],
  steps: number[],
  copyInto: CopyInto,
): Tensor[] {
  const out = allocate(base.shape, base.dtype, base.device);
  copyInto(out, base);
  const region = out.slice(
    ...starts.map((s, i): [number, number, number] => [
      s,
      s + (src.shape[i]! - 1) * steps[i]! + 1,
      steps[i]!,
    ]),
  );
  try {
    if (!shapesEqual(region.shape, src.shape)) {
      throw new RangeError(
        `slice_scatter: source ${src.describe()} does not fit the region ${region.describe()}`,
      );
    }
    copyInto(region, src);
  } finally {
    region.dispose();
  }
  return [out];
}
