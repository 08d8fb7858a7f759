// Dropless MoE kernels (ops of packages/tensor/src/ops/moe.ts): the permute (histogram, scan and
// stable positions in one block: T*K is at most a few tens of thousands of picks), the dispatch of
// token rows into expert order, the combine as a gather-sum (each token reads its K rows at known
// positions: no atomics, deterministic), its backward, and the fused SiLU-GLU and its backward.
// f32 math for bf16 storage; 16-byte loads and stores where the widths allow. Mirrors
// src/cpu/moe.ts. Test: tests/cases/moe.ts (GPU, both the vector and the scalar widths).
#include "device.cuh"
#include "kernels.h"

namespace grin {

namespace {

/**
 * One block. Thread i owns picks [i*chunk, (i+1)*chunk). counts[e*threads + i] holds its picks of
 * expert e; an exclusive scan over that expert-major table gives every (expert, thread) its first
 * row, so rows come out in expert order and, within an expert, in pick order (stable).
 */
__global__ void permuteKernel(int32_t* counts_E, int32_t* rowSlot_N, int32_t* position_TK, const int32_t* experts,
                              int64_t n, int E, int64_t* errors) {
  extern __shared__ int32_t table[];  // [E * threads], then [threads] partial sums
  int threads = blockDim.x, i = threadIdx.x;
  int32_t* partial = table + E * threads;
  int64_t chunk = (n + threads - 1) / threads;
  int64_t begin = min(n, i * chunk), end = min(n, begin + chunk);
  for (int e = 0; e < E; e++) table[e * threads + i] = 0;
  for (int64_t p = begin; p < end; p++) {
    int e = experts[p];
    if (e < 0 || e >= E) {
      reportIndexError(errors, ERR_MOE_PERMUTE, e, E, p);
      e = 0;  // keeps the rows a permutation; the host read of the counts reports the error
    }
    table[e * threads + i]++;
  }
  __syncthreads();
  // exclusive scan of the E*threads table: thread i scans entries [i*E, (i+1)*E)
  int32_t sum = 0;
  for (int j = 0; j < E; j++) sum += table[i * E + j];
  partial[i] = sum;
  __syncthreads();
  if (i == 0) {
    int32_t run = 0;
    for (int j = 0; j < threads; j++) {
      int32_t v = partial[j];
      partial[j] = run;
      run += v;
    }
  }
  __syncthreads();
  int32_t run = partial[i];
  for (int j = 0; j < E; j++) {
    int32_t v = table[i * E + j];
    table[i * E + j] = run;
    run += v;
  }
  __syncthreads();
  for (int e = i; e < E; e += threads) counts_E[e] = (e + 1 < E ? table[(e + 1) * threads] : (int32_t)n) - table[e * threads];
  __syncthreads();
  for (int64_t p = begin; p < end; p++) {
    int e = experts[p];
    if (e < 0 || e >= E) e = 0;
    int32_t row = table[e * threads + i]++;
    rowSlot_N[row] = (int32_t)p;
    position_TK[p] = row;
  }
}

/** x_ND[position[t, k]] = x_TD[t]. */
template <typename T>
__global__ void dispatchKernel(T* out, const T* x, const int32_t* position, int64_t tokens, int K, int64_t D) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tokens * D;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = i / D, d = i % D;
    T v = x[i];
    for (int k = 0; k < K; k++) out[(int64_t)position[t * K + k] * D + d] = v;
  }
}

/** out[t] = sum_k w[t, k] * y[position[t, k]] (w null: weights of 1). */
template <typename T>
__global__ void combineKernel(T* out, const T* y, const T* w, const int32_t* position, int64_t tokens, int K,
                              int64_t D) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tokens * D;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = i / D, d = i % D;
    float acc = 0.f;
    for (int k = 0; k < K; k++) {
      float v = load(y + (int64_t)position[t * K + k] * D + d);
      acc += w ? load(w + t * K + k) * v : v;
    }
    store(out + i, acc);
  }
}

/** One block per token: dy[position[t, k]] = w[t, k] g[t] and dw[t, k] = g[t] . y[position[t, k]]. */
template <typename T>
__global__ void combineBackwardKernel(T* dy, T* dw, const T* g, const T* y, const T* w, const int32_t* position,
                                      int K, int64_t D) {
  __shared__ float shared[33];
  int64_t t = blockIdx.x;
  for (int k = 0; k < K; k++) {
    int64_t row = position[t * K + k];
    float weight = load(w + t * K + k), dot = 0.f;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      float grad = load(g + t * D + d);
      store(dy + row * D + d, weight * grad);
      dot += grad * load(y + row * D + d);
    }
    dot = blockSum(dot, shared);
    if (threadIdx.x == 0) store(dw + t * K + k, dot);
  }
}

__device__ __forceinline__ float sigmoidOf(float v) { return 1.f / (1.f + expf(-v)); }

