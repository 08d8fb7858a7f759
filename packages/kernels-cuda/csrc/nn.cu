// Neural-network kernels: softmax / log_softmax (max-subtracted, f32 accumulation), the fused
// attention softmax (scale, causal / sliding-window mask) and its backward, layer_norm and
// layer_norm_backward (biased variance, mean/rstd kept in f32). A block handles one row when the
// axis is the last one; otherwise a thread walks one strided row.
// These kernels only move memory, and one element a thread with one row a block reaches 0.1-0.4 of
// copy bandwidth, so softmax over the last axis, layer_norm forward and the dx part of its backward
// have vectorised versions (device.cuh: 16-byte loads, f32 math, the row held in registers so x is
// read once and the output written once; short softmax rows packed several to a warp so that
// rows of 8-128 elements do not leave most lanes idle). Softmax rows too long for registers are
// read twice (online max+sum, then the output), still with 16-byte loads. The scalar kernels stay
// for what the vectors cannot take (a row length that is not a multiple of the vector, unaligned
// pointers, a middle axis, layer_norm rows too long for registers); GRIN_SOFTMAX_SCALAR=1 /
// GRIN_LAYER_NORM_SCALAR=1 force them so the dev harnesses (dev/softmax, dev/layer_norm) can
// validate and time both.
// Mirrors src/cpu/nn.ts, fused.ts.
// Test: tests/nn.test.ts (GPU).
#include <algorithm>

#include "device.cuh"
#include "kernels.h"

namespace grin {

/** One read for max and sum together (online softmax), one read + write for the output. */
template <typename T>
__global__ void softmaxRowsKernel(T* out, const T* x, int64_t rows, int n, bool logOut) {
  __shared__ MaxSum shared[33];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = x + row * n;
    T* dst = out + row * n;
    MaxSum acc{-INFINITY, 0.0f};
    for (int j = threadIdx.x; j < n; j += blockDim.x) acc = push(acc, load(src + j));
    acc = blockMaxSum(acc, shared);
    float m = acc.m, lse = m + logf(acc.s), inv = 1.0f / acc.s;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      float v = load(src + j);
      store(dst + j, logOut ? v - lse : expf(v - m) * inv);
    }
  }
}

template <typename T>
__global__ void softmaxColumnsKernel(T* out, const T* x, int64_t outer, int n, int64_t inner, bool logOut) {
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= outer * inner) return;
  int64_t base = (i / inner) * n * inner + i % inner;
  float m = -INFINITY, s = 0.0f;
  for (int j = 0; j < n; j++) m = nanMax(m, load(x + base + j * inner));
  for (int j = 0; j < n; j++) s += expf(load(x + base + j * inner) - m);
  float lse = m + logf(s), inv = 1.0f / s;
  for (int j = 0; j < n; j++) {
    float v = load(x + base + j * inner);
    store(out + base + j * inner, logOut ? v - lse : expf(v - m) * inv);
  }
}

static int rowThreads(int64_t n) { return n >= 2048 ? 512 : n >= 256 ? 256 : n >= 64 ? 64 : 32; }
static unsigned rowBlocks(int64_t rows) { return (unsigned)(rows < 132 * 64 ? rows : 132 * 64); }

/**
 * Softmax of rows held in registers: N vectors a lane, LANES lanes a row (0: the block). Max, then
 * the exps (kept for softmax: one exp an element) and their sum, from registers: x read once.
 */
template <typename T, int N, int LANES>
__global__ void __launch_bounds__(512) softmaxVecKernel(T* out, const T* x, int64_t rows, int n, bool logOut) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  RowWalk<LANES> walk;
  const int vecs = n / V;
  for (int64_t base = walk.first; base < rows; base += walk.step) {
    const int64_t row = base + walk.sub;
    const bool live = row < rows;  // the warp's last rows may be past the end (LANES < 32)
    float v[N][V];
    float m = -INFINITY;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (live && k < vecs) {
        loadVec(x + row * n + k * V, v[i]);
#pragma unroll
        for (int j = 0; j < V; j++) m = nanMax(m, v[i][j]);
      }
    }
    m = rowMax<LANES>(m, shared);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++) {
      if (live && walk.lane + i * walk.lanes < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) {
          float e = expRow(v[i][j] - m);  // all -inf: exp(NaN), so the row ends as NaN, as the CPU
          s += e;
          if (!logOut) v[i][j] = e;
        }
      }
    }
    s = rowSum<LANES>(s, shared);
    const float lse = m + logf(s), inv = 1.0f / s;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (live && k < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) v[i][j] = logOut ? v[i][j] - lse : v[i][j] * inv;
        storeVec(out + row * n + k * V, v[i]);
      }
    }
  }
}

