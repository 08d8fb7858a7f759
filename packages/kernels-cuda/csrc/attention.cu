// Fused attention (FlashAttention-2 style), forward and backward: causal + sliding window (query i
// of S sits at key position i + Skv - S and sees key k iff k <= q and q - k < window; window 0 =
// none), grouped KV heads (head h reads kv head h / (H / Hkv)), online softmax over 64-key tiles,
// never an [S, Skv] matrix. bf16 runs on tensor cores (mma.sync m16n8k16 + ldmatrix, f32
// accumulate); f32 runs the same tiles through a SIMT product with the same fragment layout, so
// one kernel source serves both. bf16 at head dims 64 / 128 with aligned rows goes to attention_tc.cu
// (pipelined loads, probabilities in registers); this file is the general path and its reference.
// Mirrors the CPU op `sdpa` (packages/tensor/src/cpu/fused.ts).
// Dev harness: dev/attention/. Test: tests/attention.test.ts (GPU), tools/device/run-gpu-tests.sh.
#include <type_traits>

#include "attention.cuh"

namespace grin {
namespace {

constexpr int TILE = KEY_TILE;  // queries per block (4 warps x 16 rows) and keys per tile
constexpr int THREADS = 128;

template <typename T> struct Pad { static constexpr int value = 16 / sizeof(T); };  // one 16-byte step

/** The same product in f32 on the SIMT cores, same fragment layout (the f32 path). */
template <int NT, bool A_T, bool B_NK>
__device__ __forceinline__ void warpGemm(float (&c)[NT][4], const float* a, int lda, const float* b, int ldb, int K) {
  const int lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
  for (int k = 0; k < K; k++) {
    const float a0 = A_T ? a[k * lda + g] : a[g * lda + k];
    const float a1 = A_T ? a[k * lda + g + 8] : a[(g + 8) * lda + k];
#pragma unroll
    for (int n = 0; n < NT; n++) {
      const int col = n * 8 + 2 * t;
      const float b0 = B_NK ? b[col * ldb + k] : b[k * ldb + col];
      const float b1 = B_NK ? b[(col + 1) * ldb + k] : b[k * ldb + col + 1];
      c[n][0] += a0 * b0;
      c[n][1] += a0 * b1;
      c[n][2] += a1 * b0;
      c[n][3] += a1 * b1;
    }
  }
}

/** Rows [0, TILE) x cols [0, DT) of shared memory from `rows` valid rows x `cols` valid columns. */
template <typename T, int DT>
__device__ __forceinline__ void loadTile(T* s, int lds, const T* g, int64_t rowStride, int rows, int cols, bool vec) {
  constexpr int CH = 16 / sizeof(T);
  if (vec) {  // cols == DT, 16-byte aligned rows
    for (int idx = threadIdx.x; idx < TILE * DT / CH; idx += THREADS) {
      const int r = idx / (DT / CH), c = (idx % (DT / CH)) * CH;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (r < rows) v = __ldg((const uint4*)(g + r * rowStride + c));
      *(uint4*)(s + r * lds + c) = v;
    }
  } else {
    for (int idx = threadIdx.x; idx < TILE * DT; idx += THREADS) {
      const int r = idx / DT, c = idx % DT;
      s[r * lds + c] = (r < rows && c < cols) ? g[r * rowStride + c] : T(0.0f);
    }
  }
}

template <typename T>
__device__ __forceinline__ void storePair(T* p, float a, float b) {
  p[0] = T(a);
  p[1] = T(b);
}
template <>
__device__ __forceinline__ void storePair<bf16>(bf16* p, float a, float b) {
  *(__nv_bfloat162*)p = __floats2bfloat162_rn(a, b);
}

/** The 16-row fragment tile of one warp to shared memory (row stride ld). */
template <typename T, int NT>
__device__ __forceinline__ void storeFragments(T* s, int ld, const float (&c)[NT][4]) {
  const int lane = threadIdx.x & 31, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int n = 0; n < NT; n++) {
    storePair(s + g * ld + n * 8 + 2 * t, c[n][0], c[n][1]);
    storePair(s + (g + 8) * ld + n * 8 + 2 * t, c[n][2], c[n][3]);
  }
}

template <typename T, int DT>
struct Layout_ {
  static constexpr int LD = DT + Pad<T>::value;      // row stride of q / k / v / dout tiles
  static constexpr int LDP = TILE + Pad<T>::value;   // row stride of probability tiles
};

// ---- forward ------------------------------------------------------------------------------------
template <typename T, int DT>
__global__ void __launch_bounds__(THREADS) sdpaForwardKernel(Params p) {
  using L = Layout_<T, DT>;
  extern __shared__ uint4 smemRaw[];
  T* sQ = (T*)smemRaw;
  T* sK = sQ + TILE * L::LD;
  T* sV = sK + TILE * L::LD;
  T* sP = sV + TILE * L::LD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * TILE, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const T* q = (const T*)p.q + ((int64_t)bh * p.S + i0) * p.D;
  const T* k = (const T*)p.k + (int64_t)kvh * p.Skv * p.D;
  const T* v = (const T*)p.v + (int64_t)kvh * p.Skv * p.Dv;
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  loadTile<T, DT>(sQ, L::LD, q, p.D, p.S - i0, p.D, p.vecQK);

  const float scale2 = p.scale * LOG2E;  // scores in log2 units: exp2 is one instruction
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.f, 0.f};
  float o[DT / 8][4];
#pragma unroll
  for (int n = 0; n < DT / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  const int r0 = i0 + warp * 16 + g;  // this lane's rows: r0 and r0 + 8
  int first, last;
  keyRange(p, i0, min(i0 + TILE - 1, p.S - 1), first, last);
  for (int j0 = first; j0 <= last; j0 += TILE) {
    __syncthreads();
    loadTile<T, DT>(sK, L::LD, k + (int64_t)j0 * p.D, p.D, p.Skv - j0, p.D, p.vecQK);
    loadTile<T, DT>(sV, L::LD, v + (int64_t)j0 * p.Dv, p.Dv, p.Skv - j0, p.Dv, p.vecV);
    __syncthreads();
    float s[TILE / 8][4];
#pragma unroll
    for (int n = 0; n < TILE / 8; n++) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
    warpGemm<TILE / 8, false, true>(s, sQ + warp * 16 * L::LD, L::LD, sK, L::LD, DT);
#pragma unroll
    for (int n = 0; n < TILE / 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = r0 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
        if (!mask.visible(row, key)) s[n][e] = -INFINITY;
      }
    softmaxTile(s, scale2, o, rowMax, rowSum);
    storeFragments<T, TILE / 8>(sP + warp * 16 * L::LDP, L::LDP, s);
    __syncwarp();
    warpGemm<DT / 8, false, false>(o, sP + warp * 16 * L::LDP, L::LDP, sV, L::LD, TILE);
  }
#pragma unroll
  for (int r = 0; r < 2; r++) {
    rowSum[r] += __shfl_xor_sync(0xffffffff, rowSum[r], 1);
    rowSum[r] += __shfl_xor_sync(0xffffffff, rowSum[r], 2);
  }
  T* out = (T*)p.out + (int64_t)bh * p.S * p.Dv;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r0 + r * 8;
    if (row >= p.S) continue;
    const float inv = 1.f / rowSum[r];  // 0 visible keys: 1/0 * 0 = NaN, as the CPU reference
#pragma unroll
    for (int n = 0; n < DT / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int col = n * 8 + 2 * t + e;
        if (col < p.Dv) out[(int64_t)row * p.Dv + col] = T(o[n][r * 2 + e] * inv);
      }
    if (t == 0)
      p.lse[(int64_t)bh * p.S + row] = rowSum[r] == 0.f ? -INFINITY : (rowMax[r] + log2f(rowSum[r])) / LOG2E;
  }
}

