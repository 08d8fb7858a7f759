// The bf16 fused attention at head dims 64 and 128 with 16-byte aligned rows (what GRIN trains),
// forward and backward. Same tiles, mask and online softmax as attention.cu (the general path it
// is tested against), with changes that keep the tensor cores fed:
//  - the streamed tiles (K and V in the forward and dQ kernels; Q, dO and their row statistics in
//    the dK/dV kernel) go through two shared-memory buffers with cp.async: the next tile loads
//    while this one is multiplied, one barrier pair per tile;
//  - the probabilities (and dS) stay in registers as the A operand of the second product: the
//    m16n8 accumulator layout is the m16n8k16 A-fragment layout, so no shared-memory round trip;
//  - in the forward and dQ kernels a warp owns 32 query rows (two m16 tiles), so each K / V
//    fragment read from shared memory feeds two mma instead of one;
//  - each warp classifies a tile for its own rows: seen by none (skipped), by all (a copy of the
//    element loop with no index math; most tiles under a 2047-key window) or partly (the element
//    test of attention.cu).
// The forward streams 64-key tiles, as attention.cu, because the online softmax rescales once per
// tile and so depends on the tile; dQ (no online softmax, sums in 16-key steps in key order either
// way) streams 32-key tiles so that dQ, S and dP of two row tiles fit the registers. Rounding is
// that of attention.cu: P and dS are rounded to bf16 once, as there. H200 figures: BENCHMARKS.md.
// Test: tests/cases/attention.ts (GPU, against the CPU op and, bit for bit, the general path).
#include "attention.cuh"

namespace grin {
namespace {

constexpr int KEYS = KEY_TILE;  // queries per streamed tile of the dK/dV kernel (FORWARD_KEYS: the forward's keys)

/** Rows [0, ROWS) x DT of a tile into shared memory (row stride DT + 8); rows >= valid become 0. */
template <int ROWS, int DT, int THREADS>
__device__ __forceinline__ void loadAsync(bf16* s, const bf16* g, int valid, const bf16* any) {
  constexpr int CHUNKS = DT / 8;
#pragma unroll
  for (int idx = threadIdx.x; idx < ROWS * CHUNKS; idx += THREADS) {
    const int r = idx / CHUNKS, c = (idx % CHUNKS) * 8;
    const bool ok = r < valid;
    cpAsync16(s + r * (DT + 8) + c, ok ? g + (int64_t)r * DT + c : any, ok);
  }
}

/**
 * c[m] += B^T-free products for MT row tiles of one warp: c[m][16 x 8*NT] += A_m[16 x K] * B[K x 8*NT]
 * with A_m the rows m*16.. of a row-major shared tile (a, lda) and B(k, n) = b[n * ldb + k]. Each B
 * fragment is loaded once and serves all MT row tiles: a warp of 32 rows reads K and V from shared
 * memory half as often per product as one of 16, which is what bounds the 16-row kernels.
 */
template <int MT, int NT, int K>
__device__ __forceinline__ void warpGemmNK(float (&c)[MT][NT][4], const bf16* a, int lda, const bf16* b, int ldb) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) ldmatrixX4(af[m], a + (m * 16 + lane % 16) * lda + k0 + (lane / 16) * 8);
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      ldmatrixX4(bf, b + (n * 8 + (lane % 8) + (lane / 16) * 8) * ldb + k0 + ((lane / 8) % 2) * 8);
#pragma unroll
      for (int m = 0; m < MT; m++) {
        mma16816(c[m][n], af[m], bf[0], bf[1]);
        mma16816(c[m][n + 1], af[m], bf[2], bf[3]);
      }
    }
  }
}

/** The one-row-tile form (the dK/dV kernel's 16 keys a warp). */
template <int NT, int K>
__device__ __forceinline__ void warpGemmNK(float (&c)[NT][4], const bf16* a, int lda, const bf16* b, int ldb) {
  warpGemmNK<1, NT, K>(reinterpret_cast<float(&)[1][NT][4]>(c), a, lda, b, ldb);
}

