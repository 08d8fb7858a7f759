// Dev harness for host-side dispatch cost: microseconds of CPU per call for the layers an op goes
// through (an empty N-API call, allocate + free, one kernel launch, an elementwise op, matmul through
// each GEMM path), on operands so small that the GPU finishes first, so the loop measures the host.
// A memory-bound kernel of ~20 us (the router gate) competes with this cost. Also times the gate's
// kernels back to back on fixed buffers (no allocation), where the GPU time shows.
// Run on a GPU: npx tsx dev/dispatch/dispatch.ts (device machine: /tmp/node .device/dev-dispatch.mjs)
import * as T from '@grin-moe/tensor';
import { native } from '../../src/backend.js';
import { createCudaTimer, cudaSynchronize, setGemmImplementation } from '../../src/index.js';
import { requireCuda } from '../harness.js';

requireCuda('dispatch');

/** Host microseconds per call: 20000 calls after 2000 warm-ups, then a sync. */
function hostMicros(fn: () => void, calls = 20000): number {
  for (let i = 0; i < 2000; i++) fn();
  cudaSynchronize();
  const start = performance.now();
  for (let i = 0; i < calls; i++) fn();
  cudaSynchronize();
  return ((performance.now() - start) / calls) * 1e3;
}

const n = native();
const line = (name: string, us: number) =>
  console.log(`${name.padEnd(52)} ${us.toFixed(2).padStart(7)} us/call`);
const a = T.cast(T.randn([16, 16], { device: 'cuda' }), 'bf16');
const ptr = n.alloc(0, 1 << 20);
line(
  'N-API call (gemmInfo)',
  hostMicros(() => void n.gemmInfo()),
);
line(
  'alloc + free 1 KiB (caching allocator)',
  hostMicros(() => n.free(0, n.alloc(0, 1024))),
);
line(
  'fill kernel launch (native, fixed buffer)',
  hostMicros(() => n.fill(0, 4, ptr, 0, 256)),
);
line(
  'T.zeros([16,16]) + dispose',
  hostMicros(() => T.zeros([16, 16], { device: 'cuda' }).dispose()),
);
line(
  'T.add 16x16 + dispose',
  hostMicros(() => T.add(a, a).dispose()),
);
for (const impl of ['cublasLt', 'cublas'] as const) {
  setGemmImplementation(impl);
  line(
    `native gemm 16x16x16 bf16 (${impl}, fixed buffers)`,
    hostMicros(() => void n.gemm(0, 1, 0, 0, 16, 16, 16, ptr, 16, 0, ptr, 16, 0, ptr + 4096, 16, 0, 1)),
  );
  line(
    `T.matmul 16x16 bf16 + dispose (${impl})`,
    hostMicros(() => T.matmul(a, a).dispose()),
  );
}
setGemmImplementation('cublasLt');

// The router gate y [8192, 16] = x [8192, 4096] w [16, 4096]^T on fixed buffers: GPU time per call
// from CUDA events over 200 back-to-back launches (host cost hides under the GPU's queue).
const [M, N, K] = [8192, 16, 4096];
const x = T.cast(T.randn([M, K], { device: 'cuda' }), 'bf16');
const w = T.cast(T.randn([N, K], { device: 'cuda' }), 'bf16');
const y = T.zeros([M, N], { device: 'cuda', dtype: 'bf16' });
const xp = (x.storage.data as { ptr: number }).ptr;
const wp = (w.storage.data as { ptr: number }).ptr;
const yp = (y.storage.data as { ptr: number }).ptr;
const timer = createCudaTimer();
/** GPU microseconds per call: CUDA events over 200 back-to-back calls, median of 5. */
function gpuMicros(call: () => void): number {
  for (let i = 0; i < 20; i++) call();
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    timer.start();
    for (let i = 0; i < 200; i++) call();
    timer.stop();
    ms.push(timer.elapsedMs() / 200);
  }
  return ms.sort((p, q) => p - q)[2]! * 1e3;
}
const call = () => void n.gemm(0, 1, 1, 0, N, M, K, wp, K, 0, xp, K, 0, yp, N, 0, 1);
const bytes = 2 * (M * K + N * K + M * N);
for (const impl of ['cublasLt', 'cublas'] as const) {
  setGemmImplementation(impl);
  const us = gpuMicros(call);
  line(`gate GEMM GPU time (${impl}), ${(bytes / us / 1e3).toFixed(0)} GB/s`, us);
}
setGemmImplementation('cublasLt');
timer.dispose();
n.free(0, ptr);
process.exit(0);