// ---- backward -----------------------------------------------------------------------------------
/** delta[row] = dOut[row] . out[row], and lse in log2 units (+inf where nothing was visible). */
template <typename T>
__global__ void sdpaDeltaKernel(Params p, int64_t rows) {
  const int64_t row = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;
  const T* o = (const T*)p.o + row * p.Dv;
  const T* d = (const T*)p.dout + row * p.Dv;
  float acc = 0.f;
  for (int e = threadIdx.x % 32; e < p.Dv; e += 32) acc += load(o + e) * load(d + e);
  for (int m = 16; m > 0; m /= 2) acc += __shfl_xor_sync(0xffffffff, acc, m);
  if (threadIdx.x % 32 == 0) {
    p.delta[row] = acc;
    const float l = p.lse[row];
    p.lse2[row] = l == -INFINITY ? INFINITY : l * LOG2E;
  }
}

/** dK, dV for one 64-key tile of one kv head, summed over the heads of its group and every query tile. */
template <typename T, int DT>
__global__ void __launch_bounds__(THREADS) sdpaBackwardKvKernel(Params p) {
  using L = Layout_<T, DT>;
  extern __shared__ uint4 smemRaw[];
  T* sK = (T*)smemRaw;
  T* sV = sK + TILE * L::LD;
  T* sQ = sV + TILE * L::LD;
  T* sDo = sQ + TILE * L::LD;
  T* sPt = sDo + TILE * L::LD;
  T* sDst = sPt + TILE * L::LDP;
  float* sLse = (float*)(sDst + TILE * L::LDP);
  float* sDelta = sLse + TILE;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int j0 = blockIdx.x * TILE, bkv = blockIdx.y, b = bkv / p.Hkv, hkv = bkv % p.Hkv;
  const int group = p.H / p.Hkv, offset = p.Skv - p.S;
  const Mask mask{offset, p.Skv, p.window, p.causal};
  loadTile<T, DT>(sK, L::LD, (const T*)p.k + ((int64_t)bkv * p.Skv + j0) * p.D, p.D, p.Skv - j0, p.D, p.vecQK);
  loadTile<T, DT>(sV, L::LD, (const T*)p.v + ((int64_t)bkv * p.Skv + j0) * p.Dv, p.Dv, p.Skv - j0, p.Dv, p.vecV);
  float dk[DT / 8][4], dv[DT / 8][4];
#pragma unroll
  for (int n = 0; n < DT / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.f;
  const float scale2 = p.scale * LOG2E;
  const int j1 = min(j0 + TILE - 1, p.Skv - 1);
  const int iLo = p.causal ? max(0, j0 - offset) : 0;
  const int iHi = p.window > 0 ? min(p.S - 1, j1 + p.window - 1 - offset) : p.S - 1;
  const int key0 = j0 + warp * 16 + g;  // this lane's keys: key0 and key0 + 8
  for (int hg = 0; hg < group; hg++) {
    const int64_t bh = (int64_t)b * p.H + hkv * group + hg;
    for (int i0 = (iLo / TILE) * TILE; i0 <= iHi; i0 += TILE) {
      __syncthreads();
      loadTile<T, DT>(sQ, L::LD, (const T*)p.q + (bh * p.S + i0) * p.D, p.D, p.S - i0, p.D, p.vecQK);
      loadTile<T, DT>(sDo, L::LD, (const T*)p.dout + (bh * p.S + i0) * p.Dv, p.Dv, p.S - i0, p.Dv, p.vecV);
      if (threadIdx.x < TILE) {
        const int i = i0 + threadIdx.x;
        sLse[threadIdx.x] = i < p.S ? p.lse2[bh * p.S + i] : INFINITY;
        sDelta[threadIdx.x] = i < p.S ? p.delta[bh * p.S + i] : 0.f;
      }
      __syncthreads();
      float st[TILE / 8][4], dpt[TILE / 8][4];  // [16 keys x 64 queries] of this warp
#pragma unroll
      for (int n = 0; n < TILE / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[n][e] = dpt[n][e] = 0.f;
      warpGemm<TILE / 8, false, true>(st, sK + warp * 16 * L::LD, L::LD, sQ, L::LD, DT);
      warpGemm<TILE / 8, false, true>(dpt, sV + warp * 16 * L::LD, L::LD, sDo, L::LD, DT);
#pragma unroll
      for (int n = 0; n < TILE / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int key = key0 + (e / 2) * 8, col = n * 8 + 2 * t + (e & 1), i = i0 + col;
          const float prob = (i < p.S && mask.visible(i, key)) ? prob2(st[n][e], scale2, sLse[col]) : 0.f;
          st[n][e] = prob;
          dpt[n][e] = prob * (dpt[n][e] - sDelta[col]);
        }
      storeFragments<T, TILE / 8>(sPt + warp * 16 * L::LDP, L::LDP, st);
      storeFragments<T, TILE / 8>(sDst + warp * 16 * L::LDP, L::LDP, dpt);
      __syncwarp();
      warpGemm<DT / 8, false, false>(dv, sPt + warp * 16 * L::LDP, L::LDP, sDo, L::LD, TILE);
      warpGemm<DT / 8, false, false>(dk, sDst + warp * 16 * L::LDP, L::LDP, sQ, L::LD, TILE);
    }
  }
  T* dkOut = (T*)p.dk + (int64_t)bkv * p.Skv * p.D;
  T* dvOut = (T*)p.dv + (int64_t)bkv * p.Skv * p.Dv;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int key = key0 + r * 8;
    if (key >= p.Skv) continue;
#pragma unroll
    for (int n = 0; n < DT / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int col = n * 8 + 2 * t + e;
        if (col < p.D) dkOut[(int64_t)key * p.D + col] = T(dk[n][r * 2 + e] * p.scale);
        if (col < p.Dv) dvOut[(int64_t)key * p.Dv + col] = T(dv[n][r * 2 + e]);
      }
  }
}

/** dQ for one 64-query tile of one head: probabilities recomputed again (no atomics, deterministic). */
template <typename T, int DT>
__global__ void __launch_bounds__(THREADS) sdpaBackwardQKernel(Params p) {
  using L = Layout_<T, DT>;
  extern __shared__ uint4 smemRaw[];
  T* sQ = (T*)smemRaw;
  T* sDo = sQ + TILE * L::LD;
  T* sK = sDo + TILE * L::LD;
  T* sV = sK + TILE * L::LD;
  T* sDs = sV + TILE * L::LD;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * TILE, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  loadTile<T, DT>(sQ, L::LD, (const T*)p.q + ((int64_t)bh * p.S + i0) * p.D, p.D, p.S - i0, p.D, p.vecQK);
  loadTile<T, DT>(sDo, L::LD, (const T*)p.dout + ((int64_t)bh * p.S + i0) * p.Dv, p.Dv, p.S - i0, p.Dv, p.vecV);
  const T* k = (const T*)p.k + (int64_t)kvh * p.Skv * p.D;
  const T* v = (const T*)p.v + (int64_t)kvh * p.Skv * p.Dv;
  const int r0 = i0 + warp * 16 + g;
  float lse[2], delta[2];
#pragma unroll
  for (int r = 0; r < 2; r++) rowStats(p, bh, r0 + r * 8, lse[r], delta[r]);
  float dq[DT / 8][4];
#pragma unroll
  for (int n = 0; n < DT / 8; n++) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;
  const float scale2 = p.scale * LOG2E;
  int first, last;
  keyRange(p, i0, min(i0 + TILE - 1, p.S - 1), first, last);
  for (int j0 = first; j0 <= last; j0 += TILE) {
    __syncthreads();
    loadTile<T, DT>(sK, L::LD, k + (int64_t)j0 * p.D, p.D, p.Skv - j0, p.D, p.vecQK);
    loadTile<T, DT>(sV, L::LD, v + (int64_t)j0 * p.Dv, p.Dv, p.Skv - j0, p.Dv, p.vecV);
    __syncthreads();
    float s[TILE / 8][4], dp[TILE / 8][4];
#pragma unroll
    for (int n = 0; n < TILE / 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) s[n][e] = dp[n][e] = 0.f;
    warpGemm<TILE / 8, false, true>(s, sQ + warp * 16 * L::LD, L::LD, sK, L::LD, DT);
    warpGemm<TILE / 8, false, true>(dp, sDo + warp * 16 * L::LD, L::LD, sV, L::LD, DT);
#pragma unroll
    for (int n = 0; n < TILE / 8; n++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int row = r0 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
        const float prob = mask.visible(row, key) ? prob2(s[n][e], scale2, lse[e / 2]) : 0.f;
        dp[n][e] = prob * (dp[n][e] - delta[e / 2]);
      }
    storeFragments<T, TILE / 8>(sDs + warp * 16 * L::LDP, L::LDP, dp);
    __syncwarp();
    warpGemm<DT / 8, false, false>(dq, sDs + warp * 16 * L::LDP, L::LDP, sK, L::LD, TILE);
  }
  T* dqOut = (T*)p.dq + (int64_t)bh * p.S * p.D;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r0 + r * 8;
    if (row >= p.S) continue;
#pragma unroll
    for (int n = 0; n < DT / 8; n++)
#pragma unroll
      for (int e = 0; e < 2; e++) {
        const int col = n * 8 + 2 * t + e;
        if (col < p.D) dqOut[(int64_t)row * p.D + col] = T(dq[n][r * 2 + e] * p.scale);
      }
  }
}

