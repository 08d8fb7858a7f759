// Random draws in place from a Philox (key, counter) reservation: uniform, normal and exponential
// f32 tensors (op `random`), and x * U(low, high) per element (op `random_scale`, the MoE input
// jitter, whose backward reruns it on the gradient). One thread per Philox block of 4 words, the
// CPU stream's word layout (random/generator.ts), so the values equal the CPU kernel's bit for bit
// (normal and exponential up to an ulp of libm's log/cos/sin before rounding to f32).
// Test: tests/cases/random.ts (GPU).
#include "device.cuh"
#include "kernels.h"
#include "philox.cuh"

namespace grin {

namespace {
constexpr double TWO_PI = 6.283185307179586;  // 2 * Math.PI

/** Uniform (0) or exponential (2): value i = map(word i). */
__global__ void drawKernel(float* out, int64_t n, int distribution, PhiloxKey key, uint64_t counter, double a,
                           double b, double high, float ceiling) {
  int64_t blocks = (n + 3) / 4;
  for (int64_t blk = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; blk < blocks;
       blk += (int64_t)gridDim.x * blockDim.x) {
    uint4 w = philoxBlock(key, counter + blk);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t i = blk * 4 + j;
      if (i >= n) break;
      uint32_t word = wordOf(w, j);
      out[i] = distribution == 2 ? exponentialF32(word, a) : uniformF32(word, a, b, high, ceiling);
    }
  }
}

/** Box-Muller pairs: pair p reads words 2p, 2p+1, so one block gives values 4*blk .. 4*blk+3. */
__global__ void normalKernel(float* out, int64_t n, PhiloxKey key, uint64_t counter, double mean, double stddev) {
  int64_t blocks = (n + 3) / 4;
  for (int64_t blk = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; blk < blocks;
       blk += (int64_t)gridDim.x * blockDim.x) {
    uint4 w = philoxBlock(key, counter + blk);
#pragma unroll
    for (int pair = 0; pair < 2; pair++) {
      int64_t i = blk * 4 + 2 * pair;
      if (i >= n) break;
      double u1 = openUnitFloat32(wordOf(w, 2 * pair)), u2 = openUnitFloat32(wordOf(w, 2 * pair + 1));
      double radius = __dsqrt_rn(__dmul_rn(-2.0, log(u1)));
      double angle = __dmul_rn(TWO_PI, u2);
      double scaled = __dmul_rn(stddev, radius);
      out[i] = (float)__dadd_rn(mean, __dmul_rn(scaled, cos(angle)));
      if (i + 1 < n) out[i + 1] = (float)__dadd_rn(mean, __dmul_rn(scaled, sin(angle)));
    }
  }
}

/** Generator's float32Below(high): the largest f32 strictly below the double `high`. */
float float32Below(double high) {
  float rounded = (float)high;
  return (double)rounded < high ? rounded : nextafterf(rounded, -INFINITY);
}

/** out = x * U: the draw rounded to T (bf16 for bf16 x, as cast(rand) would), then one product. */
template <typename T>
__device__ __forceinline__ T scaled(T x, uint32_t word, double low, double scale, double high, float ceiling) {
  T u, y;
  store(&u, uniformF32(word, low, scale, high, ceiling));
  store(&y, __fmul_rn(load(&x), load(&u)));
  return y;
}

/** Four values of T in one access (8 bytes of bf16, 16 of f32). */
template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

/**
 * One Philox block of 4 words scales 4 consecutive values. VECTOR: x and out are aligned to a
 * Quad, so a whole block is one load and one store (the jitter's [T, D] bf16 scale ran at 1.6 TB/s
 * with 2-byte accesses); a partial last block goes value by value either way.
 */
template <typename T, bool VECTOR>
__global__ void scaleKernel(T* out, const T* x, int64_t n, PhiloxKey key, uint64_t counter, double low,
                            double scale, double high, float ceiling) {
  int64_t blocks = (n + 3) / 4;
  for (int64_t blk = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; blk < blocks;
       blk += (int64_t)gridDim.x * blockDim.x) {
    uint4 w = philoxBlock(key, counter + blk);
    if (VECTOR && blk * 4 + 4 <= n) {
      Quad<T> q = ((const Quad<T>*)x)[blk];
#pragma unroll
      for (int j = 0; j < 4; j++) q.v[j] = scaled(q.v[j], wordOf(w, j), low, scale, high, ceiling);
      ((Quad<T>*)out)[blk] = q;
      continue;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      int64_t i = blk * 4 + j;
      if (i >= n) break;
      out[i] = scaled(x[i], wordOf(w, j), low, scale, high, ceiling);
    }
  }
}

template <typename T>
void launchScale(T* out, const T* x, int64_t n, PhiloxKey key, uint64_t counter, double low, double high,
                 cudaStream_t stream) {
  unsigned grid = gridFor((n + 3) / 4, 256);
  float ceiling = float32Below(high);
  if (((uintptr_t)out | (uintptr_t)x) % sizeof(Quad<T>) == 0)
    scaleKernel<T, true><<<grid, 256, 0, stream>>>(out, x, n, key, counter, low, high - low, high, ceiling);
  else
    scaleKernel<T, false><<<grid, 256, 0, stream>>>(out, x, n, key, counter, low, high - low, high, ceiling);
}

}  // namespace

void randomFill(int device, int distribution, float* out, int64_t n, uint32_t key0, uint32_t key1,
                uint64_t counter, double a, double b) {
  if (n == 0) return;
  cudaStream_t stream = streamFor(device);
  PhiloxKey key{key0, key1};
  unsigned grid = gridFor((n + 3) / 4, 256);
  if (distribution == 1)
    normalKernel<<<grid, 256, 0, stream>>>(out, n, key, counter, a, b);
  else
    drawKernel<<<grid, 256, 0, stream>>>(out, n, distribution, key, counter, a, b - a, b, float32Below(b));
  checkLaunch("random");
}

void randomScale(int device, int dtype, void* out, const void* x, int64_t n, double low, double high, uint32_t key0,
                 uint32_t key1, uint64_t counter) {
  if (n == 0) return;
  cudaStream_t stream = streamFor(device);
  PhiloxKey key{key0, key1};
  if (dtype == BF16)
    launchScale((bf16*)out, (const bf16*)x, n, key, counter, low, high, stream);
  else if (dtype == F32)
    launchScale((float*)out, (const float*)x, n, key, counter, low, high, stream);
  else
    throw Error("random_scale (cuda): x must be f32 or bf16");
  checkLaunch("random_scale");
}

}  // namespace grin
