// Data movement and conversion kernels: strided copy (contiguous, copy_inplace, concat and
// slice_scatter all reduce to it), cast between f32/bf16/i32/bool with the CPU backend's rules
// (i32 = JS ToInt32: truncate, wrap, NaN -> 0; bool = value != 0), fill and arange.
// Mirrors src/cpu/layout.ts. Test: tests/layout.test.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

constexpr int UNROLL = 4;

/** dst (strided) = src (strided); UNROLL grid-strided elements in flight per thread. */
template <typename T, typename I>
__global__ void copyKernel(T* dst, const T* src, I n, Layout L) {
  const I stride = (I)gridDim.x * blockDim.x;
  for (I base = (I)blockIdx.x * blockDim.x + threadIdx.x; base < n; base += stride * UNROLL) {
    T v[UNROLL];
    I o[UNROLL][2];
#pragma unroll
    for (int k = 0; k < UNROLL; k++) {
      I i = base + k * stride;
      if (i < n) {
        offsetsIn<2, I>(L, i, o[k]);
        v[k] = src[o[k][1]];
      }
    }
#pragma unroll
    for (int k = 0; k < UNROLL; k++)
      if (base + k * stride < n) dst[o[k][0]] = v[k];
  }
}

template <typename T>
__global__ void fillKernel(T* dst, T value, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = value;
}

// Conversions: every source goes through double (exact for f32, bf16 and i32), then to the target.
__device__ __forceinline__ double toDouble(float v) { return v; }
__device__ __forceinline__ double toDouble(bf16 v) { return __bfloat162float(v); }
__device__ __forceinline__ double toDouble(int32_t v) { return v; }
__device__ __forceinline__ double toDouble(uint8_t v) { return v; }
__device__ __forceinline__ void fromDouble(float* p, double v) { *p = (float)v; }
__device__ __forceinline__ void fromDouble(bf16* p, double v) { *p = __float2bfloat16((float)v); }
__device__ __forceinline__ void fromDouble(int32_t* p, double v) { *p = toInt32(v); }
__device__ __forceinline__ void fromDouble(uint8_t* p, double v) { *p = v != 0.0 ? 1 : 0; }

template <typename From, typename To>
__global__ void castKernel(To* dst, const From* src, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    fromDouble(dst + i, toDouble(src[i]));
}

template <typename T>
__global__ void arangeKernel(T* dst, double start, double step, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    fromDouble(dst + i, start + (double)i * step);
}

static unsigned grid(int64_t n) {
  unsigned g = gridFor(n, 256);
  return g > 132 * 64 ? 132 * 64 : g;
}

template <typename T>
static void copyTyped(cudaStream_t s, void* dst, const void* src, int64_t n, const Layout& L) {
  unsigned g = grid((n + UNROLL - 1) / UNROLL);
  if (fits32(L, 2, n)) copyKernel<T, uint32_t><<<g, 256, 0, s>>>((T*)dst, (const T*)src, (uint32_t)n, L);
  else copyKernel<T, int64_t><<<g, 256, 0, s>>>((T*)dst, (const T*)src, n, L);
}

void copyStrided(int device, int itemBytes, void* dst, const void* src, int64_t n, const Layout& L) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  switch (itemBytes) {
    case 1: copyTyped<uint8_t>(s, dst, src, n, L); break;
    case 2: copyTyped<uint16_t>(s, dst, src, n, L); break;
    case 4: copyTyped<uint32_t>(s, dst, src, n, L); break;
    default: throw Error("cuda: copy: unsupported element size " + std::to_string(itemBytes));
  }
  checkLaunch("copy");
}

void copyBytes(int device, void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, streamFor(device)), "cudaMemcpyAsync (D2D)");
}

void fill(int device, int itemBytes, void* dst, uint32_t bits, int64_t n) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  switch (itemBytes) {
    case 1: fillKernel<uint8_t><<<grid(n), 256, 0, s>>>((uint8_t*)dst, (uint8_t)bits, n); break;
    case 2: fillKernel<uint16_t><<<grid(n), 256, 0, s>>>((uint16_t*)dst, (uint16_t)bits, n); break;
    default: fillKernel<uint32_t><<<grid(n), 256, 0, s>>>((uint32_t*)dst, bits, n);
  }
  checkLaunch("fill");
}

void cast(int device, int from, int to, void* dst, const void* src, int64_t n) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH(from, F, GRIN_DISPATCH(to, O, castKernel<F, O><<<grid(n), 256, 0, s>>>((O*)dst, (const F*)src, n)));
  checkLaunch("cast");
}

void arange(int device, int dtype, void* dst, double start, double step, int64_t n) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH(dtype, T, arangeKernel<T><<<grid(n), 256, 0, s>>>((T*)dst, start, step, n));
  checkLaunch("arange");
}

}  // namespace grin
