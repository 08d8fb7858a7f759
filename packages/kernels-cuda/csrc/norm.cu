// sum_squares: the sum of x * x over a whole tensor in f32, for gradient clipping. Two ordered passes
// (block partials, then one block over the partials), so the result is the same run to run; bf16
// squares are exact in f32, so a bf16 gradient needs no f32 copy. Mirrors sum_squares in
// packages/tensor/src/cpu/reduce.ts. Aligned tensors are read 16 bytes per thread per step: with one
// bf16 element per load, `grin bench train`'s 10.9 GB of gradients took 8.5 ms (1.3 TB/s).
// sum_squares_many does the same for a list of tensors in three launches instead of two per tensor
// (a model's ~250 gradients cost ~500 launches from JavaScript otherwise): each tensor's partials exactly as sum_squares lays them out, each tensor's sum, then
// the sums added in list order by one thread, so the total equals the loop's bit for bit.
// Test: tests/cases/reduce.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

namespace {
constexpr int THREADS = 256;

/**
 * One block's share of sum(x * x): 8 consecutive elements per thread per step (one 16-byte load of
 * bf16, two of f32) where x is 16-byte aligned, then the tail one by one; strided over `blocks`.
 */
template <typename T>
__device__ __forceinline__ float squaresOf(const T* x, int64_t n, int local, int blocks) {
  float acc = 0.f;
  const int64_t stride = (int64_t)blocks * blockDim.x, first = (int64_t)local * blockDim.x + threadIdx.x;
  int64_t done = 0;
  if (((uintptr_t)x & 15) == 0) {
    const int64_t chunks = n / 8;
    for (int64_t c = first; c < chunks; c += stride) {
      float v[8];
      if (sizeof(T) == 2) {
        uint4 raw = *(const uint4*)((const bf16*)x + c * 8);
        const __nv_bfloat162* h = (const __nv_bfloat162*)&raw;
#pragma unroll
        for (int j = 0; j < 4; j++) {
          float2 f = __bfloat1622float2(h[j]);
          v[2 * j] = f.x, v[2 * j + 1] = f.y;
        }
      } else {
        float4 a = *(const float4*)((const float*)x + c * 8), b = *(const float4*)((const float*)x + c * 8 + 4);
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
      }
#pragma unroll
      for (int j = 0; j < 8; j++) acc += v[j] * v[j];
    }
    done = chunks * 8;
  }
  for (int64_t i = done + first; i < n; i += stride) {
    float v = load(x + i);
    acc += v * v;
  }
  return acc;
}

template <typename T>
__global__ void squaresKernel(float* partials, const T* x, int64_t n) {
  __shared__ float shared[33];
  float acc = blockSum(squaresOf(x, n, blockIdx.x, gridDim.x), shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void partialsKernel(float* out, const float* partials, int count) {
  __shared__ float shared[33];
  float acc = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) *out = acc;
}
int blocksFor(int64_t n) { return (int)std::min<int64_t>(1024, std::max<int64_t>(1, (n + THREADS * 8 - 1) / (THREADS * 8))); }

// One launch covers up to MANY tensors, passed by value (kernel parameters may hold 32 KiB on sm_90).
constexpr int MANY = 256;
struct ManyTable {
  const void* x[MANY];
  int64_t n[MANY];
  int dtype[MANY];
  int firstBlock[MANY + 1];  // tensor i owns partials [firstBlock[i], firstBlock[i + 1])
  int count;
};

__global__ void squaresManyKernel(float* partials, const __grid_constant__ ManyTable t) {
  __shared__ float shared[33];
  int lo = 0, hi = t.count - 1;  // the tensor whose blocks contain blockIdx.x
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (t.firstBlock[mid] <= (int)blockIdx.x) lo = mid;
    else hi = mid - 1;
  }
  const int64_t n = t.n[lo];
  const int local = blockIdx.x - t.firstBlock[lo], blocks = t.firstBlock[lo + 1] - t.firstBlock[lo];
  float acc = t.dtype[lo] == BF16 ? squaresOf((const bf16*)t.x[lo], n, local, blocks)
                                  : squaresOf((const float*)t.x[lo], n, local, blocks);
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void partialsManyKernel(float* sums, const float* partials, const __grid_constant__ ManyTable t) {
  __shared__ float shared[33];
  const float* mine = partials + t.firstBlock[blockIdx.x];
  const int count = t.firstBlock[blockIdx.x + 1] - t.firstBlock[blockIdx.x];
  float acc = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += mine[i];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) sums[blockIdx.x] = acc;
}

__global__ void inOrderKernel(float* out, const float* sums, int count) {
  float total = sums[0];
  for (int i = 1; i < count; i++) total += sums[i];
  *out = total;
}
}  // namespace

void sumSquaresMany(int device, float* out, const void* const* xs, const int64_t* ns, const int* dtypes, int count) {
  if (count <= 0) throw Error("sum_squares_many: needs at least one tensor");
  cudaStream_t stream = streamFor(device);
  Scratch sums(device, count * sizeof(float));
  for (int start = 0; start < count; start += MANY) {
    ManyTable t{};
    t.count = std::min(MANY, count - start);
    for (int i = 0; i < t.count; i++) {
      if (dtypes[start + i] != F32 && dtypes[start + i] != BF16) throw Error("sum_squares_many: needs f32 or bf16 tensors");
      t.x[i] = xs[start + i];
      t.n[i] = ns[start + i];
      t.dtype[i] = dtypes[start + i];
      t.firstBlock[i + 1] = t.firstBlock[i] + blocksFor(ns[start + i]);
    }
    Scratch partials(device, t.firstBlock[t.count] * sizeof(float));
    squaresManyKernel<<<t.firstBlock[t.count], THREADS, 0, stream>>>(partials.as<float>(), t);
    partialsManyKernel<<<t.count, THREADS, 0, stream>>>(sums.as<float>() + start, partials.as<float>(), t);
    checkLaunch("sum_squares_many");
  }
  inOrderKernel<<<1, 1, 0, stream>>>(out, sums.as<float>(), count);
  checkLaunch("sum_squares_many");
}

void sumSquares(int device, int dtype, float* out, const void* x, int64_t n) {
  cudaStream_t stream = streamFor(device);
  int blocks = blocksFor(n);
  Scratch partials(device, blocks * sizeof(float));
  GRIN_DISPATCH_FLOAT(dtype, T, "sum_squares",
                      squaresKernel<<<blocks, THREADS, 0, stream>>>(partials.as<float>(), (const T*)x, n));
  partialsKernel<<<1, THREADS, 0, stream>>>(out, partials.as<float>(), blocks);
  checkLaunch("sum_squares");
}

}  // namespace grin
