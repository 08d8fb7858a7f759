// Host entry points of the fused attention (attention.cu), called by addon.cpp. Tensors are
// contiguous: q [B,H,S,D], k [B,Hkv,Skv,D], v [B,Hkv,Skv,Dv], out [B,H,S,Dv], lse [B,H,S] f32.
// Each call enqueues on the device's stream and returns without a sync.
#pragma once
#include "common.h"

namespace grin {

struct SdpaShape {
  int B, H, Hkv, S, Skv, D, Dv, window;
  float scale;
  bool causal;
};

void sdpaForward(int device, int dtype, const SdpaShape& shape, void* out, float* lse, const void* q, const void* k,
                 const void* v);
/**
 * Bytes of scratch sdpaBackward wants: 2 * B*H*S floats (the log-sum-exp in log2 units, then dOut . out
 * per row), rounded up to 256, then on Hopper at head dim 128 the dS^T tiles of the wgmma backward
 * (attention_wgmma_backward.cu; at most 2 GiB, else none and its dQ kernel recomputes dS).
 */
size_t sdpaBackwardScratchBytes(int device, int dtype, const SdpaShape& shape);
/** scratch: scratchBytes bytes; with fewer than sdpaBackwardScratchBytes, dS is recomputed. */
void sdpaBackward(int device, int dtype, const SdpaShape& shape, void* dq, void* dk, void* dv, const float* lse,
                  float* scratch, size_t scratchBytes, const void* q, const void* k, const void* v, const void* out,
                  const void* dout);

/**
 * Calls served by each path (tests check which one ran): attention_tc.cu or attention.cu's general
 * kernels; wgmmaForward / wgmmaBackward count the tensor-core calls that ran on Hopper's wgmma
 * (attention_wgmma.cu, attention_wgmma_backward.cu).
 */
struct SdpaCounts {
  uint64_t tensorCore = 0, general = 0, wgmmaForward = 0, wgmmaBackward = 0, wgmmaStoredDs = 0;
};
extern SdpaCounts sdpaCounts;

}  // namespace grin
