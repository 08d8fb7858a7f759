// The bf16 attention backward at head dim 128 on Hopper's warpgroup MMA (wgmma, sm_90a), beside
// attention_wgmma.cu's forward. Two kernels, as attention_tc.cu's: dK / dV per block of keys (summed
// over the heads of the group and every query tile: no atomics) and dQ per block of queries. In both
// a warpgroup owns 64 rows (keys, or queries), two warpgroups a dK / dV block, three a dQ block; the fixed operands
// and the streamed tiles sit in 128-byte-swizzled shared memory (two buffers), so:
//  - the score-like products (S^T = K Q^T and dP^T = V dO^T; S = Q K^T and dP = dO V^T) are SS
//    wgmma m64n64k16 with both operands read from shared memory, the same descriptors as the
//    forward's S;
//  - the gradient products (dV += P^T dO and dK += dS^T Q; dQ += dS K) are RS wgmma m64n128k16 with
//    P or dS from registers (the accumulator layout is the A fragment layout) and the other operand
//    read transposed, the same descriptors as the forward's P V.
// The dK / dV kernel issues dV's product before computing dS, so the tensor core works on dV while
// the warpgroup computes dS. Every sum runs over the same 16-wide steps in the same order as
// attention.cu's general path, with the same bf16 roundings of P and dS, so the gradients equal it
// bit for bit. Test: tests/cases/attention.ts (GPU, against the CPU op and the general path).
#include "attention.cuh"
#include "wgmma.cuh"

