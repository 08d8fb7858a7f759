// Backends own device memory. A Storage is one allocation, shared by every view of it and
// freed when its last handle lets go (reference counted; see memory.ts for scopes and leak checks).
// The CPU backend registers itself on import; @grin-moe/kernels-cuda registers `cuda` the same way.
// Test: cd packages/tensor && npx vitest run src/core
import type { DType, HostArray } from './dtype.js';
import type { Tensor } from './tensor.js';

export class Storage {
  refs = 0;
  constructor(
    readonly backend: Backend,
    readonly dtype: DType,
    readonly length: number,
    /** Backend-private payload: a typed array on CPU, a device pointer on CUDA. */
    readonly data: unknown,
  ) {}
}

export interface Backend {
  readonly name: string;
  /** Allocates `length` elements; contents are unspecified. */
  allocate(dtype: DType, length: number, device: string): Storage;
  /** Copies a host array into new storage. */
  fromHost(array: HostArray, dtype: DType, device: string): Storage;
  /** Copies `length` elements starting at `offset` back to the host: the one sync point. */
  toHost(storage: Storage, offset: number, length: number): HostArray;
  /** Returns memory to the backend; called once, when the last handle is disposed. */
  free(storage: Storage): void;
  /**
   * Called with a kernel's inputs before every kernel of this backend runs (optional): lets a
   * backend with more than one queue order a kernel after work still pending on its inputs.
   */
  beforeKernel?(inputs: readonly Tensor[]): void;
}

const backends = new Map<string, Backend>();

/** device string -> backend: every op asks, so the split and lookup happen once per string. */
const byDevice = new Map<string, Backend>();

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
  byDevice.clear();
}

export function backendOf(device: string): Backend {
  const known = byDevice.get(device);
  if (known) return known;
  const name = device.split(':')[0]!;
  const backend = backends.get(name);
  if (!backend) {
    throw new Error(
      `device '${device}': no backend named '${name}' is registered (registered: ${[...backends.keys()].join(', ')})` +
        (name === 'cuda' ? "; import '@grin-moe/kernels-cuda' to register it" : ''),
    );
  }
  byDevice.set(device, backend);
  return backend;
}

export function registeredBackends(): string[] {
  return [...backends.keys()];
}