/**
 * Two independent products in one k loop: c1 += A1 * B1 and c2 += A2 * B2 (each as warpGemmNK, one
 * leading dimension): S and dP (S^T and dP^T in the dK/dV kernel) have twice the independent mma
 * between two uses of an accumulator, for one more A and B fragment in flight. Each sum runs in the
 * same order as warpGemmNK's.
 */
template <int MT, int NT, int K>
__device__ __forceinline__ void warpGemmNKPair(float (&c1)[MT][NT][4], const bf16* a1, const bf16* b1,
                                               float (&c2)[MT][NT][4], const bf16* a2, const bf16* b2, int ld) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t af1[MT][4], af2[MT][4];
#pragma unroll
    for (int m = 0; m < MT; m++) {
      ldmatrixX4(af1[m], a1 + (m * 16 + lane % 16) * ld + k0 + (lane / 16) * 8);
      ldmatrixX4(af2[m], a2 + (m * 16 + lane % 16) * ld + k0 + (lane / 16) * 8);
    }
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      const int off = (n * 8 + (lane % 8) + (lane / 16) * 8) * ld + k0 + ((lane / 8) % 2) * 8;
      uint32_t bf1[4], bf2[4];
      ldmatrixX4(bf1, b1 + off);
      ldmatrixX4(bf2, b2 + off);
#pragma unroll
      for (int m = 0; m < MT; m++) {
        mma16816(c1[m][n], af1[m], bf1[0], bf1[1]);
        mma16816(c1[m][n + 1], af1[m], bf1[2], bf1[3]);
        mma16816(c2[m][n], af2[m], bf2[0], bf2[1]);
        mma16816(c2[m][n + 1], af2[m], bf2[2], bf2[3]);
      }
    }
  }
}
template <int NT, int K>
__device__ __forceinline__ void warpGemmNKPair(float (&c1)[NT][4], const bf16* a1, const bf16* b1, float (&c2)[NT][4],
                                               const bf16* a2, const bf16* b2, int ld) {
  using C = float(&)[1][NT][4];
  warpGemmNKPair<1, NT, K>(reinterpret_cast<C>(c1), a1, b1, reinterpret_cast<C>(c2), a2, b2, ld);
}

/**
 * c[m][16 x 8*NT] += A_m[16 x KT] * B[KT x 8*NT] for MT row tiles of one warp: A_m is packed
 * (packA) from the warp's accumulator tile, B(k, n) = b[k * ldb + n] in shared memory.
 */
template <int MT, int NT, int KT>
__device__ __forceinline__ void warpGemmRegA(float (&c)[MT][NT][4], const uint32_t (&af)[MT][KT / 16][4],
                                             const bf16* b, int ldb) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int kk = 0; kk < KT / 16; kk++)
#pragma unroll
    for (int n = 0; n < NT; n += 2) {
      uint32_t bf[4];
      ldmatrixX4T(bf, b + (kk * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * ldb + n * 8 + (lane / 16) * 8);
#pragma unroll
      for (int m = 0; m < MT; m++) {
        mma16816(c[m][n], af[m][kk], bf[0], bf[1]);
        mma16816(c[m][n + 1], af[m][kk], bf[2], bf[3]);
      }
    }
}

/** The one-row-tile form (the dK/dV kernel's 16 keys a warp). */
template <int NT>
__device__ __forceinline__ void warpGemmRegA(float (&c)[NT][4], const float (&a)[KEYS / 8][4], const bf16* b, int ldb) {
  uint32_t af[1][KEYS / 16][4];
  packA<KEYS>(af[0], a);
  warpGemmRegA<1, NT, KEYS>(reinterpret_cast<float(&)[1][NT][4]>(c), af, b, ldb);
}

/**
 * The streamed K/V pipeline step of the forward and dQ kernels (tiles of KT keys): starts the loads
 * of the tile after j0 into the other buffer (if there is one), waits for tile j0's, and syncs the block.
 */