namespace grin {
namespace {

constexpr int DT = 128, WG_ROWS = 64, TILE = KEY_TILE;  // TILE: streamed rows (queries, or keys) per tile
constexpr int TILE_BYTES = TILE * DT * 2;                // swizzled: two 64-column blocks of TILE rows
/**
 * Shared memory of a block of WGS warpgroups: the fixed operands, two buffers of two streamed tiles,
 * row statistics, then `staging` bytes (the dK / dV kernel's dS^T tiles on their way out).
 */
constexpr size_t smemBytesFor(int wgs, size_t staging = 0) {
  return 2 * (WG_ROWS * wgs) * DT * 2 + 4 * TILE_BYTES + 4 * TILE * sizeof(float) + 1024 + staging;
}
// warpgroups a block: dK / dV take 252 registers a thread (room for 2), dQ 165 (3)
constexpr int KV_WGS = 2, Q_WGS = 3;

// The stored dS^T: for each query head, 64-query tile and 64-key tile a query tile can see (its
// slots, from the first key tile it sees), the [64 keys x 64 queries] bf16 tile in the 128-byte
// swizzled layout (8 KB), written by the dK / dV kernel and read by backwardQFromDsKernel.
constexpr int DS_TILE = WG_ROWS * TILE, DS_TILE_BYTES = DS_TILE * 2;
static_assert(TILE == WG_ROWS, "a stored dS^T tile pairs one warpgroup's 64 keys with one 64-query tile");
constexpr size_t DS_MAX_BYTES = size_t(1) << 31;  // larger shapes recompute dS in the dQ kernel instead
// the dQ kernel that reads them: 128 registers a thread, DS_Q_BLOCKS blocks an SM
constexpr int DS_Q_WGS = 2, DS_Q_BLOCKS = 2;

/** Key tiles a 64-query tile sees at most: all of them, or under a causal window, (window + 125) / 64 + 1. */
__host__ __device__ inline int dsSlots(const Params& p) {
  const int keyTiles = (p.Skv + TILE - 1) / TILE;
  return p.causal && p.window > 0 ? min(keyTiles, (p.window + 2 * TILE - 3) / TILE + 1) : keyTiles;
}
/** The stored dS^T tile of query head bh, queries [i0, i0 + 64) and keys [j, j + 64). */
__device__ __forceinline__ bf16* dsTile(const Params& p, int64_t bh, int i0, int j) {
  int first, last;
  keyRange(p, i0, min(i0 + WG_ROWS - 1, p.S - 1), first, last);
  const int64_t queryTiles = (p.S + WG_ROWS - 1) / WG_ROWS;
  return p.dsT + ((bh * queryTiles + i0 / WG_ROWS) * dsSlots(p) + (j - first) / TILE) * DS_TILE;
}

// A step's descriptor is the tile's plus a constant in the address field (16-byte units; no carry,
// shared addresses stay below 256 KB): the tile's is built once, not once a step.
/** The swizzled shared-memory descriptors of a K-major operand (rows of d) at k step kk, of a tile of R rows. */
template <int R>
__device__ __forceinline__ uint64_t kMajor(uint32_t rows, int kk) {
  return smemDescriptor(rows, 16, 1024) + (((kk / 4) * (R * 128) + (kk % 4) * 32) >> 4);
}
/** The same tile of TILE rows read transposed (N = d contiguous) at k step kk (16 of its rows). */
__device__ __forceinline__ uint64_t mnMajor(uint32_t tile, int kk) {
  return smemDescriptor(tile, TILE * 128, 1024) + ((kk * 16 * 128) >> 4);
}

// ---- dK, dV -------------------------------------------------------------------------------------
/** dK, dV for ROWS keys of one kv head: a warpgroup owns 64 keys; query tiles of every head of the group stream. */
__global__ void __launch_bounds__(KV_WGS * 128, 1) backwardKvWgmmaKernel(Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int ROWS = WG_ROWS * KV_WGS, THREADS = KV_WGS * 128, ROWS_BYTES = ROWS * DT * 2;
  extern __shared__ uint8_t smemBytes[];
  const uint32_t base = smemAddr(smemBytes), sK = (base + 1023) & ~1023u;
  const uint32_t sV = sK + ROWS_BYTES, sQ = sV + ROWS_BYTES, sDo = sQ + 2 * TILE_BYTES;  // Q, dO: two buffers each
  float* sLse = (float*)(smemBytes + (sDo + 2 * TILE_BYTES - base));  // two buffers of TILE
  float* sDelta = sLse + 2 * TILE;                                      // two buffers of TILE
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int j0 = blockIdx.x * ROWS, bkv = blockIdx.y, b = bkv / p.Hkv, hkv = bkv % p.Hkv;
  const int group = p.H / p.Hkv, offset = p.Skv - p.S;
  const Mask mask{offset, p.Skv, p.window, p.causal};
  const bf16* kBase = (const bf16*)p.k;
  loadSwizzled128<ROWS, THREADS>(sK, kBase + ((int64_t)bkv * p.Skv + j0) * DT, p.Skv - j0, kBase);
  loadSwizzled128<ROWS, THREADS>(sV, (const bf16*)p.v + ((int64_t)bkv * p.Skv + j0) * DT, p.Skv - j0, kBase);
  const QueryTiles qt = queryTiles<TILE>(p, j0, ROWS);
  const int iStart = qt.iStart, perHead = qt.perHead, tiles = qt.count;
  // tile n: head n / perHead of the group, queries from iStart + (n % perHead) * TILE
  auto fetch = [&](int n, int into) {
    const int64_t bh = (int64_t)b * p.H + hkv * group + n / perHead;
    const int i0 = iStart + (n % perHead) * TILE;
    const bf16* qBase = (const bf16*)p.q;
    loadSwizzled128<TILE, THREADS>(sQ + into * TILE_BYTES, qBase + (bh * p.S + i0) * DT, p.S - i0, qBase);
    loadSwizzled128<TILE, THREADS>(sDo + into * TILE_BYTES, (const bf16*)p.dout + (bh * p.S + i0) * DT, p.S - i0,
                                   qBase);
    fetchRowStats<TILE>(sLse + into * TILE, sDelta + into * TILE, p, bh, i0);
  };
  if (tiles > 0) fetch(0, 0);
  cpAsyncCommit();

  float dk[DT / 2], dv[DT / 2];  // [64 keys x 128] of the warpgroup: the m16n8 layout per warp, flat
#pragma unroll
  for (int i = 0; i < DT / 2; i++) dk[i] = dv[i] = 0.f;
  const float scale2 = p.scale * LOG2E;
  const int kLo = j0 + wg * WG_ROWS, warpLo = kLo + warp * 16;
  const int key0 = warpLo + g;  // this lane's keys: key0 and key0 + 8
  const uint32_t kRows = sK + wg * WG_ROWS * 128, vRows = sV + wg * WG_ROWS * 128;
  // dS^T leaves through two staging tiles a warpgroup: stmatrix, then (after the next barrier) one
  // thread's bulk copy to the workspace, so the stores cost the warpgroup four instructions a tile
  const uint32_t staging = sDo + 2 * TILE_BYTES + 4 * TILE * sizeof(float) + wg * 2 * DS_TILE_BYTES;
  const bool leader = threadIdx.x % 128 == 0;
  bf16* pending = nullptr;  // the workspace tile of the last staged dS^T, not yet copied
  int stage = 0;
  for (int n = 0, buf = 0; n < tiles; n++, buf ^= 1) {
    if (n + 1 < tiles) {
      fetch(n + 1, buf ^ 1);
      cpAsyncCommit();
      cpAsyncWait<1>();
    } else {
      cpAsyncWait<0>();
    }
    fenceProxyAsync();  // this thread's cp.async writes, visible to the tensor core's (async) reads
    if (pending && leader) {  // the previous tile's dS^T is staged (the barrier below orders it for the others)
      bulkStore(pending, staging + (stage ^ 1) * DS_TILE_BYTES, DS_TILE_BYTES);
      bulkWaitRead<1>();  // the copy before it has read the buffer that is staged next
    }
    pending = nullptr;
    __syncthreads();
    const int i0 = iStart + (n % perHead) * TILE, qHi = min(i0 + TILE - 1, p.S - 1);
    // the warpgroup skips a tile none of its pairs sees (wgmma is collective); a warp masks its own
    if (seen(p, i0, qHi, kLo, WG_ROWS, i0 + TILE <= p.S) != NONE) {
      const Seen vis = seen(p, i0, qHi, warpLo, 16, i0 + TILE <= p.S);
      const uint32_t cQ = sQ + buf * TILE_BYTES, cDo = sDo + buf * TILE_BYTES;
      const float* lse = sLse + buf * TILE;
      const float* delta = sDelta + buf * TILE;
      float st[TILE / 8][4], dpt[TILE / 8][4];  // [64 keys x 64 queries]: S^T, then P^T; dP^T, then dS^T
      float(&stFlat)[TILE / 2] = reinterpret_cast<float(&)[TILE / 2]>(st);
      float(&dptFlat)[TILE / 2] = reinterpret_cast<float(&)[TILE / 2]>(dpt);
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < DT / 16; kk++) wgmmaSS_m64n64k16(stFlat, kMajor<ROWS>(kRows, kk), kMajor<TILE>(cQ, kk), kk > 0);
      wgmmaCommit();
#pragma unroll
      for (int kk = 0; kk < DT / 16; kk++)
        wgmmaSS_m64n64k16(dptFlat, kMajor<ROWS>(vRows, kk), kMajor<TILE>(cDo, kk), kk > 0);
      wgmmaCommit();
      wgmmaWait<1>();  // S^T is done; dP^T may still run
      pinRegisters(stFlat);
      byMask(vis, [&](auto masked) {
#pragma unroll
        for (int c = 0; c < TILE / 8; c++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int key = key0 + (e / 2) * 8, col = c * 8 + 2 * t + (e & 1), i = i0 + col;
            const bool on = !decltype(masked)::value || (i < p.S && mask.visible(i, key));
            st[c][e] = on ? prob2(st[c][e], scale2, lse[col]) : 0.f;
          }
      });
      uint32_t pf[TILE / 16][4];
      packA<TILE>(pf, st);
      wgmmaFence();  // pf was written by ordinary instructions
#pragma unroll
      for (int kk = 0; kk < TILE / 16; kk++) wgmmaRS_m64n128k16_tB(dv, pf[kk], mnMajor(cDo, kk), 1);
      wgmmaCommit();
      wgmmaWait<1>();  // dP^T is done (groups complete in order); dV's product runs on
      pinRegisters(dptFlat);
#pragma unroll
      for (int c = 0; c < TILE / 8; c++)
#pragma unroll
        for (int e = 0; e < 4; e++) dpt[c][e] = st[c][e] * (dpt[c][e] - delta[c * 8 + 2 * t + (e & 1)]);
      uint32_t dsf[TILE / 16][4];
      packA<TILE>(dsf, dpt);
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < TILE / 16; kk++) wgmmaRS_m64n128k16_tB(dk, dsf[kk], mnMajor(cQ, kk), 1);
      wgmmaCommit();
      if (p.dsT) {  // dS^T for the dQ kernel, while dK's product runs: rows are keys, 16-query chunks swizzled
        const int r = warp * 16 + (lane / 8 % 2) * 8 + lane % 8;  // lane's row of matrix lane / 8 (fragment order)
#pragma unroll
        for (int kk = 0; kk < TILE / 16; kk++)
          stmatrixX4(staging + stage * DS_TILE_BYTES + r * 128 + (((2 * kk + lane / 16) ^ (lane % 8)) << 4), dsf[kk]);
        fenceProxyAsync();  // visible to the bulk copy that the leader issues after the next barrier
        pending = dsTile(p, (int64_t)b * p.H + hkv * group + n / perHead, i0, kLo);
        stage ^= 1;
      }
      wgmmaWait<0>();
      pinRegisters(dv);
      pinRegisters(dk);
    }
    __syncthreads();  // both warpgroups are done with this buffer before the next fetch overwrites it
  }
  cpAsyncWait<0>();
  if (leader) {  // the loop's last barrier ordered the warpgroup's stmatrix writes before this copy
    if (pending) bulkStore(pending, staging + (stage ^ 1) * DS_TILE_BYTES, DS_TILE_BYTES);
    bulkWait();  // done writing before the block (and its shared memory) goes
  }
  bf16* dkOut = (bf16*)p.dk + (int64_t)bkv * p.Skv * DT;
  bf16* dvOut = (bf16*)p.dv + (int64_t)bkv * p.Skv * DT;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int key = key0 + r * 8;
    if (key >= p.Skv) continue;
#pragma unroll
    for (int c = 0; c < DT / 8; c++) {
      *(__nv_bfloat162*)(dkOut + (int64_t)key * DT + c * 8 + 2 * t) =
          __floats2bfloat162_rn(dk[4 * c + r * 2] * p.scale, dk[4 * c + r * 2 + 1] * p.scale);
      *(__nv_bfloat162*)(dvOut + (int64_t)key * DT + c * 8 + 2 * t) =
          __floats2bfloat162_rn(dv[4 * c + r * 2], dv[4 * c + r * 2 + 1]);
    }
  }
