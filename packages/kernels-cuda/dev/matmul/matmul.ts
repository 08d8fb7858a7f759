// Dev harness for matmul (src/kernels/matmul.ts over csrc/cublas.cpp): validates each version
// against the CPU op in f32 and bf16 (odd sizes, transposed operands read through strides, batched
// and broadcast batches, x w^T with N = 16 and 5: the router gate's shape), then times bf16
// TFLOP/s at 8192^3 and the GRIN layer's products for 8192 tokens of width 4096, y = x w^T with w
// stored [out, in] (q_proj / o_proj [4096,4096], kv_proj [1024,4096], expert w1 / w3 [6400,4096],
// w2 [4096,6400], router gate [16,4096]), each with its two backward products (dx = g w,
// dw = g^T x). GB/s of the minimum traffic (A, B read, C written) is printed as a fraction of this
// GPU's copy bandwidth: the router gate is memory-bound. Versions: `cublas`
// (cublasGemmStridedBatchedEx) and `cublasLt` (the default), switched by setGemmImplementation.
// Run on a GPU: npx tsx dev/matmul/matmul.ts
// (device machine: /tmp/node .device/dev-matmul.mjs)
import * as T from '@grin-moe/tensor';
import { type GemmImplementation, setGemmImplementation } from '../../src/index.js';
import { DTYPES } from '../../tests/cases/harness.js';
import { type MatmulShapes, matmulChecks } from '../../tests/cases/matmul.js';
import { requireCuda, validate } from '../harness.js';
import { bigRandn, copyBandwidth, timeMs } from '../timing.js';

const VERSIONS: GemmImplementation[] = ['cublas', 'cublasLt'];
const use = (version: GemmImplementation) => setGemmImplementation(version);

/** [a shape, b shape, transpose a?, transpose b?]: b^T with b stored [N, K] is the x w^T layout. */
const TABLE: MatmulShapes = [
  [[7, 5], [5, 3], false, false],
  [[33, 65], [65, 17], false, false],
  [[64, 128], [128, 256], true, false],
  [[64, 128], [128, 256], false, true],
  [[65, 31], [31, 129], true, true],
  [[256, 1024], [1024, 512], false, true],
  [[4, 64, 96], [4, 96, 80], false, false],
  [[2, 3, 40, 24], [3, 24, 56], false, true],
  [[300, 4096], [4096, 16], false, true],
  [[37, 100], [100, 5], false, true],
];

requireCuda('matmul');
let passed = true;
for (const version of VERSIONS) {
  use(version);
  for (const dtype of DTYPES) {
    passed =
      validate(`${version} ${dtype}`, (notes) => {
        matmulChecks(TABLE, dtype, notes);
      }) && passed;
  }
}

const copy = copyBandwidth();
console.log(`copy bandwidth (cudaMemcpy D2D, 1 GiB): ${copy.toFixed(0)} GB/s`);
const tokens = 8192;
const weights: Array<[string, number, number]> = [
  ['q_proj / o_proj', 4096, 4096],
  ['kv_proj', 1024, 4096],
  ['expert w1 / w3', 6400, 4096],
  ['expert w2', 4096, 6400],
  ['router gate', 16, 4096],
];
for (const version of VERSIONS) {
  use(version);
  const line = (name: string, [m, n, k]: [number, number, number], ms: number) => {
    const tflops = (2 * m * n * k) / ms / 1e9;
    const gbs = (2 * (m * k + k * n + m * n)) / ms / 1e6;
    console.log(
      `${version.padEnd(8)} ${name.padEnd(40)} ${ms.toFixed(3).padStart(8)} ms ${tflops.toFixed(1).padStart(6)} TFLOP/s ` +
        `${gbs.toFixed(0).padStart(6)} GB/s = ${(gbs / copy).toFixed(2)} of copy`,
    );
  };
  T.tidy(() => {
    const a = bigRandn([8192, 8192], 'bf16');
    const b = bigRandn([8192, 8192], 'bf16');
    line(
      'bf16 8192^3',
      [8192, 8192, 8192],
      timeMs(() => void T.matmul(a, b), 10),
    );
  });
  for (const [name, out, inp] of weights) {
    T.tidy(() => {
      const x = bigRandn([tokens, inp], 'bf16');
      const w = bigRandn([out, inp], 'bf16');
      const g = bigRandn([tokens, out], 'bf16');
      const tag = `${name} [${out},${inp}]`;
      line(
        `${tag} y=x w^T`,
        [tokens, out, inp],
        timeMs(() => void T.matmul(x, w.transpose())),
      );
      line(
        `${tag} dx=g w`,
        [tokens, inp, out],
        timeMs(() => void T.matmul(g, w)),
      );
      line(
        `${tag} dw=g^T x`,
        [out, inp, tokens],
        timeMs(() => void T.matmul(g.transpose(), x)),
      );
    });
  }
}
process.exit(passed ? 0 : 1);
