// @grin-moe/kernels-cuda: importing it registers the `cuda` backend and its kernels into
// @grin-moe/tensor's registry. On a machine without the addon, a driver, a GPU or cuBLAS the
// import still succeeds; cudaStatus() says why the backend is unavailable, and using a cuda
// tensor throws that reason. Tests: tests/*.test.ts (skip without a GPU); device: tools/device.
// Test: cd packages/kernels-cuda && npx vitest run tests (the GPU groups skip without cuda; tests/status.test.ts runs everywhere)
import { cudaBackend, native } from './backend.js';
import './kernels/elementwise.js';
import './kernels/layout.js';
import './kernels/reduce.js';
import './kernels/nn.js';
import './kernels/indexing.js';
import './kernels/matmul.js';
import './kernels/optim.js';
import './kernels/attention.js';
import './kernels/random.js';
import './kernels/moe.js';
import './kernels/route.js';
import type { MemoryStats } from './native.js';
import { onSideStream as onSide, pendingFreeCount, reclaimAll } from './side-stream.js';

export { cudaHostReads } from './backend.js';
export { type SdpaInfo, sdpaInfo } from './kernels/attention.js';
export {
  NcclGroup,
  type NcclGroupOptions,
  type NcclReduceOp,
  type NcclStatus,
  ncclGroup,
  ncclStatus,
  type UniqueIdStore,
} from './nccl.js';
export { type CudaDevice, type CudaStatus, cudaStatus } from './status.js';
export type { MemoryStats };
export { cudaBackend, pendingFreeCount };

function index(device: string | number): number {
  return typeof device === 'number' ? device : Number(device.split(':')[1] ?? 0);
}

/** The caching allocator's counters for a device (bytes in use, cached, reserved; call counts). */
export function cudaMemoryStats(device: string | number = 0): MemoryStats {
  return native().memoryStats(index(device));
}

/** Waits for the device's queued work; throws what index kernels reported. Not needed before reads. */
export function cudaSynchronize(device: string | number = 0): void {
  native().synchronize(index(device)); // the side stream's work as well
  reclaimAll();
}

/**
 * Enqueues `update` (an optimizer step) on the device's side stream so that it overlaps the work
 * enqueued after it; `fence` marks what was touched so far as ready once the side stream passes
 * it. For example, with the forward after it waiting for each parameter only:
 *
 *   onSideStream('cuda', (fence) => optimizer.stepOnce({ gradScale, afterParam: fence }));
 *
 * The result is the same as the step on the main stream (the kernels and their order per tensor
 * are the same). Inside, nothing may be allocated or read back. See src/side-stream.ts.
 */
export function onSideStream(device: string | number, update: (fence: () => void) => void): void {
  onSide(index(device), update);
}

/** Starts a new peak: cudaMemoryStats().peakInUseBytes restarts from the bytes in use now. */
export function cudaResetPeakMemory(device: string | number = 0): void {
  native().resetPeakMemory(index(device));
}

/** Returns cached (free) blocks to the driver. */
export function cudaEmptyCache(device: string | number = 0): void {
  reclaimAll();
  native().emptyCache(index(device));
}

/**
 * Start and stop Nsight's capture (`nsys profile --capture-range=cudaProfilerApi`,
 * `ncu --profile-from-start off`) around the work to profile; outside a profiler they do nothing.
 * tools/device/profile-train.sh uses them.
 */
export function cudaProfilerStart(device: string | number = 0): void {
  native().profilerStart(index(device));
}
export function cudaProfilerStop(device: string | number = 0): void {
  native().profilerStop(index(device));
}

/** Times device work with CUDA events on the device's stream (no host sync until elapsedMs). */
export interface CudaTimer {
  start(): void;
  stop(): void;
  /** Milliseconds between start and stop; waits for stop to complete. */
  elapsedMs(): number;
  dispose(): void;
}

export function createCudaTimer(device: string | number = 0): CudaTimer {
  const d = index(device);
  const n = native();
  const begin = n.eventCreate(d);
  const end = n.eventCreate(d);
  return {
    start: () => n.eventRecord(d, begin),
    stop: () => n.eventRecord(d, end),
    elapsedMs: () => n.eventElapsed(begin, end),
    dispose: () => {
      n.eventDestroy(begin);
      n.eventDestroy(end);
    },
  };
}

export type GemmImplementation = 'cublasLt' | 'cublas';
const GEMM_CODES: Record<GemmImplementation, number> = { cublasLt: 0, cublas: 1 };

/**
 * Which library runs matmul / linear: cuBLASLt (the default: heuristic with the real alignments, a
 * 32 MiB workspace, bias epilogues) or plain cuBLAS (cublasGemmStridedBatchedEx, no epilogues).
 * GRIN_GEMM=cublas sets the default. Benchmarks and dev/matmul time both.
 */