template <typename T>
__global__ void siluGluKernel(T* out, const T* h, int64_t rows, int64_t I) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * I; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / I, c = i % I;
    float gate = load(h + r * 2 * I + c), up = load(h + r * 2 * I + I + c);
    store(out + i, gate * sigmoidOf(gate) * up);
  }
}

template <typename T>
__global__ void siluGluBackwardKernel(T* dh, const T* g, const T* h, int64_t rows, int64_t I) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * I; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / I, c = i % I;
    float gate = load(h + r * 2 * I + c), up = load(h + r * 2 * I + I + c), grad = load(g + i);
    float s = sigmoidOf(gate);
    store(dh + r * 2 * I + c, grad * up * s * (1.f + gate * (1.f - s)));
    store(dh + r * 2 * I + I + c, grad * gate * s);
  }
}

// 16-byte versions (4 f32 or 8 bf16 a thread) where the widths and pointers allow: these kernels
// only move memory, and scalar 2-byte accesses leave most of the bandwidth unused.
template <typename T>
__global__ void dispatchVecKernel(T* out, const T* x, const int32_t* position, int64_t tokens, int K, int64_t D) {
  constexpr int V = VecOf<T>::n;
  int64_t chunks = D / V;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tokens * chunks;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = i / chunks, c = i % chunks;
    uint4 v = __ldg((const uint4*)(x + t * D) + c);
    for (int k = 0; k < K; k++) __stwb((uint4*)(out + (int64_t)position[t * K + k] * D) + c, v);
  }
}

template <typename T>
__global__ void combineVecKernel(T* out, const T* y, const T* w, const int32_t* position, int64_t tokens, int K,
                                 int64_t D) {
  constexpr int V = VecOf<T>::n;
  int64_t chunks = D / V;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < tokens * chunks;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t t = i / chunks, c = i % chunks;
    float acc[V] = {}, v[V];
    for (int k = 0; k < K; k++) {
      loadVec(y + (int64_t)position[t * K + k] * D + c * V, v);
      float weight = w ? load(w + t * K + k) : 1.f;
#pragma unroll
      for (int j = 0; j < V; j++) acc[j] += weight * v[j];
    }
    storeVec(out + t * D + c * V, acc);
  }
}

template <typename T>
__global__ void combineBackwardVecKernel(T* dy, T* dw, const T* g, const T* y, const T* w, const int32_t* position,
                                         int K, int64_t D) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  int64_t t = blockIdx.x;
  for (int k = 0; k < K; k++) {
    int64_t row = position[t * K + k];
    float weight = load(w + t * K + k), dot = 0.f, grad[V], value[V], out[V];
    for (int64_t d = threadIdx.x * V; d < D; d += blockDim.x * V) {
      loadVec(g + t * D + d, grad);
      loadVec(y + row * D + d, value);
#pragma unroll
      for (int j = 0; j < V; j++) {
        out[j] = weight * grad[j];
        dot += grad[j] * value[j];
      }
      storeVec(dy + row * D + d, out);
    }
    dot = blockSum(dot, shared);
    if (threadIdx.x == 0) store(dw + t * K + k, dot);
  }
}

template <typename T>
__global__ void siluGluVecKernel(T* out, const T* h, int64_t rows, int64_t I) {
  constexpr int V = VecOf<T>::n;
  int64_t chunks = I / V;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * chunks;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / chunks, c = i % chunks;
    float gate[V], up[V], a[V];
    loadVec(h + r * 2 * I + c * V, gate);
    loadVec(h + r * 2 * I + I + c * V, up);
#pragma unroll
    for (int j = 0; j < V; j++) a[j] = gate[j] * sigmoidOf(gate[j]) * up[j];
    storeVec(out + r * I + c * V, a);
  }
}

template <typename T>
__global__ void siluGluBackwardVecKernel(T* dh, const T* g, const T* h, int64_t rows, int64_t I) {
  constexpr int V = VecOf<T>::n;
  int64_t chunks = I / V;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < rows * chunks;
       i += (int64_t)gridDim.x * blockDim.x) {
    int64_t r = i / chunks, c = i % chunks;
    float gate[V], up[V], grad[V], dgate[V], dup[V];
    loadVec(h + r * 2 * I + c * V, gate);
    loadVec(h + r * 2 * I + I + c * V, up);
    loadVec(g + r * I + c * V, grad);
#pragma unroll
    for (int j = 0; j < V; j++) {
      float s = sigmoidOf(gate[j]);
      dgate[j] = grad[j] * up[j] * s * (1.f + gate[j] * (1.f - s));
      dup[j] = grad[j] * gate[j] * s;
    }
    storeVec(dh + r * 2 * I + c * V, dgate);
    storeVec(dh + r * 2 * I + I + c * V, dup);
  }
}

/** Whether 16-byte vectors of T fit every row of `width` elements at each pointer. */
template <typename T>
bool vectorFits(int64_t width, std::initializer_list<const void*> pointers) {
  if (width % VecOf<T>::n != 0) return false;
  for (const void* p : pointers)
    if (p && ((uintptr_t)p % 16) != 0) return false;
  return true;
}

}  // namespace

