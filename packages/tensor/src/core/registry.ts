// The kernel registry, keyed by (op, backend). The op API never imports a backend: a backend
// registers its kernels here, and dispatch looks them up by the inputs' device.
// Test: cd packages/tensor && npx vitest run src/core

import type { OpAttrs, OpName } from './op-types.js';
import type { Tensor } from './tensor.js';

export type Kernel<A = unknown> = (inputs: Tensor[], attrs: A, device: string) => Tensor[];

export interface KernelEntry {
  kernel: Kernel<never>;
  /** When false (the default) dispatch hands the kernel contiguous inputs. */
  strided: boolean;
}

const kernels = new Map<string, KernelEntry>();
const key = (op: string, backend: string) => `${op}_${backend}`;

export function registerKernel<K extends OpName>(
  op: K,
  backend: string,
  kernel: Kernel<OpAttrs[K]>,
  options: { strided?: boolean } = {},
): void {
  kernels.set(key(op, backend), { kernel: kernel as Kernel<never>, strided: options.strided ?? false });
}

export function hasKernel(op: OpName, backend: string): boolean {
  return kernels.has(key(op, backend));
}

export function getKernel(op: OpName, backend: string): KernelEntry {
  const entry = kernels.get(key(op, backend));
  if (entry) return entry;
  const all = listKernels();
  const forOp = all.filter((k) => k.op === op).map((k) => k.backend);
  const forBackend = all.filter((k) => k.backend === backend).map((k) => k.op);
  throw new Error(
    `no kernel for op '${op}' on backend '${backend}'. ` +
      `'${op}' is registered for: ${forOp.join(', ') || '(none)'}; ` +
      `'${backend}' has: ${forBackend.sort().join(', ') || '(nothing)'}`,
  );
}

export function listKernels(): Array<{ op: string; backend: string }> {
  return [...kernels.keys()].map((k) => {
    const i = k.lastIndexOf('_');
    return { op: k.slice(0, i), backend: k.slice(i + 1) };
  });
}
