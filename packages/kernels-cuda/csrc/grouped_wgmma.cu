// The MoE's grouped GEMM on Hopper's warpgroup MMA (wgmma, sm_90a), bf16: every expert's GEMM in one
// launch (grouped.cpp's 'wgmma' implementation), so a 256-row expert no longer runs alone as a
// fraction of a wave of tiles. Per group e (rows [r0, r1) of the grouped operands):
//  - forward (mode 0): y[r0:r1] = x[r0:r1] W_e^T, W_e [N, K]; both operands K-major;
//  - input gradient (1): dx[r0:r1] = g[r0:r1] W_e, W_e read as [K, N]: B is MN-major (N contiguous);
//  - weight gradient (2): dW_e = g[r0:r1]^T x[r0:r1], K = the group's rows: A and B both MN-major.
// W_e is w1|w3 stacked as one [2 * out, in] block, or w2. A block computes a 128 x 256 tile (two
// warpgroups of 64 rows, one wgmma m64n256k16 per 16 of K), streaming 64-deep K slices through four
// shared-memory stages (cp.async, two slices in flight, the 128-byte swizzle attention uses).
// Persistent: block b of G (one per SM) runs tiles b, b + G, ... as one stream of slices, so the
// next tile's first slices load while this tile's last ones multiply and it is stored. Tiles are
// numbered group by group, row tiles fastest: the blocks that run together share each weight tile
// through L2, so a weight is read from memory about once however its rows split into tiles. Rows
// past a group's end load as zeros (the weight gradient's K tail too) and are not stored.
// Test: tests/cases/moe.ts (GPU, against the CPU op; the launches are counted).
#include <algorithm>

#include "device.cuh"
#include "kernels.h"
#include "wgmma.cuh"

