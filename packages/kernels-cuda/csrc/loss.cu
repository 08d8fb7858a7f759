// Fused cross-entropy over logits [N, V] and i32 targets [N] (ignoreIndex rows count as 0 and are
// left out of the mean), and its backward (softmax - onehot) * scale. A block per row; the mean
// and sum reductions finish in one small block. Out-of-range targets go to the async error slot.
// Mirrors src/cpu/nn.ts (cross_entropy). Test: tests/nn.test.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

/** Row log-sum-exp, by the whole block. */
template <typename T>
__device__ float rowLogSumExp(const T* src, int v, float* shared) {
  float m = -INFINITY;
  for (int j = threadIdx.x; j < v; j += blockDim.x) m = nanMax(m, load(src + j));
  m = blockMax(m, shared);
  if (m == -INFINITY) return -INFINITY;
  float s = 0.0f;
  for (int j = threadIdx.x; j < v; j += blockDim.x) s += expf(load(src + j) - m);
  return m + logf(blockSum(s, shared));
}

/** loss[i] (f32) for every row; ignored rows give 0; bad targets give NaN and an async error. */
template <typename T>
__global__ void crossEntropyRowsKernel(float* loss, const T* logits, const int32_t* targets, int64_t n, int v,
                                       int ignoreIndex, int64_t* errors) {
  __shared__ float shared[33];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int t = targets[i];
    if (t == ignoreIndex) {
      if (threadIdx.x == 0) loss[i] = 0.0f;
      continue;
    }
    if (t < 0 || t >= v) {
      if (threadIdx.x == 0) loss[i] = NAN, reportIndexError(errors, ERR_CROSS_ENTROPY, t, v, i);
      continue;
    }
    float lse = rowLogSumExp(logits + i * v, v, shared);
    if (threadIdx.x == 0) loss[i] = lse - load(logits + i * v + t);
  }
}

/** out = sum(loss) or sum(loss) / count (count of rows whose target is not ignoreIndex). */
template <typename T>
__global__ void crossEntropyReduceKernel(T* out, const float* loss, const int32_t* targets, int64_t n,
                                         int ignoreIndex, bool mean) {
  __shared__ double shared[33];
  double s = 0.0, c = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += loss[i], c += targets[i] != ignoreIndex;
  s = blockSum(s, shared);
  c = blockSum(c, shared);
  if (threadIdx.x == 0) store(out, (float)(mean ? s / c : s));
}

template <typename T>
__global__ void crossEntropyNoneKernel(T* out, const float* loss, int64_t n) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i < n) store(out + i, loss[i]);
}

void crossEntropy(int device, int dtype, int reduction, void* out, const void* logits, const int32_t* targets,
                  int64_t n, int64_t v, int ignoreIndex) {
  cudaStream_t s = streamFor(device);
  Scratch loss(device, sizeof(float) * (n > 0 ? n : 1));
  unsigned blocks = (unsigned)(n < 132 * 64 ? (n > 0 ? n : 1) : 132 * 64);
  int threads = v >= 2048 ? 512 : v >= 256 ? 256 : 32;
  GRIN_DISPATCH_FLOAT(dtype, T, "cross_entropy", {
    if (n > 0) {
      crossEntropyRowsKernel<T><<<blocks, threads, 0, s>>>(loss.as<float>(), (const T*)logits, targets, n, (int)v, ignoreIndex, errorSlot(device));
      checkLaunch("cross_entropy");
    }
    if (reduction == 0) {  // none
      if (n > 0) crossEntropyNoneKernel<T><<<gridFor(n, 256), 256, 0, s>>>((T*)out, loss.as<float>(), n);
    } else {
      crossEntropyReduceKernel<T><<<1, 1024, 0, s>>>((T*)out, loss.as<float>(), targets, n, ignoreIndex, reduction == 1);
    }
  });
  checkLaunch("cross_entropy (reduce)");
}

__global__ void countKernel(float* count, const int32_t* targets, int64_t n, int ignoreIndex) {
  __shared__ double shared[33];
  double c = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) c += targets[i] != ignoreIndex;
  c = blockSum(c, shared);
  if (threadIdx.x == 0) *count = (float)c;
}

/** reduction: 0 none (g[i]), 1 mean (g[0] / count), 2 sum (g[0]). */
template <typename T>
__global__ void crossEntropyBackwardKernel(T* out, const T* g, const T* logits, const int32_t* targets,
                                           const float* count, int64_t n, int v, int ignoreIndex, int reduction,
                                           int64_t* errors) {
  __shared__ float shared[33];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int t = targets[i];
    T* dst = out + i * v;
    bool bad = t != ignoreIndex && (t < 0 || t >= v);
    if (t == ignoreIndex || bad) {
      if (bad && threadIdx.x == 0) reportIndexError(errors, ERR_CROSS_ENTROPY, t, v, i);
      for (int j = threadIdx.x; j < v; j += blockDim.x) store(dst + j, bad ? NAN : 0.0f);
      continue;
    }
    float scale = reduction == 0 ? load(g + i) : reduction == 2 ? load(g) : load(g) / *count;
    const T* src = logits + i * v;
    float lse = rowLogSumExp(src, v, shared);
    for (int j = threadIdx.x; j < v; j += blockDim.x)
      store(dst + j, (expf(load(src + j) - lse) - (j == t ? 1.0f : 0.0f)) * scale);
  }
}

void crossEntropyBackward(int device, int dtype, int reduction, void* out, const void* g, const void* logits,
                          const int32_t* targets, int64_t n, int64_t v, int ignoreIndex) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  Scratch count(device, sizeof(float));
  countKernel<<<1, 1024, 0, s>>>(count.as<float>(), targets, n, ignoreIndex);
  checkLaunch("cross_entropy_backward (count)");
  unsigned blocks = (unsigned)(n < 132 * 64 ? n : 132 * 64);
  int threads = v >= 2048 ? 512 : v >= 256 ? 256 : 32;
  GRIN_DISPATCH_FLOAT(dtype, T,  "cross_entropy_backward",
      crossEntropyBackwardKernel<T><<<blocks, threads, 0, s>>>((T*)out, (const T*)g, (const T*)logits, targets, count.as<float>(), n, (int)v, ignoreIndex, reduction, errorSlot(device)));
  checkLaunch("cross_entropy_backward");
}

}  // namespace grin
