// Neural-network kernels: softmax / log_softmax (max-subtracted, f32 accumulation), the fused
// attention softmax (scale, causal / sliding-window mask) and its backward, layer_norm and
// layer_norm_backward (biased variance, mean/rstd kept in f32). A block handles one row when the
// axis is the last one; otherwise a thread walks one strided row. Mirrors src/cpu/nn.ts, fused.ts.
// Test: tests/nn.test.ts (GPU).
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

void layerNorm(int device, int dtype, void* y, float* mean, float* rstd, const void* x, const void* w,
               const void* b, int64_t rows, int64_t d, float eps) {
  if (rows * d == 0) return;
  cudaStream_t s = streamFor(device);
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