bool aligned16(const void* ptr) { return ((uintptr_t)ptr & 15) == 0; }


template <typename T, int DT>
void forward(const Params& p, cudaStream_t s) {
  using L = Layout_<T, DT>;
  const size_t smem = (3 * TILE * L::LD + TILE * L::LDP) * sizeof(T);
  launch(sdpaForwardKernel<T, DT>, dim3((p.S + TILE - 1) / TILE, p.B * p.H), THREADS, smem, s, p, "sdpa");
}

template <typename T, int DT>
void backward(const Params& p, cudaStream_t s) {
  using L = Layout_<T, DT>;
  const int64_t rows = (int64_t)p.B * p.H * p.S;
  sdpaDeltaKernel<T><<<gridFor(rows, 8), 256, 0, s>>>(p, rows);
  checkLaunch("sdpa_backward (delta)");
  if (std::is_same<T, bf16>::value && tcSupported(p) && aligned16(p.dq) && aligned16(p.dk) && aligned16(p.dv)) {
    sdpaCounts.tensorCore++;
    sdpaBackwardTc(p, s);  // attention_tc.cu: the same sums, pipelined
    return;
  }
  sdpaCounts.general++;
  const size_t kvSmem = (4 * TILE * L::LD + 2 * TILE * L::LDP) * sizeof(T) + 2 * TILE * sizeof(float);
  launch(sdpaBackwardKvKernel<T, DT>, dim3((p.Skv + TILE - 1) / TILE, p.B * p.Hkv), THREADS, kvSmem, s, p,
         "sdpa_backward (dk, dv)");
  const size_t qSmem = (4 * TILE * L::LD + TILE * L::LDP) * sizeof(T);
  launch(sdpaBackwardQKernel<T, DT>, dim3((p.S + TILE - 1) / TILE, p.B * p.H), THREADS, qSmem, s, p,
         "sdpa_backward (dq)");
}