/** Rows too long for registers: a block a row, online max+sum on the first read, output on the second. */
template <typename T>
__global__ void __launch_bounds__(512) softmaxStreamKernel(T* out, const T* x, int64_t rows, int n, bool logOut) {
  constexpr int V = VecOf<T>::n;
  __shared__ MaxSum shared[33];
  RowWalk<0> walk;
  const int vecs = n / V;
  for (int64_t row = walk.first; row < rows; row += walk.step) {
    const T* src = x + row * n;
    MaxSum acc = rowMaxSumVec(src, vecs, walk, shared);
    const float m = acc.m, lse = m + logf(acc.s), inv = 1.0f / acc.s;
    mapRowVec(out + row * n, src, vecs, walk, [&](float (&v)[V], int) {
#pragma unroll
      for (int j = 0; j < V; j++) v[j] = logOut ? v[j] - lse : expRow(v[j] - m) * inv;
    });
  }
}

/**
 * Rows of up to 2048 vectors (16K bf16 / 8K f32) in registers, packed 32 / LANES a warp up to 16
 * vectors, a warp a row up to 128, else a block; longer rows streamed. False: the scalar kernel.
 */
template <typename T>
static bool softmaxVec(cudaStream_t s, T* out, const T* x, int64_t rows, int64_t n, bool logOut) {
  constexpr int V = VecOf<T>::n;
  if (n % V != 0 || !aligned16({out, x}) || scalarForced("GRIN_SOFTMAX_SCALAR")) return false;
  VecPlan p = vecPlan(rows, n / V, 4, true);
  const int len = (int)n;
  if (!p.ok) {
    p = streamPlan(rows, n * (int64_t)sizeof(T), true);
    softmaxStreamKernel<T><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut);
  } else if (!p.warp) {
    softmaxVecKernel<T, 4, 0><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut);
  } else {
    switch (p.lanes) {
      case 1: softmaxVecKernel<T, 1, 1><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut); break;
      case 2: softmaxVecKernel<T, 1, 2><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut); break;
      case 4: softmaxVecKernel<T, 1, 4><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut); break;
      case 8: softmaxVecKernel<T, 1, 8><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut); break;
      case 16: softmaxVecKernel<T, 1, 16><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut); break;
      default:
        if (p.n == 1) softmaxVecKernel<T, 1, 32><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut);
        else if (p.n == 2) softmaxVecKernel<T, 2, 32><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut);
        else softmaxVecKernel<T, 4, 32><<<p.blocks, p.threads, 0, s>>>(out, x, rows, len, logOut);
    }
  }
  return true;
}

void softmax(int device, int dtype, bool logOut, void* out, const void* x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = streamFor(device);
  if (inner == 1) {
    GRIN_DISPATCH_FLOAT(dtype, T, "softmax",
        if (!softmaxVec<T>(s, (T*)out, (const T*)x, outer, n, logOut))
          softmaxRowsKernel<T><<<rowBlocks(outer), rowThreads(n), 0, s>>>((T*)out, (const T*)x, outer, (int)n, logOut));
  } else {
    GRIN_DISPATCH_FLOAT(dtype, T, "softmax",
        softmaxColumnsKernel<T><<<gridFor(outer * inner, 256), 256, 0, s>>>((T*)out, (const T*)x, outer, (int)n, inner, logOut));
  }
  checkLaunch("softmax");
}

/** Row r is query r % S of S against Skv keys (queries are the last S of the keys). */
template <typename T>
__global__ void attentionSoftmaxKernel(T* out, const T* x, int64_t rows, int S, int Skv, float scale, bool causal,
                                       int window) {
  __shared__ float shared[33];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = x + row * Skv;
    T* dst = out + row * Skv;
    int q = (int)(row % S) + (Skv - S);
    int hi = causal ? min(q, Skv - 1) : Skv - 1;
    int lo = window > 0 ? max(0, q - window + 1) : 0;
    if (hi < lo) {  // every key masked: 0/0, as softmax over all -inf
      for (int k = threadIdx.x; k < Skv; k += blockDim.x) store(dst + k, NAN);
      continue;
    }
    float m = -INFINITY;
    for (int k = lo + threadIdx.x; k <= hi; k += blockDim.x) m = nanMax(m, load(src + k) * scale);
    m = blockMax(m, shared);
    float sum = 0.0f;
    for (int k = lo + threadIdx.x; k <= hi; k += blockDim.x) sum += expf(load(src + k) * scale - m);
    sum = blockSum(sum, shared);
    float inv = 1.0f / sum;
    for (int k = threadIdx.x; k < Skv; k += blockDim.x)
      store(dst + k, k >= lo && k <= hi ? expf(load(src + k) * scale - m) * inv : 0.0f);
  }
}

