// Host entry points of every kernel family, called by addon.cpp. Pointers are already offset to the
// first element; shapes arrive merged (src/layout.ts). Each call enqueues on the device's stream
// and returns without a sync. Definitions: elementwise.cu, layout.cu, reduce.cu, nn.cu, loss.cu,
// indexing.cu, fused.cu, cublas.cpp.
#pragma once
#include <vector>

#include "common.h"

namespace grin {

// elementwise.cu
void unary(int device, int dtype, int op, float exponent, void* out, const void* x, int64_t n, const Layout& L, bool flat);
void binary(int device, int dtype, int op, void* out, const void* a, const void* b, int64_t n, const Layout& L, bool flat);
void where(int device, int dtype, void* out, const void* cond, const void* a, const void* b, int64_t n, const Layout& L);
void maskedFill(int device, int dtype, void* out, const void* x, const void* mask, uint32_t valueBits, int64_t n, const Layout& L);
void addInplace(int device, int dtype, void* dst, const void* src, float alpha, int64_t n, const Layout& L);

// layout.cu
void copyStrided(int device, int itemBytes, void* dst, const void* src, int64_t n, const Layout& L);
void copyBytes(int device, void* dst, const void* src, size_t bytes);
void fill(int device, int itemBytes, void* dst, uint32_t bits, int64_t n);
void cast(int device, int from, int to, void* dst, const void* src, int64_t n);
void arange(int device, int dtype, void* dst, double start, double step, int64_t n);

// reduce.cu
void sum(int device, int dtype, void* out, const void* x, int64_t nOut, int64_t count, const Dims& kept, const Dims& reduced, bool rows);
// norm.cu
void sumSquares(int device, int dtype, float* out, const void* x, int64_t n);
/** Each tensor's sumSquares, added in order in f32 (dtypes f32 or bf16), in three launches per 256 tensors. */
void sumSquaresMany(int device, float* out, const void* const* xs, const int64_t* ns, const int* dtypes, int count);
void maxAlong(int device, int dtype, void* values, int32_t* indices, const void* x, int64_t outer, int64_t n, int64_t inner);

// nn.cu, loss.cu
void softmax(int device, int dtype, bool logOut, void* out, const void* x, int64_t outer, int64_t n, int64_t inner);
void attentionSoftmax(int device, int dtype, void* out, const void* x, int64_t rows, int64_t S, int64_t Skv, float scale, bool causal, int64_t window);
void attentionSoftmaxBackward(int device, int dtype, void* out, const void* y, const void* g, int64_t rows, int64_t n, float scale);
void layerNorm(int device, int dtype, void* y, float* mean, float* rstd, const void* x, const void* w, const void* b, int64_t rows, int64_t d, float eps);
void layerNormBackward(int device, int dtype, void* dx, void* dweight, void* dbias, const void* g, const void* x, const float* mean, const float* rstd, const void* w, int64_t rows, int64_t d);
void crossEntropy(int device, int dtype, int reduction, void* out, const void* logits, const int32_t* targets, int64_t n, int64_t v, int ignoreIndex);
void crossEntropyBackward(int device, int dtype, int reduction, void* out, const void* g, const void* logits, const int32_t* targets, int64_t n, int64_t v, int ignoreIndex);

// indexing.cu
void embedding(int device, int dtype, void* out, const void* weight, const int32_t* ids, int64_t n, int64_t v, int64_t d);
void indexSelect(int device, int dtype, void* out, const void* x, const int32_t* index, int64_t outer, int64_t n, int64_t m, int64_t inner);
void indexAdd(int device, int dtype, void* acc, const void* src, const int32_t* index, int64_t outer, int64_t n, int64_t m, int64_t inner);
void gather(int device, int dtype, void* out, const void* x, const int32_t* index, int64_t total, const Dims& D, int64_t axisStride, int64_t size);
void scatterAdd(int device, int dtype, void* acc, const void* src, const int32_t* index, int64_t total, const Dims& D, int64_t axisStride, int64_t size);

// fused.cu
struct AdamW {
  float lr, beta1, beta2, eps, decay, correction1, correction2;
};
// scale: null, or one f32 on the device that multiplies the gradient (the clip coefficient)
void adamw(int device, int paramType, int gradType, void* param, const void* grad, float* m, float* v, int64_t n, const float* scale, const AdamW& h);
// optim.cu: bf16 parameter re-rounded from an f32 master copy that takes the AdamW update; f32 or
// bf16 moments (momentType), the bf16 ones stochastically rounded with draws keyed by salt
void adamwMixed(int device, int gradType, int momentType, void* param, const void* grad, float* master, void* m, void* v, int64_t n, const float* scale, const AdamW& h, uint32_t salt);
void rope(int device, int dtype, void* out, const void* x, const void* cosines, const void* sines, int64_t rows, int64_t d, const Layout& L, int64_t xi, int64_t ci, int64_t si, bool transpose);
void topk(int device, int dtype, void* values, int32_t* indices, const void* x, int64_t outer, int64_t n, int64_t inner, int64_t k);

// cublas.cpp, cublaslt.cpp: column-major C[i] = op(A[i]) op(B[i]) (+ epilogue), f32 accumulate.
/** op(A) is m x k, op(B) is k x n, C is m x n with leading dimension ldc; strides between batch items. */
struct Gemm {
  int dtype;
  bool transA, transB;
  int m, n, k;
  const void* A;
  int64_t lda, strideA;
  const void* B;
  int64_t ldb, strideB;
  void* C;
  int64_t ldc, strideC;
  int batch;
  /** C = op(A) op(B) + beta C (accumulates the parts of a grouped input gradient). */
  float beta = 0.f;
  /**
   * Which dimension a grouped GEMM changes from call to call (GEMM_VARY_N: the rows of a group, or
   * GEMM_VARY_K: the rows a weight gradient sums over). Lt plans are then cached per bucket of that
   * dimension, with the real size set on the layouts per call, so new row counts cost no heuristic.
   */
  int varying = 0;
};
enum GemmVarying : int { GEMM_VARY_NONE = 0, GEMM_VARY_N = 1, GEMM_VARY_K = 2 };
enum GemmEpilogue : int { EPI_NONE = 0, EPI_BIAS = 1 /* C += bias[row] */, EPI_BGRADB = 2 /* bias[col] = sum_k op(B) */ };
enum GemmImplementation : int { GEMM_LT = 0, GEMM_CUBLAS = 1 };
std::string loadCublas(std::string* path);
/**
 * Runs g through the chosen implementation (GemmImplementation), with cuBLAS when Lt cannot.
 * Returns whether the epilogue was applied: cuBLAS has none, so the caller adds the bias / sums the
 * bias gradient itself when this is false.
 */
bool gemm(int device, const Gemm& g, int epilogue = EPI_NONE, void* bias = nullptr);
/**
 * cuBLASLt with a cached plan; false when Lt is missing or has no algorithm for this call. A stream
 * and a workspace of the Lt budget may be given (the grouped GEMM's side streams); default: the
 * device's stream and its workspace.
 */
bool ltMatmul(int device, const Gemm& g, int epilogue, void* bias, cudaStream_t stream = nullptr,
              void* workspace = nullptr);
constexpr size_t LT_WORKSPACE_BYTES = 32u << 20;
/** cublasGemmGroupedBatchedEx over the problems (one group each, epilogue none); false when absent. */
bool cublasGroupedGemm(int device, const std::vector<Gemm>& problems);
std::string cublasGroupedStatus();
std::string cublasLtStatus(std::string* path);
size_t cublasLtPlanCount();
void* cublasLtWorkspace(int device, size_t* bytes);
/** Calls served by each path, and calls with a fused epilogue (tests check the path taken). */
struct GemmCounts {
  // tuned: plans whose algorithm was timed; wgmmaGrouped: launches of grouped_wgmma.cu's kernel
  uint64_t lt = 0, cublas = 0, epilogues = 0, tuned = 0, wgmmaGrouped = 0;
};
extern GemmCounts gemmCounts;
int gemmImplementation();
void setGemmImplementation(int impl);
/** Which cuBLASLt plans time the heuristic's top algorithms at their first overwriting call. */
enum GemmTuning : int { GEMM_TUNE_OFF = 0, GEMM_TUNE_GROUPED = 1, GEMM_TUNE_ALL = 2 };
void setGemmTuning(int mode);
int gemmTuning();

// random.cu: draws from a Philox (key, counter) reservation (distribution 0 uniform [a, b), 1 normal
// (mean a, std b), 2 exponential (rate a)), and x * U(low, high)
void randomFill(int device, int distribution, float* out, int64_t n, uint32_t key0, uint32_t key1, uint64_t counter,
                double a, double b);
void randomScale(int device, int dtype, void* out, const void* x, int64_t n, double low, double high, uint32_t key0,
                 uint32_t key1, uint64_t counter);

// moe.cu: the dropless MoE's permute, dispatch, combine and SiLU-GLU
void moePermute(int device, int32_t* counts_E, int32_t* rowSlot_N, int32_t* position_TK, const int32_t* experts,
                int64_t n, int E);
void moeDispatch(int device, int dtype, void* out, const void* x, const int32_t* position, int64_t tokens, int K,
                 int64_t D);
void moeCombine(int device, int dtype, void* out, const void* y, const void* w, const int32_t* position,
                int64_t tokens, int K, int64_t D);
void moeCombineBackward(int device, int dtype, void* dy, void* dw, const void* g, const void* y, const void* w,
                        const int32_t* position, int64_t tokens, int K, int64_t D);
void siluGlu(int device, int dtype, void* out, const void* h, int64_t rows, int64_t I);
void siluGluBackward(int device, int dtype, void* dh, const void* g, const void* h, int64_t rows, int64_t I);

// route.cu: fused routers (0 sparsemixer-v2, 1 gshard-top-k, 2 switch)
void moeRoute(int device, int router, const float* logits, int32_t* experts, float* weights, float* probs,
              float* counts, int64_t T, int E, int K, double eps, bool training, uint32_t key0, uint32_t key1,
              uint64_t counter);
void moeRouteBackward(int device, int router, const float* logits, const int32_t* experts, const float* gw,
                      const float* gp, float* dz, int64_t T, int E, int K, double eps);

// grouped.cpp: the MoE's grouped linear (forward 0, input gradient 1, weight gradient 2)
// mode 0: result y [N, parts*out] from first = x [N, in]; 1: result dx [N, in] from first = g;
// 2: weights (written) dw from first = g and second = x.
/** How groupedLinear runs its GEMMs: Lt on side streams, Lt one after another (default), cuBLAS grouped, or
 * our Hopper kernel (bf16 shapes it takes; the rest on Lt one after another). */
enum GroupedImplementation : int { GROUPED_LT_STREAMS = 0, GROUPED_LT_SERIAL = 1, GROUPED_CUBLAS = 2, GROUPED_WGMMA = 3 };
void setGroupedImplementation(int impl);
int groupedImplementation();
void groupedLinear(int device, int dtype, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                   const void* first, const void* second, void* result, void* const* weights);
// grouped_wgmma.cu: groupedLinear's bf16 forward (mode 0) or input gradient (1) as one launch of our
// TMA + wgmma kernel; false (nothing run) where it does not apply: the weight gradient, not Hopper, no
// tensor-map encoder in the driver, more than 64 groups, K not a multiple of 64 or N of 256, or two
// parts not stacked in memory.
bool groupedGemmWgmma(int device, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                      const void* first, const void* second, void* result, void* const* weights);

}  // namespace grin
