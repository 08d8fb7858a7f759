// The CPU backend: storage is a host typed array (bf16 kept as raw 16-bit patterns). It is the
// numerics reference that every other backend is tested against.
// Test: cd packages/tensor && npx vitest run src/ops
import { type Backend, registerBackend, Storage } from '../core/backend.js';
import { type DType, type HostArray, hostArray } from '../core/dtype.js';
import type { Tensor } from '../core/tensor.js';

export const cpuBackend: Backend = {
  name: 'cpu',
  allocate(dtype: DType, length: number) {
    return new Storage(cpuBackend, dtype, length, hostArray(dtype, length));
  },
  fromHost(array: HostArray, dtype: DType) {
    const data = hostArray(dtype, array.length);
    data.set(array as never);
    return new Storage(cpuBackend, dtype, array.length, data);
  },
  toHost(storage: Storage, offset: number, length: number) {
    return (storage.data as HostArray).slice(offset, offset + length);
  },
  free() {
    // The typed array goes with the last reference; nothing to return.
  },
};

registerBackend(cpuBackend);

export type NumArray = Float32Array | Float64Array | Int32Array | Uint8Array;
export type FloatArray = Float32Array | Float64Array;

/** The whole backing array of a CPU tensor (index it with t.offset and t.strides). */
export function raw<T extends NumArray = NumArray>(t: Tensor): T {
  return t.storage.data as T;
}

/** The elements of a contiguous CPU tensor, as a zero-copy subarray. */
export function dense<T extends NumArray = NumArray>(t: Tensor): T {
  const data = t.storage.data as T;
  return (t.offset === 0 && data.length === t.size ? data : data.subarray(t.offset, t.offset + t.size)) as T;
}

/**
 * Storage offsets of every element of a strided view, in row-major order of its shape.
 * The innermost axis is walked in a tight loop: offsets[i] = offset + sum(index_k * stride_k).
 */
export function stridedOffsets(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): Int32Array {
  const n = shape.reduce((a, d) => a * d, 1);
  const out = new Int32Array(n);
  const rank = shape.length;
  if (n === 0) return out;
  if (rank === 0) {
    out[0] = offset;
    return out;
  }
  const inner = shape[rank - 1]!;
  const innerStride = strides[rank - 1]!;
  const index = new Array<number>(rank).fill(0);
  let base = offset;
  for (let pos = 0; pos < n; pos += inner) {
    for (let j = 0; j < inner; j++) out[pos + j] = base + j * innerStride;
    for (let k = rank - 2; k >= 0; k--) {
      index[k]!++;
      base += strides[k]!;
      if (index[k]! < shape[k]!) break;
      base -= strides[k]! * shape[k]!;
      index[k] = 0;
    }
  }
  return out;
}

/** Strides of `t` read as if broadcast to `shape` (0 on broadcast axes). */
export function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const lead = shape.length - t.rank;
  return shape.map((d, i) => {
    if (i < lead) return 0;
    return t.shape[i - lead] === d ? t.strides[i - lead]! : 0;
  });
}
