// The `cuda` backend: a Storage's data is { ptr, device } on the caching allocator (csrc/allocator.cpp);
// free() hands the block back to the cache when the tensor package's reference count reaches 0.
// toHost is the only sync point (it also reports index errors that kernels found). f64 is not a
// cuda dtype. Helpers here give kernels their raw addresses. Test: tests/layout.test.ts (GPU: tests/cases/layout.ts has the allocator cases).
import {
  type Backend,
  type DType,
  f32ToBf16Bits,
  type HostArray,
  itemSize,
  registerBackend,
  Storage,
  type Tensor,
} from '@grin-moe/tensor';
import { loadNative, type NativeAddon } from './native.js';
import {
  beforeAllocate,
  beforeHostRead,
  bindSideStream,
  deferFree,
  orderKernel,
  pendingFreeCount,
  reclaimAll,
} from './side-stream.js';
import { cudaStatus } from './status.js';

export interface CudaData {
  ptr: number;
  device: number;
}

const CODES: Partial<Record<DType, number>> = { f32: 0, bf16: 1, i32: 2, bool: 3 };

/** The addon, or a clear error when the backend cannot run here. */
export function native(): NativeAddon {
  const status = cudaStatus();
  const loaded = loadNative();
  if (!status.available || !loaded.addon) throw new Error(`cuda backend unavailable: ${status.reason}`);
  return loaded.addon;
}

export function dtypeCode(dtype: DType, where = 'cuda'): number {
  const code = CODES[dtype];
  if (code === undefined)
    throw new TypeError(
      `${where}: dtype ${dtype} is not supported on cuda (f32, bf16, i32, bool); cast first`,
    );
  return code;
}

/** Device strings already checked, so allocations skip the parse (one per op output). */
const checkedDevices = new Map<string, number>();

export function deviceIndex(device: string): number {
  const known = checkedDevices.get(device);
  if (known !== undefined) return known;
  const [name, index = '0'] = device.split(':');
  const d = Number(index);
  if (name !== 'cuda' || !Number.isInteger(d) || d < 0)
    throw new RangeError(`cuda: bad device string '${device}' (expected 'cuda' or 'cuda:N')`);
  native(); // throws the reason when the backend cannot run here
  const count = cudaStatus().devices?.length ?? 0;
  if (d >= count) throw new RangeError(`cuda: device '${device}' does not exist (${count} device(s))`);
  checkedDevices.set(device, d);
  return d;
}

function hostArrayOf(dtype: DType, n: number): HostArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(n);
    case 'bf16':
      return new Uint16Array(n);
    case 'i32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
    default:
      throw new TypeError(`cuda: dtype ${dtype} is not supported on cuda (f32, bf16, i32, bool)`);
  }
}

export const cudaBackend: Backend = {
  name: 'cuda',
  allocate(dtype, length, device) {
    dtypeCode(dtype, 'cuda allocate');
    const d = deviceIndex(device);
    beforeAllocate();
    let ptr: number;
    try {
      ptr = native().alloc(d, length * itemSize(dtype));
    } catch (error) {
      if (!pendingFreeCount()) throw error;
      reclaimAll(); // blocks still waiting for the side stream: wait for them, then try once more
      ptr = native().alloc(d, length * itemSize(dtype));
    }
    return new Storage(cudaBackend, dtype, length, { ptr, device: d } satisfies CudaData);
  },
  fromHost(array, dtype, device) {
    const storage = cudaBackend.allocate(dtype, array.length, device);
    let host = array;
    if (host.BYTES_PER_ELEMENT !== itemSize(dtype)) {
      host = hostArrayOf(dtype, array.length);
      host.set(array as never);
    }
    const { ptr, device: d } = storage.data as CudaData;
    native().upload(d, ptr, host);
    return storage;
  },
  toHost(storage, offset, length) {
    beforeHostRead(storage.data as CudaData);
    hostReads++;
    const out = hostArrayOf(storage.dtype, length);
    const { ptr, device } = storage.data as CudaData;
    native().download(device, ptr + offset * itemSize(storage.dtype), out);
    return out;
  },
  free(storage) {
    const { ptr, device } = storage.data as CudaData;
    if (ptr && !deferFree(storage.data as CudaData)) loadNative().addon?.free(device, ptr);
  },
  beforeKernel: orderKernel,
};

bindSideStream(native);

registerBackend(cudaBackend);

let hostReads = 0;
/** Device-to-host reads (the sync points) since the process began: benches count them per step. */
export function cudaHostReads(): number {
  return hostReads;
}

/** Byte address of a tensor's first element. */
export function addr(t: Tensor): number {
  return (t.storage.data as CudaData).ptr + t.offset * itemSize(t.dtype);
}

/** Device index of a tensor. */
export function dev(t: Tensor): number {
  return (t.storage.data as CudaData).device;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The bit pattern one element of `dtype` holding `value` has, with the CPU backend's conversions. */
export function valueBits(dtype: DType, value: number): number {
  switch (dtype) {
    case 'f32':
      scratch[0] = value;
      return scratchBits[0]!;
    case 'bf16':
      return f32ToBf16Bits(value);
    case 'i32':
      return (Math.trunc(value) | 0) >>> 0;
    case 'bool':
      return value !== 0 ? 1 : 0;
    default:
      throw new TypeError(`cuda: dtype ${dtype} is not supported on cuda (f32, bf16, i32, bool)`);
  }
}
