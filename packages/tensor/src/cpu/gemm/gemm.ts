// Public fast f32 GEMM: C = alpha * op(A) * op(B) + beta * C (row-major, BLAS-like arguments), with
// a batched form for many same-shaped products (attention). Synchronous; WebAssembly SIMD kernel,
// spread over worker threads in Node (gemm-pool.ts), single-threaded elsewhere. Same semantics as
// gemmRef (gemm-ref.ts). Test: `npx vitest run src/cpu/gemm` in packages/tensor.
import { runProducts } from './gemm-run.js';

export { gemmThreads, setGemmThreads } from './gemm-pool.js';

function checkMatrix(
  name: string,
  array: unknown,
  offset: number,
  ld: number,
  rows: number,
  cols: number,
  what: string,
): void {
  if (!(array instanceof Float32Array)) throw new TypeError(`gemmF32: ${name} must be a Float32Array`);
  if (!Number.isInteger(offset) || offset < 0)
    throw new RangeError(`gemmF32: off${name} (${offset}) must be a non-negative integer`);
  if (!Number.isInteger(ld) || ld < Math.max(1, cols)) {
    throw new RangeError(
      `gemmF32: ld${name.toLowerCase()} (${ld}) must be an integer >= ${Math.max(1, cols)}, the row length of ${what}`,
    );
  }
  const end = rows === 0 || cols === 0 ? offset : offset + (rows - 1) * ld + cols;
  if (end > array.length) {
    throw new RangeError(
      `gemmF32: ${name} (${rows}x${cols} from offset ${offset}, row stride ${ld}) needs ${end} elements, it has ${array.length}`,
    );
  }
}

function checkDims(M: number, N: number, K: number): void {
  for (const [name, value] of [
    ['M', M],
    ['N', N],
    ['K', K],
  ] as const) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`gemmF32: ${name} (${value}) must be a non-negative integer`);
  }
}

/** C = beta * C for K == 0 (no products to sum); beta == 0 writes zeros. */
function scaleC(M: number, N: number, beta: number, C: Float32Array, offC: number, ldc: number): void {
  for (let i = 0; i < M; i++) {
    const row = offC + i * ldc;
    if (beta === 0) C.fill(0, row, row + N);
    else for (let j = row; j < row + N; j++) C[j] = beta * C[j]!;
  }
}

export function gemmF32(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Float32Array,
  offA: number,
  lda: number,
  B: Float32Array,
  offB: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  offC: number,
  ldc: number,
): void {
  checkDims(M, N, K);
  checkMatrix('A', A, offA, lda, transA ? K : M, transA ? M : K, transA ? 'A (K x M, transA)' : 'A (M x K)');
  checkMatrix('B', B, offB, ldb, transB ? N : K, transB ? K : N, transB ? 'B (N x K, transB)' : 'B (K x N)');
  checkMatrix('C', C, offC, ldc, M, N, 'C (M x N)');
  if (M === 0 || N === 0) return;
  if (K === 0) scaleC(M, N, beta, C, offC, ldc);
  else runProducts({ transA, transB, M, N, K, alpha, beta, lda, ldb, ldc }, [{ A, offA, B, offB, C, offC }]);
}

/**
 * C[b] = op(A[b]) * op(B[b]) for b < batch, each matrix dense and batch b starting at b * stride.
 * One call dispatches the whole batch, so small per-head products still use every thread.
 */
export function gemmBatchedF32(
  batch: number,
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  strideA: number,
  B: Float32Array,
  strideB: number,
  C: Float32Array,
  strideC: number,
): void {
  checkDims(M, N, K);
  if (!Number.isInteger(batch) || batch < 0)
    throw new RangeError(`gemmBatchedF32: batch (${batch}) must be a non-negative integer`);
  if (batch === 0 || M === 0 || N === 0) return;
  const lda = transA ? M : K;
  const ldb = transB ? K : N;
  const last = batch - 1;
  checkMatrix('A', A, last * strideA, lda, transA ? K : M, lda, `A[${last}]`);
  checkMatrix('B', B, last * strideB, ldb, transB ? N : K, ldb, `B[${last}]`);
  checkMatrix('C', C, last * strideC, N, M, N, `C[${last}]`);
  const products = Array.from({ length: batch }, (_, b) => ({
    A,
    offA: b * strideA,
    B,
    offB: b * strideB,
    C,
    offC: b * strideC,
  }));
  if (K === 0) for (const p of products) scaleC(M, N, 0, C, p.offC, N);
  else runProducts({ transA, transB, M, N, K, alpha: 1, beta: 0, lda, ldb, ldc: N }, products);
}
