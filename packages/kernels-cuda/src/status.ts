// cudaStatus(): whether the cuda backend can run here, and if not, why (addon not built, no
// driver or GPU, no cuBLAS). Cached after the first call; never throws.
// Test: tests/status.test.ts (runs everywhere).
import { loadNative, type ProbeResult } from './native.js';

export interface CudaDevice {
  name: string;
  memoryBytes: number;
  /** "major.minor", e.g. "9.0" on an H200. */
  computeCapability: string;
}

export interface CudaStatus {
  available: boolean;
  reason?: string;
  devices?: CudaDevice[];
  /** Where cuBLAS was loaded from (dlopen at run time). */
  cublasPath?: string;
  /** CUDA runtime and driver versions as integers (13000 = 13.0). */
  runtimeVersion?: number;
  driverVersion?: number;
  addonPath?: string;
}

let cached: CudaStatus | undefined;

export function cudaStatus(): CudaStatus {
  if (cached) return cached;
  const native = loadNative();
  if (!native.addon) return (cached = { available: false, reason: native.error });
  let probe: ProbeResult;
  try {
    probe = native.addon.probe();
  } catch (error) {
    return (cached = { available: false, reason: `CUDA probe failed: ${(error as Error).message}` });
  }
  const devices = probe.devices.map(({ name, memoryBytes, computeCapability }) => ({
    name,
    memoryBytes,
    computeCapability,
  }));
  const base = {
    devices,
    runtimeVersion: probe.runtimeVersion,
    driverVersion: probe.driverVersion,
    addonPath: native.path,
  };
  if (devices.length === 0) {
    const why = probe.error ?? 'no CUDA device found';
    return (cached = { available: false, reason: `no usable CUDA driver or GPU: ${why}`, ...base });
  }
  if (probe.cublasError) return (cached = { available: false, reason: probe.cublasError, ...base });
  return (cached = { available: true, cublasPath: probe.cublasPath, ...base });
}
