// The plain reference GEMM: C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T.
// lda/ldb/ldc are row strides of the arrays as stored; beta == 0 overwrites C without reading it
// (BLAS convention, so an uninitialized C cannot leak NaN). Sums in float64. The fast gemmF32 is
// checked against this in gemm.test.ts.
// Test: cd packages/tensor && npx vitest run src/cpu/gemm

export type FloatArray = Float32Array | Float64Array;

export function gemmRef(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: FloatArray,
  offA: number,
  lda: number,
  B: FloatArray,
  offB: number,
  ldb: number,
  beta: number,
  C: FloatArray,
  offC: number,
  ldc: number,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) {
        const a = transA ? A[offA + k * lda + i]! : A[offA + i * lda + k]!;
        const b = transB ? B[offB + j * ldb + k]! : B[offB + k * ldb + j]!;
        sum += a * b;
      }
      const c = offC + i * ldc + j;
      C[c] = beta === 0 ? alpha * sum : alpha * sum + beta * C[c]!;
    }
  }
}
