// Strided layouts for the native kernels: axes laid out alike in every operand are merged (so a
// contiguous tensor is one axis and a broadcast bias add two), size-1 axes dropped, and the result
// packed into the Float64Array that csrc/addon.cpp reads ([ndim, operands, shape..., strides...]).
// The merging itself is the tensor package's mergeLayout (shared with the CPU kernels).
// Test: cd packages/kernels-cuda && npx vitest run tests (the GPU groups skip without cuda; tests/status.test.ts runs everywhere)
import { broadcastStrides, mergeLayout } from '@grin-moe/tensor';

export const MAX_DIMS = 8;

export interface Merged {
  shape: number[];
  strides: number[][];
}

/** The merged layout of every operand (the tensor package's mergeLayout). */
export function mergeAxes(shape: readonly number[], strides: ReadonlyArray<readonly number[]>): Merged {
  return mergeLayout(shape, strides);
}

export { broadcastStrides };

export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Merged layout metadata, and whether every operand is plain contiguous (the flat fast path). */
export function layoutMeta(
  op: string,
  shape: readonly number[],
  strides: ReadonlyArray<readonly number[]>,
): { meta: Float64Array; flat: boolean } {
  const m = mergeAxes(shape, strides);
  const ndim = m.shape.length;
  if (ndim > MAX_DIMS) {
    throw new RangeError(
      `cuda ${op}: ${ndim} axes remain after merging (at most ${MAX_DIMS}); make the input contiguous first`,
    );
  }
  const meta = new Float64Array(2 + ndim * (1 + strides.length));
  meta[0] = ndim;
  meta[1] = strides.length;
  meta.set(m.shape, 2);
  m.strides.forEach((s, k) => meta.set(s, 2 + ndim * (1 + k)));
  const flat = ndim === 0 || (ndim === 1 && m.strides.every((s) => s[0] === 1));
  return { meta, flat };
}

/** [ndim, shape..., a..., b...] for gather / scatter. */
export function dimsMeta(shape: readonly number[], a: readonly number[], b: readonly number[]): Float64Array {
  if (shape.length > MAX_DIMS) throw new RangeError(`cuda: rank ${shape.length} is above ${MAX_DIMS}`);
  const meta = new Float64Array(1 + 3 * shape.length);
  meta[0] = shape.length;
  meta.set(shape, 1);
  meta.set(a, 1 + shape.length);
  meta.set(b, 1 + 2 * shape.length);
  return meta;
}
