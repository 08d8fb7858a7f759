// TMA and mbarrier pieces shared by the grouped GEMM's kernels (grouped_wgmma.cu: forward and input
// gradient; grouped_wgmma_dw.cu: weight gradient), sm_90a: the mbarrier waits and arrivals, the
// tensor-map loads (cp.async.bulk.tensor), the cluster barrier, and on the host the tensor-map
// encoder, which comes from the driver through the runtime (no libcuda link).
#pragma once
#include <cuda.h>  // CUtensorMap and its enums
#include <cudaTypedefs.h>

#include <cstdint>

namespace grin {
namespace {

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
/** Barrier `id` (1-15; 0 is __syncthreads) over `threads` threads, whole warps: one warpgroup's own barrier. */
__device__ __forceinline__ void namedBarrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
/** Arrives on barrier `id` without waiting: the `threads - arrivals` others wait in namedBarrier. */
__device__ __forceinline__ void namedBarrierArrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
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

inline PFN_cuTensorMapEncodeTiled_v12000 tensorMapEncoder() {
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
inline bool tensorMap(CUtensorMap* map, const void* at, int64_t rows, int64_t cols, uint32_t boxRows) {
  const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, strides[1] = {(cuuint64_t)cols * 2};
  const cuuint32_t box[2] = {64, boxRows}, step[2] = {1, 1};
  return tensorMapEncoder()(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(at), dims, strides, box, step,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace
}  // namespace grin
