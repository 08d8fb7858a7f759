// The skinny bf16 GEMM y [M, N] = x [M, K] w [N, K]^T (+ b) for N <= 32: the router gate (N = 16
// experts, K = hidden). It moves 2 bytes per x element and does 2N flops on it, so it is bound by
// reading x once from HBM; cuBLAS's kernels for this shape reach ~2.9 TB/s of the ~4.2 available.
// Design: tensor-core mma.m16n8k16 with both fragments loaded straight from global memory as
// 16-byte vectors: the k order inside each 32-wide chunk is permuted identically for x and w (a dot
// product does not care), so a thread's 8 contiguous x values feed two mma k-steps without any
// shuffle or shared-memory staging. x is streamed past L1 (ld.global.nc.L1::no_allocate); w
// (N x K, 128 KB for the gate) stays in L1/L2. A block of 8 warps covers 32 rows; its 4 warps per
// 16 rows take interleaved k-chunks (split-K inside the block, reduced through shared memory), so
// ~16 warps per SM keep ~64 KB of loads in flight. f32 accumulate; the bias is added in f32 before
// the single bf16 rounding. Called from gemm() (cublas.cpp) for the column-major problems that are
// y^T = w x^T. Test: tests/cases/matmul.ts (router-gate shapes); dev/matmul times it.
#include <cstdint>

#include "device.cuh"
#include "kernels.h"

