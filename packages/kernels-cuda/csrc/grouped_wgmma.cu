// The MoE's grouped GEMM on Hopper (grouped.cpp's 'wgmma' implementation), bf16: every expert's
// forward, or every expert's input gradient, in one launch, so a 256-row expert no longer runs alone
// as a fraction of a wave of tiles. Per group e (rows [r0, r1) of the grouped operands):
//  - forward (mode 0): y[r0:r1] = x[r0:r1] W_e^T, W_e [N, K]: both operands K-major;
//  - input gradient (1): dx[r0:r1] = g[r0:r1] W_e, W_e read as [K, N]: B is MN-major (N contiguous).
// W_e is w1|w3 stacked as one [2 * out, in] block, or w2. The weight gradient (mode 2) is not taken
// here: its K is a group's rows (~256 at 2048 tokens), so a tile is 4 slices and its store, and
// cuBLASLt per expert ran it twice as fast as this kernel's version did (252 against 459 TFLOP/s).
// A kernel of its own (commit 43aa6a8: tiles staged in shared memory and stored by the bulk-copy
// engine while the next tile multiplies) came to 405-418 against cuBLASLt's 447-456 at 2048 tokens.
//
// Warp-specialised and persistent (one block an SM): a producer warpgroup, of which one thread
// issues TMA loads (cp.async.bulk.tensor, 128-byte swizzle, rows past the end of the matrix read as
// zeros), and two consumer warpgroups that compute a 128 x 256 tile, 64 rows each, one wgmma
// m64n256k16 per 16 of K, and store it straight from registers while the producer already loads the
// next tile. K streams in 64-deep slices through STAGES shared-memory stages, each with two
// mbarriers: full (the producer's expect_tx; the TMA bytes complete it) and empty (every consumer warp
// has finished the products that read it; a relaxed arrive, since a release at cluster scope cost
// each consumer warp a fence a slice: Nsight's membar stalls were 43% of the issue gaps and the
// kernel ran 12-28% slower). Tiles ("units") are numbered group by group, row tiles fastest, so the
// blocks running together share each weight tile through L2. Rows past a group's end are computed
// (they are the next group's rows, or zeros) and never stored.
// CLUSTER = 2 (the setting) makes two blocks with consecutive row tiles share the weight tile by TMA
// multicast (each loads half and both receive all), which halves the weight's L2 -> SM traffic. Timed
// alone it measured 0-24% slower than CLUSTER = 1 on every GEMM but w1|w3's input gradient at 8192
// tokens. In the MoE layer, where the H200 sits at its power cap, it is the faster: 14.1 against
// 14.9 ms a step at 8192 tokens, nvidia-smi reading ~1565 MHz against ~1430 (BENCHMARKS.md,
// 2026-12-03 night). 'lt-serial' stays ahead (13.8 ms). Pairing pads an expert to an even number of
// row tiles, so an expert of 257-384 rows (common at 2048 tokens) has a second block with no rows
// of its own: that idle tile loads its half of the weight for the peer, skips its A loads and its
// products (power, which the cap turns into clock), and still releases each stage.
// Test: tests/cases/moe.ts (GPU, against the CPU op; the launches are counted).
#include <cuda.h>  // CUtensorMap and its enums; the encoder comes from the driver through the runtime
#include <cudaTypedefs.h>

#include <algorithm>

#include "device.cuh"
#include "kernels.h"
#include "wgmma.cuh"