template <typename T>
__global__ void attentionSoftmaxBackwardKernel(T* out, const T* y, const T* g, int64_t rows, int n, float scale) {
  __shared__ float shared[33];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* ys = y + row * n;
    const T* gs = g + row * n;
    float dot = 0.0f;
    for (int k = threadIdx.x; k < n; k += blockDim.x) dot += load(ys + k) * load(gs + k);
    dot = blockSum(dot, shared);
    for (int k = threadIdx.x; k < n; k += blockDim.x)
      store(out + row * n + k, scale * load(ys + k) * (load(gs + k) - dot));
  }
}

void attentionSoftmax(int device, int dtype, void* out, const void* x, int64_t rows, int64_t S, int64_t Skv,
                      float scale, bool causal, int64_t window) {
  if (rows * Skv == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH_FLOAT(dtype, T, "attention_softmax",
      attentionSoftmaxKernel<T><<<rowBlocks(rows), rowThreads(Skv), 0, s>>>((T*)out, (const T*)x, rows, (int)S, (int)Skv, scale, causal, (int)window));
  checkLaunch("attention_softmax");
}

void attentionSoftmaxBackward(int device, int dtype, void* out, const void* y, const void* g, int64_t rows,
                              int64_t n, float scale) {
  if (rows * n == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH_FLOAT(dtype, T, "attention_softmax_backward",
      attentionSoftmaxBackwardKernel<T><<<rowBlocks(rows), rowThreads(n), 0, s>>>((T*)out, (const T*)y, (const T*)g, rows, (int)n, scale));
  checkLaunch("attention_softmax_backward");
}

/** cached: the row sits in dynamic shared memory (as f32) after the first read, so x is read once. */
template <typename T>
__global__ void layerNormKernel(T* y, float* mean, float* rstd, const T* x, const T* w, const T* b, int64_t rows,
                                int d, float eps, bool cached) {
  __shared__ float shared[33];
  extern __shared__ float cache[];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = x + row * d;
    float s = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
      float v = load(src + j);
      if (cached) cache[j] = v;
      s += v;
    }
    float m = blockSum(s, shared) / d;
    float v = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
      float c = (cached ? cache[j] : load(src + j)) - m;
      v += c * c;
    }
    float inv = 1.0f / sqrtf(blockSum(v, shared) / d + eps);
    if (threadIdx.x == 0) mean[row] = m, rstd[row] = inv;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
      float h = ((cached ? cache[j] : load(src + j)) - m) * inv;
      store(y + row * d + j, (w ? h * load(w + j) : h) + (b ? load(b + j) : 0.0f));
    }
    __syncthreads();  // the next row overwrites the cache
  }
}

/**
 * layer_norm with the row in registers (VecPlan in device.cuh; dev/layer_norm/layer_norm.ts times
 * it): x read once, two-pass mean and variance from registers, y written once.
 */
template <typename T, int N, bool WARP>
__global__ void __launch_bounds__(512) layerNormVecKernel(T* y, float* mean, float* rstd, const T* x, const T* w, const T* b, int64_t rows,
                                   int d, float eps) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  RowWalk<WARP ? 32 : 0> walk;
  const int vecs = d / V;
  for (int64_t row = walk.first; row < rows; row += walk.step) {
    float v[N][V];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (k < vecs) {
        loadVec(x + row * d + k * V, v[i]);
#pragma unroll
        for (int j = 0; j < V; j++) s += v[i][j];
      }
    }
    float m = rowSum<WARP ? 32 : 0>(s, shared) / d;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++) {
      if (walk.lane + i * walk.lanes < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) q += (v[i][j] - m) * (v[i][j] - m);
      }
    }
    float inv = 1.0f / sqrtf(rowSum<WARP ? 32 : 0>(q, shared) / d + eps);
    if (walk.lane == 0) mean[row] = m, rstd[row] = inv;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (k < vecs) {
        float wv[V], bv[V], out[V];
        if (w) loadVec(w + k * V, wv);
        if (b) loadVec(b + k * V, bv);
#pragma unroll
        for (int j = 0; j < V; j++) {
          float h = (v[i][j] - m) * inv;
          out[j] = (w ? h * wv[j] : h) + (b ? bv[j] : 0.0f);
        }
        storeVec(y + row * d + k * V, out);
      }
    }
  }
}

