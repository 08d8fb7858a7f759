// Loads the native addon (build/grin_cuda.node, or grin_cuda.node beside a device bundle) and
// describes its functions. Loading never throws: a missing addon, driver, GPU or cuBLAS becomes
// the `reason` that cudaStatus() reports. Built by scripts/build-native.mjs (needs nvcc).
// Test: cd packages/kernels-cuda && npx vitest run tests (the GPU groups skip without cuda; tests/status.test.ts runs everywhere)
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type N = number;
/** A Float64Array of layout metadata: [ndim, operands, shape..., strides of each operand...]. */
type Meta = Float64Array;

export interface ProbeResult {
  error?: string;
  devices: Array<{ name: string; memoryBytes: number; computeCapability: string; multiprocessors: number }>;
  runtimeVersion: number;
  driverVersion: number;
  cublasPath?: string;
  cublasError?: string;
}

export interface MemoryStats {
  inUseBytes: number;
  cachedBytes: number;
  reservedBytes: number;
  cudaMallocs: number;
  reuses: number;
  frees: number;
  /** The largest inUseBytes since the start or the last resetPeakMemory (torch.cuda.max_memory_allocated). */
  peakInUseBytes: number;
}

/** The addon's functions; pointers are byte addresses as numbers, `d` is the device index. */
export interface NativeAddon {
  probe(): ProbeResult;
  alloc(d: N, bytes: N): N;
  free(d: N, ptr: N): void;
  upload(d: N, ptr: N, host: ArrayBufferView): void;
  download(d: N, ptr: N, host: ArrayBufferView): void;
  synchronize(d: N): void;
  memoryStats(d: N): MemoryStats;
  emptyCache(d: N): void;
  resetPeakMemory(d: N): void;
  eventCreate(d: N): N;
  eventRecord(d: N, event: N): void;
  eventElapsed(start: N, stop: N): number;
  eventDestroy(event: N): void;
  profilerStart(d: N): void;
  profilerStop(d: N): void;
  /** An event without timing, for ordering the side stream against the main one. */
  fenceCreate(d: N): N;
  sideBegin(d: N): void;
  sideEnd(d: N): void;
  sideRecord(d: N, event: N): void;
  mainWait(d: N, event: N): void;
  /** 1 once the work before the event's last record has run, else 0. */
  fenceDone(event: N): N;
  fenceSynchronize(event: N): void;
  unary(d: N, dtype: N, op: N, exponent: N, out: N, x: N, n: N, layout: Meta, flat: N): void;
  binary(d: N, dtype: N, op: N, out: N, a: N, b: N, n: N, layout: Meta, flat: N): void;
  where(d: N, dtype: N, out: N, cond: N, a: N, b: N, n: N, layout: Meta): void;
  maskedFill(d: N, dtype: N, out: N, x: N, mask: N, valueBits: N, n: N, layout: Meta): void;
  addInplace(d: N, dtype: N, dst: N, src: N, alpha: N, n: N, layout: Meta): void;
  copy(d: N, itemBytes: N, dst: N, src: N, n: N, layout: Meta): void;
  copyBytes(d: N, dst: N, src: N, bytes: N): void;
  fill(d: N, itemBytes: N, dst: N, bits: N, n: N): void;
  cast(d: N, from: N, to: N, dst: N, src: N, n: N): void;
  arange(d: N, dtype: N, dst: N, start: N, step: N, n: N): void;
  sum(d: N, dtype: N, out: N, x: N, nOut: N, count: N, kept: Meta, reduced: Meta, rows: N): void;
  max(d: N, dtype: N, values: N, indices: N, x: N, outer: N, n: N, inner: N): void;
  softmax(d: N, dtype: N, log: N, out: N, x: N, outer: N, n: N, inner: N): void;
  attentionSoftmax(d: N, dtype: N, out: N, x: N, rows: N, S: N, Skv: N, scale: N, causal: N, window: N): void;
  attentionSoftmaxBackward(d: N, dtype: N, out: N, y: N, g: N, rows: N, n: N, scale: N): void;
  layerNorm(d: N, dtype: N, y: N, mean: N, rstd: N, x: N, w: N, b: N, rows: N, dim: N, eps: N): void;
  layerNormBackward(
    d: N,
    dtype: N,
    dx: N,
    dw: N,
    db: N,
    g: N,
    x: N,
    mean: N,
    rstd: N,
    w: N,
    rows: N,
    dim: N,
  ): void;
  crossEntropy(d: N, dtype: N, reduction: N, out: N, logits: N, targets: N, n: N, v: N, ignore: N): void;
  crossEntropyBackward(
    d: N,
    dtype: N,
    reduction: N,
    out: N,
    g: N,
    logits: N,
    targets: N,
    n: N,
    v: N,
    ignore: N,
  ): void;
  embedding(d: N, dtype: N, out: N, weight: N, ids: N, n: N, v: N, dim: N): void;
  indexSelect(d: N, dtype: N, out: N, x: N, index: N, outer: N, n: N, m: N, inner: N): void;
  indexAdd(d: N, dtype: N, acc: N, src: N, index: N, outer: N, n: N, m: N, inner: N): void;
  gather(d: N, dtype: N, out: N, x: N, index: N, total: N, dims: Meta, axisStride: N, size: N): void;
  scatterAdd(d: N, dtype: N, acc: N, src: N, index: N, total: N, dims: Meta, axisStride: N, size: N): void;
  adamw(
    d: N,
    paramType: N,
    gradType: N,
    param: N,
    grad: N,
    m: N,
    v: N,
    n: N,
    lr: N,
    beta1: N,
    beta2: N,
    eps: N,
    decay: N,
    correction1: N,
    correction2: N,
    /** 0, or the address of one f32 that multiplies the gradient (the clip coefficient). */
    scale: N,
  ): void;
  adamwMixed(
    d: N,
    gradType: N,
    param: N,
    grad: N,
    master: N,
    m: N,
    v: N,
    n: N,
    lr: N,
    beta1: N,
    beta2: N,
    eps: N,
    decay: N,
    correction1: N,
    correction2: N,
    /** 0, or the address of one f32 that multiplies the gradient (the clip coefficient). */
    scale: N,
    /** the moments' dtype code (f32 or bf16) */
    momentType: N,
    /** keys the stochastic rounding of bf16 moments (a u32) */
    salt: N,
  ): void;
  rope(
    d: N,
    dtype: N,
    out: N,
    x: N,
    cos: N,
    sin: N,
    rows: N,
    dim: N,
    layout: Meta,
    xi: N,
    ci: N,
    si: N,
    transpose: N,
  ): void;
  topk(d: N, dtype: N, values: N, indices: N, x: N, outer: N, n: N, inner: N, k: N): void;
  gemm(
    d: N,
    dtype: N,
    transA: N,
    transB: N,
    m: N,
    n: N,
    k: N,
    A: N,
    lda: N,
    strideA: N,
    B: N,
    ldb: N,
    strideB: N,
    C: N,
    ldc: N,
    strideC: N,
    batch: N,
    epilogue?: N,
    bias?: N,
  ): N;
  setGemmImplementation(impl: N): void;
  /** 0 off, 1 grouped (varying-size plans), 2 all: which plans time their candidates (drops cached plans). */
  setGemmTuning(mode: N): void;
  /** Philox draws: distribution 0 uniform [a, b), 1 normal (mean a, std b), 2 exponential (rate a). */
  random(d: N, distribution: N, out: N, n: N, key0: N, key1: N, counterLo: N, counterHi: N, a: N, b: N): void;
  randomScale(
    d: N,
    dtype: N,
    out: N,
    x: N,
    n: N,
    low: N,
    high: N,
    key0: N,
    key1: N,
    counterLo: N,
    counterHi: N,
  ): void;
  moePermute(d: N, counts: N, rowSlot: N, position: N, experts: N, n: N, E: N): void;
  moeDispatch(d: N, dtype: N, out: N, x: N, position: N, tokens: N, K: N, D: N): void;
  moeCombine(d: N, dtype: N, out: N, y: N, w: N, position: N, tokens: N, K: N, D: N): void;
  moeCombineBackward(
    d: N,
    dtype: N,
    dy: N,
    dw: N,
    g: N,
    y: N,
    w: N,
    position: N,
    tokens: N,
    K: N,
    D: N,
  ): void;
  siluGlu(d: N, dtype: N, out: N, h: N, rows: N, I: N): void;
  siluGluBackward(d: N, dtype: N, dh: N, g: N, h: N, rows: N, I: N): void;
  moeRoute(
    d: N,
    router: N,
    logits: N,
    experts: N,
    weights: N,
    probs: N,
    counts: N,
    T: N,
    E: N,
    K: N,
    eps: N,
    training: N,
    key0: N,
    key1: N,
    counterLo: N,
    counterHi: N,
  ): void;
  moeRouteBackward(
    d: N,
    router: N,
    logits: N,
    experts: N,
    gw: N,
    gp: N,
    dz: N,
    T: N,
    E: N,
    K: N,
    eps: N,
  ): void;
  sumSquares(d: N, dtype: N, out: N, x: N, n: N): void;
  /** table: [pointer, size, dtype code] per tensor; out: the in-order f32 sum of their sums of squares. */
  sumSquaresMany(d: N, out: N, table: Float64Array): void;
  setGroupedImplementation(impl: N): void;
  groupedInfo(): { implementation: N; cublasGroupedError?: string };
  /** mode 0 forward, 1 input gradient, 2 weight gradients (written into `weights`). */
  groupedLinear(
    d: N,
    dtype: N,
    mode: N,
    counts: Float64Array,
    parts: N,
    inFeatures: N,
    outFeatures: N,
    first: N,
    second: N,
    result: N,
    weights: Float64Array,
  ): void;
  gemmInfo(): {
    implementation: N;
    cublasLtPath?: string;
    cublasLtError?: string;
    plans: N;
    ltCalls: N;
    cublasCalls: N;
    fusedEpilogues: N;
    tuning: N;
    tunedPlans: N;
    wgmmaGroupedCalls: N;
  };
}

export type Loaded = { addon: NativeAddon; path: string } | { addon: null; error: string };

let loaded: Loaded | undefined;

function candidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  return [
    process.env.GRIN_CUDA_ADDON,
    join(here, 'grin_cuda.node'),
    join(here, '../build/grin_cuda.node'),
    join(here, '../../build/grin_cuda.node'),
  ].filter((p): p is string => !!p);
}

export function loadNative(): Loaded {
  if (loaded) return loaded;
  const paths = candidates();
  const path = paths.find((p) => existsSync(p));
  if (!path) {
    loaded = {
      addon: null,
      error:
        `native addon not built (looked for ${paths.join(', ')}); build it with ` +
        '`pnpm --filter @grin-moe/kernels-cuda build:native` on a machine with nvcc',
    };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(path) as NativeAddon;
    loaded = { addon, path };
  } catch (error) {
    loaded = { addon: null, error: `native addon ${path} failed to load: ${(error as Error).message}` };
  }
  return loaded;
}