namespace grin {
namespace {

constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4, THREADS = 384, MAX_GROUPS = 64;
constexpr int CLUSTER = 2;  // blocks that share a weight tile by multicast (see the top)
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
constexpr int B_PART = BN / CLUSTER;                                  // weight rows a block loads
constexpr int CONSUMER_WARPS = 8;                                     // each releases a stage once
constexpr size_t SMEM = STAGES * STAGE_BYTES + 1024 + 2 * STAGES * 8;  // + alignment, + the mbarriers

enum Mode : int { FORWARD = 0, INPUT_GRAD = 1 };

struct TmaParams {
  CUtensorMap a;               // the rows [rows, K] (x or g); box 64 of K x 128 rows
  CUtensorMap b[MAX_GROUPS];   // group e's weight: [N, K] (mode 0, box 64 of K x B_PART rows) or [K, N] (1, 64 x 64)
  bf16* y;                     // [rows, N]
  int64_t N;
  int E, kTiles;               // kTiles = K / 64
  int rowStart[MAX_GROUPS + 1];   // group e's rows: [rowStart[e], rowStart[e + 1])
  int unitStart[MAX_GROUPS + 1];  // group e's units: [unitStart[e], unitStart[e + 1])
};

/** A block's share of a unit: its group, its tile's first row, how many of its rows are the group's, its columns. */
struct Unit {
  int e, row0, valid, n0;
};

__device__ __forceinline__ Unit unitAt(const TmaParams& p, int u, int rank) {
  int e = 0;
  while (u >= p.unitStart[e + 1]) e++;
  const int r0 = p.rowStart[e], rows = p.rowStart[e + 1] - r0, local = u - p.unitStart[e];
  const int rowUnits = (rows + CLUSTER * BM - 1) / (CLUSTER * BM), mt = (local % rowUnits) * CLUSTER + rank;
  return {e, r0 + mt * BM, rows - mt * BM, (local / rowUnits) * BN};
}

__device__ __forceinline__ void mbarInit(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbarExpectTx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
/** Waits for the phase of the given parity to complete (TMA's complete_tx makes its bytes visible). */
__device__ __forceinline__ void mbarWait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nWAIT:\nmbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n@!done bra WAIT;\n}\n" ::"r"(
          bar),
      "r"(parity)
      : "memory");
}
/**
 * Arrives on the mbarrier at the same offset in block `cta` of this cluster. Relaxed: it only says
 * that this warp's wgmma reads of a stage are done (wgmma.wait_group), which orders nothing in
 * memory; a release at cluster scope made every consumer warp wait on a fence each slice (Nsight:
 * membar stalls were 43% of the issue gaps).
 */
__device__ __forceinline__ void mbarArriveIn(uint32_t bar, uint32_t cta) {
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.relaxed.cluster.shared::cluster.b64 _, [remote];\n}\n" ::"r"(bar),
      "r"(cta)
      : "memory");
}
__device__ __forceinline__ void clusterSync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
__device__ __forceinline__ uint32_t clusterRank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}
/** A box of `map` at (k, row) into this block's shared memory; mask != 0: into every block in mask. */
__device__ __forceinline__ void tmaLoad(uint32_t dst, const CUtensorMap* map, int k, int row, uint32_t bar,
                                        uint16_t mask) {
  if (mask == 0)
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
            "r"(dst),
        "l"(map), "r"(k), "r"(row), "r"(bar)
        : "memory");
  else
    asm volatile(
        "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster"
        " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
        "l"(map), "r"(k), "r"(row), "r"(bar), "h"(mask)
        : "memory");
}

/** Slice kt of unit t into the stage at sA (B right after A), in the layouts the descriptors read. */
template <int MODE>
__device__ __forceinline__ void loadSlice(const TmaParams& p, const Unit& t, int kt, uint32_t sA, uint32_t bar,
                                          int rank) {
  const uint32_t sB = sA + A_BYTES;
  const int k0 = kt * BK;
  const uint16_t everyBlock = CLUSTER > 1 ? (uint16_t)((1 << CLUSTER) - 1) : 0;
  if (t.valid > 0) tmaLoad(sA, &p.a, k0, t.row0, bar, 0);  // A: 128 rows x 64 of K (none for an idle tile)
  if constexpr (MODE == FORWARD)  // B: this block's B_PART rows of N x 64 of K, to every block
    tmaLoad(sB + rank * B_PART * 128, &p.b[t.e], k0, t.n0 + rank * B_PART, bar, everyBlock);
  else  // B: 64 rows of K x this block's 64-column blocks of N, to every block
    for (int j = rank * (BN / 64 / CLUSTER); j < (rank + 1) * (BN / 64 / CLUSTER); j++)
      tmaLoad(sB + j * BK * 128, &p.b[t.e], t.n0 + 64 * j, k0, bar, everyBlock);
}

