// Fused cross-entropy over logits [N, V] and i32 targets [N] (ignoreIndex rows count as 0 and are
// left out of the mean), and its backward (softmax - onehot) * scale. The mean and sum reductions
// finish in one small block. Out-of-range targets go to the async error slot (a kernel cannot
// throw), so they surface at the next host read.
// The logits are the largest tensor of a language model's step (V = 32K) and these kernels only
// move memory, so both have vectorised versions (device.cuh, the same design as softmax and
// layer_norm in nn.cu: 16-byte loads, f32 math, a warp a row up to 128 vectors, else a block): the
// forward reads each row once (online max+sum), the backward holds rows of up to 2048 vectors in
// registers (read once, written once) and streams longer ones twice. The scalar kernels (a block
// a row, one element a thread) stay for rows that are not a multiple of the vector and unaligned
// logits; GRIN_CROSS_ENTROPY_SCALAR=1 forces them (dev/cross_entropy times both).
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

/**
 * Rows whose loss needs no logits: an ignored target gives 0, an out-of-range one NaN plus the async
 * error (reported once, by the row's leader). True when row i is settled.
 */
__device__ __forceinline__ bool settledRow(float* loss, int t, int v, int ignoreIndex, int64_t i, bool leader,
                                           int64_t* errors) {
  if (t == ignoreIndex) {
    if (leader) loss[i] = 0.0f;
    return true;
  }
  if (t < 0 || t >= v) {
    if (leader) loss[i] = NAN, reportIndexError(errors, ERR_CROSS_ENTROPY, t, v, i);
    return true;
  }
  return false;
}