export function setGemmImplementation(impl: GemmImplementation): void {
  const code = GEMM_CODES[impl];
  if (code === undefined)
    throw new RangeError(
      `setGemmImplementation: '${impl}' is not one of ${Object.keys(GEMM_CODES).join(', ')}`,
    );
  native().setGemmImplementation(code);
}

/**
 * GEMM tuning: a tuned cuBLASLt plan keeps the heuristic's best 8 algorithms, and its first call that
 * overwrites its output times each of them there (5 runs, after waiting for the device) and keeps
 * the fastest; later calls run the kept one. 'grouped' (the default) tunes the GEMMs whose size
 * changes from call to call, the MoE's grouped linear buckets, where the heuristic's first pick is
 * weakest (`grin bench moe`: 14.8 -> 14.2 ms at 8192 tokens; a dense layer gained nothing from
 * 'all'). 'all' tunes every GEMM, 'off' none. The timing costs a second or two once, and the kept
 * algorithm may differ from one process to the next, so results can differ in the last bits
 * between processes (never within one); 'off' gives the heuristic's choice every time. Changing the
 * mode drops the cached plans. true / false mean 'all' / 'off'. GRIN_GEMM_TUNING=off|grouped|all sets
 * the default for a process (`grin train --device cuda` included); a call here overrides it.
 */
export type GemmTuning = 'off' | 'grouped' | 'all';
const TUNING_CODES: Record<GemmTuning, number> = { off: 0, grouped: 1, all: 2 };

export function setGemmTuning(mode: GemmTuning | boolean): void {
  const name = mode === true ? 'all' : mode === false ? 'off' : mode;
  const code = TUNING_CODES[name];
  if (code === undefined)
    throw new RangeError(`setGemmTuning: '${mode}' is not one of ${Object.keys(TUNING_CODES).join(', ')}`);
  native().setGemmTuning(code);
}

/**
 * The code matmul uses now, where cuBLASLt was found (or why not), how many Lt plans are cached,
 * and how many GEMMs each path has run (fusedEpilogues: calls that fused a bias or its gradient).
 */
export function gemmInfo(): {
  implementation: GemmImplementation;
  cublasLtPath?: string;
  cublasLtError?: string;
  plans: number;
  ltCalls: number;
  cublasCalls: number;
  fusedEpilogues: number;
  tuning: GemmTuning;
  tunedPlans: number;
  /** grouped_linear calls run by our Hopper grouped GEMM (implementation 'wgmma') */
  wgmmaGroupedCalls: number;
} {
  const info = native().gemmInfo();
  const name = (Object.keys(GEMM_CODES) as GemmImplementation[]).find(
    (k) => GEMM_CODES[k] === info.implementation,
  );
  const tuning = (Object.keys(TUNING_CODES) as GemmTuning[]).find((k) => TUNING_CODES[k] === info.tuning);
  return { ...info, implementation: name ?? 'cublasLt', tuning: tuning ?? 'grouped' };
}

/**
 * How the MoE's grouped linear runs its per-expert GEMMs: 'lt-serial' (cuBLASLt, one after another;
 * the default), 'lt-streams' (experts spread over four side streams), 'cublas-grouped'
 * (cublasGemmGroupedBatchedEx, one call) or 'wgmma' (our Hopper TMA kernel: the bf16 forward and
 * input gradient with every expert in one launch, where K is a multiple of 64 and N of 256 as GRIN's
 * are; the weight gradient and everything else as 'lt-serial'). `grin bench moe` times each.
 */
export type GroupedGemmImplementation = 'lt-streams' | 'lt-serial' | 'cublas-grouped' | 'wgmma';
const GROUPED_CODES: Record<GroupedGemmImplementation, number> = {
  'lt-streams': 0,
  'lt-serial': 1,
  'cublas-grouped': 2,
  wgmma: 3,
};

export function setGroupedGemmImplementation(impl: GroupedGemmImplementation): void {
  const code = GROUPED_CODES[impl];
  if (code === undefined)
    throw new RangeError(
      `setGroupedGemmImplementation: '${impl}' is not one of ${Object.keys(GROUPED_CODES).join(', ')}`,
    );
  native().setGroupedImplementation(code);
}

/** The grouped GEMM in use, and why cuBLAS's grouped call is unavailable where it is. */
export function groupedGemmInfo(): {
  implementation: GroupedGemmImplementation;
  cublasGroupedError?: string;
} {
  const info = native().groupedInfo();
  const implementation = (Object.keys(GROUPED_CODES) as GroupedGemmImplementation[]).find(
    (k) => GROUPED_CODES[k] === info.implementation,
  )!;
  return {
    implementation,
    ...(info.cublasGroupedError ? { cublasGroupedError: info.cublasGroupedError } : {}),
  };
}
