// A 'webgl' device for @grin-moe/tensor, driven by gpu.js: storage stays in host typed arrays (the
// CPU layout), every CPU kernel is registered for 'webgl' too, and matmul is replaced by a gpu.js
// kernel (a WebGL fragment shader) for f32 products large enough to pay for the upload. A self-test
// against the CPU kernel runs first; when WebGL is missing or the test fails, the page stays on 'cpu'.
// Test: cd apps/dashboard && npx vitest run src/web/model (gpu.js 'cpu' mode stands in for WebGL).
import * as T from '@grin-moe/tensor';

/** The part of gpu.js's GPU class used here. */
export interface GpuLike {
  createKernel(
    fn: (...args: never[]) => number,
    settings: Record<string, unknown>,
  ): ((...args: unknown[]) => unknown) & { destroy?: () => void };
}

export interface WebglStatus {
  device: 'webgl' | 'cpu';
  reason: string;
  /** Products run by gpu.js / left to the CPU kernel since registration. */
  stats: { gpu: number; cpu: number };
}

const stats = { gpu: 0, cpu: 0 };

function hostBackend(name: string): T.Backend {
  const backend: T.Backend = {
    name,
    // The CPU backend's typed arrays, so that every CPU kernel reads 'webgl' storage as its own.
    allocate: (dtype, length) =>
      new T.Storage(backend, dtype, length, T.backendOf('cpu').allocate(dtype, length, 'cpu').data),
    fromHost: (array, dtype) => {
      const storage = backend.allocate(dtype, array.length, name);
      (storage.data as T.HostArray).set(array as never);
      return storage;
    },
    toHost: (storage, offset, length) => (storage.data as T.HostArray).slice(offset, offset + length),
    free: () => {},
  };
  return backend;
}

function productKernel(gpu: GpuLike, M: number, N: number, K: number) {
  return gpu.createKernel(
    function (
      this: { thread: { x: number; y: number }; constants: { N: number; K: number } },
      a: Float32Array,
      b: Float32Array,
    ) {
      let sum = 0;
      for (let k = 0; k < this.constants.K; k++)
        sum += a[this.thread.y * this.constants.K + k]! * b[k * this.constants.N + this.thread.x]!;
      return sum;
    } as never,
    {
      output: [N, M],
      constants: { N, K },
      loopMaxIterations: K + 1,
      precision: 'single',
      tactic: 'precision',
    },
  );
}

/**
 * Registers the 'webgl' device over `gpu` (a gpu.js GPU). Products with fewer than `minWork`
 * multiply-adds stay on the CPU kernel, where the WebGL round trip would cost more than it saves.
 */
export function registerWebglBackend(gpu: GpuLike, minWork = 4096): WebglStatus {
  const kernels = new Map<string, ReturnType<typeof productKernel>>();
  T.registerBackend(hostBackend('webgl'));
  for (const { op, backend } of T.listKernels()) {
    if (backend !== 'cpu') continue;
    const entry = T.getKernel(op as T.OpName, 'cpu');
    T.registerKernel(op as T.OpName, 'webgl', entry.kernel as never, { strided: entry.strided });
  }
  const cpuMatmul = T.getKernel('matmul', 'cpu').kernel as T.Kernel;
  T.registerKernel('matmul', 'webgl', (inputs, attrs, device) => {
    const [a, b] = inputs as [T.Tensor, T.Tensor];
    const M = a.shape.at(-2)!;
    const K = a.shape.at(-1)!;
    const N = b.shape.at(-1)!;
    const sameBatch = a.rank === b.rank && a.shape.slice(0, -2).join() === b.shape.slice(0, -2).join();
    if (a.dtype !== 'f32' || b.dtype !== 'f32' || !sameBatch || M * N * K < minWork || K === 0) {
      stats.cpu++;
      return cpuMatmul(inputs, attrs as never, device);
    }
    stats.gpu++;
    const key = `${M}x${N}x${K}`;
    let kernel = kernels.get(key);
    if (!kernel) kernels.set(key, (kernel = productKernel(gpu, M, N, K)));
    const batch = a.size / (M * K);
    const out = new Float32Array(batch * M * N);
    const A = a.toArray() as Float32Array;
    const B = b.toArray() as Float32Array;
    for (let i = 0; i < batch; i++) {
      const rows = kernel(
        A.subarray(i * M * K, (i + 1) * M * K),
        B.subarray(i * K * N, (i + 1) * K * N),
      ) as Float32Array[];
      rows.forEach((row, r) => out.set(row, i * M * N + r * N));
    }
    return [T.tensor(out, { shape: [...a.shape.slice(0, -2), M, N], dtype: 'f32', device })];
  });
  const check = selfTest();
  return check === null
    ? { device: 'webgl', reason: 'gpu.js matmul matches the CPU kernel', stats }
    : { device: 'cpu', reason: `gpu.js self-test failed (${check}); using the CPU backend`, stats };
}

/** Null when a random 33x47x29 product on 'webgl' matches the CPU one; else what differed. */
export function selfTest(): string | null {
  const [M, K, N] = [33, 29, 47];
  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.37));
  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i * 0.11));
  const run = (device: string) =>
    T.tidy(
      () =>
        T.matmul(
          T.tensor(a, { shape: [M, K], device }),
          T.tensor(b, { shape: [K, N], device }),
        ).toArray() as Float32Array,
    );
  try {
    const ours = run('webgl');
    const reference = run('cpu');
    let worst = 0;
    reference.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - ours[i]!))));
    return worst <= 1e-3 ? null : `max |difference| ${worst.toExponential(2)}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/** In a browser: gpu.js over WebGL2/WebGL when present, else the CPU backend. */
export async function pickDevice(): Promise<WebglStatus> {
  try {
    const { GPU } = (await import('gpu.js')) as unknown as {
      GPU: (new (o: object) => GpuLike) & { isWebGL2Supported: boolean; isWebGLSupported: boolean };
    };
    const mode = GPU.isWebGL2Supported ? 'webgl2' : GPU.isWebGLSupported ? 'webgl' : null;
    if (!mode) return { device: 'cpu', reason: 'no WebGL in this browser; using the CPU backend', stats };
    return registerWebglBackend(new GPU({ mode }));
  } catch (error) {
    return {
      device: 'cpu',
      reason: `gpu.js failed to start (${(error as Error).message}); using the CPU backend`,
      stats,
    };
  }
}
