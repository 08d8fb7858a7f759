// The MoE's grouped weight gradient on Hopper (grouped.cpp's 'wgmma' implementation, mode 2), bf16:
// for every group e (rows [r0, r1) of the grouped operands) and part p,
//   dw[p][e] [out, in] = g[r0:r1, p * out : (p + 1) * out]^T x[r0:r1]
// in one launch. K is the group's rows (~256 an expert at 2048 tokens), so a 128 x 256 tile is only
// 4 slices of products and then a 64 KiB store; at 2048 tokens the 16 experts' gradients are 2.5 GB
// of bf16, and all SMs storing at once need about as long as a tile's products. cuBLASLt per expert
// stores from registers after the products (~460 TFLOP/s there); this kernel hands each finished tile
// to the bulk-copy engine (cp.async.bulk, one 512-byte row a thread) from a shared-memory staging
// buffer, so the store drains while the next tile's products run, and the two warpgroups take turns
// with that buffer, so one multiplies while the other stages.
//
// The layout is grouped_wgmma.cu's: persistent, one block an SM, a producer warpgroup whose one thread
// issues the TMA loads, two consumer warpgroups of 64 rows each (m64n256k16), STAGES slices of 64 in
// flight. Both operands are MN-major: the A slice is g's 64 rows x 128 columns (two 64-column boxes,
// one a warpgroup), the B slice x's 64 rows x 256 columns (four boxes). Each group has its own
// tensor maps, which end at the group's last row: the last slice's rows past it read as zeros, so no
// other group's rows enter the sum. Units (tiles) go group by group, column tiles fastest, so the
// blocks running together share g's slices through L2. Groups without rows get zeroed gradients.
// Test: tests/cases/moe.ts (GPU, the 'wgmma' cases check every dw against the CPU op).
#include <algorithm>

#include "device.cuh"
#include "kernels.h"
#include "tma.cuh"
#include "wgmma.cuh"