namespace grin {
namespace {

constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4, THREADS = 256;
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
constexpr size_t SMEM = STAGES * STAGE_BYTES + 1024;  // + alignment of the base to 1024 (the swizzle period)
constexpr int MAX_GROUPS = 64;
enum Mode : int { FORWARD = 0, INPUT_GRAD = 1, WEIGHT_GRAD = 2 };

struct GroupedParams {
  const bf16* a;  // modes 0 / 1: [rows, K] (x or g); mode 2: g [rows, M]
  const bf16* x;  // mode 2: x [rows, N]
  bf16* c;        // modes 0 / 1: [rows, N]
  int64_t K, N, M, part;  // mode 2: M = parts x part rows of the stacked weights, part = one part's rows
  int E;
  int rowStart[MAX_GROUPS + 1];   // group e's rows: [rowStart[e], rowStart[e + 1])
  int tileStart[MAX_GROUPS + 1];  // group e's tiles: [tileStart[e], tileStart[e + 1])
  const bf16* w[MAX_GROUPS];      // modes 0 / 1: group e's weight
  bf16* dw[2 * MAX_GROUPS];       // mode 2: part p of group e's weight gradient at p * E + e
};

/** A tile's operands at K = 0, its result's first element, row stride and valid rows, its K slices. */
struct Tile {
  const bf16* a;
  const bf16* b;
  bf16* c;
  int64_t ldc;
  int valid, kRows, kTiles;
};

template <int MODE>
__device__ __forceinline__ Tile tileAt(const GroupedParams& p, int tile) {
  int e = 0;
  while (tile >= p.tileStart[e + 1]) e++;
  const int r0 = p.rowStart[e], rows = p.rowStart[e + 1] - r0, local = tile - p.tileStart[e];
  Tile t;
  if constexpr (MODE == WEIGHT_GRAD) {
    const int mTiles = (int)(p.M / BM), mt = local % mTiles, nt = local / mTiles;
    const int64_t m0 = (int64_t)mt * BM, n0 = (int64_t)nt * BN, part = m0 / p.part;
    t.a = p.a + r0 * p.M + m0, t.b = p.x + r0 * p.N + n0;
    t.c = p.dw[part * p.E + e] + (m0 - part * p.part) * p.N + n0, t.ldc = p.N;
    t.valid = BM, t.kRows = rows, t.kTiles = (rows + BK - 1) / BK;
  } else {
    const int mTiles = (rows + BM - 1) / BM, mt = local % mTiles, nt = local / mTiles;
    const int64_t row0 = r0 + mt * BM, n0 = (int64_t)nt * BN;
    t.a = p.a + row0 * p.K, t.b = p.w[e] + (MODE == INPUT_GRAD ? n0 : n0 * p.K);
    t.c = p.c + row0 * p.N + n0, t.ldc = p.N;
    t.valid = rows - mt * BM, t.kRows = (int)p.K, t.kTiles = (int)(p.K / BK);
  }
  return t;
}

/** Slice kt of tile t into the stage at sA (B right after A), in the layouts the descriptors read. */
template <int MODE>
__device__ __forceinline__ void loadSlice(const GroupedParams& p, const Tile& t, int kt, uint32_t sA) {
  const uint32_t sB = sA + A_BYTES;
  const int64_t k0 = (int64_t)kt * BK;
  if constexpr (MODE == WEIGHT_GRAD) {  // 64 rows of K (0 past the group's end): A 128 columns, B 256
    loadSwizzled<BK, BM / 64, THREADS>(sA, t.a + k0 * p.M, p.M, t.kRows - (int)k0, p.a);
    loadSwizzled<BK, BN / 64, THREADS>(sB, t.b + k0 * p.N, p.N, t.kRows - (int)k0, p.x);
  } else {
    loadSwizzled<BM, 1, THREADS>(sA, t.a + k0, p.K, t.valid, p.a);  // 128 rows, 64 of K each
    if constexpr (MODE == INPUT_GRAD)  // 64 rows of K, four 64-column blocks of N
      loadSwizzled<BK, BN / 64, THREADS>(sB, t.b + k0 * p.N, p.N, BK, t.b);
    else  // 256 rows of N, 64 of K each
      loadSwizzled<BN, 1, THREADS>(sB, t.b + k0, p.K, BN, t.b);
  }
}

template <int MODE>
__global__ void __launch_bounds__(THREADS, 1) groupedGemmKernel(const __grid_constant__ GroupedParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smemBytes[];
  const uint32_t base = ((uint32_t)__cvta_generic_to_shared(smemBytes) + 1023) & ~1023u;
  const int tiles = p.tileStart[p.E], stride = gridDim.x;
  // Two cursors over this block's slices: the one loading runs two slices ahead of the one multiplying.
  int loadTile = blockIdx.x, loadK = 0, loadSlot = 0;
  Tile loading = tileAt<MODE>(p, loadTile);
  auto loadNext = [&] {
    if (loadTile >= tiles) return;
    loadSlice<MODE>(p, loading, loadK, base + loadSlot * STAGE_BYTES);
    loadSlot = (loadSlot + 1) % STAGES;
    if (++loadK == loading.kTiles) {
      loadK = 0, loadTile += stride;
      if (loadTile < tiles) loading = tileAt<MODE>(p, loadTile);
    }
  };
  // Slice s + 2 goes into the stage slice s - 2 used: every warpgroup waited for that slice's
  // wgmma (wait<1> below) before the barrier at the top of step s.
#pragma unroll
  for (int s = 0; s < STAGES - 2; s++) {
    loadNext();
    asm volatile("cp.async.commit_group;\n" ::);
  }
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  float d[128];
  int tile = blockIdx.x, kt = 0, slot = 0;
  Tile computing = loading;
  while (tile < tiles) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(STAGES - 3));  // this slice has landed (this thread's part)
    fenceProxyAsync();
    __syncthreads();
    loadNext();
    asm volatile("cp.async.commit_group;\n" ::);  // possibly empty: keeps the group count per step fixed
    const uint32_t sA = base + slot * STAGE_BYTES, sB = sA + A_BYTES;
    // A: warpgroup wg's 64 rows (K-major), or its 64-column block (mode 2: MN-major)
    const uint64_t aDesc = MODE == WEIGHT_GRAD ? smemDescriptor(sA + wg * (BK * 128), BK * 128, 1024)
                                               : smemDescriptor(sA + wg * 64 * 128, 16, 1024);
    const uint64_t bDesc = MODE == FORWARD ? smemDescriptor(sB, 16, 1024) : smemDescriptor(sB, BK * 128, 1024);
    wgmmaFence();
#pragma unroll
    for (int kk = 0; kk < BK / 16; kk++) {
      const int accumulate = kt > 0 || kk > 0;  // a tile's first product overwrites the last tile's sums
      // K-major operands step 32 bytes along their 128-byte rows; MN-major ones 16 rows of 128 bytes
      const uint64_t kMajor = kk * 2, mnMajor = (kk * 16 * 128) >> 4;
      if constexpr (MODE == FORWARD)
        wgmmaSS_m64n256k16(d, aDesc + kMajor, bDesc + kMajor, accumulate);
      else if constexpr (MODE == INPUT_GRAD)
        wgmmaSS_m64n256k16_tB(d, aDesc + kMajor, bDesc + mnMajor, accumulate);
      else
        wgmmaSS_m64n256k16_tAB(d, aDesc + mnMajor, bDesc + mnMajor, accumulate);
    }
    wgmmaCommit();
    wgmmaWait<1>();
    slot = (slot + 1) % STAGES;
    if (++kt == computing.kTiles) {  // the tile is done: store it while the next tile's slices load
      wgmmaWait<0>();
      pinRegisters(d);
#pragma unroll
      for (int half = 0; half < 2; half++) {
        const int r = wg * 64 + warp * 16 + g + half * 8;
        if (r >= computing.valid) continue;
        bf16* out = computing.c + r * computing.ldc + 2 * t;
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
          *(__nv_bfloat162*)(out + 8 * j) = __floats2bfloat162_rn(d[4 * j + 2 * half], d[4 * j + 2 * half + 1]);
      }
      kt = 0, tile += stride;
      if (tile < tiles) computing = tileAt<MODE>(p, tile);
    }
  }
  wgmmaWait<0>();  // already done at the last tile's store; ptxas adds one here otherwise (C7517)
  asm volatile("cp.async.wait_group 0;\n" ::);
#else
  __trap();  // never launched: groupedGemmWgmma requires a compute capability 9.0 device
#endif
}

}  // namespace

