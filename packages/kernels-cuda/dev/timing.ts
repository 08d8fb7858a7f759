// Shared by the dev/ row-kernel harnesses (layer_norm, softmax, cross_entropy): CUDA-synchronized
// wall-clock timing (median of 5 blocks) and the copy bandwidth of this GPU measured in the same
// run (cudaMemcpyAsync device-to-device of 1 GiB through a same-dtype cast, read + write counted),
// the baseline every memory-bound kernel is reported against.
import * as T from '@grin-moe/tensor';
import { cudaSynchronize } from '../src/index.js';

/** Milliseconds per call of fn (each call in its own scope), median of 5 blocks of `reps`. */
export function timeMs(fn: () => void, reps = 20): number {
  for (let i = 0; i < 3; i++) T.tidy(fn);
  cudaSynchronize();
  const blocks: number[] = [];
  for (let b = 0; b < 5; b++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) T.tidy(fn);
    cudaSynchronize();
    blocks.push((performance.now() - start) / reps);
  }
  return blocks.sort((a, b) => a - b)[2]!;
}

/** GB/s of a plain device-to-device copy of 1 GiB (bytes read + bytes written). */
export function copyBandwidth(): number {
  return T.tidy(() => {
    const x = T.zeros([256 * 2 ** 20], { device: 'cuda' });
    const ms = timeMs(() => void T.runKernel('cast', 'cuda', [x], { dtype: 'f32' }), 10);
    return (2 * 4 * x.size) / ms / 1e6;
  });
}

/** "name: 0.123 ms, 1234 GB/s = 0.29 of copy" */
export function rate(name: string, bytes: number, ms: number, copy: number): string {
  const gbs = bytes / ms / 1e6;
  return `${name.padEnd(44)} ${ms.toFixed(3).padStart(8)} ms ${gbs.toFixed(0).padStart(6)} GB/s = ${(gbs / copy).toFixed(2)} of copy`;
}

let base: T.Tensor | null = null;
const BASE = 16 * 2 ** 20;

/**
 * A cuda tensor of `shape` in `dtype` filled with normal draws: one host draw of 16M values, uploaded
 * once and tiled (host draws of hundreds of millions would dominate the harness).
 */
export function bigRandn(shape: number[], dtype: 'f32' | 'bf16'): T.Tensor {
  return T.tidy(() => {
    base ??= T.randn([BASE], { device: 'cuda' }).alias({ track: false });
    const n = shape.reduce((a, d) => a * d, 1);
    const copies = Math.ceil(n / BASE);
    const flat =
      copies === 1
        ? base.slice([0, n])
        : T.concat(
            Array.from({ length: copies }, () => base!),
            0,
          ).slice([0, n]);
    return T.cast(T.contiguous(flat).reshape(shape), dtype);
  });
}
