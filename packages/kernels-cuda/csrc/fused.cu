// The fused AdamW step (in place; f32 or bf16 params and grads, f32 moments, an optional device
// scale on the gradient), rotate-half RoPE
// (x read through strides, cos/sin broadcast) and top-k by repeated selection (a thread per row:
// k is 2 for MoE routing; NaN counts as largest, ties keep the lower index first).
// Mirrors src/cpu/optim.ts, nn.ts (rope) and indexing.ts (topk). Test: tests/nn.test.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

template <typename P, typename G>
__global__ void adamwKernel(P* param, const G* grad, float* m, float* v, int64_t n, const float* scale, AdamW h) {
  // scale: gradient clipping's coefficient on the device (null: 1), applied as the gradient is read
  const float s = scale ? *scale : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float g = load(grad + i) * s;
    float mi = m[i] = h.beta1 * m[i] + (1.0f - h.beta1) * g;
    float vi = v[i] = h.beta2 * v[i] + (1.0f - h.beta2) * g * g;
    // As torch.optim.AdamW: decoupled decay first, then the bias-corrected Adam step.
    store(param + i, load(param + i) * h.decay - (h.lr * (mi / h.correction1)) / (sqrtf(vi / h.correction2) + h.eps));
  }
}

void adamw(int device, int paramType, int gradType, void* param, const void* grad, float* m, float* v, int64_t n,
           const float* scale, const AdamW& h) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  unsigned g = gridFor(n, 256);
  if (g > 132 * 32) g = 132 * 32;
  GRIN_DISPATCH_FLOAT(paramType, P, "adamw_step (param)",
      GRIN_DISPATCH_FLOAT(gradType, G, "adamw_step (grad)",
          adamwKernel<P, G><<<g, 256, 0, s>>>((P*)param, (const G*)grad, m, v, n, scale, h)));
  checkLaunch("adamw_step");
}

/** Rows over L (operands: out, x, cos, sin); inner strides of x, cos, sin in `inner`. */
template <typename T>
__global__ void ropeKernel(T* out, const T* x, const T* cosines, const T* sines, int64_t rows, int h, Layout L,
                           int64_t xi, int64_t ci, int64_t si, bool transpose) {
  int64_t total = rows * h;
  float sign = transpose ? -1.0f : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t row = i / h, j = i % h;
    int64_t o[4];
    offsetsOf<4>(L, row, o);
    float xa = load(x + o[1] + j * xi), xb = load(x + o[1] + (j + h) * xi);
    float ca = load(cosines + o[2] + j * ci), cb = load(cosines + o[2] + (j + h) * ci);
    // forward: sin at the output's own position; transpose (the backward): at the input's position
    float sa = load(sines + o[3] + (transpose ? j + h : j) * si);
    float sb = load(sines + o[3] + (transpose ? j : j + h) * si);
    store(out + o[0] + j, xa * ca - sign * xb * sa);
    store(out + o[0] + j + h, xb * cb + sign * xa * sb);
  }
}

void rope(int device, int dtype, void* out, const void* x, const void* cosines, const void* sines, int64_t rows,
          int64_t d, const Layout& L, int64_t xi, int64_t ci, int64_t si, bool transpose) {
  int64_t h = d / 2;
  if (rows * h == 0) return;
  cudaStream_t s = streamFor(device);
  unsigned g = gridFor(rows * h, 256);
  if (g > 132 * 64) g = 132 * 64;
  GRIN_DISPATCH_FLOAT(dtype, T, "rope",
      ropeKernel<T><<<g, 256, 0, s>>>((T*)out, (const T*)x, (const T*)cosines, (const T*)sines, rows, (int)h, L, xi, ci, si, transpose));
  checkLaunch("rope");
}

/** Whether (a, ia) ranks before (b, ib): NaN first, then larger, then the lower index. */
template <typename V>
__device__ __forceinline__ bool ranksBefore(V a, int ia, V b, int ib) {
  bool na = isNaN(a), nb = isNaN(b);
  if (na || nb) return na && nb ? ia < ib : na;
  return a != b ? a > b : ia < ib;
}

template <typename T>
__global__ void topkKernel(T* values, int32_t* indices, const T* x, int64_t outer, int n, int64_t inner, int k) {
  typedef typename Acc<T>::type V;
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= outer * inner) return;
  int64_t o = i / inner, c = i % inner;
  const T* src = x + o * n * inner + c;
  V prev = 0;
  int prevAt = -1;
  for (int p = 0; p < k; p++) {
    V best = 0;
    int at = -1;
    for (int j = 0; j < n; j++) {
      V v = load(src + j * inner);
      if (prevAt >= 0 && !ranksBefore(prev, prevAt, v, j)) continue;  // already picked
      if (at < 0 || ranksBefore(v, j, best, at)) best = v, at = j;
    }
    int64_t to = o * k * inner + p * inner + c;
    store(values + to, best);
    indices[to] = at;
    prev = best, prevAt = at;
  }
}

void topk(int device, int dtype, void* values, int32_t* indices, const void* x, int64_t outer, int64_t n,
          int64_t inner, int64_t k) {
  if (outer * inner * k == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH(dtype, T,
      topkKernel<T><<<gridFor(outer * inner, 128), 128, 0, s>>>((T*)values, indices, (const T*)x, outer, (int)n, inner, (int)k));
  checkLaunch("topk");
}

}  // namespace grin
