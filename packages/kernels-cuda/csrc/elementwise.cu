// Elementwise kernels: unary maps, binary ops with broadcasting (comparisons write bool), where,
// masked_fill, add_inplace, silu_backward. Every operand is read through a Layout (strides already
// broadcast and merged by src/layout.ts); a flat path serves fully contiguous operands.
// bf16 computes in f32 and rounds once; i32/bool compute in int. Mirrors src/cpu/elementwise.ts.
// Test: tests/elementwise.test.ts (GPU).
#include "device.cuh"
#include "kernels.h"

namespace grin {

enum Unary { NEG, EXP, LOG, SQRT, RSQRT, ABS, SILU, SIGMOID, TANH, RELU, POW };
enum Binary { ADD, SUB, MUL, DIV, MAXIMUM, MINIMUM, EQ, NE, LT, LE, GT, GE, SILU_BACKWARD };

__device__ __forceinline__ float unaryOp(int op, float a, float e) {
  switch (op) {
    case NEG: return -a;
    case EXP: return expf(a);
    case LOG: return logf(a);
    case SQRT: return sqrtf(a);
    case RSQRT: return 1.0f / sqrtf(a);
    case ABS: return fabsf(a);
    case SILU: return a / (1.0f + expf(-a));
    case SIGMOID: return 1.0f / (1.0f + expf(-a));
    case TANH: return tanhf(a);
    case RELU: return a > 0.0f ? a : 0.0f;
    case POW: return e == 2.0f ? a * a : e == 3.0f ? a * a * a : powf(a, e);
  }
  return 0.0f;
}
__device__ __forceinline__ int unaryOp(int op, int a, float) {
  switch (op) {
    case NEG: return (int)(0u - (unsigned)a);
    case ABS: return a < 0 ? (int)(0u - (unsigned)a) : a;
    case RELU: return a > 0 ? a : 0;
  }
  return 0;
}

__device__ __forceinline__ float binaryOp(int op, float a, float b) {
  switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return a / b;
    case MAXIMUM: return (a >= b || a != a) ? a : b;
    case MINIMUM: return (a <= b || a != a) ? a : b;
    case EQ: return a == b;
    case NE: return a != b;
    case LT: return a < b;
    case LE: return a <= b;
    case GT: return a > b;
    case GE: return a >= b;
    case SILU_BACKWARD: {  // a = x, b = upstream gradient
      float s = 1.0f / (1.0f + expf(-a));
      return b * s * (1.0f + a * (1.0f - s));
    }
  }
  return 0.0f;
}
__device__ __forceinline__ int binaryOp(int op, int a, int b) {
  switch (op) {
    case ADD: return (int)((unsigned)a + (unsigned)b);
    case SUB: return (int)((unsigned)a - (unsigned)b);
    case MUL: return (int)((unsigned)a * (unsigned)b);
    // JS stores a / b truncated; x / 0 is Infinity or NaN, which an Int32Array stores as 0.
    case DIV: return b == 0 ? 0 : b == -1 ? (int)(0u - (unsigned)a) : a / b;
    case MAXIMUM: return a >= b ? a : b;
    case MINIMUM: return a <= b ? a : b;
    case EQ: return a == b;
    case NE: return a != b;
    case LT: return a < b;
    case LE: return a <= b;
    case GT: return a > b;
    case GE: return a >= b;
  }
  return 0;
}

// Each thread keeps UNROLL grid-strided elements in flight (loads first, then math and stores):
// more memory-level parallelism than one element per loop trip.
constexpr int UNROLL = 4;

template <typename T, typename I>
__global__ void unaryKernel(int op, float exponent, T* out, const T* x, I n, Layout L, bool flat) {
  typedef typename Acc<T>::type V;
  const I stride = (I)gridDim.x * blockDim.x;
  for (I base = (I)blockIdx.x * blockDim.x + threadIdx.x; base < n; base += stride * UNROLL) {
    V v[UNROLL];
    I o[UNROLL][2];
#pragma unroll
    for (int k = 0; k < UNROLL; k++) {
      I i = base + k * stride;
      if (i < n) {
        if (flat) o[k][0] = o[k][1] = i;
        else offsetsIn<2, I>(L, i, o[k]);
        v[k] = load(x + o[k][1]);
      }
    }
#pragma unroll
    for (int k = 0; k < UNROLL; k++)
      if (base + k * stride < n) store(out + o[k][0], unaryOp(op, v[k], exponent));
  }
}

template <typename T, typename O, typename I>
__global__ void binaryKernel(int op, O* out, const T* a, const T* b, I n, Layout L, bool flat) {
  typedef typename Acc<T>::type V;
  const I stride = (I)gridDim.x * blockDim.x;
  for (I base = (I)blockIdx.x * blockDim.x + threadIdx.x; base < n; base += stride * UNROLL) {
    V va[UNROLL], vb[UNROLL];
    I o[UNROLL][3];
#pragma unroll
    for (int k = 0; k < UNROLL; k++) {
      I i = base + k * stride;
      if (i < n) {
        if (flat) o[k][0] = o[k][1] = o[k][2] = i;
        else offsetsIn<3, I>(L, i, o[k]);
        va[k] = load(a + o[k][1]);
        vb[k] = load(b + o[k][2]);
      }
    }
#pragma unroll
    for (int k = 0; k < UNROLL; k++)
      if (base + k * stride < n) store(out + o[k][0], (typename Acc<O>::type)binaryOp(op, va[k], vb[k]));
  }
}