namespace grin {
namespace {

constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4, THREADS = 384, MAX_GROUPS = 64, CONSUMER_WARPS = 8;
constexpr int BOX_BYTES = 64 * BK * 2;  // a 64 x 64 box: 64 rows of K, 128 bytes of M or N each
constexpr int A_BYTES = BM * BK * 2, B_BYTES = BN * BK * 2, STAGE_BYTES = A_BYTES + B_BYTES;
// A staged output row: 512 bytes plus 16, so the 8 rows one store instruction writes start in
// different banks (a 512-byte stride would put all 8 in the same 4 banks). One warpgroup's 64 rows:
// four stages and the staging buffer just fit in 227 KiB, so the two warpgroups take turns with it.
constexpr int ROW_BYTES = BN * 2 + 16, STAGING_BYTES = 64 * ROW_BYTES;
// Named barriers (0 is __syncthreads): each warpgroup's own, and the two turns of the staging buffer
// (the warpgroup that has stored arrives, the other one waits).
constexpr int OWN_BARRIER = 1, FREE_FOR_1 = 3, FREE_FOR_0 = 4;
constexpr size_t SMEM = STAGES * STAGE_BYTES + STAGING_BYTES + 1024 + 2 * STAGES * 8;  // + alignment, barriers

struct DwParams {
  CUtensorMap g[MAX_GROUPS];  // group e's output-gradient rows [rows_e, parts * out]; boxes of 64 x 64
  CUtensorMap x[MAX_GROUPS];  // group e's input rows [rows_e, in]; boxes of 64 x 64
  bf16* dw[2 * MAX_GROUPS];   // part p of group e's weight gradient [out, in] at p * E + e
  int64_t in, out;
  int E, nTiles;                  // nTiles = in / BN: a group's units are (parts * out / BM) x nTiles
  int kTiles[MAX_GROUPS];         // ceil(rows_e / BK)
  int unitStart[MAX_GROUPS + 1];  // group e's units: [unitStart[e], unitStart[e + 1])
};

struct Unit {
  int e, m0, n0, kTiles;  // m0: a column of g (both parts), n0: a column of x
};

__device__ __forceinline__ Unit unitAt(const DwParams& p, int u) {
  int e = 0;
  while (u >= p.unitStart[e + 1]) e++;
  const int local = u - p.unitStart[e];
  return {e, (local / p.nTiles) * BM, (local % p.nTiles) * BN, p.kTiles[e]};
}

__global__ void __launch_bounds__(THREADS, 1) groupedWeightGradKernel(const __grid_constant__ DwParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smemBytes[];
  const uint32_t base = ((uint32_t)__cvta_generic_to_shared(smemBytes) + 1023) & ~1023u;
  const uint32_t staging = base + STAGES * STAGE_BYTES, full = staging + STAGING_BYTES, empty = full + STAGES * 8;
  const int units = p.unitStart[p.E];
  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; s++) mbarInit(full + 8 * s, 1), mbarInit(empty + 8 * s, CONSUMER_WARPS);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x < 128) {  // the producer warpgroup: one thread issues every load
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::);
    if (threadIdx.x == 0) {
      int i = 0;
      for (int u = blockIdx.x; u < units; u += gridDim.x) {
        const Unit t = unitAt(p, u);
        for (int kt = 0; kt < t.kTiles; kt++, i++) {
          const int s = i % STAGES;
          const uint32_t sA = base + s * STAGE_BYTES, sB = sA + A_BYTES, bar = full + 8 * s;
          mbarWait(empty + 8 * s, ((i / STAGES) & 1) ^ 1);  // a fresh barrier's "previous" phase is done
          mbarExpectTx(bar, STAGE_BYTES);  // whole boxes: the zeros past the group's end count too
          for (int j = 0; j < BM / 64; j++) tmaLoad(sA + j * BOX_BYTES, &p.g[t.e], t.m0 + 64 * j, kt * BK, bar, 0);
          for (int j = 0; j < BN / 64; j++) tmaLoad(sB + j * BOX_BYTES, &p.x[t.e], t.n0 + 64 * j, kt * BK, bar, 0);
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::);
    const int c = threadIdx.x - 128, wg = c / 128, tid = c % 128, warp = tid / 32, lane = c % 32, g = lane / 4,
              t4 = lane % 4;
    float d[128];
    int i = 0, tiles = 0;
    for (int u = blockIdx.x; u < units; u += gridDim.x) {
      const Unit t = unitAt(p, u);
      for (int kt = 0; kt < t.kTiles; kt++, i++) {
        const int s = i % STAGES;
        mbarWait(full + 8 * s, (i / STAGES) & 1);
        const uint32_t sA = base + s * STAGE_BYTES, sB = sA + A_BYTES;
        // MN-major: leading = the next 64 columns (box), stride 1024 = the next 8 rows of K
        const uint64_t aDesc = smemDescriptor(sA + wg * BOX_BYTES, BOX_BYTES, 1024);
        const uint64_t bDesc = smemDescriptor(sB, BOX_BYTES, 1024);
        wgmmaFence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; kk++) {
          const uint64_t step = (kk * 16 * 128) >> 4;  // 16 rows of K of 128 bytes
          wgmmaSS_m64n256k16<1, 1>(d, aDesc + step, bDesc + step, kt > 0 || kk > 0);
        }
        wgmmaCommit();
        wgmmaWait<1>();
        if (i > 0 && lane == 0) mbarArriveIn(empty + 8 * ((i - 1) % STAGES), 0);  // slice i - 1 is read
      }
      wgmmaWait<0>();
      pinRegisters(d);
      // Warpgroup 0 stages first, then 1, then 0 again at the next tile: each waits until the other's
      // stores have read the buffer. Warpgroup 0 runs on into the next tile's products meanwhile, so
      // the tensor cores have work while 1 stores.
      if (wg == 0 ? tiles > 0 : true) namedBarrier(wg == 0 ? FREE_FOR_0 : FREE_FOR_1, 256);
      tiles++;
#pragma unroll
      for (int half = 0; half < 2; half++) {
        const uint32_t row = staging + (warp * 16 + g + 8 * half) * ROW_BYTES + 4 * t4;
#pragma unroll
        for (int j = 0; j < BN / 8; j++) {
          __nv_bfloat162 v = __floats2bfloat162_rn(d[4 * j + 2 * half], d[4 * j + 2 * half + 1]);
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(row + 16 * j), "r"(*(uint32_t*)&v) : "memory");
        }
      }
      fenceProxyAsync();  // these writes are read by the bulk copies (the async proxy)
      namedBarrier(OWN_BARRIER + wg, 128);
      if (tid < 64) {  // one 512-byte row a thread
        const int part = t.m0 / (int)p.out, r = t.m0 % (int)p.out + wg * 64 + tid;
        bulkStore(p.dw[part * p.E + t.e] + (int64_t)r * p.in + t.n0, staging + tid * ROW_BYTES, BN * 2);
        bulkWaitRead<0>();
      }
      namedBarrierArrive(wg == 0 ? FREE_FOR_1 : FREE_FOR_0, 256);  // the buffer is the other's
    }
    if (wg == 0 && tiles > 0) namedBarrier(FREE_FOR_0, 256);  // pairs warpgroup 1's last arrive
    if (tid < 64) bulkWait();  // the block's shared memory must outlive its last copies
  }