template <int DT, int THREADS, int KT>
__device__ __forceinline__ void nextKeyTile(bf16* sK, bf16* sV, int buf, const bf16* k, const bf16* v, int j0,
                                            int last, int skv) {
  constexpr int LD = DT + 8;
  const int next = j0 + KT;
  if (next <= last) {
    loadAsync<KT, DT, THREADS>(sK + (buf ^ 1) * KT * LD, k + (int64_t)next * DT, skv - next, k);
    loadAsync<KT, DT, THREADS>(sV + (buf ^ 1) * KT * LD, v + (int64_t)next * DT, skv - next, k);
    cpAsyncCommit();
    cpAsyncWait<1>();
  } else {
    cpAsyncWait<0>();
  }
  __syncthreads();
}

// ---- forward ------------------------------------------------------------------------------------
/** Output and log-sum-exp for 32 * WARPS queries of one head: each warp owns 32 rows (two m16 tiles). */
template <int DT, int WARPS, int KT>
__global__ void __launch_bounds__(WARPS * 32, WARPS <= 4 ? 2 : 1) forwardKernel(Params p) {
  constexpr int MT = 2, WROWS = 16 * MT, THREADS = WARPS * 32, ROWS = WARPS * WROWS, LD = DT + 8;
  extern __shared__ uint4 smemRaw[];
  bf16* sQ = (bf16*)smemRaw;
  bf16* sK = sQ + ROWS * LD;        // two buffers of KT x LD
  bf16* sV = sK + 2 * KT * LD;    // two buffers of KT x LD
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * ROWS, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const bf16* q = (const bf16*)p.q + (int64_t)bh * p.S * DT;
  const bf16* k = (const bf16*)p.k + (int64_t)kvh * p.Skv * DT;
  const bf16* v = (const bf16*)p.v + (int64_t)kvh * p.Skv * DT;
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  int first, last;
  keyRange(p, i0, min(i0 + ROWS - 1, p.S - 1), first, last);
  loadAsync<ROWS, DT, THREADS>(sQ, q + (int64_t)i0 * DT, p.S - i0, q);
  if (first <= last) {
    loadAsync<KT, DT, THREADS>(sK, k + (int64_t)first * DT, p.Skv - first, k);
    loadAsync<KT, DT, THREADS>(sV, v + (int64_t)first * DT, p.Skv - first, v);
  }
  cpAsyncCommit();

  const float scale2 = p.scale * LOG2E;  // scores in log2 units: exp2 is one instruction
  float rowMax[MT][2], rowSum[MT][2], o[MT][DT / 8][4];
#pragma unroll
  for (int m = 0; m < MT; m++) {
    rowMax[m][0] = rowMax[m][1] = -INFINITY, rowSum[m][0] = rowSum[m][1] = 0.f;
#pragma unroll
    for (int n = 0; n < DT / 8; n++) o[m][n][0] = o[m][n][1] = o[m][n][2] = o[m][n][3] = 0.f;
  }
  const int wLo = i0 + warp * WROWS, wHi = min(wLo + WROWS - 1, p.S - 1);
  const int r0 = wLo + g;  // this lane's rows: r0 + 16m and r0 + 16m + 8
  int buf = 0;
  for (int j0 = first; j0 <= last; j0 += KT, buf ^= 1) {
    nextKeyTile<DT, THREADS, KT>(sK, sV, buf, k, v, j0, last, p.Skv);
    const Seen vis = seen(p, wLo, wHi, j0, KT, true);
    if (vis != NONE) {
      const bf16* cK = sK + buf * KT * LD;
      const bf16* cV = sV + buf * KT * LD;
      float s[MT][KT / 8][4];
#pragma unroll
      for (int m = 0; m < MT; m++)
#pragma unroll
        for (int n = 0; n < KT / 8; n++) s[m][n][0] = s[m][n][1] = s[m][n][2] = s[m][n][3] = 0.f;
      warpGemmNK<MT, KT / 8, DT>(s, sQ + warp * WROWS * LD, LD, cK, LD);
      uint32_t pf[MT][KT / 16][4];  // P as bf16 A fragments: half the registers of s
#pragma unroll
      for (int m = 0; m < MT; m++) {
        if (vis != ALL) {  // the scale is applied inside the softmax
#pragma unroll
          for (int n = 0; n < KT / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
              const int row = r0 + m * 16 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
              if (!mask.visible(row, key)) s[m][n][e] = -INFINITY;
            }
        }
        softmaxTile(s[m], scale2, o[m], rowMax[m], rowSum[m]);
        packA<KT>(pf[m], s[m]);
      }
      warpGemmRegA<MT, DT / 8, KT>(o, pf, cV, LD);
    }
    __syncthreads();  // every warp is done with this buffer before the next load overwrites it
  }
  cpAsyncWait<0>();
  bf16* out = (bf16*)p.out + (int64_t)bh * p.S * DT;
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int r = 0; r < 2; r++) {
      float sum = rowSum[m][r];
      sum += __shfl_xor_sync(0xffffffff, sum, 1);
      sum += __shfl_xor_sync(0xffffffff, sum, 2);
      const int row = r0 + m * 16 + r * 8;
      if (row >= p.S) continue;
      const float inv = 1.f / sum;  // 0 visible keys: 1/0 * 0 = NaN, as the CPU reference
#pragma unroll
      for (int n = 0; n < DT / 8; n++)
        *(__nv_bfloat162*)(out + (int64_t)row * DT + n * 8 + 2 * t) =
            __floats2bfloat162_rn(o[m][n][r * 2] * inv, o[m][n][r * 2 + 1] * inv);
      if (t == 0)
        p.lse[(int64_t)bh * p.S + row] = sum == 0.f ? -INFINITY : (rowMax[m][r] + log2f(sum)) / LOG2E;
    }
}

