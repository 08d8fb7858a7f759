// Device pieces shared by the fused-attention sources: attention.cu (the general path: f32 and
// bf16, any head dim up to 128, any alignment), attention_tc.cu (bf16 at head dims 64 / 128 with
// aligned rows: pipelined loads, probabilities kept in registers) and attention_wgmma*.cu (Hopper,
// head dim 128). They use the same fragment layout, the same mask and the same kernel parameters,
// so they compute the same sums.
#pragma once
#include <cfloat>

#include "attention.h"
#include "device.cuh"

namespace grin {
namespace {

constexpr float LOG2E = 1.4426950408889634f;
constexpr int KEY_TILE = 64;  // keys per tile in both kernel families

/** 2^x by the SFU's ex2 (subnormal results flush to 0); every attention kernel uses it, so paths agree bit for bit. */
__device__ __forceinline__ float exp2Fast(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ uint32_t smemAddr(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void ldmatrixX4(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smemAddr(p)));
}
__device__ __forceinline__ void ldmatrixX4T(uint32_t (&r)[4], const bf16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(smemAddr(p)));
}
__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/**
 * One warp: C[16 x 8*NT] += A[16 x K] * B[K x 8*NT], all operands in shared memory. A(m,k) is
 * a[m*lda+k], or a[k*lda+m] when A_T; B(k,n) is b[n*ldb+k] when B_NK, else b[k*ldb+n].
 * Accumulator layout of mma m16n8: lane (g = lane/4, t = lane%4) holds C(g, 8n+2t+{0,1}) in
 * c[n][0..1] and C(g+8, 8n+2t+{0,1}) in c[n][2..3].
 */
template <int NT, bool A_T, bool B_NK>
__device__ __forceinline__ void warpGemm(float (&c)[NT][4], const bf16* a, int lda, const bf16* b, int ldb, int K) {
  static_assert(NT % 2 == 0, "warpGemm: NT must be even");
  const int lane = threadIdx.x & 31;
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af[4];
    if (!A_T) ldmatrixX4(af, a + (lane % 16) * lda + k0 + (lane / 16) * 8);
    else ldmatrixX4T(af, a + (k0 + (lane % 8) + (lane / 16) * 8) * lda + ((lane / 8) % 2) * 8);
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      if (B_NK) ldmatrixX4(bf, b + (n * 8 + (lane % 8) + (lane / 16) * 8) * ldb + k0 + ((lane / 8) % 2) * 8);
      else ldmatrixX4T(bf, b + (k0 + (lane % 8) + ((lane / 8) % 2) * 8) * ldb + n * 8 + (lane / 16) * 8);
      mma16816(c[n], af, bf[0], bf[1]);
      mma16816(c[n + 1], af, bf[2], bf[3]);
    }
  }
}

}  // namespace

struct Mask {
  int offset, skv, window;
  bool causal;
  /** Whether query row i (absolute position i + offset) sees key k. */
  __device__ __forceinline__ bool visible(int i, int k) const {
    const int q = i + offset;
    return k < skv && (!causal || k <= q) && (window == 0 || q - k < window);
  }
};

struct Params {
  const void *q, *k, *v, *o, *dout;
  void *out, *dq, *dk, *dv;
  float *lse, *lse2, *delta;  // lse: forward output / backward input; lse2: log2 units (+inf: no key)
  bf16* dsT;                   // the wgmma backward's stored dS^T tiles (attention_wgmma_backward.cu), or null
  int B, H, Hkv, S, Skv, D, Dv, window;
  float scale;
  bool causal, vecQK, vecV;
};


