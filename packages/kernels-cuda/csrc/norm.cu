// sum_squares: the sum of x * x over a whole tensor in f32, for gradient clipping. Two ordered passes
// (block partials, then one block over the partials), so the result is the same run to run; bf16
// squares are exact in f32, so a bf16 gradient needs no f32 copy. Mirrors sum_squares in
// packages/tensor/src/cpu/reduce.ts. Test: tests/cases/reduce.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

namespace {
constexpr int THREADS = 256;

template <typename T>
__global__ void squaresKernel(float* partials, const T* x, int64_t n) {
  __shared__ float shared[33];
  float acc = 0.f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float v = load(x + i);
    acc += v * v;
  }
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

__global__ void partialsKernel(float* out, const float* partials, int count) {
  __shared__ float shared[33];
  float acc = 0.f;
  for (int i = threadIdx.x; i < count; i += blockDim.x) acc += partials[i];
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) *out = acc;
}
}  // namespace

void sumSquares(int device, int dtype, float* out, const void* x, int64_t n) {
  cudaStream_t stream = streamFor(device);
  int blocks = (int)std::min<int64_t>(1024, std::max<int64_t>(1, (n + THREADS * 8 - 1) / (THREADS * 8)));
  Scratch partials(device, blocks * sizeof(float));
  GRIN_DISPATCH_FLOAT(dtype, T, "sum_squares",
                      squaresKernel<<<blocks, THREADS, 0, stream>>>(partials.as<float>(), (const T*)x, n));
  partialsKernel<<<1, THREADS, 0, stream>>>(out, partials.as<float>(), blocks);
  checkLaunch("sum_squares");
}

}  // namespace grin
