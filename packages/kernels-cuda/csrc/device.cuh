// Device-side helpers shared by the kernels: load/store per dtype (bf16 computes in f32, bool and
// i32 in int), strided offsets from a Layout, NaN-aware compares, JS-style int conversion, block
// reductions and the dtype dispatch macro. Included by every *.cu file.
// The row kernels of nn.cu and loss.cu (softmax, layer_norm, cross_entropy) share the second half:
// their vectorised versions are one design (16-byte loads, f32 math, a few rows a warp, a warp or
// a block a row), so the loads, the row walk, the reductions, softmax's online max+sum and the
// host's launch plan live here once rather than once per file.
#pragma once
#include <cuda_bf16.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>

#include "common.h"

namespace grin {

typedef __nv_bfloat16 bf16;

__device__ __forceinline__ float load(const float* p) { return *p; }
__device__ __forceinline__ float load(const bf16* p) { return __bfloat162float(*p); }
__device__ __forceinline__ int load(const int32_t* p) { return *p; }
__device__ __forceinline__ int load(const uint8_t* p) { return *p; }
__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ __forceinline__ void store(int32_t* p, int v) { *p = v; }
__device__ __forceinline__ void store(uint8_t* p, int v) { *p = (uint8_t)v; }

template <typename T> struct Acc { typedef float type; };
template <> struct Acc<int32_t> { typedef int type; };
template <> struct Acc<uint8_t> { typedef int type; };

__device__ __forceinline__ bool isNaN(float v) { return v != v; }
__device__ __forceinline__ bool isNaN(double v) { return v != v; }
__device__ __forceinline__ bool isNaN(int) { return false; }

/** JS ToInt32 of a number: NaN and infinities give 0, otherwise truncate and wrap modulo 2^32. */
__device__ __forceinline__ int32_t toInt32(double v) {
  if (!isfinite(v)) return 0;
  double t = fmod(trunc(v), 4294967296.0);
  if (t >= 2147483648.0) t -= 4294967296.0;
  if (t < -2147483648.0) t += 4294967296.0;
  return (int32_t)t;
}

/** Offsets of element `i` (row-major over L.shape) for the first `n` operands. */
template <int N>
__device__ __forceinline__ void offsetsOf(const Layout& L, int64_t i, int64_t (&out)[N]) {
#pragma unroll
  for (int k = 0; k < N; k++) out[k] = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < L.ndim) {
      int64_t size = L.shape[d];
      int64_t c = i % size;
      i /= size;
#pragma unroll
      for (int k = 0; k < N; k++) out[k] += c * L.strides[k][d];
    }
  }
}

/** offsetsOf in index type I: uint32_t when the host proved every offset fits (much cheaper division). */
template <int N, typename I>
__device__ __forceinline__ void offsetsIn(const Layout& L, I i, I (&out)[N]) {
#pragma unroll
  for (int k = 0; k < N; k++) out[k] = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < L.ndim) {
      I size = (I)L.shape[d];
      I c = i % size;
      i /= size;
#pragma unroll
      for (int k = 0; k < N; k++) out[k] += c * (I)L.strides[k][d];
    }
  }
}

/** Offsets into the two stride sets of `D` for element `i` of D.shape. */
__device__ __forceinline__ void dimsOffsets(const Dims& D, int64_t i, int64_t& a, int64_t& b) {
  a = 0;
  b = 0;
#pragma unroll
  for (int d = MAX_DIMS - 1; d >= 0; d--) {
    if (d < D.ndim) {
      int64_t c = i % D.shape[d];
      i /= D.shape[d];
      a += c * D.a[d];
      b += c * D.b[d];
    }
  }
}

/** Records the first out-of-range index seen (first writer wins); checked at the next host read. */
__device__ __forceinline__ void reportIndexError(int64_t* slot, int code, int64_t value, int64_t limit,
                                                 int64_t position) {
  if (atomicCAS((unsigned long long*)slot, 0ull, (unsigned long long)code) == 0ull) {
    slot[1] = value;
    slot[2] = limit;
    slot[3] = position;
  }
}

template <typename T>
__device__ __forceinline__ T warpSum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
  return v;
}

/** Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result. */
template <typename T>
__device__ T blockSum(T v, T* shared /* >= 33 */) {
  v = warpSum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  T total = lane < warps ? shared[lane] : T(0);
  if (warp == 0) total = warpSum(total);
  if (threadIdx.x == 0) shared[32] = total;
  __syncthreads();
  return shared[32];
}

/** NaN-propagating max (as the CPU softmax: a NaN anywhere makes the max NaN). */
__device__ __forceinline__ float nanMax(float a, float b) { return (a != a || a >= b) ? a : b; }

__device__ __forceinline__ float blockMax(float v, float* shared /* >= 33 */) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = nanMax(v, __shfl_xor_sync(0xffffffff, v, o));
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  float m = lane < warps ? shared[lane] : -INFINITY;
  if (warp == 0) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) m = nanMax(m, __shfl_xor_sync(0xffffffff, m, o));
  }
  if (threadIdx.x == 0) shared[32] = m;
  __syncthreads();
  return shared[32];
}

// ---- vectorised row kernels (nn.cu, loss.cu) ---------------------------------------------------

/**
 * Online softmax state: running max m and sum s of exp(x - m). -inf entries add nothing (so a
 * row of -inf keeps s = 0 and ends as NaN, as the CPU); a NaN makes both NaN for good; a +inf
 * makes s NaN as soon as it meets any other state (exp(inf - inf)), so such rows end as NaN too.
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

/**
 * exp for the vectorised row kernels: exp2 of a pre-scaled argument, a few instructions against
 * expf's dozen, which is what bounded their bf16 rows (bf16 ran at f32's element rate). Relative
 * error ~|x| * 1e-7 on top of exp2f's 2 ulp, far below bf16's rounding and the f32 tolerances;
 * exp(-inf) = 0, NaN stays NaN.
 */
__device__ __forceinline__ float expRow(float x) { return exp2f(x * 1.4426950408889634f); }

/**
 * push() of a whole vector: one rescale by the vector's max instead of one per value. Same special
 * values: -inf adds exp(-inf) = 0, a NaN gives NaN, a +inf max gives exp(inf - inf) = NaN for s (the
 * scalar kernel gets there one merge later; either way the row ends as NaN).
 */
template <int V>
__device__ __forceinline__ MaxSum pushVec(MaxSum a, const float (&v)[V]) {
  float vm = v[0];
#pragma unroll
  for (int j = 1; j < V; j++) vm = nanMax(vm, v[j]);
  if (vm != vm || a.m != a.m) return {NAN, NAN};
  float m = fmaxf(a.m, vm);
  if (m == -INFINITY) return a;  // only -inf so far: {-inf, 0}
  float s = a.m == -INFINITY ? 0.0f : a.s * expRow(a.m - m);
#pragma unroll
  for (int j = 0; j < V; j++) s += expRow(v[j] - m);
  return {m, s};
}