Params paramsOf(int dtype, const SdpaShape& shape, const void* q, const void* k, const void* v) {
  Params p{};
  p.q = q;
  p.k = k;
  p.v = v;
  p.B = shape.B, p.H = shape.H, p.Hkv = shape.Hkv, p.S = shape.S, p.Skv = shape.Skv, p.D = shape.D, p.Dv = shape.Dv;
  p.window = shape.window;
  p.scale = shape.scale;
  p.causal = shape.causal;
  const int dt = shape.D > 64 || shape.Dv > 64 ? 128 : 64;
  const auto aligned = [](const void* ptr) { return ((uintptr_t)ptr & 15) == 0; };
  p.vecQK = shape.D == dt && aligned(q) && aligned(k);
  p.vecV = shape.Dv == dt && aligned(v);
  if (dtype != F32 && dtype != BF16) throw Error("sdpa (cuda): q, k, v must be f32 or bf16");
  if (shape.D > 128 || shape.Dv > 128)
    throw Error("sdpa (cuda): head dims up to 128 are supported, got D " + std::to_string(shape.D) + ", Dv " +
                std::to_string(shape.Dv));
  if (shape.Hkv <= 0 || shape.H % shape.Hkv != 0)
    throw Error("sdpa (cuda): key/value heads (" + std::to_string(shape.Hkv) + ") must divide query heads (" +
                std::to_string(shape.H) + ")");
  return p;
}