namespace {
/** Key tiles [first, last] that query rows [i0, i1] may see (first a multiple of KEY_TILE). */
__device__ __forceinline__ void keyRange(const Params& p, int i0, int i1, int& first, int& last) {
  const int offset = p.Skv - p.S;
  const int lo = p.window > 0 ? max(0, i0 + offset - p.window + 1) : 0;
  first = (lo / KEY_TILE) * KEY_TILE;
  last = p.causal ? min(i1 + offset, p.Skv - 1) : p.Skv - 1;
}

/**
 * One key tile of the online softmax for a warp's 16 rows: s holds the tile's raw scores q.k (-inf
 * where masked), scale2 the softmax scale in log2 units. Folds the tile's row maxima (log2 units)
 * into rowMax, turns s into p = exp2(s * scale2 - max) (one fused multiply-add before the exp2, as
 * prob2: no separate scaling pass over the scores), adds p to rowSum and rescales the output
 * accumulator o by the change of the maximum.
 */
template <int NS, int NO>
__device__ __forceinline__ void softmaxTile(float (&s)[NS][4], float scale2, float (&o)[NO][4], float (&rowMax)[2],
                                            float (&rowSum)[2]) {
  float tileMax[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int n = 0; n < NS; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) tileMax[e / 2] = fmaxf(tileMax[e / 2], s[n][e]);
#pragma unroll
  for (int r = 0; r < 2; r++) {
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffff, tileMax[r], 1));
    tileMax[r] = fmaxf(tileMax[r], __shfl_xor_sync(0xffffffff, tileMax[r], 2));
  }
  float alpha[2], base[2];
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const float m = fmaxf(rowMax[r], tileMax[r] * scale2);  // scale2 > 0: the max of the scaled scores
    base[r] = m == -INFINITY ? 0.f : m;                     // a row with nothing visible yet keeps p = 0
    alpha[r] = exp2Fast(rowMax[r] - base[r]);
    rowMax[r] = m;
    rowSum[r] *= alpha[r];
  }
#pragma unroll
  for (int n = 0; n < NS; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) {
      s[n][e] = exp2Fast(fmaf(s[n][e], scale2, -base[e / 2]));
      rowSum[e / 2] += s[n][e];
    }
#pragma unroll
  for (int n = 0; n < NO; n++) {
    o[n][0] *= alpha[0];
    o[n][1] *= alpha[0];
    o[n][2] *= alpha[1];
    o[n][3] *= alpha[1];
  }
}

/** Row `row` of head bh's saved statistics: lse (log2 units) and delta; past S: +inf and 0 (P = 0 there). */
__device__ __forceinline__ void rowStats(const Params& p, int64_t bh, int row, float& lse2, float& delta) {
  lse2 = row < p.S ? p.lse2[bh * p.S + row] : INFINITY;
  delta = row < p.S ? p.delta[bh * p.S + row] : 0.f;
}

/**
 * The query tiles (of TILE rows, each head of a kv group in turn) that keys [j0, j0 + rows) may be
 * seen from, for the dK / dV kernels: tile n is head n / perHead of the group, queries from
 * iStart + (n % perHead) * TILE.
 */
struct QueryTiles {
  int iStart, perHead, count;
};
template <int TILE>
__device__ __forceinline__ QueryTiles queryTiles(const Params& p, int j0, int rows) {
  const int offset = p.Skv - p.S, j1 = min(j0 + rows - 1, p.Skv - 1);
  const int iLo = p.causal ? max(0, j0 - offset) : 0;
  const int iHi = p.window > 0 ? min(p.S - 1, j1 + p.window - 1 - offset) : p.S - 1;
  const int iStart = (iLo / TILE) * TILE;
  const int perHead = iHi >= iStart ? (iHi - iStart) / TILE + 1 : 0;
  return {iStart, perHead, perHead * (p.H / p.Hkv)};
}

/** A probability from its raw score and its row's log-sum-exp in log2 units (one FMA, then exp2). */
__device__ __forceinline__ float prob2(float score, float scale2, float lse2) {
  return exp2Fast(fmaf(score, scale2, -lse2));
}

template <typename Kernel>
void launch(Kernel kernel, dim3 grid, int threads, size_t smem, cudaStream_t s, const Params& p, const char* what) {
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), what);
  kernel<<<grid, threads, smem, s>>>(p);
  checkLaunch(what);
}
}  // namespace