#else
  __trap();  // never launched: wgmmaSupported() requires a compute capability 9.0 device
#endif
}

/** A warpgroup's dq accumulator (m16n8 layout, flat): this lane's rows r0 and r0 + 8, times the scale, as bf16. */
__device__ __forceinline__ void storeDq(const Params& p, int64_t bh, int r0, int t, const float (&dq)[DT / 2]) {
  bf16* dqOut = (bf16*)p.dq + bh * p.S * DT;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    const int row = r0 + r * 8;
    if (row >= p.S) continue;
#pragma unroll
    for (int n = 0; n < DT / 8; n++)
      *(__nv_bfloat162*)(dqOut + (int64_t)row * DT + n * 8 + 2 * t) =
          __floats2bfloat162_rn(dq[4 * n + r * 2] * p.scale, dq[4 * n + r * 2 + 1] * p.scale);
  }
}

// ---- dQ -----------------------------------------------------------------------------------------
/** dQ for ROWS queries of one head: a warpgroup owns 64 rows; K / V tiles of TILE keys stream. */
__global__ void __launch_bounds__(Q_WGS * 128, 1) backwardQWgmmaKernel(Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int ROWS = WG_ROWS * Q_WGS, THREADS = Q_WGS * 128, ROWS_BYTES = ROWS * DT * 2;
  extern __shared__ uint8_t smemBytes[];
  const uint32_t sQ = (smemAddr(smemBytes) + 1023) & ~1023u;
  const uint32_t sDo = sQ + ROWS_BYTES, sK = sDo + ROWS_BYTES, sV = sK + 2 * TILE_BYTES;  // K, V: two buffers each
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * ROWS, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  const bf16* q = (const bf16*)p.q + (int64_t)bh * p.S * DT;
  const bf16* k = (const bf16*)p.k + (int64_t)kvh * p.Skv * DT;
  const bf16* v = (const bf16*)p.v + (int64_t)kvh * p.Skv * DT;
  loadSwizzled128<ROWS, THREADS>(sQ, q + (int64_t)i0 * DT, p.S - i0, q);
  loadSwizzled128<ROWS, THREADS>(sDo, (const bf16*)p.dout + ((int64_t)bh * p.S + i0) * DT, p.S - i0, q);
  int first, last;
  keyRange(p, i0, min(i0 + ROWS - 1, p.S - 1), first, last);
  if (first <= last) {
    loadSwizzled128<TILE, THREADS>(sK, k + (int64_t)first * DT, p.Skv - first, k);
    loadSwizzled128<TILE, THREADS>(sV, v + (int64_t)first * DT, p.Skv - first, k);
  }
  cpAsyncCommit();

  const int wLo = i0 + wg * WG_ROWS, wHi = min(wLo + WG_ROWS - 1, p.S - 1);
  const int warpLo = wLo + warp * 16, warpHi = min(warpLo + 15, p.S - 1);
  const int r0 = warpLo + g;  // this lane's rows: r0 and r0 + 8
  float lse[2], delta[2];
#pragma unroll
  for (int r = 0; r < 2; r++) rowStats(p, bh, r0 + r * 8, lse[r], delta[r]);
  float dq[DT / 2];  // [64 rows x 128] of the warpgroup, flat
#pragma unroll
  for (int i = 0; i < DT / 2; i++) dq[i] = 0.f;
  const float scale2 = p.scale * LOG2E;
  const uint32_t qRows = sQ + wg * WG_ROWS * 128, doRows = sDo + wg * WG_ROWS * 128;
  int buf = 0;
  for (int j0 = first; j0 <= last; j0 += TILE, buf ^= 1) {
    const int next = j0 + TILE;
    awaitTile(next <= last, [&] {
      loadSwizzled128<TILE, THREADS>(sK + (buf ^ 1) * TILE_BYTES, k + (int64_t)next * DT, p.Skv - next, k);
      loadSwizzled128<TILE, THREADS>(sV + (buf ^ 1) * TILE_BYTES, v + (int64_t)next * DT, p.Skv - next, k);
    });
    if (seen(p, wLo, wHi, j0, TILE, true) != NONE) {
      const Seen vis = seen(p, warpLo, warpHi, j0, TILE, true);
      const uint32_t cK = sK + buf * TILE_BYTES, cV = sV + buf * TILE_BYTES;
      float s[TILE / 8][4], dp[TILE / 8][4];
      float(&sFlat)[TILE / 2] = reinterpret_cast<float(&)[TILE / 2]>(s);
      float(&dpFlat)[TILE / 2] = reinterpret_cast<float(&)[TILE / 2]>(dp);
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < DT / 16; kk++) wgmmaSS_m64n64k16(sFlat, kMajor<ROWS>(qRows, kk), kMajor<TILE>(cK, kk), kk > 0);
      wgmmaCommit();
#pragma unroll
      for (int kk = 0; kk < DT / 16; kk++)
        wgmmaSS_m64n64k16(dpFlat, kMajor<ROWS>(doRows, kk), kMajor<TILE>(cV, kk), kk > 0);
      wgmmaCommit();
      wgmmaWait<1>();  // S is done; dP may still run
      pinRegisters(sFlat);
      byMask(vis, [&](auto masked) {
#pragma unroll
        for (int n = 0; n < TILE / 8; n++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int row = r0 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
            s[n][e] = !decltype(masked)::value || mask.visible(row, key) ? prob2(s[n][e], scale2, lse[e / 2]) : 0.f;
          }
      });
      wgmmaWait<0>();
      pinRegisters(dpFlat);
#pragma unroll
      for (int n = 0; n < TILE / 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) dp[n][e] = s[n][e] * (dp[n][e] - delta[e / 2]);
      uint32_t dsf[TILE / 16][4];
      packA<TILE>(dsf, dp);
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < TILE / 16; kk++) wgmmaRS_m64n128k16_tB(dq, dsf[kk], mnMajor(cK, kk), 1);
      wgmmaCommit();
      wgmmaWait<0>();
      pinRegisters(dq);
    }
    __syncthreads();  // both warpgroups are done with this buffer before the next load overwrites it
  }
  cpAsyncWait<0>();
  storeDq(p, bh, r0, t, dq);
