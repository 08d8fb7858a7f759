// Fused routers, one thread per token (E <= 64 experts fit in its registers): SparseMixer-v2
// (packages/router-sparsemixer/src/sparsemixer.ts), GShard top-k renormalised and Switch top-1
// (baselines.ts), forward and backward. The forward also writes the full softmax (for the balance
// loss) and the picks per expert, so routing and its statistics take one pass. The training draws
// come from the Philox reservation in the reference's order (per slot: Exp [T, E], then U [T, 1]),
// so given one seed the picks equal the CPU router's. Each f32 step of the reference (a sub, a
// divide, the softmax in f64 rounded once) is computed the same way, with _rn intrinsics where nvcc
// would otherwise fuse. The backward recomputes the masked softmaxes from the logits and the picks.
// Test: tests/cases/route.ts (GPU).
#include "device.cuh"
#include "kernels.h"
#include "philox.cuh"

namespace grin {

namespace {
constexpr int MAX_E = 64;
constexpr float PARTIAL_FACTOR = 0.3333f;  // Math.fround(0.3333)
constexpr float COIN_THRESHOLD = 0.75f;

struct RouteArgs {
  int router;  // 0 sparsemixer-v2, 1 gshard (renormalised top-k), 2 switch (top-k, weights p_D)
  int E, K;
  int64_t T;
  float threshold;  // fround(2 * eps)
  bool training;
  PhiloxKey key;
  uint64_t counter;
};

/** softmax of row[0..E) as the CPU kernel computes it: f64 exp and sum from the max, one rounding. */
__device__ void softmaxRow(const float* row, float* p, int E) {
  float m = -INFINITY;
  for (int j = 0; j < E; j++)
    if (row[j] > m || isNaN(row[j])) m = row[j];
  double e[MAX_E], s = 0.0;
  for (int j = 0; j < E; j++) {
    e[j] = exp((double)row[j] - (double)m);
    s += e[j];
  }
  for (int j = 0; j < E; j++) p[j] = (float)(e[j] / s);
}

/** First index of the largest value (a NaN counts as largest, as the CPU argmax). */
__device__ int argmaxOf(const float* v, int E) {
  int best = 0;
  for (int j = 1; j < E; j++)
    if (!isNaN(v[best]) && (v[j] > v[best] || isNaN(v[j]))) best = j;
  return best;
}

/** The SparseMixer jitter mask of one slot: masked[j] = -inf where z_j lies outside the band. */
__device__ void maskSlot(const float* z, const float* src, float* masked, int E, float threshold) {
  float zmax = -INFINITY;
  for (int j = 0; j < E; j++)
    if (src[j] > zmax || isNaN(src[j])) zmax = src[j];
  for (int j = 0; j < E; j++) {
    float den = fabsf(z[j]) > zmax || isNaN(z[j]) ? fabsf(z[j]) : zmax;  // maximum(|z|, max)
    float ratio = __fdiv_rn(__fsub_rn(zmax, z[j]), den);
    masked[j] = ratio > threshold ? -INFINITY : src[j];  // a NaN ratio (0/0) compares false: kept
  }
}

__global__ void routeKernel(RouteArgs a, const float* logits, int32_t* experts, float* weights, float* probs,
                            float* counts) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= a.T) return;
  int E = a.E, K = a.K;
  float z[MAX_E], p[MAX_E];
  for (int j = 0; j < E; j++) z[j] = logits[t * E + j];
  softmaxRow(z, p, E);
  for (int j = 0; j < E; j++) probs[t * E + j] = p[j];
  if (a.router != 0) {
    float taken[MAX_E], picked[8], total = 0.f;
    double sum = 0.0;
    for (int j = 0; j < E; j++) taken[j] = p[j];
    for (int k = 0; k < K; k++) {
      int D = argmaxOf(taken, E);
      experts[t * K + k] = D;
      picked[k] = p[D];
      sum += p[D];
      taken[D] = -INFINITY;
      atomicAdd(counts + D, 1.f);
    }
    total = (float)sum;
    for (int k = 0; k < K; k++) weights[t * K + k] = a.router == 1 ? __fdiv_rn(picked[k], total) : picked[k];
    return;
  }
  // SparseMixer-v2: slot k's draws start at block counter + k * (Exp blocks + U blocks)
  uint64_t expBlocks = (uint64_t)((a.T * E + 3) / 4), uBlocks = (uint64_t)((a.T + 3) / 4);
  float src[MAX_E], masked[MAX_E], q[MAX_E];
  for (int j = 0; j < E; j++) src[j] = z[j];
  for (int k = 0; k < K; k++) {
    maskSlot(z, src, masked, E, a.threshold);
    int D;
    uint64_t base = a.counter + (uint64_t)k * (expBlocks + uBlocks);
    if (a.training) {
      float score[MAX_E];
      for (int j = 0; j < E; j++) {
        float draw = exponentialF32(philoxWord(a.key, base, (uint64_t)(t * E + j)), 1.0);
        score[j] = __fsub_rn(masked[j], (float)log((double)draw));
      }
      D = argmaxOf(score, E);
    } else {
      D = argmaxOf(src, E);
    }
    softmaxRow(masked, q, E);
    float weight = q[D];
    if (a.training) {
      float u = uniformF32(philoxWord(a.key, base + expBlocks, (uint64_t)t), 0.0, 1.0, 1.0, 0.99999994f);
      bool full = D == argmaxOf(q, E) || u > COIN_THRESHOLD;
      weight = __fmul_rn(weight, full ? 1.f : PARTIAL_FACTOR);
    }
    experts[t * K + k] = D;
    weights[t * K + k] = weight;
    atomicAdd(counts + D, 1.f);
    src[D] = -INFINITY;
  }
}