__device__ __forceinline__ MaxSum blockMaxSum(MaxSum v, MaxSum* shared /* >= 33 */) {
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

/** Elements of T in one 16-byte vector: 4 f32 or 8 bf16. */
template <typename T> struct VecOf { static constexpr int n = 16 / sizeof(T); };

__device__ __forceinline__ void loadVec(const float* p, float (&v)[4]) {
  float4 q = __ldg((const float4*)p);
  v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
}
__device__ __forceinline__ void loadVec(const bf16* p, float (&v)[8]) {
  uint4 q = __ldg((const uint4*)p);
  const __nv_bfloat162* h = (const __nv_bfloat162*)&q;
#pragma unroll
  for (int i = 0; i < 4; i++) {
    float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x, v[2 * i + 1] = f.y;
  }
}
// Stores through the st.global.v4 intrinsic: a plain float4 / uint4 assignment comes out as four
// 4-byte stores inside the streaming loops (the compiler splits it and does not merge it again).
__device__ __forceinline__ void storeVec(float* p, const float (&v)[4]) { __stwb((float4*)p, make_float4(v[0], v[1], v[2], v[3])); }
__device__ __forceinline__ void storeVec(bf16* p, const float (&v)[8]) {
  uint4 q;
  __nv_bfloat162* h = (__nv_bfloat162*)&q;
#pragma unroll
  for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  __stwb((uint4*)p, q);
}

/**
 * The rows a thread works on: LANES lanes a row (a power of 2 up to 32; a warp holds 32 / LANES
 * rows side by side) or, with LANES = 0, the whole block a row. Loop
 * `for (int64_t base = walk.first; base < rows; base += walk.step)` over row `base + walk.sub`: base
 * is the same over a warp (over the block for LANES = 0), so every lane reaches every shuffle and
 * barrier, and with LANES < 32 the kernel must check `base + walk.sub < rows` itself.
 */
template <int LANES>
struct RowWalk {
  static_assert(LANES == 0 || (LANES <= 32 && (LANES & (LANES - 1)) == 0), "LANES: 0 or a power of 2 up to 32");
  int lanes, lane, sub;
  int64_t first, step;
  __device__ RowWalk() {
    if constexpr (LANES == 0) {
      lanes = blockDim.x, lane = threadIdx.x, sub = 0;
      first = blockIdx.x, step = gridDim.x;
    } else {
      constexpr int perWarp = 32 / LANES;
      lanes = LANES, lane = threadIdx.x & (LANES - 1), sub = (threadIdx.x & 31) / LANES;
      first = ((int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * perWarp;
      step = (int64_t)gridDim.x * (blockDim.x >> 5) * perWarp;
    }
  }
};

/** Reductions over the LANES lanes of a row (xor shuffles stay inside the group) or the block (0). */
template <int LANES, typename T>
__device__ __forceinline__ T rowSum(T v, T* shared) {
  if constexpr (LANES == 0) {
    return blockSum(v, shared);
  } else {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffff, v, o);
    return v;
  }
}
template <int LANES>
__device__ __forceinline__ float rowMax(float v, float* shared) {
  if constexpr (LANES == 0) {
    return blockMax(v, shared);
  } else {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1) v = nanMax(v, __shfl_xor_sync(0xffffffff, v, o));
    return v;
  }
}
template <int LANES>
__device__ __forceinline__ MaxSum rowMaxSum(MaxSum v, MaxSum* shared) {
  if constexpr (LANES == 0) {
    return blockMaxSum(v, shared);
  } else {
#pragma unroll
    for (int o = LANES / 2; o > 0; o >>= 1)
      v = merge(v, {__shfl_xor_sync(0xffffffff, v.m, o), __shfl_xor_sync(0xffffffff, v.s, o)});
    return v;
  }
}

/** Vectors a lane keeps in flight in the streaming loops below. */
constexpr int ROW_UNROLL = 4;

/**
 * Online max + sum of exp over one row of `vecs` 16-byte vectors (the row's first pass when it is
 * too long for registers, or cross_entropy's only pass); every lane of the row gets the total.
 */
template <int LANES, typename T>
__device__ __forceinline__ MaxSum rowMaxSumVec(const T* src, int vecs, const RowWalk<LANES>& walk, MaxSum* shared) {
  constexpr int V = VecOf<T>::n;
  MaxSum acc{-INFINITY, 0.0f};
  for (int k0 = walk.lane; k0 < vecs; k0 += ROW_UNROLL * walk.lanes) {
    float v[ROW_UNROLL][V];
#pragma unroll
    for (int u = 0; u < ROW_UNROLL; u++) {
      int k = k0 + u * walk.lanes;
      if (k < vecs) loadVec(src + k * V, v[u]);
    }
#pragma unroll
    for (int u = 0; u < ROW_UNROLL; u++)
      if (k0 + u * walk.lanes < vecs) acc = pushVec(acc, v[u]);
  }
  return rowMaxSum<LANES>(acc, shared);
}

/** dst = f(src) over one row of `vecs` vectors; f(v, j) rewrites v, whose first element is j. */
template <int LANES, typename T, typename F>
__device__ __forceinline__ void mapRowVec(T* dst, const T* src, int vecs, const RowWalk<LANES>& walk, F f) {
  constexpr int V = VecOf<T>::n;
  for (int k0 = walk.lane; k0 < vecs; k0 += ROW_UNROLL * walk.lanes) {
    float v[ROW_UNROLL][V];
#pragma unroll
    for (int u = 0; u < ROW_UNROLL; u++) {
      int k = k0 + u * walk.lanes;
      if (k < vecs) loadVec(src + k * V, v[u]);
    }
#pragma unroll
    for (int u = 0; u < ROW_UNROLL; u++) {
      int k = k0 + u * walk.lanes;
      if (k < vecs) {
        f(v[u], k * V);
        storeVec(dst + k * V, v[u]);
      }
    }
  }
}

/** GRIN_<OP>_SCALAR=1 picks an op's scalar kernels; read per call, so a dev harness can switch. */
inline bool scalarForced(const char* env) {
  const char* flag = getenv(env);
  return flag && flag[0] == '1';
}

inline bool aligned16(std::initializer_list<const void*> pointers) {
  for (const void* p : pointers)
    if ((uintptr_t)p % 16 != 0) return false;
  return true;
}

/**
 * The launch of a vectorised row kernel for rows of `vecs` vectors, the row held in registers:
 * `lanes` lanes a row (a warp, or with packRows a power of 2 >= vecs, so a warp holds up to 32
 * short rows) with n = 1, 2 or 4 vectors a lane while vecs <= 128; else a block of at most 512
 * threads a row (n = 4, or 8 where maxN allows: layer_norm's forward holds one row, its backward
 * two, and 512 threads leave 128 registers each). Longer rows: ok = false (a scalar or streaming
 * kernel).
 */
struct VecPlan {
  bool ok, warp;
  int lanes, n, threads;
  unsigned blocks;
};
inline VecPlan vecPlan(int64_t rows, int64_t vecs, int maxN, bool packRows = false) {
  if (vecs <= 128) {
    int lanes = 32;
    while (packRows && lanes > 1 && lanes / 2 >= vecs) lanes /= 2;
    int n = vecs <= lanes ? 1 : vecs <= 64 ? 2 : 4;
    int64_t perBlock = 4 * (32 / lanes);  // 4 warps a block
    int64_t blocks = (rows + perBlock - 1) / perBlock;
    return {true, true, lanes, n, 128, (unsigned)std::min<int64_t>(blocks, 132 * 32)};
  }
  for (int n = 4; n <= maxN; n *= 2) {
    int64_t threads = ((vecs + n - 1) / n + 31) / 32 * 32;
    if (threads <= 512) return {true, false, 0, n, (int)threads, (unsigned)std::min<int64_t>(rows, 132 * 16)};
  }
  return {false, false, 0, 0, 0, 0};
}

/**
 * The launch of a streaming row kernel (rows too long for registers): a block of 512 threads a row.
 * When the kernel reads each row twice (max + sum, then the output), only about 16 MiB of rows are
 * in flight (two blocks an SM for rows up to 64 KiB, one beyond) so that the second read finds the
 * row still in the 50 MB L2; a single read lets up to 16 blocks an SM queue.
 */
inline VecPlan streamPlan(int64_t rows, int64_t rowBytes, bool rereads) {
  int64_t perSm = !rereads ? 16 : rowBytes <= 65536 ? 2 : 1;
  return {true, false, 0, ROW_UNROLL, 512, (unsigned)std::min<int64_t>(rows, 132 * perSm)};
}

}  // namespace grin

#define GRIN_DISPATCH(dtype, T, ...)                                 \
  switch (dtype) {                                                   \
    case ::grin::F32: { typedef float T; __VA_ARGS__; break; }       \
    case ::grin::BF16: { typedef ::grin::bf16 T; __VA_ARGS__; break; } \
    case ::grin::I32: { typedef int32_t T; __VA_ARGS__; break; }     \
    case ::grin::BOOL: { typedef uint8_t T; __VA_ARGS__; break; }    \
    default: throw ::grin::Error("cuda: unknown dtype code " + std::to_string(dtype)); \
  }

#define GRIN_DISPATCH_FLOAT(dtype, T, what, ...)                     \
  switch (dtype) {                                                   \
    case ::grin::F32: { typedef float T; __VA_ARGS__; break; }       \
    case ::grin::BF16: { typedef ::grin::bf16 T; __VA_ARGS__; break; } \
    default: throw ::grin::Error(std::string("cuda: ") + what + ": needs f32 or bf16"); \
  }
