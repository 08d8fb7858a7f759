// Matrix products: matmul over the last two axes with broadcast batch axes ([..., M, K] x
// [..., K, N]); transposed operands are read through their strides, never copied.
// Test: cd packages/tensor && npx vitest run src/ops/linalg

import { backendOf } from '../core/backend.js';
import { hasKernel } from '../core/registry.js';
import { broadcastShapes, formatShape } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { commonDevice, runOp } from './dispatch.js';

export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.rank < 2 || b.rank < 2) {
    throw new RangeError(`matmul: operands need at least 2 axes, got ${a.describe()} and ${b.describe()}`);
  }
  if (a.shape[a.rank - 1] !== b.shape[b.rank - 2]) {
    throw new RangeError(
      `matmul: inner dimensions differ: ${formatShape(a.shape)} x ${formatShape(b.shape)}`,
    );
  }
  if (a.dtype !== b.dtype) throw new TypeError(`matmul: dtypes differ (${a.describe()} and ${b.describe()})`);
  broadcastShapes('matmul (batch axes)', a.shape.slice(0, -2), b.shape.slice(0, -2));
  return runOp('matmul', [a, b], {})[0]!;
}

/**
 * x @ w^T + bias, with w stored [out, in] as in PyTorch's nn.Linear: x [..., in] -> [..., out]. One
 * `linear` op where the backend has that kernel (the CUDA backend fuses the bias into the GEMM and
 * the bias gradient into the weight-gradient GEMM); otherwise matmul + add (the WebGL backend).
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const [out, inFeatures] = weight.shape;
  if (weight.rank !== 2 || x.rank < 2 || x.shape[x.rank - 1] !== inFeatures)
    throw new RangeError(
      `linear: expected x [..., in] and weight [out, in], got ${x.describe()} and ${weight.describe()}`,
    );
  if (bias && (bias.rank !== 1 || bias.shape[0] !== out))
    throw new RangeError(
      `linear: bias must be [${out}] for weight ${weight.describe()}, got ${bias.describe()}`,
    );
  for (const t of bias ? [weight, bias] : [weight])
    if (t.dtype !== x.dtype)
      throw new TypeError(`linear: dtypes differ (${x.describe()} and ${t.describe()})`);
  const inputs = bias ? [x, weight, bias] : [x, weight];
  if (hasKernel('linear', backendOf(commonDevice('linear', inputs)).name))
    return runOp('linear', inputs, { hasBias: !!bias })[0]!;
  const wT = weight.transpose(0, 1);
  const y = matmul(x, wT);
  wT.dispose();
  if (!bias) return y;
  const withBias = runOp('add', [y, bias], {})[0]!;
  y.dispose();
  return withBias;
}