template <typename T>
void forwardOf(const Params& p, cudaStream_t s) {
  p.D > 64 || p.Dv > 64 ? forward<T, 128>(p, s) : forward<T, 64>(p, s);
}
template <typename T>
void backwardOf(const Params& p, cudaStream_t s) {
  p.D > 64 || p.Dv > 64 ? backward<T, 128>(p, s) : backward<T, 64>(p, s);
}


}  // namespace

SdpaCounts sdpaCounts;

void sdpaForward(int device, int dtype, const SdpaShape& shape, void* out, float* lse, const void* q, const void* k,
                 const void* v) {
  cudaStream_t s = streamFor(device);
  Params p = paramsOf(dtype, shape, q, k, v);
  p.out = out;
  p.lse = lse;
  if ((int64_t)shape.B * shape.H * shape.S == 0) return;
  p.vecV = p.vecV && aligned16(out);
  const bool tc = dtype == BF16 && tcSupported(p);
  (tc ? sdpaCounts.tensorCore : sdpaCounts.general)++;
  if (tc) sdpaForwardTc(p, s);
  else if (dtype == BF16) forwardOf<bf16>(p, s);
  else forwardOf<float>(p, s);
}

/** The row statistics' bytes of the backward's scratch (lse2, delta), rounded up so that what follows is aligned. */
static size_t statsBytes(const SdpaShape& shape) {
  return ((size_t)shape.B * shape.H * shape.S * 2 * sizeof(float) + 255) / 256 * 256;
}