template <typename T>
__global__ void whereKernel(T* out, const uint8_t* cond, const T* a, const T* b, int64_t n, Layout L) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t o[4];
    offsetsOf<4>(L, i, o);
    out[o[0]] = cond[o[1]] ? a[o[2]] : b[o[3]];
  }
}

template <typename T>
__global__ void maskedFillKernel(T* out, const T* x, const uint8_t* mask, T value, int64_t n, Layout L) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t o[3];
    offsetsOf<3>(L, i, o);
    out[o[0]] = mask[o[2]] ? value : x[o[1]];
  }
}

template <typename T>
__global__ void addInplaceKernel(T* dst, const T* src, float alpha, int64_t n, Layout L) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t o[2];
    offsetsOf<2>(L, i, o);
    store(dst + o[0], (typename Acc<T>::type)(load(dst + o[0]) + alpha * load(src + o[1])));
  }
}

static unsigned grid(int64_t n) {
  unsigned g = gridFor(n, 256);
  return g > 132 * 64 ? 132 * 64 : g;  // grid-stride loops: a few waves of the 132 SMs is enough
}

static unsigned unrolledGrid(int64_t n) { return grid((n + UNROLL - 1) / UNROLL); }

void unary(int device, int dtype, int op, float exponent, void* out, const void* x, int64_t n, const Layout& L,
           bool flat) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  unsigned g = unrolledGrid(n);
  if (fits32(L, 2, n)) {
    GRIN_DISPATCH(dtype, T, unaryKernel<T, uint32_t><<<g, 256, 0, s>>>(op, exponent, (T*)out, (const T*)x, (uint32_t)n, L, flat));
  } else {
    GRIN_DISPATCH(dtype, T, unaryKernel<T, int64_t><<<g, 256, 0, s>>>(op, exponent, (T*)out, (const T*)x, n, L, flat));
  }
  checkLaunch("unary");
}

template <typename T, typename O>
static void binaryTyped(cudaStream_t s, int op, void* out, const void* a, const void* b, int64_t n, const Layout& L,
                        bool flat) {
  unsigned g = unrolledGrid(n);
  if (fits32(L, 3, n))
    binaryKernel<T, O, uint32_t><<<g, 256, 0, s>>>(op, (O*)out, (const T*)a, (const T*)b, (uint32_t)n, L, flat);
  else
    binaryKernel<T, O, int64_t><<<g, 256, 0, s>>>(op, (O*)out, (const T*)a, (const T*)b, n, L, flat);
}

void binary(int device, int dtype, int op, void* out, const void* a, const void* b, int64_t n, const Layout& L,
            bool flat) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  bool compare = op >= EQ && op <= GE;
  if (compare) {
    GRIN_DISPATCH(dtype, T, binaryTyped<T, uint8_t>(s, op, out, a, b, n, L, flat));
  } else {
    GRIN_DISPATCH(dtype, T, binaryTyped<T, T>(s, op, out, a, b, n, L, flat));
  }
  checkLaunch("binary");
}

void where(int device, int dtype, void* out, const void* cond, const void* a, const void* b, int64_t n,
           const Layout& L) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  switch (itemSize(dtype)) {
    case 1: whereKernel<uint8_t><<<grid(n), 256, 0, s>>>((uint8_t*)out, (const uint8_t*)cond, (const uint8_t*)a, (const uint8_t*)b, n, L); break;
    case 2: whereKernel<uint16_t><<<grid(n), 256, 0, s>>>((uint16_t*)out, (const uint8_t*)cond, (const uint16_t*)a, (const uint16_t*)b, n, L); break;
    default: whereKernel<uint32_t><<<grid(n), 256, 0, s>>>((uint32_t*)out, (const uint8_t*)cond, (const uint32_t*)a, (const uint32_t*)b, n, L);
  }
  checkLaunch("where");
}

void maskedFill(int device, int dtype, void* out, const void* x, const void* mask, uint32_t valueBits, int64_t n,
                const Layout& L) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  switch (itemSize(dtype)) {
    case 1: maskedFillKernel<uint8_t><<<grid(n), 256, 0, s>>>((uint8_t*)out, (const uint8_t*)x, (const uint8_t*)mask, (uint8_t)valueBits, n, L); break;
    case 2: maskedFillKernel<uint16_t><<<grid(n), 256, 0, s>>>((uint16_t*)out, (const uint16_t*)x, (const uint8_t*)mask, (uint16_t)valueBits, n, L); break;
    default: maskedFillKernel<uint32_t><<<grid(n), 256, 0, s>>>((uint32_t*)out, (const uint32_t*)x, (const uint8_t*)mask, valueBits, n, L);
  }
  checkLaunch("masked_fill");
}

void addInplace(int device, int dtype, void* dst, const void* src, float alpha, int64_t n, const Layout& L) {
  if (n == 0) return;
  cudaStream_t s = streamFor(device);
  GRIN_DISPATCH(dtype, T, addInplaceKernel<T><<<grid(n), 256, 0, s>>>((T*)dst, (const T*)src, alpha, n, L));
  checkLaunch("add_inplace");
}

}  // namespace grin
