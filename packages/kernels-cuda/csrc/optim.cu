// Mixed-precision AdamW (in place): a bf16 parameter, a bf16 or f32 gradient, and f32 master
// weights and moments. The master takes the same update as adamw_step (fused.cu) and the parameter
// is re-rounded from it, round-to-nearest-even. An optional device scalar multiplies the gradient
// first (gradient clipping's coefficient, so clipping needs no pass of its own over the gradients).
// The step is bandwidth-bound (28 bytes an element with a bf16 gradient), so aligned runs take 8
// elements a thread in 16-byte loads and stores; a tail or an unaligned view takes the scalar loop.
// Mirrors src/cpu/optim.ts of @grin-moe/tensor. Test: tests/optim.test.ts (GPU), against the CPU kernel.
#include "device.cuh"
#include "kernels.h"

namespace grin {

__device__ __forceinline__ float adamwLane(float g, float& w, float& m, float& v, const AdamW& h) {
  m = h.beta1 * m + (1.0f - h.beta1) * g;
  v = h.beta2 * v + (1.0f - h.beta2) * g * g;
  w = w * h.decay - (h.lr * (m / h.correction1)) / (sqrtf(v / h.correction2) + h.eps);
  return w;
}

template <typename G>
__global__ void adamwMixedKernel(bf16* param, const G* grad, float* master, float* m, float* v, int64_t n,
                                 const float* scale, AdamW h) {
  const float s = scale ? *scale : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float w = master[i], mi = m[i], vi = v[i];
    adamwLane(load(grad + i) * s, w, mi, vi, h);
    master[i] = w, m[i] = mi, v[i] = vi;
    param[i] = __float2bfloat16_rn(w);
  }
}

__device__ __forceinline__ void loadGrad8(const bf16* p, float (&g)[8]) { loadVec(p, g); }
__device__ __forceinline__ void loadGrad8(const float* p, float (&g)[8]) {
  float a[4], b[4];
  loadVec(p, a), loadVec(p + 4, b);
#pragma unroll
  for (int k = 0; k < 4; k++) g[k] = a[k], g[4 + k] = b[k];
}
// Plain (not read-only-cache) loads: master and moments are written back by the same thread.
__device__ __forceinline__ void load8(const float* p, float (&x)[8]) {
  float4 a = ((const float4*)p)[0], b = ((const float4*)p)[1];
  x[0] = a.x, x[1] = a.y, x[2] = a.z, x[3] = a.w, x[4] = b.x, x[5] = b.y, x[6] = b.z, x[7] = b.w;
}
__device__ __forceinline__ void store8(float* p, const float (&x)[8]) {
  storeVec(p, {x[0], x[1], x[2], x[3]});
  storeVec(p + 4, {x[4], x[5], x[6], x[7]});
}

/** groups of 8 elements; every pointer 16-byte aligned. */
template <typename G>
__global__ void adamwMixedKernel8(bf16* param, const G* grad, float* master, float* m, float* v, int64_t groups,
                                  const float* scale, AdamW h) {
  const float s = scale ? *scale : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < groups; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t o = i * 8;
    float g[8], w[8], mi[8], vi[8];
    loadGrad8(grad + o, g);
    load8(master + o, w), load8(m + o, mi), load8(v + o, vi);
#pragma unroll
    for (int k = 0; k < 8; k++) adamwLane(g[k] * s, w[k], mi[k], vi[k], h);
    store8(master + o, w), store8(m + o, mi), store8(v + o, vi);
    storeVec(param + o, w);  // __floats2bfloat162_rn: nearest-even, as the scalar loop
  }
}

static bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <typename G>
static void launchMixed(cudaStream_t s, bf16* param, const G* grad, float* master, float* m, float* v, int64_t n,
                        const float* scale, const AdamW& h) {
  int64_t groups = 0;
  if (aligned16(param) && aligned16(grad) && aligned16(master) && aligned16(m) && aligned16(v)) groups = n / 8;
  if (groups) {
    unsigned g = gridFor(groups, 256);
    if (g > 132 * 16) g = 132 * 16;
    adamwMixedKernel8<G><<<g, 256, 0, s>>>(param, grad, master, m, v, groups, scale, h);
  }
  const int64_t done = groups * 8;
  if (done < n) {
    unsigned g = gridFor(n - done, 256);
    if (g > 132 * 32) g = 132 * 32;
    adamwMixedKernel<G><<<g, 256, 0, s>>>(param + done, grad + done, master + done, m + done, v + done, n - done,
                                          scale, h);
  }
}

void adamwMixed(int device, int gradType, void* param, const void* grad, float* master, float* m, float* v, int64_t n,
                const float* scale, const AdamW& h) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH_FLOAT(gradType, G, "adamw_step_mixed (grad)",
      launchMixed<G>(s, (bf16*)param, (const G*)grad, master, m, v, n, scale, h));
  checkLaunch("adamw_step_mixed");
}

}  // namespace grin
