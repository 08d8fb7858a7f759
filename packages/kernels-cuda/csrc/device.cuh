// Device-side helpers shared by the kernels: load/store per dtype (bf16 computes in f32, bool and
// i32 in int), strided offsets from a Layout, NaN-aware compares, JS-style int conversion, block
// reductions and the dtype dispatch macro. Included by every *.cu file.
#pragma once
#include <cuda_bf16.h>

#include "common.h"

namespace grin {

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ int load(const int32_t* p) { return *p; }
__device__ __forceinline__ int load(const uint8_t* p) { return *p; }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void store(int32_t* p, int v) { *p = v; }
__device__ __forceinline__ void store(uint8_t* p, int v) { *p = (uint8_t)v; }

template <typename T> struct Acc { typedef float type; };
template <> struct Acc<int32_t> { typedef int type; };
template <> struct Acc<uint8_t> { typedef int type; };

__device__ __forceinline__ bool isNaN(float v) { return v != v; }
__device__ __forceinline__ bool isNaN(double v) { return v != v; }
__device__ __forceinline__ bool isNaN(int) { return false; }

/** JS ToInt32 of a number: NaN and infinities give 0, otherwise truncate and wrap modulo 2^32. */
__device__ __forceinline__ int32_t toInt32(double v) {
  if (!isfinite(v)) return 0;
  double t = fmod(trunc(v), 4294967296.0);
  if (t >= 2147483648.0) t -= 4294967296.0;
  if (t < -2147483648.0) t += 4294967296.0;
  return (int32_t)t;
}

/** Offsets of element `i` (row-major over L.shape) for the first `n` operands. */
template <int N>
__device__ __forceinline__ void offsetsOf(const Layout& L, int64_t i, int64_t (&out)[N]) {
#pragma unroll
  for (int k = 0; k < N; k++) out[k] = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < L.ndim) {
      int64_t size = L.shape[d];
      int64_t c = i % size;
      i /= size;
#pragma unroll
      for (int k = 0; k < N; k++) out[k] += c * L.strides[k][d];
    }
  }
}

/** offsetsOf in index type I: uint32_t when the host proved every offset fits (much cheaper division). */
template <int N, typename I>
__device__ __forceinline__ void offsetsIn(const Layout& L, I i, I (&out)[N]) {
#pragma unroll
  for (int k = 0; k < N; k++) out[k] = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < L.ndim) {
      I size = (I)L.shape[d];
      I c = i % size;
      i /= size;
#pragma unroll
      for (int k = 0; k < N; k++) out[k] += c * (I)L.strides[k][d];
    }
  }
}

/** Offsets into the two stride sets of `D` for element `i` of D.shape. */
__device__ __forceinline__ void dimsOffsets(const Dims& D, int64_t i, int64_t& a, int64_t& b) {
  a = 0;
  b = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < D.ndim) {
      int64_t c = i % D.shape[d];
      i /= D.shape[d];
      a += c * D.a[d];
      b += c * D.b[d];
    }
  }
}

/** Records the first out-of-range index seen (first writer wins); checked at the next host read. */
__device__ __forceinline__ void reportIndexError(int64_t* slot, int code, int64_t value, int64_t limit,
                                                 int64_t position) {
  if (atomicCAS((unsigned long long*)slot, 0ull, (unsigned long long)code) == 0ull) {
    slot[1] = value;
    slot[2] = limit;
    slot[3] = position;
  }
}

template <typename T>
__device__ __forceinline__ T warpSum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  return v;
}

/** Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. */
template <typename T>
__device__ T blockSum(T v, T* shared /* >= 33 */) {
  v = warpSum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  T total = lane < warps ? shared[lane] : T(0);
  if (warp == 0) total = warpSum(total);
  if (threadIdx.x == 0) shared[32] = total;
  __syncthreads();
  return shared[32];
}

/** NaN-propagating max (as the CPU softmax: a NaN anywhere makes the max NaN). */
__device__ __forceinline__ float nanMax(float a, float b) { return (a != a || a >= b) ? a : b; }

__device__ __forceinline__ float blockMax(float v, float* shared /* >= 33 */) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nanMax(v, __shfl_xor_sync(0xffffffff, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  float m = lane < warps ? shared[lane] : -INFINITY;
  if (warp == 0) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = nanMax(m, __shfl_xor_sync(0xffffffff, m, o));
  }
  if (threadIdx.x == 0) shared[32] = m;
  __syncthreads();
  return shared[32];
}

}  // namespace grin

#define GRIN_DISPATCH(dtype, T, ...)                                 \
  switch (dtype) {                                                   \
    case ::grin::F32: { typedef float T; __VA_ARGS__; break; }       \
    case ::grin::BF16: { typedef ::grin::bf16 T; __VA_ARGS__; break; } \
    case ::grin::I32: { typedef int32_t T; __VA_ARGS__; break; }     \
    case ::grin::BOOL: { typedef uint8_t T; __VA_ARGS__; break; }    \
    default: throw ::grin::Error("cuda: unknown dtype code " + std::to_string(dtype)); \
  }

#define GRIN_DISPATCH_FLOAT(dtype, T, what, ...)                     \
  switch (dtype) {                                                   \
    case ::grin::F32: { typedef float T; __VA_ARGS__; break; }       \
    case ::grin::BF16: { typedef ::grin::bf16 T; __VA_ARGS__; break; } \
    default: throw ::grin::Error(std::string("cuda: ") + what + ": needs f32 or bf16"); \
  }