/** loss[i] (f32) for every row; ignored rows give 0; bad targets give NaN and an async error. */
template <typename T>
__global__ void crossEntropyRowsKernel(float* loss, const T* logits, const int32_t* targets, int64_t n, int v,
                                       int ignoreIndex, int64_t* errors) {
  __shared__ float shared[33];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    int t = targets[i];
    if (settledRow(loss, t, v, ignoreIndex, i, threadIdx.x == 0, errors)) continue;
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

/** Ignored rows write zeros, bad targets NaN and an async error (lane 0); true when the row is done. */
template <int LANES, typename T>
__device__ __forceinline__ bool filledRow(T* dst, int vecs, const RowWalk<LANES>& walk, int t, int v,
                                          int ignoreIndex, int64_t i, int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  bool bad = t != ignoreIndex && (t < 0 || t >= v);
  if (t != ignoreIndex && !bad) return false;
  if (bad && walk.lane == 0) reportIndexError(errors, ERR_CROSS_ENTROPY, t, v, i);
  float fill[V];
#pragma unroll
  for (int j = 0; j < V; j++) fill[j] = bad ? NAN : 0.0f;
  for (int k = walk.lane; k < vecs; k += walk.lanes) storeVec(dst + k * V, fill);
  return true;
}

/** crossEntropyRowsKernel with 16-byte loads: one read of the row (online max+sum), a warp or a block a row. */
template <typename T, int LANES>
__global__ void __launch_bounds__(512) crossEntropyRowsVecKernel(float* loss, const T* logits, const int32_t* targets,
                                                                 int64_t n, int v, int ignoreIndex, int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  __shared__ MaxSum shared[33];
  RowWalk<LANES> walk;
  const int vecs = v / V;
  for (int64_t i = walk.first; i < n; i += walk.step) {
    int t = targets[i];
    if (settledRow(loss, t, v, ignoreIndex, i, walk.lane == 0, errors)) continue;
    MaxSum acc = rowMaxSumVec(logits + i * v, vecs, walk, shared);
    if (walk.lane == 0) loss[i] = acc.m + logf(acc.s) - load(logits + i * v + t);  // all -inf: -inf - -inf = NaN
  }
}

/** A warp a row up to 128 vectors (1024 bf16 / 512 f32), else a block. False: the scalar kernel. */
template <typename T>
static bool crossEntropyVec(cudaStream_t s, float* loss, const T* logits, const int32_t* targets, int64_t n,
                            int64_t v, int ignoreIndex, int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  if (v % V != 0 || !aligned16({logits}) || scalarForced("GRIN_CROSS_ENTROPY_SCALAR")) return false;
  VecPlan p = vecPlan(n, v / V, 4);
  if (!p.ok) p = streamPlan(n, v * (int64_t)sizeof(T), false);
  if (p.warp) crossEntropyRowsVecKernel<T, 32><<<p.blocks, p.threads, 0, s>>>(loss, logits, targets, n, (int)v, ignoreIndex, errors);
  else crossEntropyRowsVecKernel<T, 0><<<p.blocks, p.threads, 0, s>>>(loss, logits, targets, n, (int)v, ignoreIndex, errors);
  return true;
}

void crossEntropy(int device, int dtype, int reduction, void* out, const void* logits, const int32_t* targets,
                  int64_t n, int64_t v, int ignoreIndex) {
  cudaStream_t s = streamFor(device);
  Scratch loss(device, sizeof(float) * (n > 0 ? n : 1));
  unsigned blocks = (unsigned)(n < 132 * 64 ? (n > 0 ? n : 1) : 132 * 64);
  int threads = v >= 2048 ? 512 : v >= 256 ? 256 : 32;
  GRIN_DISPATCH_FLOAT(dtype, T, "cross_entropy", {
    if (n > 0) {
      if (!crossEntropyVec<T>(s, loss.as<float>(), (const T*)logits, targets, n, v, ignoreIndex, errorSlot(device)))
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

/** The gradient's scale for row i: g[i] (none), g[0] (sum) or g[0] / count (mean). */
template <typename T>
__device__ __forceinline__ float gradScale(const T* g, const float* count, int64_t i, int reduction) {
  return reduction == 0 ? load(g + i) : reduction == 2 ? load(g) : load(g) / *count;
}

/**
 * The backward with the row in registers (N vectors a lane, a warp or the block a row): max, the
 * exps and their sum from registers, so the logits are read once and the gradient written once.
 */
template <typename T, int N, int LANES>
__global__ void __launch_bounds__(512) crossEntropyBackwardVecKernel(T* out, const T* g, const T* logits,
                                                                     const int32_t* targets, const float* count,
                                                                     int64_t n, int v, int ignoreIndex,
                                                                     int reduction, int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  RowWalk<LANES> walk;
  const int vecs = v / V;
  for (int64_t i = walk.first; i < n; i += walk.step) {
    const int t = targets[i];
    T* dst = out + i * v;
    if (filledRow(dst, vecs, walk, t, v, ignoreIndex, i, errors)) continue;
    const float scale = gradScale(g, count, i, reduction);
    const T* src = logits + i * v;
    float x[N][V];
    float m = -INFINITY;
#pragma unroll
    for (int q = 0; q < N; q++) {
      int k = walk.lane + q * walk.lanes;
      if (k < vecs) {
        loadVec(src + k * V, x[q]);
#pragma unroll
        for (int j = 0; j < V; j++) m = nanMax(m, x[q][j]);
      }
    }
    m = rowMax<LANES>(m, shared);
    float s = 0.0f;
#pragma unroll
    for (int q = 0; q < N; q++) {
      if (walk.lane + q * walk.lanes < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) s += x[q][j] = expRow(x[q][j] - m);  // all -inf: NaN, as the scalar kernel
      }
    }
    const float inv = 1.0f / rowSum<LANES>(s, shared);
#pragma unroll
    for (int q = 0; q < N; q++) {
      int k = walk.lane + q * walk.lanes;
      if (k < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) x[q][j] = (x[q][j] * inv - (k * V + j == t ? 1.0f : 0.0f)) * scale;
        storeVec(dst + k * V, x[q]);
      }
    }
  }
}

/** Rows too long for registers: a block a row, online max+sum on the first read, the gradient on the second. */
template <typename T>
__global__ void __launch_bounds__(512) crossEntropyBackwardStreamKernel(T* out, const T* g, const T* logits,
                                                                        const int32_t* targets, const float* count,
                                                                        int64_t n, int v, int ignoreIndex,
                                                                        int reduction, int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  __shared__ MaxSum shared[33];
  RowWalk<0> walk;
  const int vecs = v / V;
  for (int64_t i = walk.first; i < n; i += walk.step) {
    const int t = targets[i];
    T* dst = out + i * v;
    if (filledRow(dst, vecs, walk, t, v, ignoreIndex, i, errors)) continue;
    const float scale = gradScale(g, count, i, reduction);
    const T* src = logits + i * v;
    MaxSum acc = rowMaxSumVec(src, vecs, walk, shared);
    const float lse = acc.m + logf(acc.s);
    mapRowVec(dst, src, vecs, walk, [&](float (&x)[V], int j0) {
#pragma unroll
      for (int j = 0; j < V; j++) x[j] = (expRow(x[j] - lse) - (j0 + j == t ? 1.0f : 0.0f)) * scale;
    });
  }
}

/** Rows of up to 2048 vectors (16K bf16 / 8K f32) in registers, longer ones streamed. False: the scalar kernel. */
template <typename T>
static bool crossEntropyBackwardVec(cudaStream_t s, T* out, const T* g, const T* logits, const int32_t* targets,
                                    const float* count, int64_t n, int64_t v, int ignoreIndex, int reduction,
                                    int64_t* errors) {
  constexpr int V = VecOf<T>::n;
  if (v % V != 0 || !aligned16({out, logits}) || scalarForced("GRIN_CROSS_ENTROPY_SCALAR")) return false;
  VecPlan p = vecPlan(n, v / V, 4);
  const int len = (int)v;
  if (!p.ok) {
    p = streamPlan(n, v * (int64_t)sizeof(T), true);
    crossEntropyBackwardStreamKernel<T><<<p.blocks, p.threads, 0, s>>>(out, g, logits, targets, count, n, len, ignoreIndex, reduction, errors);
  } else if (!p.warp) {
    crossEntropyBackwardVecKernel<T, 4, 0><<<p.blocks, p.threads, 0, s>>>(out, g, logits, targets, count, n, len, ignoreIndex, reduction, errors);
  } else if (p.n == 1) {
    crossEntropyBackwardVecKernel<T, 1, 32><<<p.blocks, p.threads, 0, s>>>(out, g, logits, targets, count, n, len, ignoreIndex, reduction, errors);
  } else if (p.n == 2) {
    crossEntropyBackwardVecKernel<T, 2, 32><<<p.blocks, p.threads, 0, s>>>(out, g, logits, targets, count, n, len, ignoreIndex, reduction, errors);
  } else {
    crossEntropyBackwardVecKernel<T, 4, 32><<<p.blocks, p.threads, 0, s>>>(out, g, logits, targets, count, n, len, ignoreIndex, reduction, errors);
  }
  return true;
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
  GRIN_DISPATCH_FLOAT(dtype, T, "cross_entropy_backward",
      if (!crossEntropyBackwardVec<T>(s, (T*)out, (const T*)g, (const T*)logits, targets, count.as<float>(), n, v, ignoreIndex, reduction, errorSlot(device)))
        crossEntropyBackwardKernel<T><<<blocks, threads, 0, s>>>((T*)out, (const T*)g, (const T*)logits, targets, count.as<float>(), n, (int)v, ignoreIndex, reduction, errorSlot(device)));
  checkLaunch("cross_entropy_backward");
}

}  // namespace grin
