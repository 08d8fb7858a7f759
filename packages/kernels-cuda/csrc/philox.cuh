// Philox4x32-10 on the device and the word-to-value maps of the tensor package's Generator
// (packages/tensor/src/random/{philox,transforms,generator}.ts), so a kernel drawing from a
// (key, counter) reservation gets the CPU stream's values. The f64 arithmetic is spelled with
// __d*_rn intrinsics because JS evaluates these expressions in doubles without fused multiply-add;
// nvcc would otherwise contract them and round differently. Used by random.cu and route.cu.
#pragma once
#include <cstdint>

namespace grin {

struct PhiloxKey {
  uint32_t k0, k1;
};

/** Block `block` of the stream (ctr = (block low, block high, 0, 0)): 4 words. */
__device__ __forceinline__ uint4 philoxBlock(PhiloxKey key, uint64_t block) {
  uint32_t x0 = (uint32_t)block, x1 = (uint32_t)(block >> 32), x2 = 0, x3 = 0;
  uint32_t k0 = key.k0, k1 = key.k1;
#pragma unroll
  for (int round = 0; round < 10; round++) {
    if (round > 0) {
      k0 += 0x9e3779b9u;
      k1 += 0xbb67ae85u;
    }
    uint32_t hi0 = __umulhi(0xd2511f53u, x0), lo0 = 0xd2511f53u * x0;
    uint32_t hi1 = __umulhi(0xcd9e8d57u, x2), lo1 = 0xcd9e8d57u * x2;
    uint32_t y0 = hi1 ^ x1 ^ k0, y2 = hi0 ^ x3 ^ k1;
    x0 = y0;
    x1 = lo1;
    x2 = y2;
    x3 = lo0;
  }
  return make_uint4(x0, x1, x2, x3);
}

__device__ __forceinline__ uint32_t wordOf(uint4 b, int i) {
  return i == 0 ? b.x : i == 1 ? b.y : i == 2 ? b.z : b.w;
}

/** Word `index` of a call that starts at block `counter`. */
__device__ __forceinline__ uint32_t philoxWord(PhiloxKey key, uint64_t counter, uint64_t index) {
  return wordOf(philoxBlock(key, counter + index / 4), (int)(index % 4));
}

/** unitFloat32: top 24 bits times 2^-24, in [0, 1). */
__device__ __forceinline__ double unitFloat32(uint32_t w) { return (double)(w >> 8) * 5.9604644775390625e-08; }
/** openUnitFloat32: shifted by half a step, in (0, 1). */
__device__ __forceinline__ double openUnitFloat32(uint32_t w) {
  return ((double)(w >> 8) + 0.5) * 5.9604644775390625e-08;
}

/** Generator.fillUniform (f32): fround(low + (high - low) * u), kept below high. */
__device__ __forceinline__ float uniformF32(uint32_t w, double low, double scale, double high, float ceiling) {
  float v = (float)__dadd_rn(low, __dmul_rn(scale, unitFloat32(w)));
  return (double)v >= high ? ceiling : v;
}

/** Generator.fillExponential (f32): (0 - log(1 - u)) / rate. */
__device__ __forceinline__ float exponentialF32(uint32_t w, double rate) {
  return (float)__ddiv_rn(__dsub_rn(0.0, log(__dsub_rn(1.0, unitFloat32(w)))), rate);
}

}  // namespace grin