/** The dS^T tiles' bytes for the wgmma backward, if the tensor-core path would take p (0 otherwise). */
static size_t storedDsBytes(int dtype, const Params& p) { return dtype == BF16 && tcSupported(p) ? wgmmaDsBytes(p) : 0; }

size_t sdpaBackwardScratchBytes(int device, int dtype, const SdpaShape& shape) {
  streamFor(device);  // makes the device current: wgmmaSupported asks it
  const Params p = paramsOf(dtype, shape, nullptr, nullptr, nullptr);
  return statsBytes(shape) + storedDsBytes(dtype, p);
}

void sdpaBackward(int device, int dtype, const SdpaShape& shape, void* dq, void* dk, void* dv, const float* lse,
                  float* scratch, size_t scratchBytes, const void* q, const void* k, const void* v, const void* out,
                  const void* dout) {
  cudaStream_t s = streamFor(device);
  Params p = paramsOf(dtype, shape, q, k, v);
  const size_t ds = storedDsBytes(dtype, p);
  if (ds > 0 && scratchBytes >= statsBytes(shape) + ds) p.dsT = (bf16*)((uint8_t*)scratch + statsBytes(shape));
  p.o = out;
  p.dout = dout;
  p.dq = dq;
  p.dk = dk;
  p.dv = dv;
  p.lse = (float*)lse;
  p.lse2 = scratch;
  p.delta = scratch + (int64_t)shape.B * shape.H * shape.S;
  p.vecV = p.vecV && ((uintptr_t)dout & 15) == 0;
  if ((int64_t)shape.B * shape.Hkv * shape.Skv == 0) return;
  if ((int64_t)shape.B * shape.H * shape.S == 0) {
    check(cudaMemsetAsync(dk, 0, (size_t)shape.B * shape.Hkv * shape.Skv * shape.D * itemSize(dtype), s), "sdpa_backward");
    check(cudaMemsetAsync(dv, 0, (size_t)shape.B * shape.Hkv * shape.Skv * shape.Dv * itemSize(dtype), s), "sdpa_backward");
    return;
  }
  if (dtype == BF16) backwardOf<bf16>(p, s);
  else backwardOf<float>(p, s);
}

}  // namespace grin
