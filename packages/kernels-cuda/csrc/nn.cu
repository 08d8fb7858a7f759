// Neural-network kernels: softmax / log_softmax (max-subtracted, f32 accumulation), the fused
// attention softmax (scale, causal / sliding-window mask) and its backward, layer_norm and
// layer_norm_backward (biased variance, mean/rstd kept in f32). A block handles one row when the
// axis is the last one; otherwise a thread walks one strided row. layer_norm forward and the dx
// part of its backward have vectorised versions (16-byte loads, row in registers) used whenever
// the row and pointers allow; GRIN_LAYER_NORM_SCALAR=1 forces the scalar ones (dev harness).
// Mirrors src/cpu/nn.ts, fused.ts.
// Test: tests/nn.test.ts (GPU).
#include <algorithm>
#include <cstdlib>
#include <initializer_list>

#include "device.cuh"
#include "kernels.h"

namespace grin {

/**
 * Online softmax state: running max m and sum s of exp(x - m). -inf entries add nothing (so a
 * row of -inf keeps s = 0 and ends as NaN, as the CPU); a NaN makes both NaN for good.
 */
struct MaxSum {
  float m, s;
};
__device__ __forceinline__ MaxSum push(MaxSum a, float v) {
  if (v > a.m) return {v, a.s * expf(a.m - v) + 1.0f};  // a.m = -inf: 0 * 0 + 1
  if (v == v) return {a.m, a.s + (v == -INFINITY ? 0.0f : expf(v - a.m))};
  return {NAN, NAN};
}
__device__ __forceinline__ MaxSum merge(MaxSum a, MaxSum b) {
  if (a.m != a.m || b.m != b.m) return {NAN, NAN};
  float m = fmaxf(a.m, b.m);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, (a.m == -INFINITY ? 0.0f : a.s * expf(a.m - m)) + (b.m == -INFINITY ? 0.0f : b.s * expf(b.m - m))};
}

__device__ MaxSum blockMaxSum(MaxSum v, MaxSum* shared /* >= 33 */) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v = merge(v, {__shfl_xor_sync(0xffffffff, v.m, o), __shfl_xor_sync(0xffffffff, v.s, o)});
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    MaxSum total = shared[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) total = merge(total, shared[w]);
    shared[32] = total;
  }
  __syncthreads();
  return shared[32];
}

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

void softmax(int device, int dtype, bool logOut, void* out, const void* x, int64_t outer, int64_t n, int64_t inner) {
  if (outer * n * inner == 0) return;
  cudaStream_t s = streamFor(device);
  if (inner == 1) {
    GRIN_DISPATCH_FLOAT(dtype, T, "softmax",
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

// Vectorised row kernels (dev/layer_norm/layer_norm.ts validates and times them): 16-byte loads
// (8 bf16 or 4 f32), the row held in registers (f32), so x is read once and y written once. A warp
// per row while the row fits in 32 lanes x 4 vectors, else a block of up to 512 threads per row.
// Used when d is a multiple of the vector width and every pointer is 16-byte aligned.
template <typename T> struct VecOf { static constexpr int n = 16 / sizeof(T); };

__device__ __forceinline__ void loadVec(const float* p, float (&v)[4]) {
  float4 q = __ldg((const float4*)p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void loadVec(const bf16* p, float (&v)[8]) {
  uint4 q = __ldg((const uint4*)p);
  const __nv_bfloat162* h = (const __nv_bfloat162*)&q;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}
__device__ __forceinline__ void storeVec(float* p, const float (&v)[4]) { *(float4*)p = make_float4(v[0], v[1], v[2], v[3]); }
__device__ __forceinline__ void storeVec(bf16* p, const float (&v)[8]) {
  uint4 q;
  __nv_bfloat162* h = (__nv_bfloat162*)&q;
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *(uint4*)p = q;
}

/** Lanes per row, this thread's lane, its first row and the row step: a warp or the block per row. */
template <bool WARP>
struct RowWalk {
  int lanes, lane;
  int64_t first, step;
  __device__ RowWalk() {
    lanes = WARP ? 32 : blockDim.x;
    lane = WARP ? (threadIdx.x & 31) : threadIdx.x;
    first = WARP ? (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : blockIdx.x;
    step = WARP ? (int64_t)gridDim.x * (blockDim.x >> 5) : gridDim.x;
  }
};

template <bool WARP>
__device__ __forceinline__ float rowSum(float v, float* shared) { return WARP ? warpSum(v) : blockSum(v, shared); }

template <typename T, int N, bool WARP>
__global__ void __launch_bounds__(512) layerNormVecKernel(T* y, float* mean, float* rstd, const T* x, const T* w, const T* b, int64_t rows,
                                   int d, float eps) {
  constexpr int V = VecOf<T>::n;
  __shared__ float shared[33];
  RowWalk<WARP> walk;
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
    float m = rowSum<WARP>(s, shared) / d;
    float q = 0.0f;
#pragma unroll
    for (int i = 0; i < N; i++) {
      if (walk.lane + i * walk.lanes < vecs) {
#pragma unroll
        for (int j = 0; j < V; j++) q += (v[i][j] - m) * (v[i][j] - m);
      }
    }
    float inv = 1.0f / sqrtf(rowSum<WARP>(q, shared) / d + eps);
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

/** GRIN_LAYER_NORM_SCALAR=1 picks the scalar kernels (read per call, so a harness can switch). */
static bool scalarLayerNorm() {
  const char* flag = getenv("GRIN_LAYER_NORM_SCALAR");
  return flag && flag[0] == '1';
}

static bool aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if ((uintptr_t)p % 16 != 0) return false;
  return true;
}

/**
 * The vectorised launch for a row of `vecs` vectors: a warp per row (N = 1, 2, 4 vectors a lane) or
 * a block of at most 512 threads per row (N = 4, or 8 where maxN allows: the forward holds one row,
 * the backward two, and 512 threads leave 128 registers each). Longer rows take the scalar kernel.
 */
struct VecPlan {
  bool ok, warp;
  int n, threads;
  unsigned blocks;
};
static VecPlan vecPlan(int64_t rows, int64_t vecs, int maxN) {
  if (vecs <= 128) {
    int n = vecs <= 32 ? 1 : vecs <= 64 ? 2 : 4;
    int64_t blocks = (rows + 3) / 4;  // 4 warps (rows) per block
    return {true, true, n, 128, (unsigned)std::min<int64_t>(blocks, 132 * 32)};
  }
  for (int n = 4; n <= maxN; n *= 2) {
    int64_t threads = ((vecs + n - 1) / n + 31) / 32 * 32;
    if (threads <= 512) return {true, false, n, (int)threads, (unsigned)std::min<int64_t>(rows, 132 * 16)};
  }
  return {false, false, 0, 0, 0};
}

template <typename T>
static bool layerNormVec(cudaStream_t s, T* y, float* mean, float* rstd, const T* x, const T* w, const T* b,
                         int64_t rows, int64_t d, float eps) {
  constexpr int V = VecOf<T>::n;
  if (d % V != 0 || !aligned16({y, x, w, b}) || scalarLayerNorm()) return false;
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
  RowWalk<WARP> walk;
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
    float meanGh = rowSum<WARP>(sumGh, shared) / d;
    float meanGhXhat = rowSum<WARP>(sumGhXhat, shared) / d;
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
  if (d % V != 0 || !aligned16({dx, g, x, w}) || scalarLayerNorm()) return false;
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
