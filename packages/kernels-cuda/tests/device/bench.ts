// Device benchmark bundle: times our cuda ops (CUDA-synchronized wall clock, 3 warm-ups, median of
// 5 blocks) and prints "BENCH {json}" lines; tools/device/torch_bench.py prints the same names for
// PyTorch in the same device run and tools/device/summarize.mjs turns both into ratios.
import * as T from '@grin-moe/tensor';
import { cudaStatus, cudaSynchronize } from '../../src/index.js';

function time(name: string, work: number, unit: 'TFLOP/s' | 'GB/s', fn: () => void, reps = 10): void {
  for (let i = 0; i < 3; i++) T.tidy(fn);
  cudaSynchronize();
  const blocks: number[] = [];
  for (let b = 0; b < 5; b++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) T.tidy(fn);
    cudaSynchronize();
    blocks.push((performance.now() - start) / reps / 1000);
  }
  const seconds = blocks.sort((a, b) => a - b)[2]!;
  const rate = work / seconds / (unit === 'TFLOP/s' ? 1e12 : 1e9);
  console.log(
    `BENCH ${JSON.stringify({ impl: 'ours', name, unit, rate: Number(rate.toFixed(1)), ms: Number((seconds * 1e3).toFixed(3)) })}`,
  );
}

const status = cudaStatus();
if (!status.available) {
  console.log(`# bench skipped: ${status.reason}`);
} else {
  const dev = { device: 'cuda' };
  const M = 64 * 2 ** 20;
  // One host draw of 64M normals, uploaded once; every input below is a view or cast of it.
  const base = T.randn([M], dev);
  const view = (n: number, shape: number[], negate = false) => {
    const v = base.slice([0, n]).reshape(shape);
    return negate ? T.neg(v) : T.contiguous(v);
  };
  for (const n of [4096, 8192]) {
    const a = T.cast(view(n * n, [n, n]), 'bf16');
    const b = T.cast(view(n * n, [n, n], true), 'bf16');
    time(`matmul_bf16_${n}`, 2 * n ** 3, 'TFLOP/s', () => T.matmul(a, b));
  }
  {
    const a = view(4096 * 4096, [4096, 4096]);
    const b = view(4096 * 4096, [4096, 4096], true);
    time('matmul_f32_4096', 2 * 4096 ** 3, 'TFLOP/s', () => T.matmul(a, b));
  }
  {
    const a = T.cast(base, 'bf16');
    const b = T.cast(T.neg(base), 'bf16');
    time('add_bf16_64M', 3 * 2 * M, 'GB/s', () => T.add(a, b));
    const c = view(M, [M / 1024, 1024]);
    const bias = view(1024, [1024], true);
    time('add_bias_f32_64M', 2 * 4 * M, 'GB/s', () => T.add(c, bias));
    time('sum_rows_f32_64M', 4 * M, 'GB/s', () => T.sum(c, 1));
    time('sum_cols_f32_64M', 4 * M, 'GB/s', () => T.sum(c, 0));
  }
  {
    const x = T.cast(view(2048 * 32064, [2048, 32064]), 'bf16');
    time('softmax_bf16_2048x32064', 2 * 2 * x.size, 'GB/s', () => T.softmax(x));
    const targets = T.tensor(
      Int32Array.from({ length: 2048 }, (_, i) => (i * 7) % 32064),
      { device: 'cuda' },
    );
    time('cross_entropy_bf16_2048x32064', 2 * x.size, 'GB/s', () => T.crossEntropy(x, targets));
  }
  {
    const x = T.cast(view(16384 * 4096, [16384, 4096]), 'bf16');
    const w = T.cast(T.ones([4096], dev), 'bf16');
    const b = T.cast(T.zeros([4096], dev), 'bf16');
    time('layer_norm_bf16_16384x4096', 2 * 2 * x.size, 'GB/s', () => T.layerNorm(x, w, b));
  }
  {
    const p = T.contiguous(base);
    const g = T.neg(base);
    const m = T.zeros([M], dev);
    const v = T.zeros([M], dev);
    const attrs = { lr: 1e-3, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, step: 1 };
    time(
      'adamw_f32_64M',
      7 * 4 * M,
      'GB/s',
      () => void T.runKernel('adamw_step', 'cuda', [p, g, m, v], attrs),
    );
  }
}
