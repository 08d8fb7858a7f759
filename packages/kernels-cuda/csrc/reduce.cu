// Reductions: sum over any set of axes (f64 accumulation for floats, i64 for ints, as the CPU
// backend) and max over one axis with the index of the first maximum (a NaN wins, first one).
// sum picks a block per output when the reduced elements are adjacent (several blocks per output,
// then an ordered second pass, when there are few long rows: totals, grad-norm squares), else a
// thread per output with the reduced range split into chunks (partial sums, then a second pass).
// max over a middle axis splits that axis the same way when there are few columns. Every split is
// merged in a fixed order, so results do not change from run to run. Test: tests/reduce.test.ts.
#include "device.cuh"
#include "kernels.h"

#include <algorithm>

namespace grin {

template <typename T> struct Wide { typedef double type; };
template <> struct Wide<int32_t> { typedef long long type; };
template <> struct Wide<uint8_t> { typedef long long type; };

__device__ __forceinline__ void storeWide(float* p, double v) { *p = (float)v; }
__device__ __forceinline__ void storeWide(bf16* p, double v) { *p = __float2bfloat16((float)v); }
__device__ __forceinline__ void storeWide(int32_t* p, long long v) { *p = (int32_t)(uint32_t)v; }

__device__ __forceinline__ int64_t dimsOffset(const Dims& D, int64_t i) {
  if (D.ndim == 1) return i * D.a[0];  // the common merged case: no division
  if (D.ndim == 0) return 0;
  int64_t a, b;
  dimsOffsets(D, i, a, b);
  return a;
}

template <typename T, typename O>
__global__ void sumRowsKernel(O* out, const T* x, int64_t nOut, int64_t count, Dims kept, Dims reduced) {
  typedef typename Wide<T>::type W;
  __shared__ W shared[33];
  for (int64_t o = blockIdx.x; o < nOut; o += gridDim.x) {
    const T* base = x + dimsOffset(kept, o);
    W acc = 0;
    for (int64_t r = threadIdx.x; r < count; r += blockDim.x) acc += (W)load(base + dimsOffset(reduced, r));
    acc = blockSum(acc, shared);
    if (threadIdx.x == 0) storeWide(out + o, acc);
  }
}

/**
 * Few long rows (a total, a grad-norm square sum): one block per row cannot use the GPU, so block
 * (o, s) sums piece s of row o into partial[o * splits + s], and sumSplitsKernel adds the pieces in
 * order (no atomics: the same input gives the same bits every run).
 */
template <typename T>
__global__ void sumSplitRowsKernel(typename Wide<T>::type* partial, const T* x, int64_t count, int64_t piece,
                                   Dims kept, Dims reduced, bool flat) {
  typedef typename Wide<T>::type W;
  __shared__ W shared[33];
  const int64_t o = blockIdx.y, s = blockIdx.x;
  const T* base = x + dimsOffset(kept, o);
  const int64_t begin = s * piece, end = min(count, begin + piece);
  W acc = 0;
  if (flat)
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc += (W)load(base + r);
  else
    for (int64_t r = begin + threadIdx.x; r < end; r += blockDim.x) acc += (W)load(base + dimsOffset(reduced, r));
  acc = blockSum(acc, shared);
  if (threadIdx.x == 0) partial[o * gridDim.x + s] = acc;
}

template <typename W, typename O>
__global__ void sumSplitsKernel(O* out, const W* partial, int64_t nOut, int splits) {
  int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (o >= nOut) return;
  W acc = 0;
  for (int s = 0; s < splits; s++) acc += partial[o * splits + s];
  storeWide(out + o, acc);
}

/** A warp per output for short contiguous rows (count <= 4096): no block-wide barriers. */
template <typename T, typename O>
__global__ void sumWarpRowsKernel(O* out, const T* x, int64_t nOut, int64_t count, Dims kept) {
  typedef typename Wide<T>::type W;
  int lane = threadIdx.x & 31;
  int64_t warps = ((int64_t)gridDim.x * blockDim.x) >> 5;
  for (int64_t o = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < nOut; o += warps) {
    const T* base = x + dimsOffset(kept, o);
    W acc = 0;
    for (int64_t r = lane; r < count; r += 32) acc += (W)load(base + r);
    acc = warpSum(acc);
    if (lane == 0) storeWide(out + o, acc);
  }
}

/** Thread per output; blockIdx.y takes rows [y * chunk, (y + 1) * chunk) of the reduced range. */
template <typename T, typename O>
__global__ void sumColumnsKernel(O* out, typename Wide<T>::type* partial, const T* x, int64_t nOut, int64_t count,
                                 int64_t chunk, Dims kept, Dims reduced) {
  typedef typename Wide<T>::type W;
  int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (o >= nOut) return;
  const T* base = x + dimsOffset(kept, o);
  int64_t begin = blockIdx.y * chunk, end = min(count, begin + chunk);
  W acc = 0;
  for (int64_t r = begin; r < end; r++) acc += (W)load(base + dimsOffset(reduced, r));
  if (partial) partial[blockIdx.y * nOut + o] = acc;
  else storeWide(out + o, acc);
}

template <typename W, typename O>
__global__ void sumPartialsKernel(O* out, const W* partial, int64_t nOut, int chunks) {
  int64_t o = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (o >= nOut) return;
  W acc = 0;
  for (int c = 0; c < chunks; c++) acc += partial[c * nOut + o];
  storeWide(out + o, acc);
}

template <typename T, typename O>
static void sumTyped(int device, O* out, const T* x, int64_t nOut, int64_t count, const Dims& kept,
                     const Dims& reduced, bool rows) {
  typedef typename Wide<T>::type W;
  cudaStream_t s = streamFor(device);
  if (rows && count <= 4096 && reduced.ndim == 1 && reduced.a[0] == 1) {
    int64_t blocks = (nOut + 7) / 8;  // 8 warps of 32 per block
    sumWarpRowsKernel<T, O><<<(unsigned)(blocks < 132 * 64 ? blocks : 132 * 64), 256, 0, s>>>(out, x, nOut, count, kept);
    return checkLaunch("sum");
  }
  if (rows && nOut < 132 * 4 && count >= (1 << 16)) {
    // pieces of >= 16K elements, enough of them for ~8 blocks per SM over all rows
    int64_t splits = std::min<int64_t>((132 * 8 + nOut - 1) / nOut, count / (1 << 14));
    int64_t piece = (count + splits - 1) / splits;
    splits = (count + piece - 1) / piece;
    Scratch partial(device, sizeof(W) * splits * nOut);
    bool flat = reduced.ndim == 1 && reduced.a[0] == 1;
    sumSplitRowsKernel<T><<<dim3((unsigned)splits, (unsigned)nOut), 512, 0, s>>>(partial.as<W>(), x, count, piece,
                                                                                kept, reduced, flat);
    checkLaunch("sum");
    sumSplitsKernel<W, O><<<gridFor(nOut, 128), 128, 0, s>>>(out, partial.as<W>(), nOut, (int)splits);
    return checkLaunch("sum (pieces)");
  }
  if (rows) {
    int threads = count >= 1024 ? 512 : count >= 128 ? 128 : 32;
    unsigned blocks = (unsigned)(nOut < 132 * 32 ? nOut : 132 * 32);
    sumRowsKernel<T, O><<<blocks, threads, 0, s>>>(out, x, nOut, count, kept, reduced);
    return checkLaunch("sum");
  }
  // Enough chunks that about 256K threads run, each over at least 16 reduced elements.
  int64_t want = (262144 + nOut - 1) / nOut;
  int64_t maxChunks = (count + 15) / 16;
  int chunks = (int)std::max<int64_t>(1, std::min<int64_t>({want, maxChunks, 65535}));
  int64_t chunk = (count + chunks - 1) / chunks;
  dim3 g(gridFor(nOut, 256), chunks);
  if (chunks == 1) {
    sumColumnsKernel<T, O><<<g, 256, 0, s>>>(out, nullptr, x, nOut, count, chunk, kept, reduced);
    return checkLaunch("sum");
  }
  Scratch partial(device, sizeof(W) * chunks * nOut);
  sumColumnsKernel<T, O><<<g, 256, 0, s>>>(out, partial.as<W>(), x, nOut, count, chunk, kept, reduced);
  checkLaunch("sum");
  sumPartialsKernel<W, O><<<gridFor(nOut, 256), 256, 0, s>>>(out, partial.as<W>(), nOut, chunks);
  checkLaunch("sum (partials)");
}

void sum(int device, int dtype, void* out, const void* x, int64_t nOut, int64_t count, const Dims& kept,
         const Dims& reduced, bool rows) {
  if (nOut == 0) return;
  switch (dtype) {
    case F32: return sumTyped<float, float>(device, (float*)out, (const float*)x, nOut, count, kept, reduced, rows);
    case BF16: return sumTyped<bf16, bf16>(device, (bf16*)out, (const bf16*)x, nOut, count, kept, reduced, rows);
    case I32: return sumTyped<int32_t, int32_t>(device, (int32_t*)out, (const int32_t*)x, nOut, count, kept, reduced, rows);
    case BOOL: return sumTyped<uint8_t, int32_t>(device, (int32_t*)out, (const uint8_t*)x, nOut, count, kept, reduced, rows);
  }
  throw Error("cuda: sum: unknown dtype");
}

/** Whether (a, ia) comes before (b, ib): NaN first, then larger, then the lower index. */
template <typename V>
__device__ __forceinline__ bool before(V a, int ia, V b, int ib) {
  bool na = isNaN(a), nb = isNaN(b);
  if (na || nb) return na && nb ? ia < ib : na;
  return a != b ? a > b : ia < ib;
}

template <typename T>
__global__ void maxRowsKernel(T* values, int32_t* indices, const T* x, int64_t rows, int n) {
  typedef typename Acc<T>::type V;
  __shared__ V sv[32];
  __shared__ int si[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* src = x + row * n;
    V best = load(src + 0);
    int at = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
      V v = load(src + j);
      if (before(v, j, best, at)) best = v, at = j;
    }
    for (int o = 16; o > 0; o >>= 1) {
      V ov = __shfl_xor_sync(0xffffffff, best, o);
      int oi = __shfl_xor_sync(0xffffffff, at, o);
      if (before(ov, oi, best, at)) best = ov, at = oi;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) sv[warp] = best, si[warp] = at;
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < (int)(blockDim.x >> 5); w++)
        if (before(sv[w], si[w], best, at)) best = sv[w], at = si[w];
      store(values + row, best);
      indices[row] = at;
    }
  }
}