void moePermute(int device, int32_t* counts_E, int32_t* rowSlot_N, int32_t* position_TK, const int32_t* experts,
                int64_t n, int E) {
  if (E < 1 || E > 256) throw Error("moe_permute (cuda): the number of experts must be in 1..256");
  if (n >= (1ll << 31)) throw Error("moe_permute (cuda): more than 2^31 - 1 picks");
  cudaStream_t stream = streamFor(device);
  int threads = E <= 16 ? 512 : E <= 64 ? 128 : 32;
  size_t shared = (size_t)(E + 1) * threads * sizeof(int32_t);
  permuteKernel<<<1, threads, shared, stream>>>(counts_E, rowSlot_N, position_TK, experts, n, E, errorSlot(device));
  checkLaunch("moe_permute");
}

void moeDispatch(int device, int dtype, void* out, const void* x, const int32_t* position, int64_t tokens, int K,
                 int64_t D) {
  if (tokens * D == 0) return;
  GRIN_DISPATCH_FLOAT(dtype, T, "moe_dispatch", {
    if (vectorFits<T>(D, {out, x}))
      dispatchVecKernel<<<gridFor(tokens * D / VecOf<T>::n, 256), 256, 0, streamFor(device)>>>(
          (T*)out, (const T*)x, position, tokens, K, D);
    else
      dispatchKernel<<<gridFor(tokens * D, 256), 256, 0, streamFor(device)>>>((T*)out, (const T*)x, position,
                                                                              tokens, K, D);
  });
  checkLaunch("moe_dispatch");
}

void moeCombine(int device, int dtype, void* out, const void* y, const void* w, const int32_t* position,
                int64_t tokens, int K, int64_t D) {
  if (tokens * D == 0) return;
  GRIN_DISPATCH_FLOAT(dtype, T, "moe_combine", {
    if (vectorFits<T>(D, {out, y}))
      combineVecKernel<<<gridFor(tokens * D / VecOf<T>::n, 256), 256, 0, streamFor(device)>>>(
          (T*)out, (const T*)y, (const T*)w, position, tokens, K, D);
    else
      combineKernel<<<gridFor(tokens * D, 256), 256, 0, streamFor(device)>>>((T*)out, (const T*)y, (const T*)w,
                                                                             position, tokens, K, D);
  });
  checkLaunch("moe_combine");
}

void moeCombineBackward(int device, int dtype, void* dy, void* dw, const void* g, const void* y, const void* w,
                        const int32_t* position, int64_t tokens, int K, int64_t D) {
  if (tokens == 0) return;
  if (tokens >= (1ll << 31)) throw Error("moe_combine_backward (cuda): more than 2^31 - 1 tokens");
  GRIN_DISPATCH_FLOAT(dtype, T, "moe_combine_backward", {
    if (vectorFits<T>(D, {dy, g, y}))
      combineBackwardVecKernel<<<(unsigned)tokens, 128, 0, streamFor(device)>>>(
          (T*)dy, (T*)dw, (const T*)g, (const T*)y, (const T*)w, position, K, D);
    else
      combineBackwardKernel<<<(unsigned)tokens, 256, 0, streamFor(device)>>>(
          (T*)dy, (T*)dw, (const T*)g, (const T*)y, (const T*)w, position, K, D);
  });
  checkLaunch("moe_combine_backward");
}

void siluGlu(int device, int dtype, void* out, const void* h, int64_t rows, int64_t I) {
  if (rows * I == 0) return;
  GRIN_DISPATCH_FLOAT(dtype, T, "silu_glu", {
    if (vectorFits<T>(I, {out, h}))
      siluGluVecKernel<<<gridFor(rows * I / VecOf<T>::n, 256), 256, 0, streamFor(device)>>>((T*)out, (const T*)h,
                                                                                            rows, I);
    else
      siluGluKernel<<<gridFor(rows * I, 256), 256, 0, streamFor(device)>>>((T*)out, (const T*)h, rows, I);
  });
  checkLaunch("silu_glu");
}

void siluGluBackward(int device, int dtype, void* dh, const void* g, const void* h, int64_t rows, int64_t I) {
  if (rows * I == 0) return;
  GRIN_DISPATCH_FLOAT(dtype, T, "silu_glu_backward", {
    if (vectorFits<T>(I, {dh, g, h}))
      siluGluBackwardVecKernel<<<gridFor(rows * I / VecOf<T>::n, 256), 256, 0, streamFor(device)>>>(
          (T*)dh, (const T*)g, (const T*)h, rows, I);
    else
      siluGluBackwardKernel<<<gridFor(rows * I, 256), 256, 0, streamFor(device)>>>((T*)dh, (const T*)g,
                                                                                   (const T*)h, rows, I);
  });
  checkLaunch("silu_glu_backward");
}

}  // namespace grin