#else
  __trap();  // never launched: wgmmaSupported() requires a compute capability 9.0 device
#endif
}

/**
 * dQ = dS K from the dS^T tiles the dK / dV kernel stored: a warpgroup owns 64 queries and streams
 * K tiles with its own dS^T tiles; dQ += dS K as SS wgmma m64n128k16 with dS read transposed from
 * the stored tile. The same 16-key steps in the same order as backwardQWgmmaKernel's, on the same
 * bf16 dS, with no S / dP products to recompute.
 */
__global__ void __launch_bounds__(DS_Q_WGS * 128, DS_Q_BLOCKS) backwardQFromDsKernel(Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int Q_WGS = DS_Q_WGS, ROWS = WG_ROWS * Q_WGS, THREADS = Q_WGS * 128;
  extern __shared__ uint8_t smemBytes[];
  const uint32_t sK = (smemAddr(smemBytes) + 1023) & ~1023u;  // two buffers of TILE keys
  const uint32_t sDs = sK + 2 * TILE_BYTES;                    // two buffers of Q_WGS dS^T tiles
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * ROWS, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const bf16* k = (const bf16*)p.k + (int64_t)kvh * p.Skv * DT;
  int first, last;
  keyRange(p, i0, min(i0 + ROWS - 1, p.S - 1), first, last);
  const int wLo = i0 + wg * WG_ROWS, wHi = min(wLo + WG_ROWS - 1, p.S - 1);
  // tile j0's K (every thread) and this warpgroup's dS^T tile, if it sees any of tile j0's pairs
  auto fetch = [&](int j0, int into) {
    loadSwizzled128<TILE, THREADS>(sK + into * TILE_BYTES, k + (int64_t)j0 * DT, p.Skv - j0, k);
    if (seen(p, wLo, wHi, j0, TILE, true) != NONE) {
      const uint8_t* tile = (const uint8_t*)dsTile(p, bh, wLo, j0);
      const uint32_t to = sDs + (into * Q_WGS + wg) * DS_TILE_BYTES;
#pragma unroll
      for (int c = threadIdx.x % 128; c < DS_TILE_BYTES / 16; c += 128) cpAsync16To(to + c * 16, tile + c * 16);
    }
  };
  if (first <= last) fetch(first, 0);
  cpAsyncCommit();
  float dq[DT / 2];  // [64 rows x 128] of the warpgroup, flat
#pragma unroll
  for (int i = 0; i < DT / 2; i++) dq[i] = 0.f;
  int buf = 0;
  for (int j0 = first; j0 <= last; j0 += TILE, buf ^= 1) {
    awaitTile(j0 + TILE <= last, [&] { fetch(j0 + TILE, buf ^ 1); });
    if (seen(p, wLo, wHi, j0, TILE, true) != NONE) {
      const uint32_t cK = sK + buf * TILE_BYTES, cDs = sDs + (buf * Q_WGS + wg) * DS_TILE_BYTES;
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < TILE / 16; kk++)  // A = dS [64 queries x 16 keys], stored as 16 rows of 64 queries
        wgmmaSS_m64n128k16_tAB(dq, smemDescriptor(cDs, DS_TILE_BYTES, 1024) + ((kk * 16 * 128) >> 4), mnMajor(cK, kk), 1);
      wgmmaCommit();
      wgmmaWait<0>();
      pinRegisters(dq);
    }
    __syncthreads();  // every warpgroup is done with this buffer before the next fetch overwrites it
  }
  cpAsyncWait<0>();
  storeDq(p, bh, wLo + warp * 16 + g, t, dq);
