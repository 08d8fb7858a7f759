// Matrix products: matmul over the last two axes with broadcast batch axes ([..., M, K] x
// [..., K, N]); transposed operands are read through their strides, never copied.
import { broadcastShapes, formatShape } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import { runOp } from './dispatch.js';

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

/** x @ w^T + bias, with w stored [out, in] as in PyTorch's nn.Linear. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  const wT = weight.transpose(0, 1);
  const y = matmul(x.rank === 2 ? x : x, wT);
  wT.dispose();
  if (!bias) return y;
  const out = runOp('add', [y, bias], {})[0]!;
  y.dispose();
  return out;
}