/**
 * d logits from the weights' gradient gw [T, K] and the full softmax's gradient gp [T, E] (null:
 * none). SparseMixer-v2 per slot: dz += s (onehot(D) - q), s = gw * q_D (its estimator, also the
 * eval derivative). GShard / Switch: the gradient reaches the softmax through the picked values.
 */
__global__ void routeBackwardKernel(RouteArgs a, const float* logits, const int32_t* experts, const float* gw,
                                    const float* gp, float* dz) {
  int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (t >= a.T) return;
  int E = a.E, K = a.K;
  float z[MAX_E], p[MAX_E], dp[MAX_E], out[MAX_E];
  for (int j = 0; j < E; j++) {
    z[j] = logits[t * E + j];
    dp[j] = gp ? gp[t * E + j] : 0.f;
    out[j] = 0.f;
  }
  softmaxRow(z, p, E);
  if (a.router == 0) {
    float src[MAX_E], masked[MAX_E], q[MAX_E];
    for (int j = 0; j < E; j++) src[j] = z[j];
    for (int k = 0; k < K; k++) {
      int D = experts[t * K + k];
      maskSlot(z, src, masked, E, a.threshold);
      softmaxRow(masked, q, E);
      float s = gw[t * K + k] * q[D];
      for (int j = 0; j < E; j++) out[j] -= q[j] * s;
      out[D] += s;
      src[D] = -INFINITY;
    }
  } else if (a.router == 1) {
    float sum = 0.f, dot = 0.f;
    for (int k = 0; k < K; k++) sum += p[experts[t * K + k]];
    for (int k = 0; k < K; k++) dot += gw[t * K + k] * p[experts[t * K + k]];
    for (int k = 0; k < K; k++) dp[experts[t * K + k]] += gw[t * K + k] / sum - dot / (sum * sum);
  } else {
    for (int k = 0; k < K; k++) dp[experts[t * K + k]] += gw[t * K + k];
  }
  float inner = 0.f;
  for (int j = 0; j < E; j++) inner += dp[j] * p[j];
  for (int j = 0; j < E; j++) dz[t * E + j] = out[j] + p[j] * (dp[j] - inner);
}

RouteArgs argsFor(int router, int64_t T, int E, int K, double eps, bool training, uint32_t key0, uint32_t key1,
                  uint64_t counter) {
  if (E < 1 || E > MAX_E) throw Error("moe_route (cuda): the fused routers take 1..64 experts");
  if (K < 1 || K > E || K > 8) throw Error("moe_route (cuda): top-k must be in 1..min(8, E)");
  if (router < 0 || router > 2) throw Error("moe_route (cuda): unknown router code");
  return RouteArgs{router, E, K, T, (float)(2 * eps), training, PhiloxKey{key0, key1}, counter};
}
}  // namespace

void moeRoute(int device, int router, const float* logits, int32_t* experts, float* weights, float* probs,
              float* counts, int64_t T, int E, int K, double eps, bool training, uint32_t key0, uint32_t key1,
              uint64_t counter) {
  RouteArgs a = argsFor(router, T, E, K, eps, training, key0, key1, counter);
  cudaStream_t stream = streamFor(device);
  check(cudaMemsetAsync(counts, 0, E * sizeof(float), stream), "moe_route: clear counts");
  if (T == 0) return;
  routeKernel<<<gridFor(T, 128), 128, 0, stream>>>(a, logits, experts, weights, probs, counts);
  checkLaunch("moe_route");
}

void moeRouteBackward(int device, int router, const float* logits, const int32_t* experts, const float* gw,
                      const float* gp, float* dz, int64_t T, int E, int K, double eps) {
  RouteArgs a = argsFor(router, T, E, K, eps, true, 0, 0, 0);
  if (T == 0) return;
  routeBackwardKernel<<<gridFor(T, 128), 128, 0, streamFor(device)>>>(a, logits, experts, gw, gp, dz);
  checkLaunch("moe_route_backward");
}

}  // namespace grin