template <typename T>
static bool layerNormVec(cudaStream_t s, T* y, float* mean, float* rstd, const T* x, const T* w, const T* b,
                         int64_t rows, int64_t d, float eps) {
  constexpr int V = VecOf<T>::n;
  if (d % V != 0 || !aligned16({y, x, w, b}) || scalarForced("GRIN_LAYER_NORM_SCALAR")) return false;
  VecPlan plan = vecPlan(rows, d / V, 8);
  if (!plan.ok) return false;
  if (!plan.warp && plan.n == 8) layerNormVecKernel<T, 8, false><<<plan.blocks, plan.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, (int)d, eps);
  else if (!plan.warp) layerNormVecKernel<T, 4, false><<<plan.blocks, plan.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, (int)d, eps);
  else if (plan.n == 1) layerNormVecKernel<T, 1, true><<<plan.blocks, plan.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, (int)d, eps);
  else if (plan.n == 2) layerNormVecKernel<T, 2, true><<<plan.blocks, plan.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, (int)d, eps);
  else layerNormVecKernel<T, 4, true><<<plan.blocks, plan.threads, 0, s>>>(y, mean, rstd, x, w, b, rows, (int)d, eps);
  return true;
}

void layerNorm(int device, int dtype, void* y, float* mean, float* rstd, const void* x, const void* w,
               const void* b, int64_t rows, int64_t d, float eps) {
  if (rows * d == 0) return;
  cudaStream_t s = streamFor(device);
  bool done = false;
  GRIN_DISPATCH_FLOAT(dtype, T, "layer_norm",
      done = layerNormVec<T>(s, (T*)y, mean, rstd, (const T*)x, (const T*)w, (const T*)b, rows, d, eps));
  if (done) {
    checkLaunch("layer_norm");
    return;
  }
  bool cached = d <= 12288;  // 48 KiB of f32: the default dynamic shared memory limit
  size_t smem = cached ? d * sizeof(float) : 0;
  GRIN_DISPATCH_FLOAT(dtype, T, "layer_norm",
      layerNormKernel<T><<<rowBlocks(rows), rowThreads(d), smem, s>>>((T*)y, mean, rstd, (const T*)x, (const T*)w, (const T*)b, rows, (int)d, eps, cached));
  checkLaunch("layer_norm");
}

template <typename T>
__global__ void layerNormDxKernel(T* dx, const T* g, const T* x, const float* mean, const float* rstd, const T* w,
                                  int64_t rows, int d) {
  __shared__ float shared[33];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* gs = g + row * d;
    const T* xs = x + row * d;
    float m = mean[row], inv = rstd[row], sumGh = 0.0f, sumGhXhat = 0.0f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
      float gh = load(gs + j) * (w ? load(w + j) : 1.0f);
      sumGh += gh;
      sumGhXhat += gh * (load(xs + j) - m) * inv;
    }
    float meanGh = blockSum(sumGh, shared) / d;
    float meanGhXhat = blockSum(sumGhXhat, shared) / d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) {
      float gh = load(gs + j) * (w ? load(w + j) : 1.0f);
      float xhat = (load(xs + j) - m) * inv;
      store(dx + row * d + j, inv * (gh - meanGh - xhat * meanGhXhat));
    }
  }
}

/** Column sums of g * xhat and g over a chunk of rows: partial[chunk][0|1][d]. */
template <typename T>
__global__ void layerNormDwKernel(float* partial, const T* g, const T* x, const float* mean, const float* rstd,
                                  int64_t rows, int d, int64_t chunk) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= d) return;
  int64_t begin = blockIdx.y * chunk, end = min(rows, begin + chunk);
  float dw = 0.0f, db = 0.0f;
  for (int64_t r = begin; r < end; r++) {
    float gv = load(g + r * d + j);
    dw += gv * (load(x + r * d + j) - mean[r]) * rstd[r];
    db += gv;
  }
  partial[(blockIdx.y * 2) * (int64_t)d + j] = dw;
  partial[(blockIdx.y * 2 + 1) * (int64_t)d + j] = db;
}

template <typename T>
__global__ void layerNormDwFinishKernel(T* dweight, T* dbias, const float* partial, int d, int chunks) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= d) return;
  double dw = 0.0, db = 0.0;
  for (int c = 0; c < chunks; c++) dw += partial[(c * 2) * (int64_t)d + j], db += partial[(c * 2 + 1) * (int64_t)d + j];
  store(dweight + j, (float)dw);
  store(dbias + j, (float)db);
}