#else
  __trap();  // never launched: wgmmaSupported() requires a compute capability 9.0 device
#endif
}

}  // namespace

size_t wgmmaDsBytes(const Params& p) {
  if (!wgmmaSupported(p)) return 0;
  const size_t bytes = (size_t)p.B * p.H * ((p.S + WG_ROWS - 1) / WG_ROWS) * dsSlots(p) * DS_TILE_BYTES;
  return bytes <= DS_MAX_BYTES ? bytes : 0;
}

void sdpaBackwardWgmma(const Params& p, cudaStream_t s) {
  constexpr int KV_ROWS = WG_ROWS * KV_WGS, Q_ROWS = WG_ROWS * Q_WGS, DS_ROWS = WG_ROWS * DS_Q_WGS;
  launch(backwardKvWgmmaKernel, dim3((p.Skv + KV_ROWS - 1) / KV_ROWS, p.B * p.Hkv), KV_WGS * 128,
         smemBytesFor(KV_WGS, p.dsT ? 2 * KV_WGS * DS_TILE_BYTES : 0), s, p, "sdpa_backward (dk, dv; wgmma)");
  if (p.dsT)
    launch(backwardQFromDsKernel, dim3((p.S + DS_ROWS - 1) / DS_ROWS, p.B * p.H), DS_Q_WGS * 128,
           2 * TILE_BYTES + 2 * DS_Q_WGS * DS_TILE_BYTES + 1024, s, p, "sdpa_backward (dq from stored dS; wgmma)");
  else
    launch(backwardQWgmmaKernel, dim3((p.S + Q_ROWS - 1) / Q_ROWS, p.B * p.H), Q_WGS * 128, smemBytesFor(Q_WGS), s,
           p, "sdpa_backward (dq; wgmma)");
}

}  // namespace grin