// ---- backward: dK, dV -------------------------------------------------------------------------
/** dK, dV for 16 * WARPS keys of one kv head, summed over the heads of its group and every query tile. */
template <int DT, int WARPS>
__global__ void __launch_bounds__(WARPS * 32, WARPS <= 4 ? 2 : 1) backwardKvKernel(Params p) {
  constexpr int THREADS = WARPS * 32, ROWS = WARPS * 16, LD = DT + 8;
  extern __shared__ uint4 smemRaw[];
  bf16* sK = (bf16*)smemRaw;
  bf16* sV = sK + ROWS * LD;
  bf16* sQ = sV + ROWS * LD;        // two buffers of KEYS (queries) x LD
  bf16* sDo = sQ + 2 * KEYS * LD;   // two buffers
  float* sLse = (float*)(sDo + 2 * KEYS * LD);  // two buffers of KEYS
  float* sDelta = sLse + 2 * KEYS;               // two buffers of KEYS
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int j0 = blockIdx.x * ROWS, bkv = blockIdx.y, b = bkv / p.Hkv, hkv = bkv % p.Hkv;
  const int group = p.H / p.Hkv, offset = p.Skv - p.S;
  const Mask mask{offset, p.Skv, p.window, p.causal};
  const bf16* kBase = (const bf16*)p.k;
  loadAsync<ROWS, DT, THREADS>(sK, kBase + ((int64_t)bkv * p.Skv + j0) * DT, p.Skv - j0, kBase);
  loadAsync<ROWS, DT, THREADS>(sV, (const bf16*)p.v + ((int64_t)bkv * p.Skv + j0) * DT, p.Skv - j0, kBase);
  const QueryTiles qt = queryTiles<KEYS>(p, j0, ROWS);
  const int iStart = qt.iStart, perHead = qt.perHead, tiles = qt.count;
  // tile n: head hg = n / perHead of the group, queries from iStart + (n % perHead) * KEYS
  auto fetch = [&](int n, int into) {
    const int64_t bh = (int64_t)b * p.H + hkv * group + n / perHead;
    const int i0 = iStart + (n % perHead) * KEYS;
    const bf16* qBase = (const bf16*)p.q;
    loadAsync<KEYS, DT, THREADS>(sQ + into * KEYS * LD, qBase + (bh * p.S + i0) * DT, p.S - i0, qBase);
    loadAsync<KEYS, DT, THREADS>(sDo + into * KEYS * LD, (const bf16*)p.dout + (bh * p.S + i0) * DT, p.S - i0,
                                 qBase);
    fetchRowStats<KEYS>(sLse + into * KEYS, sDelta + into * KEYS, p, bh, i0);
  };
  if (tiles > 0) fetch(0, 0);
  cpAsyncCommit();
  float dk[DT / 8][4], dv[DT / 8][4];
#pragma unroll
  for (int n = 0; n < DT / 8; n++)
#pragma unroll
    for (int e = 0; e < 4; e++) dk[n][e] = dv[n][e] = 0.f;
  const float scale2 = p.scale * LOG2E;
  const int kLo = j0 + warp * 16;
  const int key0 = kLo + g;  // this lane's keys: key0 and key0 + 8
  for (int n = 0, buf = 0; n < tiles; n++, buf ^= 1) {
    if (n + 1 < tiles) {
      fetch(n + 1, buf ^ 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    __syncthreads();
    const int i0 = iStart + (n % perHead) * KEYS;
    // the pairs of this warp's keys and the tile's queries (rows past S: zero-filled, never seen)
    const int qHi = min(i0 + KEYS - 1, p.S - 1);
    Seen vis = seen(p, i0, qHi, kLo, 16, i0 + KEYS <= p.S);
    if (vis != NONE) {
      const bf16* cQ = sQ + buf * KEYS * LD;
      const bf16* cDo = sDo + buf * KEYS * LD;
      const float* lse = sLse + buf * KEYS;
      const float* delta = sDelta + buf * KEYS;
      float st[KEYS / 8][4], dpt[KEYS / 8][4];  // [16 keys x KEYS queries] of this warp
#pragma unroll
      for (int c = 0; c < KEYS / 8; c++)
#pragma unroll
        for (int e = 0; e < 4; e++) st[c][e] = dpt[c][e] = 0.f;
      warpGemmNKPair<KEYS / 8, DT>(st, sK + warp * 16 * LD, cQ, dpt, sV + warp * 16 * LD, cDo, LD);
      byMask(vis, [&](auto masked) {
#pragma unroll
        for (int c = 0; c < KEYS / 8; c++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int key = key0 + (e / 2) * 8, col = c * 8 + 2 * t + (e & 1), i = i0 + col;
            const bool on = !decltype(masked)::value || (i < p.S && mask.visible(i, key));
            const float prob = on ? prob2(st[c][e], scale2, lse[col]) : 0.f;
            st[c][e] = prob;
            dpt[c][e] = prob * (dpt[c][e] - delta[col]);
          }
      });
      warpGemmRegA<DT / 8>(dv, st, cDo, LD);
      warpGemmRegA<DT / 8>(dk, dpt, cQ, LD);
    }
    __syncthreads();
  }
  cpAsyncWait<0>();
  bf16* dkOut = (bf16*)p.dk + (int64_t)bkv * p.Skv * DT;
  bf16* dvOut = (bf16*)p.dv + (int64_t)bkv * p.Skv * DT;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int key = key0 + r * 8;
    if (key >= p.Skv) continue;
#pragma unroll
    for (int c = 0; c < DT / 8; c++) {
      *(__nv_bfloat162*)(dkOut + (int64_t)key * DT + c * 8 + 2 * t) =
          __floats2bfloat162_rn(dk[c][r * 2] * p.scale, dk[c][r * 2 + 1] * p.scale);
      *(__nv_bfloat162*)(dvOut + (int64_t)key * DT + c * 8 + 2 * t) =
          __floats2bfloat162_rn(dv[c][r * 2], dv[c][r * 2 + 1]);
    }
  }
}

// ---- backward: dQ -------------------------------------------------------------------------------
/**
 * dQ for 32 * WARPS queries of one head: probabilities recomputed (no atomics, deterministic). Each
 * warp owns 32 rows; the keys stream in tiles of 32 so that dQ, S and dP of two row tiles fit the
 * registers (the sums still run over 16-key steps in key order, as the general path's).
 */
template <int DT, int WARPS>
__global__ void __launch_bounds__(WARPS * 32, WARPS <= 4 ? 2 : 1) backwardQKernel(Params p) {
  constexpr int MT = 2, WROWS = 16 * MT, KT = 32, THREADS = WARPS * 32, ROWS = WARPS * WROWS, LD = DT + 8;
  extern __shared__ uint4 smemRaw[];
  bf16* sQ = (bf16*)smemRaw;
  bf16* sDo = sQ + ROWS * LD;
  bf16* sK = sDo + ROWS * LD;    // two buffers of KT x LD
  bf16* sV = sK + 2 * KT * LD;   // two buffers
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * ROWS, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  const bf16* qBase = (const bf16*)p.q;
  loadAsync<ROWS, DT, THREADS>(sQ, qBase + ((int64_t)bh * p.S + i0) * DT, p.S - i0, qBase);
  loadAsync<ROWS, DT, THREADS>(sDo, (const bf16*)p.dout + ((int64_t)bh * p.S + i0) * DT, p.S - i0, qBase);
  const bf16* k = (const bf16*)p.k + (int64_t)kvh * p.Skv * DT;
  const bf16* v = (const bf16*)p.v + (int64_t)kvh * p.Skv * DT;
  int first, last;
  keyRange(p, i0, min(i0 + ROWS - 1, p.S - 1), first, last);
  if (first <= last) {
    loadAsync<KT, DT, THREADS>(sK, k + (int64_t)first * DT, p.Skv - first, k);
    loadAsync<KT, DT, THREADS>(sV, v + (int64_t)first * DT, p.Skv - first, k);
  }
  cpAsyncCommit();
  const int wLo = i0 + warp * WROWS, wHi = min(wLo + WROWS - 1, p.S - 1);
  const int r0 = wLo + g;  // this lane's rows: r0 + 16m and r0 + 16m + 8
  float lse[MT][2], delta[MT][2], dq[MT][DT / 8][4];
#pragma unroll
  for (int m = 0; m < MT; m++) {
#pragma unroll
    for (int r = 0; r < 2; r++) rowStats(p, bh, r0 + m * 16 + r * 8, lse[m][r], delta[m][r]);
#pragma unroll
    for (int n = 0; n < DT / 8; n++) dq[m][n][0] = dq[m][n][1] = dq[m][n][2] = dq[m][n][3] = 0.f;
  }
  const float scale2 = p.scale * LOG2E;
  int buf = 0;
  for (int j0 = first; j0 <= last; j0 += KT, buf ^= 1) {
    nextKeyTile<DT, THREADS, KT>(sK, sV, buf, k, v, j0, last, p.Skv);
    const Seen vis = seen(p, wLo, wHi, j0, KT, true);
    if (vis != NONE) {
      const bf16* cK = sK + buf * KT * LD;
      const bf16* cV = sV + buf * KT * LD;
      float s[MT][KT / 8][4], dp[MT][KT / 8][4];
#pragma unroll
      for (int m = 0; m < MT; m++)
#pragma unroll
        for (int n = 0; n < KT / 8; n++)
#pragma unroll
          for (int e = 0; e < 4; e++) s[m][n][e] = dp[m][n][e] = 0.f;
      warpGemmNKPair<MT, KT / 8, DT>(s, sQ + warp * WROWS * LD, cK, dp, sDo + warp * WROWS * LD, cV, LD);
      byMask(vis, [&](auto masked) {
#pragma unroll
        for (int m = 0; m < MT; m++)
#pragma unroll
          for (int n = 0; n < KT / 8; n++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
              const int row = r0 + m * 16 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
              const float prob = !decltype(masked)::value || mask.visible(row, key) ? prob2(s[m][n][e], scale2, lse[m][e / 2]) : 0.f;
              dp[m][n][e] = prob * (dp[m][n][e] - delta[m][e / 2]);
            }
      });
      uint32_t dsf[MT][KT / 16][4];
#pragma unroll
      for (int m = 0; m < MT; m++) packA<KT>(dsf[m], dp[m]);
      warpGemmRegA<MT, DT / 8, KT>(dq, dsf, cK, LD);
    }
    __syncthreads();
  }
  cpAsyncWait<0>();
  bf16* dqOut = (bf16*)p.dq + (int64_t)bh * p.S * DT;
#pragma unroll
  for (int m = 0; m < MT; m++)
#pragma unroll
    for (int r = 0; r < 2; r++) {
      const int row = r0 + m * 16 + r * 8;
      if (row >= p.S) continue;
#pragma unroll
      for (int n = 0; n < DT / 8; n++)
        *(__nv_bfloat162*)(dqOut + (int64_t)row * DT + n * 8 + 2 * t) =
            __floats2bfloat162_rn(dq[m][n][r * 2] * p.scale, dq[m][n][r * 2 + 1] * p.scale);
    }
}

constexpr int FORWARD_WARPS = 4, FORWARD_KEYS = 64, KV_WARPS = 4, Q_WARPS = 4;  // 32 rows a warp in forward / dQ, 16 keys in dK/dV

template <int DT>
void forward(const Params& p, cudaStream_t s) {
  constexpr int ROWS = FORWARD_WARPS * 32, LD = DT + 8;
  const size_t smem = (ROWS + 4 * FORWARD_KEYS) * LD * sizeof(bf16);
  launch(forwardKernel<DT, FORWARD_WARPS, FORWARD_KEYS>, dim3((p.S + ROWS - 1) / ROWS, p.B * p.H), FORWARD_WARPS * 32, smem, s, p,
         "sdpa");
}

template <int DT>
void backward(const Params& p, cudaStream_t s) {
  constexpr int LD = DT + 8, KV_ROWS = KV_WARPS * 16, Q_ROWS = Q_WARPS * 32, Q_KEYS = 32;
  const size_t kvSmem = (2 * KV_ROWS + 4 * KEYS) * LD * sizeof(bf16) + 4 * KEYS * sizeof(float);
  launch(backwardKvKernel<DT, KV_WARPS>, dim3((p.Skv + KV_ROWS - 1) / KV_ROWS, p.B * p.Hkv), KV_WARPS * 32, kvSmem, s,
         p, "sdpa_backward (dk, dv)");
  const size_t qSmem = (2 * Q_ROWS + 4 * Q_KEYS) * LD * sizeof(bf16);
  launch(backwardQKernel<DT, Q_WARPS>, dim3((p.S + Q_ROWS - 1) / Q_ROWS, p.B * p.H), Q_WARPS * 32, qSmem, s, p,
         "sdpa_backward (dq)");
}

}  // namespace

bool tcSupported(const Params& p) {
  // vecQK / vecV: the head dims equal the tile's (64 or 128) and the rows start 16-byte aligned
  return p.vecQK && p.vecV && p.D == p.Dv;
}

void sdpaForwardTc(const Params& p, cudaStream_t s) {
  if (wgmmaSupported(p)) {
    sdpaCounts.wgmmaForward++;
    sdpaForwardWgmma(p, s);
  } else if (p.D == 128) {
    forward<128>(p, s);
  } else {
    forward<64>(p, s);
  }
}
void sdpaBackwardTc(const Params& p, cudaStream_t s) {
  if (wgmmaSupported(p)) {
    sdpaCounts.wgmmaBackward++;
    if (p.dsT) sdpaCounts.wgmmaStoredDs++;
    sdpaBackwardWgmma(p, s);
  } else if (p.D == 128) {
    backward<128>(p, s);
  } else {
    backward<64>(p, s);
  }
}

}  // namespace grin