#else
  __trap();  // never launched: groupedWeightGradWgmma requires a compute capability 9.0 device
#endif
}

bool aligned16(const void* at) { return ((uintptr_t)at & 15) == 0; }

}  // namespace

bool groupedWeightGradWgmma(int device, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                            const void* g, const void* x, void* const* dw) {
  const int64_t wide = parts * out;
  if (E > MAX_GROUPS || parts < 1 || parts > 2 || in % BN != 0 || out % BM != 0 || in > INT32_MAX ||
      wide > INT32_MAX || !aligned16(g) || !aligned16(x) || !hopperDevice(device) || !tensorMapEncoder())
    return false;
  for (int i = 0; i < parts * E; i++)
    if (!aligned16(dw[i])) return false;
  alignas(64) static DwParams p;  // 17.6 KiB: not on the stack; a launch copies it
  p.in = in, p.out = out, p.E = E, p.nTiles = (int)(in / BN);
  const int64_t tilesPerGroup = (wide / BM) * p.nTiles;
  int64_t rows = 0, units = 0;
  for (int e = 0; e < E; e++) {
    p.unitStart[e] = (int)units, p.kTiles[e] = (int)((counts[e] + BK - 1) / BK);
    if (counts[e] > 0) {
      // maps that end at the group's last row (row offsets keep 16-byte alignment: wide, in % 128 == 0)
      if (!tensorMap(&p.g[e], (const bf16*)g + rows * wide, counts[e], wide, 64) ||
          !tensorMap(&p.x[e], (const bf16*)x + rows * in, counts[e], in, 64))
        return false;
      units += tilesPerGroup;
    }
    rows += counts[e];
    if (rows > INT32_MAX || units > INT32_MAX) return false;
  }
  p.unitStart[E] = (int)units;
  for (int i = 0; i < parts * E; i++) p.dw[i] = (bf16*)dw[i];
  cudaStream_t stream = streamFor(device);
  for (int e = 0; e < E; e++)
    if (counts[e] == 0)
      for (int q = 0; q < parts; q++)
        check(cudaMemsetAsync(dw[q * E + e], 0, out * in * 2, stream), "grouped weight gradient: zero an empty group");
  if (units == 0) return true;
  check(cudaFuncSetAttribute(groupedWeightGradKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)SMEM),
        "grouped weight gradient (wgmma)");
  static int sms[64];  // per device (hopperDevice allows 0..63), 0 = not asked yet
  if (!sms[device])
    check(cudaDeviceGetAttribute(&sms[device], cudaDevAttrMultiProcessorCount, device), "grouped weight gradient");
  const int blocks = (int)std::min<int64_t>(units, sms[device]);
  // a cluster of one, as grouped_wgmma.cu's kernel: the consumers arrive through mapa'd addresses
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute cluster[1];
  cluster[0].id = cudaLaunchAttributeClusterDimension;
  cluster[0].val.clusterDim.x = 1, cluster[0].val.clusterDim.y = 1, cluster[0].val.clusterDim.z = 1;
  config.gridDim = dim3(blocks), config.blockDim = dim3(THREADS), config.dynamicSmemBytes = SMEM;
  config.stream = stream, config.attrs = cluster, config.numAttrs = 1;
  check(cudaLaunchKernelEx(&config, groupedWeightGradKernel, p), "grouped weight gradient (wgmma)");
  checkLaunch("grouped weight gradient (wgmma)");
  return true;
}

}  // namespace grin