// ---- pieces of the tensor-core kernels (attention_tc.cu: mma.sync; attention_wgmma.cu: wgmma) --------
namespace {
__device__ __forceinline__ void cpAsync16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddr(smem)), "l"(gmem),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cpAsync4(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smemAddr(smem)), "l"(gmem),
               "r"(valid ? 4 : 0));
}
/** Starts the copy of rows [i0, i0 + TILE) of head bh's lse2 / delta into shared memory (0 past S). */
template <int TILE>
__device__ __forceinline__ void fetchRowStats(float* sLse, float* sDelta, const Params& p, int64_t bh, int i0) {
  if (threadIdx.x < TILE) {
    const int i = i0 + threadIdx.x;
    const bool ok = i < p.S;
    cpAsync4(sLse + threadIdx.x, ok ? p.lse2 + bh * p.S + i : p.lse2, ok);
    cpAsync4(sDelta + threadIdx.x, ok ? p.delta + bh * p.S + i : p.delta, ok);
  }
}
__device__ __forceinline__ void cpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ uint32_t pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *(uint32_t*)&v;
}

/** An accumulator tile [16 x KT] as the m16n8k16 A fragments of its KT/16 steps, rounded to bf16. */
template <int KT>
__device__ __forceinline__ void packA(uint32_t (&af)[KT / 16][4], const float (&a)[KT / 8][4]) {
#pragma unroll
  for (int kk = 0; kk < KT / 16; kk++) {
    af[kk][0] = pack(a[2 * kk][0], a[2 * kk][1]), af[kk][1] = pack(a[2 * kk][2], a[2 * kk][3]);
    af[kk][2] = pack(a[2 * kk + 1][0], a[2 * kk + 1][1]), af[kk][3] = pack(a[2 * kk + 1][2], a[2 * kk + 1][3]);
  }
}

enum Seen { NONE = 0, SOME = 1, ALL = 2 };

template <bool M>
struct Masked {
  static constexpr bool value = M;
};
/**
 * f(Masked<true>) when the tile needs the per-pair test, f(Masked<false>) when every pair is seen
 * (most tiles under a window): that copy of the element loop has no index math.
 */
template <typename F>
__device__ __forceinline__ void byMask(Seen vis, F&& f) {
  if (vis == ALL) f(Masked<false>{});
  else f(Masked<true>{});
}

/**
 * Which (query row, key) pairs of rows [iLo, iHi] (iHi < S) and keys [kLo, kLo + n) are visible:
 * NONE and ALL are sure, SOME means test each pair. `complete`: every row of the tile is a real row.
 */
__device__ __forceinline__ Seen seen(const Params& p, int iLo, int iHi, int kLo, int n, bool complete) {
  const int offset = p.Skv - p.S, kHi = min(kLo + n - 1, p.Skv - 1);
  if (iLo > iHi || kLo >= p.Skv) return NONE;
  if (p.causal && kLo > iHi + offset) return NONE;
  if (p.window > 0 && iLo + offset - kHi >= p.window) return NONE;
  const bool all = complete && kLo + n <= p.Skv && (!p.causal || kLo + n - 1 <= iLo + offset) &&
                   (p.window == 0 || iHi + offset - kLo < p.window);
  return all ? ALL : SOME;
}
}  // namespace

// attention_tc.cu: the bf16 tensor-core path for head dims 64 and 128 with 16-byte aligned rows.
// attention.cu calls these when tcSupported(p) holds; lse2 / delta are filled by the caller.
bool tcSupported(const Params& p);
void sdpaForwardTc(const Params& p, cudaStream_t s);
void sdpaBackwardTc(const Params& p, cudaStream_t s);
// attention_wgmma.cu / attention_wgmma_backward.cu: head dim 128 on Hopper's wgmma (sdpaForwardTc's and
// sdpaBackwardTc's choice there).
bool wgmmaSupported(const Params& p);
void sdpaForwardWgmma(const Params& p, cudaStream_t s);
void sdpaBackwardWgmma(const Params& p, cudaStream_t s);
/** Bytes of the dS^T tiles the wgmma backward stores for its dQ kernel (0: it recomputes dS there instead). */
size_t wgmmaDsBytes(const Params& p);

}  // namespace grin
