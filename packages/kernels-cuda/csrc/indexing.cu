// Indexing kernels: embedding, index_select / index_add (MoE dispatch and combine), gather /
// scatter_add (torch semantics). Selections copy raw elements (any dtype); the adds use atomics
// into an f32 accumulator for f32 and bf16 (bf16 rounds once at the end) and into i32 for i32.
// Bad indices are skipped (selections write 0) and reported through the async error slot.
// Mirrors src/cpu/indexing.ts. Test: tests/indexing.test.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

template <typename T>
__global__ void embeddingKernel(T* out, const T* weight, const int32_t* ids, int64_t n, int64_t v, int64_t d,
                                int64_t* errors) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n * d; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t row = i / d, col = i % d;
    int64_t id = ids[row];
    if (id < 0 || id >= v) {
      if (col == 0) reportIndexError(errors, ERR_EMBEDDING, id, v, row);
      out[i] = T(0);
      continue;
    }
    out[i] = weight[id * d + col];
  }
}

/** out[o, i, c] = x[o, index[i], c] over [outer, m, inner]. */
template <typename T>
__global__ void indexSelectKernel(T* out, const T* x, const int32_t* index, int64_t outer, int64_t n, int64_t m,
                                  int64_t inner, int64_t* errors) {
  int64_t total = outer * m * inner;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = i % inner, r = (i / inner) % m, o = i / (inner * m);
    int64_t k = index[r];
    if (k < 0 || k >= n) {
      if (c == 0 && o == 0) reportIndexError(errors, ERR_INDEX_SELECT, k, n, r);
      out[i] = T(0);
      continue;
    }
    out[i] = x[(o * n + k) * inner + c];
  }
}

__device__ __forceinline__ void atomicAccumulate(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomicAccumulate(int32_t* p, int v) { atomicAdd(p, v); }

/** acc[o, index[i], c] += src[o, i, c]; acc is f32 (for f32/bf16 src) or i32. */
template <typename T, typename A>
__global__ void indexAddKernel(A* acc, const T* src, const int32_t* index, int64_t outer, int64_t n, int64_t m,
                               int64_t inner, int64_t* errors) {
  int64_t total = outer * m * inner;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t c = i % inner, r = (i / inner) % m, o = i / (inner * m);
    int64_t k = index[r];
    if (k < 0 || k >= n) {
      if (c == 0 && o == 0) reportIndexError(errors, ERR_INDEX_ADD, k, n, r);
      continue;
    }
    atomicAccumulate(acc + (o * n + k) * inner + c, load(src + i));
  }
}

/** out[i] = x[offset of i in x with the axis coordinate replaced by index[i]]; D.a = x strides (axis 0). */
template <typename T>
__global__ void gatherKernel(T* out, const T* x, const int32_t* index, int64_t total, Dims D, int64_t axisStride,
                             int64_t size, int64_t* errors) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t at, unused;
    dimsOffsets(D, i, at, unused);
    int64_t k = index[i];
    if (k < 0 || k >= size) {
      reportIndexError(errors, ERR_GATHER, k, size, i);
      out[i] = T(0);
      continue;
    }
    out[i] = x[at + k * axisStride];
  }
}

/** acc[base offset + index[i] * axisStride] += src[D.b offset]; D.a = base strides (axis 0), D.b = src strides. */
template <typename T, typename A>
__global__ void scatterAddKernel(A* acc, const T* src, const int32_t* index, int64_t total, Dims D,
                                 int64_t axisStride, int64_t size, int64_t* errors) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t at, from;
    dimsOffsets(D, i, at, from);
    int64_t k = index[i];
    if (k < 0 || k >= size) {
      reportIndexError(errors, ERR_SCATTER_ADD, k, size, i);
      continue;
    }
    atomicAccumulate(acc + at + k * axisStride, load(src + from));
  }
}

static unsigned grid(int64_t n) {
  unsigned g = gridFor(n, 256);
  return g > 132 * 64 ? 132 * 64 : g;
}

#define GRIN_BY_SIZE(bytes, T, ...)                                  \
  switch (bytes) {                                                   \
    case 1: { typedef uint8_t T; __VA_ARGS__; break; }               \
    case 2: { typedef uint16_t T; __VA_ARGS__; break; }              \
    default: { typedef uint32_t T; __VA_ARGS__; break; }             \
  }

void embedding(int device, int dtype, void* out, const void* weight, const int32_t* ids, int64_t n, int64_t v,
               int64_t d) {
  if (n * d == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_BY_SIZE(itemSize(dtype), T,
      embeddingKernel<T><<<grid(n * d), 256, 0, s>>>((T*)out, (const T*)weight, ids, n, v, d, errorSlot(device)));
  checkLaunch("embedding");
}

void indexSelect(int device, int dtype, void* out, const void* x, const int32_t* index, int64_t outer, int64_t n,
                 int64_t m, int64_t inner) {
  if (outer * m * inner == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_BY_SIZE(itemSize(dtype), T,
      indexSelectKernel<T><<<grid(outer * m * inner), 256, 0, s>>>((T*)out, (const T*)x, index, outer, n, m, inner, errorSlot(device)));
  checkLaunch("index_select");
}

void indexAdd(int device, int dtype, void* acc, const void* src, const int32_t* index, int64_t outer, int64_t n,
              int64_t m, int64_t inner) {
  int64_t total = outer * m * inner;
  if (total == 0) return;
  cudaStream_t s = streamFor(device);
  int64_t* errors = errorSlot(device);
  switch (dtype) {
    case F32: indexAddKernel<float, float><<<grid(total), 256, 0, s>>>((float*)acc, (const float*)src, index, outer, n, m, inner, errors); break;
    case BF16: indexAddKernel<bf16, float><<<grid(total), 256, 0, s>>>((float*)acc, (const bf16*)src, index, outer, n, m, inner, errors); break;
    case I32: indexAddKernel<int32_t, int32_t><<<grid(total), 256, 0, s>>>((int32_t*)acc, (const int32_t*)src, index, outer, n, m, inner, errors); break;
    default: throw Error("cuda: index_add needs f32, bf16 or i32");
  }
  checkLaunch("index_add");
}

void gather(int device, int dtype, void* out, const void* x, const int32_t* index, int64_t total, const Dims& D,
            int64_t axisStride, int64_t size) {
  if (total == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_BY_SIZE(itemSize(dtype), T,
      gatherKernel<T><<<grid(total), 256, 0, s>>>((T*)out, (const T*)x, index, total, D, axisStride, size, errorSlot(device)));
  checkLaunch("gather");
}

void scatterAdd(int device, int dtype, void* acc, const void* src, const int32_t* index, int64_t total,
                const Dims& D, int64_t axisStride, int64_t size) {
  if (total == 0) return;
  cudaStream_t s = streamFor(device);
  int64_t* errors = errorSlot(device);
  switch (dtype) {
    case F32: scatterAddKernel<float, float><<<grid(total), 256, 0, s>>>((float*)acc, (const float*)src, index, total, D, axisStride, size, errors); break;
    case BF16: scatterAddKernel<bf16, float><<<grid(total), 256, 0, s>>>((float*)acc, (const bf16*)src, index, total, D, axisStride, size, errors); break;
    case I32: scatterAddKernel<int32_t, int32_t><<<grid(total), 256, 0, s>>>((int32_t*)acc, (const int32_t*)src, index, total, D, axisStride, size, errors); break;
    default: throw Error("cuda: scatter_add needs f32, bf16 or i32");
  }
  checkLaunch("scatter_add");
}

}  // namespace grin
