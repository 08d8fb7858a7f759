// Hopper warpgroup MMA (wgmma, sm_90a only) for the attention kernels and the MoE's grouped GEMM
// (grouped_wgmma.cu): the instruction forms they use, the shared-memory matrix descriptor, the
// 128-byte-swizzled tile layout those descriptors describe, and the fences. A warpgroup is 4
// consecutive warps; every thread of it issues each wgmma. The accumulator of m64nN is the mma.sync
// m16n8 layout per warp (warp w holds rows 16w..16w+15): d[4j + e] is c[j][e] of attention.cuh's
// fragments. The instruction wrappers list every accumulator register (written out once by a
// script; 32 / 64 / 128 operands).
// The instructions exist on sm_90a only (__CUDA_ARCH_FEAT_SM90_ALL; other targets trap); callers
// check the device first.
#pragma once
#include <cstdint>

namespace grin {
namespace {

__device__ __forceinline__ void fenceProxyAsync() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
/** Keeps the compiler from moving reads of an accumulator above the wait that completes it. */
template <int N>
__device__ __forceinline__ void pinRegisters(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(d[i])::"memory");
}

/**
 * Shared-memory matrix descriptor with the 128-byte swizzle: start address, leading and stride
 * byte offsets in 16-byte units. K-major operands (rows of 64 bf16 along K): stride 1024 = the next
 * 8 rows, leading unused. MN-major (transposed) operands: leading = the next 64 columns along N,
 * stride 1024 = the next 8 rows along K.
 */
__device__ __forceinline__ uint64_t smemDescriptor(uint32_t addr, uint32_t leading, uint32_t stride) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)((leading & 0x3FFFF) >> 4) << 16) |
         ((uint64_t)((stride & 0x3FFFF) >> 4) << 32) | (1ull << 62);
}

/**
 * Rows [0, R) of a row-major global tile of 128 bf16 columns into the 128-byte-swizzled layout: two
 * blocks (columns 0-63, 64-127) of R rows x 128 bytes; the 16-byte chunk c of row r lands at chunk
 * c ^ (r % 8). tile: a 1024-byte aligned shared address. Rows >= valid become 0.
 */
template <int R, int THREADS>
__device__ __forceinline__ void loadSwizzled128(uint32_t tile, const bf16* g, int valid, const bf16* any) {
  constexpr int STEP = THREADS / 16;  // rows a pass of the block (16 chunks a row)
  if constexpr ((R * 16) % THREADS == 0 && STEP % 8 == 0) {
    // Every pass moves a thread by STEP rows, a multiple of 8: its chunk's swizzled column is the
    // same in every pass, so the addresses are one base plus a constant a pass (no index math).
    const int cc = threadIdx.x % 16, r0 = threadIdx.x / 16;
    const uint32_t s0 = tile + (cc / 8) * (R * 128) + r0 * 128 + (((cc % 8) ^ (r0 & 7)) << 4);
    const bf16* g0 = g + (int64_t)r0 * 128 + cc * 8;
#pragma unroll
    for (int i = 0; i < R * 16 / THREADS; i++) {
      const bool ok = r0 + i * STEP < valid;
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s0 + i * STEP * 128),
                   "l"(ok ? g0 + i * STEP * 128 : any), "r"(ok ? 16 : 0));
    }
  } else {
#pragma unroll 4
    for (int idx = threadIdx.x; idx < R * 16; idx += THREADS) {
      const int r = idx / 16, cc = idx % 16, blk = cc / 8, c = cc % 8;
      const bool ok = r < valid;
      asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(tile + blk * (R * 128) + r * 128 +
                                                                          ((c ^ (r & 7)) << 4)),
                   "l"(ok ? g + (int64_t)r * 128 + cc * 8 : any), "r"(ok ? 16 : 0));
    }
  }
}

/**
 * One step of a double-buffered tile stream: with a next tile, start its loads (fetchNext issues the
 * cp.async) and wait for the current tile's; for the last tile wait for everything. Then this
 * thread's writes are made visible to the tensor core's (async proxy) reads, and the barrier makes
 * every thread's visible to all.
 */
template <typename F>
__device__ __forceinline__ void awaitTile(bool hasNext, F&& fetchNext) {
  if (hasNext) {
    fetchNext();
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 1;\n" ::);
  } else {
    asm volatile("cp.async.wait_group 0;\n" ::);
  }
  fenceProxyAsync();
  __syncthreads();
}

/** 16 bytes global -> shared (cp.async, L2 only), to a shared-memory address. */
__device__ __forceinline__ void cpAsync16To(uint32_t smem, const void* g) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem), "l"(g));
}

/** Four 8x8 bf16 matrices from the mma fragment layout to shared memory; lane l gives row l % 8 of matrix l / 8. */
__device__ __forceinline__ void stmatrixX4(uint32_t row, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(row), "r"(r[0]), "r"(r[1]),
               "r"(r[2]), "r"(r[3])
               : "memory");
}
/** bytes of shared memory to global by the bulk-copy engine (one thread issues it), then its commit. */
__device__ __forceinline__ void bulkStore(void* g, uint32_t smem, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\ncp.async.bulk.commit_group;\n" ::"l"(g),
               "r"(smem), "r"(bytes)
               : "memory");
}
/** Waits until this thread's bulk copies are complete. */
__device__ __forceinline__ void bulkWait() { asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory"); }
/** Waits until at most N of this thread's bulk copies are still reading their shared memory. */
template <int N>
__device__ __forceinline__ void bulkWaitRead() {
  asm volatile("cp.async.bulk.wait_group.read %0;\n" ::"n"(N) : "memory");
}

/** D[64 x 64] (+)= A[64 x 16] B[16 x 64], A and B K-major in shared memory (descriptors). */
__device__ __forceinline__ void wgmmaSS_m64n64k16(float (&d)[32], uint64_t descA, uint64_t descB, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "l"(descA), "l"(descB), "r"(accumulate));
#else
  __trap();
#endif
}

/** D[64 x 128] (+)= A[64 x 16] B[16 x 128], A in registers (each warp's 16 rows as the m16n8k16 A
 * fragment), B transposed (MN-major: N contiguous) in shared memory. */
__device__ __forceinline__ void wgmmaRS_m64n128k16_tB(float (&d)[64], const uint32_t (&a)[4], uint64_t descB,
                                                      int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(descB), "r"(accumulate));
#else
  __trap();
#endif
}

/** D[64 x 128] (+)= A[64 x 16] B[16 x 128], both transposed (MN-major: M, N contiguous) in shared
 * memory: A stored as its transpose [16 x 64] (rows of 64 M elements, one 128-byte swizzle atom). */
__device__ __forceinline__ void wgmmaSS_m64n128k16_tAB(float (&d)[64], uint64_t descA, uint64_t descB, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 1, 1;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(descA), "l"(descB), "r"(accumulate));
#else
  __trap();
#endif
}

/** D[64 x 256] (+)= A[64 x 16] B[16 x 256], A K-major in shared memory (descriptors); B K-major, or
 * with TRANS_B = 1 transposed (MN-major: N contiguous). */
template <int TRANS_B>
__device__ __forceinline__ void wgmmaSS_m64n256k16(float (&d)[128], uint64_t descA, uint64_t descB, int accumulate) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, %128, %129, p, 1, 1, 0, %131;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(descA), "l"(descB), "r"(accumulate), "n"(TRANS_B));
#else
  __trap();
#endif
}

}  // namespace
}  // namespace grin