/** dx of layer_norm with g and x rows in registers (see layerNormVecKernel). */
template <typename T, int N, bool WARP>
__global__ void __launch_bounds__(512) layerNormDxVecKernel(T* dx, const T* g, const T* x, const float* mean, const float* rstd, const T* w,
                                     int64_t rows, int d) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  RowWalk<WARP ? 32 : 0> walk;
  const int vecs = d / V;
  for (int64_t row = walk.first; row < rows; row += walk.step) {
    float gh[N][V], xhat[N][V];
    float m = mean[row], inv = rstd[row], sumGh = 0.0f, sumGhXhat = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (k < vecs) {
        float wv[V];
        loadVec(g + row * d + k * V, gh[i]);
        loadVec(x + row * d + k * V, xhat[i]);
        if (w) loadVec(w + k * V, wv);
#pragma unroll
        for (int j = 0; j < V; j++) {
          if (w) gh[i][j] *= wv[j];
          xhat[i][j] = (xhat[i][j] - m) * inv;
          sumGh += gh[i][j];
          sumGhXhat += gh[i][j] * xhat[i][j];
        }
      }
    }
    float meanGh = rowSum<WARP ? 32 : 0>(sumGh, shared) / d;
    float meanGhXhat = rowSum<WARP ? 32 : 0>(sumGhXhat, shared) / d;
#pragma unroll
    for (int i = 0; i < N; i++) {
      int k = walk.lane + i * walk.lanes;
      if (k < vecs) {
        float out[V];
#pragma unroll
        for (int j = 0; j < V; j++) out[j] = inv * (gh[i][j] - meanGh - xhat[i][j] * meanGhXhat);
        storeVec(dx + row * d + k * V, out);
      }
    }
  }
}

template <typename T>
static bool layerNormDxVec(cudaStream_t s, T* dx, const T* g, const T* x, const float* mean, const float* rstd,
                           const T* w, int64_t rows, int64_t d) {
  constexpr int V = VecOf<T>::n;
  if (d % V != 0 || !aligned16({dx, g, x, w}) || scalarForced("GRIN_LAYER_NORM_SCALAR")) return false;
  VecPlan plan = vecPlan(rows, d / V, 4);
  if (!plan.ok) return false;
  if (!plan.warp) layerNormDxVecKernel<T, 4, false><<<plan.blocks, plan.threads, 0, s>>>(dx, g, x, mean, rstd, w, rows, (int)d);
  else if (plan.n == 1) layerNormDxVecKernel<T, 1, true><<<plan.blocks, plan.threads, 0, s>>>(dx, g, x, mean, rstd, w, rows, (int)d);
  else if (plan.n == 2) layerNormDxVecKernel<T, 2, true><<<plan.blocks, plan.threads, 0, s>>>(dx, g, x, mean, rstd, w, rows, (int)d);
  else layerNormDxVecKernel<T, 4, true><<<plan.blocks, plan.threads, 0, s>>>(dx, g, x, mean, rstd, w, rows, (int)d);
  return true;
}

void layerNormBackward(int device, int dtype, void* dx, void* dweight, void* dbias, const void* g, const void* x,
                       const float* mean, const float* rstd, const void* w, int64_t rows, int64_t d) {
  if (d == 0) return;
  cudaStream_t s = streamFor(device);
  int chunks = (int)std::max<int64_t>(1, std::min<int64_t>(std::min<int64_t>((rows + 31) / 32, 1024),
                                                            (262144 + d - 1) / d));
  int64_t chunk = (rows + chunks - 1) / chunks;
  Scratch partial(device, sizeof(float) * 2 * chunks * d);
  GRIN_DISPATCH_FLOAT(dtype, T, "layer_norm_backward", {
    if (rows > 0) {
      if (!layerNormDxVec<T>(s, (T*)dx, (const T*)g, (const T*)x, mean, rstd, (const T*)w, rows, d))
        layerNormDxKernel<T><<<rowBlocks(rows), rowThreads(d), 0, s>>>((T*)dx, (const T*)g, (const T*)x, mean, rstd, (const T*)w, rows, (int)d);
      checkLaunch("layer_norm_backward (dx)");
    }
    layerNormDwKernel<T><<<dim3(gridFor(d, 256), chunks), 256, 0, s>>>(partial.as<float>(), (const T*)g, (const T*)x, mean, rstd, rows, (int)d, chunk);
    checkLaunch("layer_norm_backward (dweight)");
    layerNormDwFinishKernel<T><<<gridFor(d, 256), 256, 0, s>>>((T*)dweight, (T*)dbias, partial.as<float>(), (int)d, chunks);
  });
  checkLaunch("layer_norm_backward (finish)");
}

}  // namespace grin
