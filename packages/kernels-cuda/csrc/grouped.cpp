// The MoE's grouped linear: rows in expert order, group e (counts[e] rows) times its own weights,
// as one GEMM per (part, expert) on the device's stream through gemm() (cuBLASLt, cuBLAS when Lt has
// no plan). The changing row count is bucketed in the plan cache (Gemm::varying), so a training
// step runs no heuristic once its buckets are warm. parts = 2 stacks w1 and w3 side by side in one
// output [N, 2 * out] (what the fused SiLU-GLU reads). Row-major products map onto column-major
// cuBLAS as in src/kernels/matmul.ts. Test: tests/cases/moe.ts (GPU).
#include "kernels.h"

namespace grin {

void groupedLinear(int device, int dtype, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                   const void* first, const void* second, void* result, void* const* weights) {
  if (dtype != BF16 && dtype != F32) throw Error("grouped_linear (cuda): needs f32 or bf16 operands");
  if (in > INT32_MAX || out > INT32_MAX) throw Error("grouped_linear (cuda): a dimension is above 2^31 - 1");
  const int64_t item = itemSize(dtype), wide = parts * out;
  auto at = [item](const void* base, int64_t elements) { return (void*)((const char*)base + elements * item); };
  int64_t r0 = 0;
  for (int e = 0; e < E; e++) {
    int64_t rows = counts[e];
    if (rows > INT32_MAX) throw Error("grouped_linear (cuda): a group has more than 2^31 - 1 rows");
    for (int p = 0; p < parts; p++) {
      void* w = weights[p * E + e];
      Gemm g{};
      g.dtype = dtype;
      g.batch = 1;
      if (mode == 0) {  // y[rows, p] = x_rows w^T, i.e. y^T (out x rows) = op(w) x_rows^T
        if (rows == 0) continue;
        g.transA = true, g.transB = false, g.m = (int)out, g.n = (int)rows, g.k = (int)in;
        g.A = w, g.lda = in, g.B = at(first, r0 * in), g.ldb = in;
        g.C = at(result, r0 * wide + p * out), g.ldc = wide, g.varying = GEMM_VARY_N;
      } else if (mode == 1) {  // dx_rows += g[rows, p] w
        if (rows == 0) continue;
        g.transA = false, g.transB = false, g.m = (int)in, g.n = (int)rows, g.k = (int)out;
        g.A = w, g.lda = in, g.B = at(first, r0 * wide + p * out), g.ldb = wide;
        g.C = at(result, r0 * in), g.ldc = in, g.beta = p > 0 ? 1.f : 0.f, g.varying = GEMM_VARY_N;
      } else {  // dw = g[rows, p]^T x_rows: dw^T (in x out) = x_rows^T g[rows, p]
        if (rows == 0) {
          check(cudaMemsetAsync(w, 0, out * in * item, streamFor(device)), "grouped_linear: zero an empty group");
          continue;
        }
        g.transA = false, g.transB = true, g.m = (int)in, g.n = (int)out, g.k = (int)rows;
        g.A = at(second, r0 * in), g.lda = in, g.B = at(first, r0 * wide + p * out), g.ldb = wide;
        g.C = w, g.ldc = in, g.varying = GEMM_VARY_K;
      }
      gemm(device, g);
    }
    r0 += rows;
  }
}

}  // namespace grin
