// Mixed-precision AdamW (in place): a bf16 parameter, a bf16 or f32 gradient, and f32 master
// weights and moments. The master takes the same update as adamw_step (fused.cu) and the parameter
// is re-rounded from it, round-to-nearest-even. Mirrors src/cpu/optim.ts of @grin-moe/tensor.
// Test: tests/optim.test.ts (GPU), against the CPU kernel.
#include "device.cuh"
#include "kernels.h"

namespace grin {

template <typename G>
__global__ void adamwMixedKernel(bf16* param, const G* grad, float* master, float* m, float* v, int64_t n, AdamW h) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float g = load(grad + i);
    float mi = m[i] = h.beta1 * m[i] + (1.0f - h.beta1) * g;
    float vi = v[i] = h.beta2 * v[i] + (1.0f - h.beta2) * g * g;
    float w = master[i] * h.decay - (h.lr * (mi / h.correction1)) / (sqrtf(vi / h.correction2) + h.eps);
    master[i] = w;
    param[i] = __float2bfloat16_rn(w);
  }
}

void adamwMixed(int device, int gradType, void* param, const void* grad, float* master, float* m, float* v, int64_t n,
                const AdamW& h) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  unsigned g = gridFor(n, 256);
  if (g > 132 * 32) g = 132 * 32;
  GRIN_DISPATCH_FLOAT(gradType, G, "adamw_step_mixed (grad)",
      adamwMixedKernel<G><<<g, 256, 0, s>>>((bf16*)param, (const G*)grad, master, m, v, n, h));
  checkLaunch("adamw_step_mixed");
}

}  // namespace grin
