// The CPU GEMM entry points, re-exported by the package index (packages/tensor/src/index.ts).
// Design and measured numbers: packages/tensor/README-gemm.md. Tests: gemm.test.ts.
export { gemmBatchedF32, gemmF32, gemmThreads, setGemmThreads } from './gemm.js';
export { type FloatArray, gemmRef } from './gemm-ref.js';