template <int MODE>
__global__ void __launch_bounds__(THREADS, 1) groupedGemmKernel(const __grid_constant__ TmaParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smemBytes[];
  const uint32_t base = ((uint32_t)__cvta_generic_to_shared(smemBytes) + 1023) & ~1023u;
  const uint32_t full = base + STAGES * STAGE_BYTES, empty = full + STAGES * 8;
  const int rank = CLUSTER > 1 ? (int)clusterRank() : 0;
  const int units = p.unitStart[p.E], clusters = gridDim.x / CLUSTER, cluster = blockIdx.x / CLUSTER;
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; s++) mbarInit(full + 8 * s, 1), mbarInit(empty + 8 * s, CONSUMER_WARPS * CLUSTER);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  clusterSync();  // the peer's barriers exist before anything is multicast or arrived on them
  if (threadIdx.x < 128) {  // the producer warpgroup: one thread issues every load
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::);
    if (threadIdx.x == 0) {
      int i = 0;
      for (int u = cluster; u < units; u += clusters) {
        const Unit t = unitAt(p, u, rank);
        for (int kt = 0; kt < p.kTiles; kt++, i++) {
          const int s = i % STAGES;
          mbarWait(empty + 8 * s, ((i / STAGES) & 1) ^ 1);  // a fresh barrier's "previous" phase is done
          mbarExpectTx(full + 8 * s, t.valid > 0 ? STAGE_BYTES : B_BYTES);  // A plus every block's share of B
          loadSlice<MODE>(p, t, kt, base + s * STAGE_BYTES, full + 8 * s, rank);
        }
      }
    }
    __syncwarp();
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::);
    const int c = threadIdx.x - 128, wg = c / 128, warp = (c / 32) % 4, lane = c % 32, g = lane / 4, t4 = lane % 4;
    float d[128];
    int i = 0;
    for (int u = cluster; u < units; u += clusters) {
      const Unit t = unitAt(p, u, rank);
      if (t.valid <= 0) {  // an idle tile (see the top): wait for the weight slices the peer reads, compute nothing
        for (int kt = 0; kt < p.kTiles; kt++, i++) {
          mbarWait(full + 8 * (i % STAGES), (i / STAGES) & 1);
          if (i > 0 && lane == 0)  // slice i - 1 is idle too, or its products were waited for at its unit's end
            for (int cta = 0; cta < CLUSTER; cta++) mbarArriveIn(empty + 8 * ((i - 1) % STAGES), cta);
        }
        continue;
      }
      for (int kt = 0; kt < p.kTiles; kt++, i++) {
        const int s = i % STAGES;
        mbarWait(full + 8 * s, (i / STAGES) & 1);
        const uint32_t sA = base + s * STAGE_BYTES, sB = sA + A_BYTES;
        const uint64_t aDesc = smemDescriptor(sA + wg * 64 * 128, 16, 1024);  // warpgroup wg's 64 rows
        const uint64_t bDesc = MODE == FORWARD ? smemDescriptor(sB, 16, 1024) : smemDescriptor(sB, BK * 128, 1024);
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
          const int accumulate = kt > 0 || kk > 0;
          // K-major operands step 32 bytes along their 128-byte rows; MN-major ones 16 rows of 128 bytes
          const uint64_t kMajor = kk * 2, mnMajor = (kk * 16 * 128) >> 4;
          if constexpr (MODE == FORWARD)
            wgmmaSS_m64n256k16<0>(d, aDesc + kMajor, bDesc + kMajor, accumulate);
          else
            wgmmaSS_m64n256k16<1>(d, aDesc + kMajor, bDesc + mnMajor, accumulate);
        }
        wgmmaCommit();
        wgmmaWait<1>();
        if (i > 0 && lane == 0)  // slice i - 1's products are done: its stage is free in every block
          for (int cta = 0; cta < CLUSTER; cta++) mbarArriveIn(empty + 8 * ((i - 1) % STAGES), cta);
      }
      wgmmaWait<0>();
      pinRegisters(d);
#pragma unroll
      for (int half = 0; half < 2; half++) {
        const int r = wg * 64 + warp * 16 + g + half * 8;
        if (r >= t.valid) continue;
        bf16* out = p.y + (int64_t)(t.row0 + r) * p.N + t.n0 + 2 * t4;
#pragma unroll
        for (int j = 0; j < BN / 8; j++)
          *(__nv_bfloat162*)(out + 8 * j) = __floats2bfloat162_rn(d[4 * j + 2 * half], d[4 * j + 2 * half + 1]);
      }
    }
  }
  clusterSync();  // no block leaves while its peer may still arrive on its barriers
