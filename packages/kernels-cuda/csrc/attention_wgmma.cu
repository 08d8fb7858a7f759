// The bf16 attention forward at head dim 128 on Hopper's warpgroup MMA (wgmma, sm_90a): what GRIN
// trains. Each warpgroup (4 warps) owns 64 query rows, two warpgroups a block. Q and the streamed
// K / V tiles sit in shared memory in the 128-byte-swizzled layout the wgmma descriptors read (cp.async,
// two K/V buffers); S = Q K^T is 8 wgmma m64n64k16 with both operands in shared memory, and
// O += P V is 4 wgmma m64n128k16 with P from registers (the accumulator layout is the A fragment
// layout) and V read transposed. Unlike mma.sync, the tensor core reads the operands itself: no
// ldmatrix and no register copies of K and V, which is what bounds attention_tc.cu's forward.
// Same 64-key tiles, mask, online softmax (softmaxTile) and bf16 rounding of P as attention.cu.
// Test: tests/cases/attention.ts (GPU, against the CPU op and the general path).
#include "attention.cuh"
#include "wgmma.cuh"

namespace grin {
namespace {

constexpr int WG_ROWS = 64, WARPGROUPS = 2, ROWS = WG_ROWS * WARPGROUPS, THREADS = WARPGROUPS * 128;
constexpr int DT = 128, KT = KEY_TILE;
constexpr int Q_BYTES = ROWS * DT * 2, TILE_BYTES = KT * DT * 2;  // swizzled: two 64-column blocks each
constexpr size_t SMEM = Q_BYTES + 4 * TILE_BYTES + 1024;          // + alignment of the base to 1024

__global__ void __launch_bounds__(THREADS, 2) forwardWgmmaKernel(Params p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smemBytes[];
  const uint32_t sQ = (smemAddr(smemBytes) + 1023) & ~1023u;  // the swizzle pattern repeats every 1024 bytes
  const uint32_t sK = sQ + Q_BYTES, sV = sK + 2 * TILE_BYTES;   // two buffers each
  const int wg = threadIdx.x / 128, warp = (threadIdx.x / 32) % 4, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int i0 = blockIdx.x * ROWS, bh = blockIdx.y, b = bh / p.H, h = bh % p.H;
  const int kvh = b * p.Hkv + h / (p.H / p.Hkv);
  const bf16* q = (const bf16*)p.q + (int64_t)bh * p.S * DT;
  const bf16* k = (const bf16*)p.k + (int64_t)kvh * p.Skv * DT;
  const bf16* v = (const bf16*)p.v + (int64_t)kvh * p.Skv * DT;
  const Mask mask{p.Skv - p.S, p.Skv, p.window, p.causal};
  int first, last;
  keyRange(p, i0, min(i0 + ROWS - 1, p.S - 1), first, last);
  loadSwizzled128<ROWS, THREADS>(sQ, q + (int64_t)i0 * DT, p.S - i0, q);
  if (first <= last) {
    loadSwizzled128<KT, THREADS>(sK, k + (int64_t)first * DT, p.Skv - first, k);
    loadSwizzled128<KT, THREADS>(sV, v + (int64_t)first * DT, p.Skv - first, k);
  }
  cpAsyncCommit();

  const float scale2 = p.scale * LOG2E;
  float rowMax[2] = {-INFINITY, -INFINITY}, rowSum[2] = {0.f, 0.f};
  float o[DT / 8][4];
#pragma unroll
  for (int n = 0; n < DT / 8; n++) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
  float(&oFlat)[DT / 2] = reinterpret_cast<float(&)[DT / 2]>(o);
  const int wLo = i0 + wg * WG_ROWS, wHi = min(wLo + WG_ROWS - 1, p.S - 1);
  const int r0 = wLo + warp * 16 + g;  // this lane's rows: r0 and r0 + 8
  // Matrix descriptors are built once; a step's operand is the base plus a constant offset in the
  // descriptor's address field (16-byte units, no carry: shared addresses stay below 256 KB).
  const uint64_t qDesc = smemDescriptor(sQ + wg * WG_ROWS * 128, 16, 1024);
  int buf = 0;
  for (int j0 = first; j0 <= last; j0 += KT, buf ^= 1) {
    const int next = j0 + KT;
    awaitTile(next <= last, [&] {
      loadSwizzled128<KT, THREADS>(sK + (buf ^ 1) * TILE_BYTES, k + (int64_t)next * DT, p.Skv - next, k);
      loadSwizzled128<KT, THREADS>(sV + (buf ^ 1) * TILE_BYTES, v + (int64_t)next * DT, p.Skv - next, k);
    });
    const Seen vis = seen(p, wLo, wHi, j0, KT, true);  // one answer for the whole warpgroup
    if (vis != NONE) {
      float s[KT / 8][4];
      float(&sFlat)[KT / 2] = reinterpret_cast<float(&)[KT / 2]>(s);
      const uint64_t kDesc = smemDescriptor(sK + buf * TILE_BYTES, 16, 1024);
      wgmmaFence();
#pragma unroll
      for (int kk = 0; kk < DT / 16; kk++) {  // 16 columns of d a step: 32 bytes into a 128-byte row
        const uint32_t col = (kk % 4) * 32;  // offsets in 16-byte units: the descriptor's address field
        wgmmaSS_m64n64k16(sFlat, qDesc + (((kk / 4) * (ROWS * 128) + col) >> 4),
                          kDesc + (((kk / 4) * (KT * 128) + col) >> 4), kk > 0);
      }
      wgmmaCommit();
      wgmmaWait<0>();
      pinRegisters(sFlat);
      if (vis != ALL) {  // most tiles under a window are seen whole; the scale is applied in the softmax
#pragma unroll
        for (int n = 0; n < KT / 8; n++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int row = r0 + (e / 2) * 8, key = j0 + n * 8 + 2 * t + (e & 1);
            if (!mask.visible(row, key)) s[n][e] = -INFINITY;
          }
      }
      softmaxTile(s, scale2, o, rowMax, rowSum);
      uint32_t pf[KT / 16][4];
      packA<KT>(pf, s);
      wgmmaFence();  // o was rescaled by ordinary instructions
      const uint64_t vDesc = smemDescriptor(sV + buf * TILE_BYTES, KT * 128, 1024);
#pragma unroll
      for (int kk = 0; kk < KT / 16; kk++)  // 16 keys a step: 16 rows of 128 bytes in each column block
        wgmmaRS_m64n128k16_tB(oFlat, pf[kk], vDesc + ((kk * 16 * 128) >> 4), 1);
      wgmmaCommit();
      wgmmaWait<0>();
      pinRegisters(oFlat);
    }
    __syncthreads();  // both warpgroups are done with this buffer before the next load overwrites it
  }
  cpAsyncWait<0>();
  bf16* out = (bf16*)p.out + (int64_t)bh * p.S * DT;
#pragma unroll
  for (int r = 0; r < 2; r++) {
    float sum = rowSum[r];
    sum += __shfl_xor_sync(0xffffffff, sum, 1);
    sum += __shfl_xor_sync(0xffffffff, sum, 2);
    const int row = r0 + r * 8;
    if (row >= p.S) continue;
    const float inv = 1.f / sum;  // 0 visible keys: 1/0 * 0 = NaN, as the CPU reference
#pragma unroll
    for (int n = 0; n < DT / 8; n++)
      *(__nv_bfloat162*)(out + (int64_t)row * DT + n * 8 + 2 * t) =
          __floats2bfloat162_rn(o[n][r * 2] * inv, o[n][r * 2 + 1] * inv);
    if (t == 0) p.lse[(int64_t)bh * p.S + row] = sum == 0.f ? -INFINITY : (rowMax[r] + log2f(sum)) / LOG2E;
  }
#else
  __trap();  // never launched: wgmmaSupported() requires a compute capability 9.0 device
#endif
}

}  // namespace

bool wgmmaSupported(const Params& p) {
  int device = 0;
  return p.D == DT && cudaGetDevice(&device) == cudaSuccess && hopperDevice(device);
}

void sdpaForwardWgmma(const Params& p, cudaStream_t s) {
  launch(forwardWgmmaKernel, dim3((p.S + ROWS - 1) / ROWS, p.B * p.H), THREADS, SMEM, s, p, "sdpa (wgmma)");
}

}  // namespace grin
