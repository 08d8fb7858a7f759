// Dev harness (standalone CUDA, no Node) for csrc/wgmma.cuh, the pieces attention_wgmma.cu is built
// from: one warpgroup computes C[64 x 64] = A[64 x 128] B[64 x 128]^T through 8 SS wgmma (both
// operands K-major, 128-byte swizzle, as S = Q K^T) and C[64 x 128] = P[64 x 64] V[64 x 128] through 4
// RS wgmma (P from registers, V transposed, as O += P V), against f64 sums on the host, for both
// orders of the transposed operand's (leading, stride) offsets: the first must pass, the second
// shows that the check can fail. The attention kernel itself is tested through the op
// (tests/cases/attention.ts). Build: tools/device/build-bundle.sh (-> .device/dev-wgmma); run it on
// the device machine.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "../../csrc/device.cuh"
#include "../../csrc/wgmma.cuh"

using namespace grin;

#define CHECK(x)                                                                          \
  do {                                                                                    \
    cudaError_t e = (x);                                                                  \
    if (e != cudaSuccess) {                                                               \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e)); \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

static __device__ uint32_t sharedAddress(const void* p) { return (uint32_t)__cvta_generic_to_shared(p); }

// ---- 1. unit tests ------------------------------------------------------------------------------
/** C_ss[64 x 64] = A B^T (A, B: 64 x 128 row-major); C_rs[64 x 64 x ... ]: P (64 x 64) V (64 x 128). */
__global__ void unitKernel(const bf16* A, const bf16* B, const bf16* P, const bf16* V, float* Css, float* Crs,
                           uint32_t lboV, uint32_t sboV) {
  extern __shared__ uint8_t raw[];
  const uint32_t base = (sharedAddress(raw) + 1023) & ~1023u;
  const uint32_t sA = base, sB = base + 64 * 256, sV = base + 2 * 64 * 256;
  loadSwizzled128<64, 128>(sA, A, 64, A);
  loadSwizzled128<64, 128>(sB, B, 64, A);
  loadSwizzled128<64, 128>(sV, V, 64, A);
  asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
  fenceProxyAsync();  // this thread's cp.async writes, visible to the async proxy (wgmma)
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  float s[32];
  wgmmaFence();
#pragma unroll
  for (int k = 0; k < 8; k++) {
    const uint32_t off = (k / 4) * (64 * 128) + (k % 4) * 32;
    wgmmaSS_m64n64k16(s, smemDescriptor(sA + off, 16, 1024), smemDescriptor(sB + off, 16, 1024), k > 0);
  }
  wgmmaCommit();
  wgmmaWait<0>();
  pinRegisters(s);
#pragma unroll
  for (int j = 0; j < 8; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) Css[(warp * 16 + g + (e / 2) * 8) * 64 + j * 8 + 2 * t + (e & 1)] = s[4 * j + e];
  // RS: A fragments of P straight from global (row-major 64 x 64)
  float o[64];
  wgmmaFence();
#pragma unroll
  for (int kk = 0; kk < 4; kk++) {
    const bf16* p0 = P + (warp * 16 + g) * 64 + kk * 16 + 2 * t;
    const bf16* p8 = p0 + 8 * 64;
    const uint32_t a[4] = {*(const uint32_t*)p0, *(const uint32_t*)p8, *(const uint32_t*)(p0 + 8),
                           *(const uint32_t*)(p8 + 8)};
    wgmmaRS_m64n128k16_tB(o, a, smemDescriptor(sV + kk * 16 * 128, lboV, sboV), kk > 0);
  }
  wgmmaCommit();
  wgmmaWait<0>();
  pinRegisters(o);
#pragma unroll
  for (int j = 0; j < 16; j++)
#pragma unroll
    for (int e = 0; e < 4; e++) Crs[(warp * 16 + g + (e / 2) * 8) * 128 + j * 8 + 2 * t + (e & 1)] = o[4 * j + e];
}

static std::vector<bf16> randomBf16(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<bf16> x(n);
  for (auto& e : x) e = __float2bfloat16(dist(rng));
  return x;
}
template <typename T>
static T* upload(const std::vector<T>& h) {
  T* d;
  CHECK(cudaMalloc(&d, h.size() * sizeof(T)));
  CHECK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
  return d;
}
template <typename T>
static std::vector<T> download(const T* d, size_t n) {
  std::vector<T> h(n);
  CHECK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

static bool unitTests(std::mt19937& rng) {
  auto A = randomBf16(64 * 128, rng), B = randomBf16(64 * 128, rng), P = randomBf16(64 * 64, rng),
       V = randomBf16(64 * 128, rng);
  bf16 *dA = upload(A), *dB = upload(B), *dP = upload(P), *dV = upload(V);
  float *dSS, *dRS;
  CHECK(cudaMalloc(&dSS, 64 * 64 * 4));
  CHECK(cudaMalloc(&dRS, 64 * 128 * 4));
  CHECK(cudaFuncSetAttribute(unitKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 3 * 64 * 256 + 1024));
  const uint32_t candidates[][2] = {{8192, 1024}, {1024, 8192}};
  bool ok = false;
  for (auto& c : candidates) {
    unitKernel<<<1, 128, 3 * 64 * 256 + 1024>>>(dA, dB, dP, dV, dSS, dRS, c[0], c[1]);
    CHECK(cudaGetLastError());
    CHECK(cudaDeviceSynchronize());
    auto ss = download(dSS, 64 * 64), rs = download(dRS, 64 * 128);
    double eSS = 0, eRS = 0;
    for (int i = 0; i < 64; i++)
      for (int j = 0; j < 64; j++) {
        double r = 0;
        for (int k = 0; k < 128; k++) r += (double)__bfloat162float(A[i * 128 + k]) * __bfloat162float(B[j * 128 + k]);
        eSS = fmax(eSS, fabs(r - ss[i * 64 + j]));
      }
    for (int i = 0; i < 64; i++)
      for (int j = 0; j < 128; j++) {
        double r = 0;
        for (int k = 0; k < 64; k++) r += (double)__bfloat162float(P[i * 64 + k]) * __bfloat162float(V[k * 128 + j]);
        eRS = fmax(eRS, fabs(r - rs[i * 128 + j]));
      }
    printf("unit: SS (A B^T, K-major both) max abs err %.3g; RS (P V, V transposed) LBO %u SBO %u max abs err %.3g\n",
           eSS, c[0], c[1], eRS);
    if (eSS < 1e-2 && eRS < 1e-2 && c[0] == 8192) ok = true;
  }
  return ok;
}

int main() {
  std::mt19937 rng(2409);
  const bool ok = unitTests(rng);
  printf("unit: %s\n", ok ? "PASS (the transposed operand: leading 8192 = its next 64 columns, stride 1024)" : "FAIL");
  return ok ? 0 : 1;
}