/**
 * Thread per output column; blockIdx.y takes [y * piece, (y + 1) * piece) of the reduced axis. With
 * one piece it writes the result; with several, (value, index) per piece for maxPiecesKernel, which
 * merges them in order (first maximum, NaN wins), so the answer does not depend on the split.
 */
template <typename T>
__global__ void maxColumnsKernel(T* values, int32_t* indices, typename Acc<T>::type* pieceValues,
                                 int32_t* pieceIndices, const T* x, int64_t outer, int n, int64_t inner, int piece) {
  typedef typename Acc<T>::type V;
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= outer * inner) return;
  int64_t o = i / inner, c = i % inner;
  const T* src = x + o * n * inner + c;
  const int begin = blockIdx.y * piece, end = min(n, begin + piece);
  V best = load(src + (int64_t)begin * inner);
  int at = begin;
  for (int j = begin + 1; j < end && !isNaN(best); j++) {
    V v = load(src + j * inner);
    if (v > best || isNaN(v)) best = v, at = j;
  }
  if (pieceValues) {
    pieceValues[blockIdx.y * outer * inner + i] = best;
    pieceIndices[blockIdx.y * outer * inner + i] = at;
  } else {
    store(values + i, best);
    indices[i] = at;
  }
}

template <typename T>
__global__ void maxPiecesKernel(T* values, int32_t* indices, const typename Acc<T>::type* pieceValues,
                                const int32_t* pieceIndices, int64_t total, int pieces) {
  typedef typename Acc<T>::type V;
  int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= total) return;
  V best = pieceValues[i];
  int at = pieceIndices[i];
  for (int p = 1; p < pieces; p++) {
    V v = pieceValues[p * total + i];
    int j = pieceIndices[p * total + i];
    if (before(v, j, best, at)) best = v, at = j;
  }
  store(values + i, best);
  indices[i] = at;
}

