// Collectives on CPU Tensors: each returns a new tensor the caller owns, and tells the other ranks
// the tensor's dtype and shape, so a rank with another shape fails with both named.
// Test: cd packages/parallel && npx vitest run src/tensors.test.ts
import { type Tensor, tensor } from '@grin-moe/tensor';
import { ParallelError } from './errors.js';
import type { ProcessGroup, ReduceOp } from './group.js';
import type { Elements } from './transport.js';

function hostCopy(t: Tensor, where: string): Elements {
  if (t.device !== 'cpu')
    throw new ParallelError(
      `${where}: ${t.describe()} is on ${t.device}; the grpc group carries CPU tensors (use the nccl group on GPUs)`,
    );
  if (t.dtype !== 'f32' && t.dtype !== 'f64' && t.dtype !== 'i32')
    throw new ParallelError(`${where}: dtype ${t.dtype} is not carried; valid dtypes: f32, f64, i32`);
  return (t.toArray() as Elements).slice();
}

const describe = (t: Tensor) => `${t.dtype}[${t.shape.join(',')}]`;

export async function allReduceTensor(group: ProcessGroup, t: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
  const data = hostCopy(t, 'allReduceTensor');
  await group.allReduce(data, op, describe(t));
  return tensor(data, { shape: [...t.shape], dtype: t.dtype });
}

export async function broadcastTensor(group: ProcessGroup, t: Tensor, root: number): Promise<Tensor> {
  const data = hostCopy(t, 'broadcastTensor');
  await group.broadcast(data, root, describe(t));
  return tensor(data, { shape: [...t.shape], dtype: t.dtype });
}

/** Concatenation of every rank's t along dim 0. */
export async function allGatherTensor(group: ProcessGroup, t: Tensor): Promise<Tensor> {
  const data = hostCopy(t, 'allGatherTensor');
  const out = new (data.constructor as new (n: number) => Elements)(data.length * group.size);
  await group.allGather(data, out, describe(t));
  return tensor(out, { shape: [t.shape[0]! * group.size, ...t.shape.slice(1)], dtype: t.dtype });
}

/** This rank's slice (dim 0) of the reduction over ranks; dim 0 must divide by the group size. */
export async function reduceScatterTensor(
  group: ProcessGroup,
  t: Tensor,
  op: ReduceOp = 'sum',
): Promise<Tensor> {
  if (t.rank === 0 || t.shape[0]! % group.size !== 0)
    throw new ParallelError(
      `reduceScatterTensor: dim 0 of ${t.describe()} must divide by the group size ${group.size}`,
    );
  const data = hostCopy(t, 'reduceScatterTensor');
  const out = data.slice(0, data.length / group.size);
  await group.reduceScatter(data, out, op, describe(t));
  return tensor(out, { shape: [t.shape[0]! / group.size, ...t.shape.slice(1)], dtype: t.dtype });
}