#else
  __trap();  // never launched: groupedGemmWgmma requires a compute capability 9.0 device
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
  static bool asked = false;
  if (!asked) {
    asked = true;
    cudaDriverEntryPointQueryResult found;
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", (void**)&fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      fn = nullptr;
  }
  return fn;
}

/** A row-major bf16 [rows, cols] matrix read in 128-byte-swizzled boxes of 64 columns x boxRows. */
bool tensorMap(CUtensorMap* map, const void* at, int64_t rows, int64_t cols, uint32_t boxRows) {
  const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)cols * 2};
  const cuuint32_t box[2] = {BK, boxRows}, step[2] = {1, 1};
  return tensorMapEncoder()(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(at), dims, strides, box, step,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace

bool groupedGemmWgmma(int device, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                      const void* first, const void* second, void* result, void* const* weights) {
  (void)second;  // the weight gradient's second operand: that mode runs on cuBLASLt
  const int64_t wide = parts * out;
  const int64_t K = mode == FORWARD ? in : wide, N = mode == FORWARD ? wide : in;  // mode 1: K wide, N in
  if ((mode != FORWARD && mode != INPUT_GRAD) || E > MAX_GROUPS || N % BN != 0 || K % BK != 0 || K > INT32_MAX ||
      N > INT32_MAX || !hopperDevice(device) || !tensorMapEncoder())
    return false;
  alignas(64) static TmaParams p;  // 8.5 KiB: not on the stack; a launch copies it
  p.y = (bf16*)result, p.N = N, p.E = E, p.kTiles = (int)(K / BK);
  int64_t rows = 0, units = 0;
  for (int e = 0; e < E; e++) {
    p.rowStart[e] = (int)rows, p.unitStart[e] = (int)units;
    if (counts[e] > 0) {
      // both parts in one GEMM: w1 and w3 must lie stacked as one [2 * out, in] block
      if (parts == 2 && (const char*)weights[E + e] != (const char*)weights[e] + out * in * 2) return false;
      if (!tensorMap(&p.b[e], weights[e], mode == FORWARD ? N : K, mode == FORWARD ? K : N,
                     mode == FORWARD ? B_PART : 64))
        return false;
      units += (counts[e] + CLUSTER * BM - 1) / (CLUSTER * BM) * (N / BN);
    }
    rows += counts[e];
    if (rows > INT32_MAX - CLUSTER * BM || units > INT32_MAX) return false;
  }
  p.rowStart[E] = (int)rows, p.unitStart[E] = (int)units;
  if (units == 0) return true;
  if (!tensorMap(&p.a, first, rows, K, BM)) return false;
  auto kernel = mode == FORWARD ? groupedGemmKernel<FORWARD> : groupedGemmKernel<INPUT_GRAD>;
  check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SMEM), "grouped gemm (wgmma)");
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute cluster[1];
  cluster[0].id = cudaLaunchAttributeClusterDimension;
  cluster[0].val.clusterDim.x = CLUSTER, cluster[0].val.clusterDim.y = 1, cluster[0].val.clusterDim.z = 1;
  config.blockDim = dim3(THREADS), config.dynamicSmemBytes = SMEM, config.stream = streamFor(device);
  config.attrs = cluster, config.numAttrs = 1;
  static int clusters[64];  // per device (hopperDevice allows 0..63): clusters that fit at once, 0 = not asked yet
  if (!clusters[device]) {
    config.gridDim = dim3(CLUSTER * 66);
    check(cudaOccupancyMaxActiveClusters(&clusters[device], (void*)kernel, &config), "grouped gemm (wgmma)");
    if (clusters[device] < 1) return false;
  }
  config.gridDim = dim3((unsigned)(CLUSTER * std::min<int64_t>(units, clusters[device])));
  check(cudaLaunchKernelEx(&config, kernel, p), "grouped gemm (wgmma)");
  checkLaunch("grouped gemm (wgmma)");
  return true;
}

}  // namespace grin