void maxAlong(int device, int dtype, void* values, int32_t* indices, const void* x, int64_t outer, int64_t n,
              int64_t inner) {
  if (outer * inner == 0) return;
  cudaStream_t s = streamFor(device);
  if (inner == 1) {
    int threads = n >= 1024 ? 256 : 32;
    unsigned blocks = (unsigned)(outer < 132 * 32 ? outer : 132 * 32);
    GRIN_DISPATCH(dtype, T, maxRowsKernel<T><<<blocks, threads, 0, s>>>((T*)values, indices, (const T*)x, outer, (int)n));
  } else {
    // pieces of >= 64 rows until ~256K threads run (a [262144, 256] column max is 256 columns)
    int64_t total = outer * inner;
    int pieces = (int)std::max<int64_t>(1, std::min<int64_t>({(262144 + total - 1) / total, n / 64, 65535}));
    int piece = (int)((n + pieces - 1) / pieces);
    pieces = (int)((n + piece - 1) / piece);
    dim3 grid(gridFor(total, 256), pieces);
    if (pieces == 1) {
      GRIN_DISPATCH(dtype, T, maxColumnsKernel<T><<<grid, 256, 0, s>>>((T*)values, indices, nullptr, nullptr, (const T*)x, outer, (int)n, inner, piece));
    } else {
      GRIN_DISPATCH(dtype, T, {
        typedef typename Acc<T>::type V;
        Scratch pv(device, sizeof(V) * pieces * total), pi(device, sizeof(int32_t) * pieces * total);
        maxColumnsKernel<T><<<grid, 256, 0, s>>>((T*)values, indices, pv.as<V>(), pi.as<int32_t>(), (const T*)x, outer, (int)n, inner, piece);
        checkLaunch("max");
        maxPiecesKernel<T><<<gridFor(total, 256), 256, 0, s>>>((T*)values, indices, pv.as<V>(), pi.as<int32_t>(), total, pieces);
      });
    }
  }
  checkLaunch("max");
}

}  // namespace grin