namespace grin {

namespace {
constexpr int WARPS = 8, ROW_GROUPS = 2, K_SPLIT = WARPS / ROW_GROUPS, UNROLL = 4;

__device__ __forceinline__ uint4 streamLoad(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

__device__ __forceinline__ void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1) {
  asm(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/**
 * Thread (g = lane / 4, t = lane % 4) of a warp owning rows r0..r0+15 loads, per 32-wide k chunk,
 * x[r0 + g][8t .. 8t+7] and x[r0 + g + 8][same] and, per 8-column tile j, w[8j + g][8t .. 8t+7].
 * mma k-step s in {0, 1} takes words 2s, 2s+1 of each vector: for the mma they are the logical k
 * pairs (2t, 2t+1) and (2t+8, 2t+9), the same mapping for A and B, so the products are exact.
 */
template <int NT>
__global__ void __launch_bounds__(WARPS * 32) skinnyGemmKernel(bf16* y, const bf16* x, const bf16* w,
                                                                 const bf16* bias, int M, int N, int K, int64_t ldx,
                                                                 int64_t ldw, int64_t ldy) {
  __shared__ float partial[K_SPLIT - 1][ROW_GROUPS][32][NT * 4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = warp % ROW_GROUPS, split = warp / ROW_GROUPS;
  const int g = lane >> 2, t = lane & 3;
  const int chunks = K / 32;
  for (int64_t tile = blockIdx.x; tile * 16 * ROW_GROUPS < M; tile += gridDim.x) {
    const int64_t r0 = tile * 16 * ROW_GROUPS + group * 16;
    // Rows past M and w rows past N are clamped, not zeroed: they only feed outputs never stored,
    // and branch-free loads let the compiler put all of an unrolled step's loads in flight at once.
    const bf16* xa = x + min(r0 + g, (int64_t)M - 1) * ldx + 8 * t;
    const bf16* xb = x + min(r0 + g + 8, (int64_t)M - 1) * ldx + 8 * t;
    const bf16* wr[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) wr[j] = w + (int64_t)min(8 * j + g, N - 1) * ldw + 8 * t;
    float acc[NT][4] = {};
    auto step = [&](const uint4& va, const uint4& vb, const uint4 (&vw)[NT]) {
#pragma unroll
      for (int j = 0; j < NT; j++) {
        mma(acc[j], va.x, vb.x, va.y, vb.y, vw[j].x, vw[j].y);
        mma(acc[j], va.z, vb.z, va.w, vb.w, vw[j].z, vw[j].w);
      }
    };
    int c0 = split;
    for (; c0 + (UNROLL - 1) * K_SPLIT < chunks; c0 += K_SPLIT * UNROLL) {
      uint4 va[UNROLL], vb[UNROLL], vw[UNROLL][NT];
#pragma unroll
      for (int u = 0; u < UNROLL; u++) {  // all loads first: UNROLL * (2 + NT) vectors in flight
        const int c = c0 + u * K_SPLIT;
        va[u] = streamLoad(xa + 32 * c);
        vb[u] = streamLoad(xb + 32 * c);
#pragma unroll
        for (int j = 0; j < NT; j++) vw[u][j] = __ldg((const uint4*)(wr[j] + 32 * c));
      }
#pragma unroll
      for (int u = 0; u < UNROLL; u++) step(va[u], vb[u], vw[u]);
    }
    for (int c = c0; c < chunks; c += K_SPLIT) {  // the last < UNROLL chunks of this warp
      uint4 vw[NT];
#pragma unroll
      for (int j = 0; j < NT; j++) vw[j] = __ldg((const uint4*)(wr[j] + 32 * c));
      step(streamLoad(xa + 32 * c), streamLoad(xb + 32 * c), vw);
    }
    // split-K reduction: warps 1..3 of a row group hand their partial sums to warp 0
    if (split > 0) {
#pragma unroll
      for (int j = 0; j < NT; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) partial[split - 1][group][lane][4 * j + e] = acc[j][e];
    }
    __syncthreads();
    if (split == 0) {
#pragma unroll
      for (int s = 0; s < K_SPLIT - 1; s++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
          for (int e = 0; e < 4; e++) acc[j][e] += partial[s][group][lane][4 * j + e];
      // acc[j]: rows g (e = 0, 1) and g + 8 (e = 2, 3), columns 8j + 2t + (e & 1)
#pragma unroll
      for (int j = 0; j < NT; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int col = 8 * j + 2 * t + (e & 1);
          const int64_t row = r0 + g + (e >> 1) * 8;
          if (col < N && row < M)
            y[row * ldy + col] = __float2bfloat16(acc[j][e] + (bias ? __bfloat162float(bias[col]) : 0.0f));
        }
    }
    __syncthreads();  // partial[] is reused by the next tile
  }
}

bool isAligned16(const void* p) { return ((uintptr_t)p & 15) == 0; }
}  // namespace

/**
 * Column-major g = (C = op(A) op(B)) is y^T = w x^T when A is w stored [N, K] (transA), B is x
 * stored [M, K] (no trans) and C is y [M, N]: the skinny kernel takes it when it is bf16, N <= 32,
 * K a multiple of 32 and every row 16-byte aligned. Returns false to leave the call to the libraries.
 */
bool skinnyGemm(int device, const Gemm& g, int epilogue, const void* bias) {
  if (g.dtype != BF16 || g.batch != 1 || !g.transA || g.transB || g.m > 32 || g.m < 1 || g.n < 1) return false;
  if (g.k % 32 != 0 || g.k == 0 || (epilogue != EPI_NONE && epilogue != EPI_BIAS)) return false;
  if (!isAligned16(g.A) || !isAligned16(g.B) || (g.lda * 2) % 16 != 0 || (g.ldb * 2) % 16 != 0) return false;
  cudaStream_t stream = streamFor(device);
  const int64_t tiles = ((int64_t)g.n + 16 * ROW_GROUPS - 1) / (16 * ROW_GROUPS);
  const unsigned blocks = (unsigned)(tiles < (1 << 20) ? tiles : (1 << 20));
  const bf16* b = epilogue == EPI_BIAS ? (const bf16*)bias : nullptr;
  auto* y = (bf16*)g.C;
  auto* x = (const bf16*)g.B;
  auto* w = (const bf16*)g.A;
  switch ((g.m + 7) / 8) {
    case 1: skinnyGemmKernel<1><<<blocks, WARPS * 32, 0, stream>>>(y, x, w, b, g.n, g.m, g.k, g.ldb, g.lda, g.ldc); break;
    case 2: skinnyGemmKernel<2><<<blocks, WARPS * 32, 0, stream>>>(y, x, w, b, g.n, g.m, g.k, g.ldb, g.lda, g.ldc); break;
    case 3: skinnyGemmKernel<3><<<blocks, WARPS * 32, 0, stream>>>(y, x, w, b, g.n, g.m, g.k, g.ldb, g.lda, g.ldc); break;
    default: skinnyGemmKernel<4><<<blocks, WARPS * 32, 0, stream>>>(y, x, w, b, g.n, g.m, g.k, g.ldb, g.lda, g.ldc); break;
  }
  checkLaunch("skinny gemm (router gate)");
  return true;
}

}  // namespace grin
