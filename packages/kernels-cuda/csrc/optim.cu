// Mixed-precision AdamW (in place): a bf16 parameter, a bf16 or f32 gradient, f32 master weights,
// and f32 or bf16 moments. The master takes the same update as adamw_step (fused.cu) and the
// parameter is re-rounded from it, round-to-nearest-even. bf16 moments are stored with stochastic
// rounding from a counter-based hash of (salt, element): nearest-even would drop every increment of
// exp_avg_sq below half a bf16 step (beta2 0.999 adds 0.1% a step, a quarter of one), so the moment
// would stop moving; stochastic rounding keeps it unbiased. The step's own update reads the moments
// before they are rounded. An optional device scalar multiplies the gradient first (gradient
// clipping's coefficient, so clipping needs no pass of its own over the gradients).
// The step is bandwidth-bound (28 bytes an element with a bf16 gradient and f32 moments, 20 with
// bf16 moments), so aligned runs take 8 elements a thread in 16-byte loads and stores; a tail or an
// unaligned view takes the scalar loop.
// Mirrors src/cpu/optim.ts of @grin-moe/tensor. Test: tests/optim.test.ts (GPU), against the CPU kernel.
#include <type_traits>

#include "device.cuh"
#include "kernels.h"

namespace grin {

__device__ __forceinline__ float adamwLane(float g, float& w, float& m, float& v, const AdamW& h) {
  m = h.beta1 * m + (1.0f - h.beta1) * g;
  v = h.beta2 * v + (1.0f - h.beta2) * g * g;
  w = w * h.decay - (h.lr * (m / h.correction1)) / (sqrtf(v / h.correction2) + h.eps);
  return w;
}

/** The 32-bit hash "lowbias32" (C. Wellons): every input bit flips about half of the output bits. */
__device__ __forceinline__ uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
/** Element i's draw: its low 16 bits round exp_avg, its high 16 bits exp_avg_sq. */
__device__ __forceinline__ uint32_t momentDraw(uint32_t salt, int64_t i) {
  return lowbias32((uint32_t)i ^ salt ^ (uint32_t)((uint64_t)i >> 32) * 0x9e3779b9u);
}
/** x to bf16 bits, rounded up in magnitude with probability (its 16 dropped bits) / 2^16. */
__device__ __forceinline__ uint16_t stochasticBf16(float x, uint32_t draw16) {
  const uint32_t b = __float_as_uint(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40u);  // NaN stays a (quiet) NaN
  return (uint16_t)((b + draw16) >> 16);
}

__device__ __forceinline__ float loadMoment(const float* p) { return *p; }
__device__ __forceinline__ float loadMoment(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ void storeMoment(float* p, float x, uint32_t) { *p = x; }
__device__ __forceinline__ void storeMoment(bf16* p, float x, uint32_t draw16) {
  *(uint16_t*)p = stochasticBf16(x, draw16);
}

template <typename G, typename M>
__global__ void adamwMixedKernel(bf16* param, const G* grad, float* master, M* m, M* v, int64_t n, const float* scale,
                                 AdamW h, uint32_t salt, int64_t first) {
  const float s = scale ? *scale : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float w = master[i], mi = loadMoment(m + i), vi = loadMoment(v + i);
    adamwLane(load(grad + i) * s, w, mi, vi, h);
    const uint32_t r = std::is_same<M, bf16>::value ? momentDraw(salt, first + i) : 0;
    master[i] = w;
    storeMoment(m + i, mi, r & 0xffffu), storeMoment(v + i, vi, r >> 16);
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
__device__ __forceinline__ void load8(const bf16* p, float (&x)[8]) {
  const uint4 q = *(const uint4*)p;
  const __nv_bfloat162* h = (const __nv_bfloat162*)&q;
#pragma unroll
  for (int k = 0; k < 4; k++) {
    const float2 f = __bfloat1622float2(h[k]);
    x[2 * k] = f.x, x[2 * k + 1] = f.y;
  }
}
__device__ __forceinline__ void store8(float* p, const float (&x)[8], const uint32_t (&)[8], int) {
  storeVec(p, {x[0], x[1], x[2], x[3]});
  storeVec(p + 4, {x[4], x[5], x[6], x[7]});
}
/** Stochastically rounded to bf16 with 16 bits of each draw, from bit `shift`. */
__device__ __forceinline__ void store8(bf16* p, const float (&x)[8], const uint32_t (&draw)[8], int shift) {
  uint32_t packed[4];
#pragma unroll
  for (int k = 0; k < 4; k++)
    packed[k] = stochasticBf16(x[2 * k], (draw[2 * k] >> shift) & 0xffffu) |
                (uint32_t)stochasticBf16(x[2 * k + 1], (draw[2 * k + 1] >> shift) & 0xffffu) << 16;
  __stwb((uint4*)p, make_uint4(packed[0], packed[1], packed[2], packed[3]));
}

/** groups of 8 elements; every pointer 16-byte aligned. */
template <typename G, typename M>
__global__ void adamwMixedKernel8(bf16* param, const G* grad, float* master, M* m, M* v, int64_t groups,
                                  const float* scale, AdamW h, uint32_t salt) {
  const float s = scale ? *scale : 1.0f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < groups; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t o = i * 8;
    float g[8], w[8], mi[8], vi[8];
    loadGrad8(grad + o, g);
    load8(master + o, w), load8(m + o, mi), load8(v + o, vi);
#pragma unroll
    for (int k = 0; k < 8; k++) adamwLane(g[k] * s, w[k], mi[k], vi[k], h);
    uint32_t draw[8] = {};
    if constexpr (std::is_same<M, bf16>::value) {
#pragma unroll
      for (int k = 0; k < 8; k++) draw[k] = momentDraw(salt, o + k);
    }
    store8(master + o, w, draw, 0), store8(m + o, mi, draw, 0), store8(v + o, vi, draw, 16);
    storeVec(param + o, w);  // __floats2bfloat162_rn: nearest-even, as the scalar loop
  }
}

static bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <typename G, typename M>
static void launchMixed(cudaStream_t s, bool side, bf16* param, const G* grad, float* master, M* m, M* v, int64_t n,
                        const float* scale, const AdamW& h, uint32_t salt) {
  int64_t groups = 0;
  if (aligned16(param) && aligned16(grad) && aligned16(master) && aligned16(m) && aligned16(v)) groups = n / 8;
  if (groups) {
    unsigned g = gridFor(groups, 256);
    // on the main stream a resident grid; on the (low-priority) side stream one short block per
    // 256 groups, so the scheduler can give SMs back to the main stream's kernels block by block
    if (g > 132 * 16 && !side) g = 132 * 16;
    adamwMixedKernel8<G, M><<<g, 256, 0, s>>>(param, grad, master, m, v, groups, scale, h, salt);
  }
  const int64_t done = groups * 8;
  if (done < n) {
    unsigned g = gridFor(n - done, 256);
    if (g > 132 * 32) g = 132 * 32;
    adamwMixedKernel<G, M><<<g, 256, 0, s>>>(param + done, grad + done, master + done, m + done, v + done, n - done,
                                             scale, h, salt, done);
  }
}

void adamwMixed(int device, int gradType, int momentType, void* param, const void* grad, float* master, void* m,
                void* v, int64_t n, const float* scale, const AdamW& h, uint32_t salt) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  const bool side = onSideStream(device);
  GRIN_DISPATCH_FLOAT(gradType, G, "adamw_step_mixed (grad)",
      GRIN_DISPATCH_FLOAT(momentType, M, "adamw_step_mixed (moments)",
          launchMixed<G, M>(s, side, (bf16*)param, (const G*)grad, master, (M*)m, (M*)v, n, scale, h, salt)));
  checkLaunch("adamw_step_mixed");
}

}  // namespace grin