bool groupedGemmWgmma(int device, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                      const void* first, const void* second, void* result, void* const* weights) {
  const int64_t wide = parts * out;
  // mode 0: K in, N wide; 1: K wide, N in; 2: M wide (in 128-row tiles of one part), N in, K rows
  const int64_t K = mode == FORWARD ? in : wide, N = mode == FORWARD ? wide : in;
  if (mode < FORWARD || mode > WEIGHT_GRAD || E > MAX_GROUPS || !hopperDevice(device)) return false;
  if (mode == WEIGHT_GRAD ? out % BM != 0 || in % BN != 0 : K % BK != 0 || N % BN != 0) return false;
  GroupedParams p{};
  p.a = (const bf16*)first, p.x = (const bf16*)second, p.c = (bf16*)result;
  p.K = K, p.N = N, p.M = wide, p.part = out, p.E = E;
  int64_t rows = 0, tiles = 0;
  for (int e = 0; e < E; e++) {
    p.rowStart[e] = (int)rows, p.tileStart[e] = (int)tiles;
    if (mode == WEIGHT_GRAD) {
      for (int q = 0; q < parts; q++) p.dw[q * E + e] = (bf16*)weights[q * E + e];
      tiles += counts[e] > 0 ? wide / BM * (in / BN) : 0;  // an empty group's gradient is zeroed below
    } else {
      // both parts in one GEMM: w1 and w3 must lie stacked as one [2 * out, in] block
      if (parts == 2 && counts[e] > 0 && (const char*)weights[E + e] != (const char*)weights[e] + out * in * 2)
        return false;
      p.w[e] = (const bf16*)weights[e];
      tiles += (counts[e] + BM - 1) / BM * (N / BN);
    }
    rows += counts[e];
    if (rows > INT32_MAX || tiles > INT32_MAX) return false;
  }
  p.rowStart[E] = (int)rows, p.tileStart[E] = (int)tiles;
  cudaStream_t s = streamFor(device);
  if (mode == WEIGHT_GRAD)
    for (int e = 0; e < E; e++)
      for (int q = 0; q < parts && counts[e] == 0; q++)
        check(cudaMemsetAsync(weights[q * E + e], 0, out * in * 2, s), "grouped gemm (wgmma): zero an empty group");
  if (tiles == 0) return true;
  auto kernel = mode == FORWARD      ? groupedGemmKernel<FORWARD>
                : mode == INPUT_GRAD ? groupedGemmKernel<INPUT_GRAD>
                                     : groupedGemmKernel<WEIGHT_GRAD>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SMEM), "grouped gemm (wgmma)");
  static int sms[64];  // per device (hopperDevice allows 0..63), 0 = not asked yet
  if (!sms[device])
    check(cudaDeviceGetAttribute(&sms[device], cudaDevAttrMultiProcessorCount, device), "grouped gemm (wgmma)");
  kernel<<<(unsigned)std::min<int64_t>(tiles, sms[device]), THREADS, SMEM, s>>>(p);
  checkLaunch("grouped gemm (wgmma)");
  return true;
}

}  // namespace grin
