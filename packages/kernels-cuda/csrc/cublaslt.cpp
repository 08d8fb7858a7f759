// cuBLASLt matmuls, loaded at run time beside cuBLAS (cublas.cpp). Why Lt and not only
// cublasGemmStridedBatchedEx: Lt's heuristic is told the real pointer alignments and a workspace
// budget (32 MiB, PyTorch's Hopper default), so skinny and split-K shapes get the kernels they need,
// and its epilogues fuse the bias of y = x w^T + b into the GEMM and the bias gradient
// db = sum_rows(g) into the dw GEMM of the backward (ops `linear` / `linear_weight_grad`).
// Each distinct call (shape, transposes, leading dimensions, batch, alignments, epilogue) builds its
// descriptors and asks the heuristic once; the plan is cached, so a training step pays one
// cublasLtMatmul per GEMM. Prototypes and enum values are cuBLASLt's own (cublasLt.h), declared here
// because the CPU machines and CI have no cuBLAS headers. Test: tests/cases/matmul.ts (GPU).
#include <dlfcn.h>

#include <array>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "kernels.h"

namespace grin {

namespace {
typedef int Status;
struct Algo {
  uint64_t data[8];
};
struct HeuristicResult {
  Algo algo;
  size_t workspaceSize;
  Status state;
  float wavesCount;
  int reserved[4];
};

constexpr int CUDA_R_32F = 0, CUDA_R_16BF = 14, CUBLAS_COMPUTE_32F = 68;
constexpr int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8;
constexpr int LAYOUT_ROWS = 2, LAYOUT_COLS = 3, LAYOUT_BATCH_COUNT = 5, LAYOUT_STRIDED_BATCH_OFFSET = 6;
constexpr int PREF_MAX_WORKSPACE_BYTES = 1, PREF_MIN_ALIGNMENT_A = 5;  // B, C, D follow: 6, 7, 8
constexpr uint32_t EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4, EPILOGUE_BGRADB = 512;
constexpr size_t WORKSPACE_BYTES = 32u << 20;
// The MoE's expert GEMMs change their row count every step, so plans are dropped past this many.
constexpr size_t MAX_PLANS = 4096;

struct Api {
  bool tried = false;
  std::string error, path;
  Status (*create)(void**) = nullptr;
  Status (*descCreate)(void**, int, int) = nullptr;
  Status (*descSet)(void*, int, const void*, size_t) = nullptr;
  Status (*descDestroy)(void*) = nullptr;
  Status (*layoutCreate)(void**, int, uint64_t, uint64_t, int64_t) = nullptr;
  Status (*layoutSet)(void*, int, const void*, size_t) = nullptr;
  Status (*layoutDestroy)(void*) = nullptr;
  Status (*prefCreate)(void**) = nullptr;
  Status (*prefSet)(void*, int, const void*, size_t) = nullptr;
  Status (*prefDestroy)(void*) = nullptr;
  Status (*heuristic)(void*, void*, void*, void*, void*, void*, void*, int, HeuristicResult*, int*) = nullptr;
  Status (*matmul)(void*, void*, const void*, const void*, void*, const void*, void*, const void*, const void*,
                   void*, void*, void*, const Algo*, void*, size_t, cudaStream_t) = nullptr;
};
Api api;
std::mutex apiMutex;

template <typename F>
bool bind(void* lib, F& fn, const char* name) {
  fn = (F)dlsym(lib, name);
  return fn != nullptr;
}

/** dlopens libcublasLt.so.13 (beside the cuBLAS that cublas.cpp found, else by the loader's search). */
const Api& loadLt() {
  std::lock_guard<std::mutex> lock(apiMutex);
  if (api.tried) return api;
  api.tried = true;
  std::string cublasPath, error = loadCublas(&cublasPath);
  std::vector<std::string> paths;
  if (const char* env = getenv("GRIN_CUBLASLT_PATH")) paths.push_back(env);
  if (cublasPath.find('/') != std::string::npos)
    paths.push_back(cublasPath.substr(0, cublasPath.rfind('/') + 1) + "libcublasLt.so.13");
  paths.push_back("libcublasLt.so.13");
  void* lib = nullptr;
  for (const std::string& p : paths)
    if ((lib = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL))) {
      api.path = p;
      break;
    }
  if (!lib) {
    api.error = "cuBLASLt (libcublasLt.so.13) not found" + (error.empty() ? "" : ": " + error);
    return api;
  }
  bool ok = bind(lib, api.create, "cublasLtCreate") && bind(lib, api.descCreate, "cublasLtMatmulDescCreate") &&
            bind(lib, api.descSet, "cublasLtMatmulDescSetAttribute") &&
            bind(lib, api.descDestroy, "cublasLtMatmulDescDestroy") &&
            bind(lib, api.layoutDestroy, "cublasLtMatrixLayoutDestroy") &&
            bind(lib, api.layoutCreate, "cublasLtMatrixLayoutCreate") &&
            bind(lib, api.layoutSet, "cublasLtMatrixLayoutSetAttribute") &&
            bind(lib, api.prefCreate, "cublasLtMatmulPreferenceCreate") &&
            bind(lib, api.prefSet, "cublasLtMatmulPreferenceSetAttribute") &&
            bind(lib, api.prefDestroy, "cublasLtMatmulPreferenceDestroy") &&
            bind(lib, api.heuristic, "cublasLtMatmulAlgoGetHeuristic") && bind(lib, api.matmul, "cublasLtMatmul");
  if (!ok) api.error = api.path + ": a cublasLt symbol is missing";
  return api;
}

void lt(Status s, const char* what) {
  if (s != 0) throw Error(std::string("cuda: ") + what + " failed with cuBLAS status " + std::to_string(s));
}

/** Largest power of two (<= 256) dividing every byte offset the matrix is addressed by. */
uint32_t alignment(const void* p, int64_t ld, int64_t stride, int item) {
  uint64_t bits = (uint64_t)(uintptr_t)p | (uint64_t)(ld * item) | (uint64_t)(stride * item) | 256u;
  return (uint32_t)(bits & (~bits + 1));
}

// With tuning on for a plan, the heuristic's best few algorithms are kept and the first call that
// may overwrite its output (beta 0) times each of them on its own operands; the fastest is kept.
// GEMM_TUNE_GROUPED (the default) tunes the plans of GEMMs whose size varies (the MoE's grouped
// linear buckets, where the heuristic's first pick is weakest); GEMM_TUNE_ALL tunes every plan.
constexpr int TUNING_CANDIDATES = 8, TUNING_REPS = 5;
int tuning = -1;  // until set: GRIN_GEMM_TUNING (off, grouped or all), else grouped

int tuningMode() {
  if (tuning < 0) {
    const char* env = getenv("GRIN_GEMM_TUNING");
    const std::string value = env ? env : "grouped";
    if (value == "off") tuning = GEMM_TUNE_OFF;
    else if (value == "grouped") tuning = GEMM_TUNE_GROUPED;
    else if (value == "all") tuning = GEMM_TUNE_ALL;
    else throw Error("cuda: GRIN_GEMM_TUNING must be off, grouped or all, got '" + value + "'");
  }
  return tuning;
}

struct Plan {
  bool usable = false;  // false: the heuristic had no algorithm (the caller falls back)
  void* desc = nullptr;
  void* a = nullptr;
  void* b = nullptr;
  void* d = nullptr;
  Algo algo{};
  size_t workspace = 0;
  std::vector<HeuristicResult> candidates;  // tuning on and not yet timed
};
typedef std::array<int64_t, 19> Key;

struct DeviceState {
  void* handle = nullptr;
  void* workspace = nullptr;
  std::map<Key, Plan> plans;
};
std::vector<DeviceState> devices;

DeviceState& stateFor(int device) {
  if ((size_t)device >= devices.size()) devices.resize(device + 1);
  DeviceState& s = devices[device];
  if (!s.handle) {
    lt(api.create(&s.handle), "cublasLtCreate");
    check(cudaMalloc(&s.workspace, WORKSPACE_BYTES), "cudaMalloc (cuBLASLt workspace)");
  }
  return s;
}

void* layout(int type, uint64_t rows, uint64_t cols, int64_t ld, int batch, int64_t stride) {
  void* l = nullptr;
  lt(api.layoutCreate(&l, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
  if (batch > 1) {
    lt(api.layoutSet(l, LAYOUT_BATCH_COUNT, &batch, sizeof(batch)), "cublasLtMatrixLayoutSetAttribute");
    lt(api.layoutSet(l, LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)), "cublasLtMatrixLayoutSetAttribute");
  }
  return l;
}

Plan makePlan(DeviceState& s, const Gemm& g, int epilogue, const void* bias, const uint32_t align[4]) {
  Plan p;
  int type = g.dtype == BF16 ? CUDA_R_16BF : CUDA_R_32F;
  lt(api.descCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  int32_t ta = g.transA ? 1 : 0, tb = g.transB ? 1 : 0;
  lt(api.descSet(p.desc, DESC_TRANSA, &ta, sizeof(ta)), "cublasLtMatmulDescSetAttribute");
  lt(api.descSet(p.desc, DESC_TRANSB, &tb, sizeof(tb)), "cublasLtMatmulDescSetAttribute");
  uint32_t epi = epilogue == EPI_BIAS ? EPILOGUE_BIAS : epilogue == EPI_BGRADB ? EPILOGUE_BGRADB : EPILOGUE_DEFAULT;
  lt(api.descSet(p.desc, DESC_EPILOGUE, &epi, sizeof(epi)), "cublasLtMatmulDescSetAttribute");
  if (epilogue != EPI_NONE)  // the heuristic reads the bias pointer's alignment
    lt(api.descSet(p.desc, DESC_BIAS_POINTER, &bias, sizeof(bias)), "cublasLtMatmulDescSetAttribute");
  // stored shapes: op(A) is m x k, op(B) is k x n, column-major
  p.a = g.transA ? layout(type, g.k, g.m, g.lda, g.batch, g.strideA) : layout(type, g.m, g.k, g.lda, g.batch, g.strideA);
  p.b = g.transB ? layout(type, g.n, g.k, g.ldb, g.batch, g.strideB) : layout(type, g.k, g.n, g.ldb, g.batch, g.strideB);
  p.d = layout(type, g.m, g.n, g.ldc, g.batch, g.strideC);
  void* pref = nullptr;
  lt(api.prefCreate(&pref), "cublasLtMatmulPreferenceCreate");
  uint64_t budget = WORKSPACE_BYTES;
  lt(api.prefSet(pref, PREF_MAX_WORKSPACE_BYTES, &budget, sizeof(budget)), "cublasLtMatmulPreferenceSetAttribute");
  for (int i = 0; i < 4; i++)  // A, B, C, D (D is C here)
    lt(api.prefSet(pref, PREF_MIN_ALIGNMENT_A + i, &align[i], sizeof(align[i])), "cublasLtMatmulPreferenceSetAttribute");
  const int mode = tuningMode();
  const bool tuned = mode == GEMM_TUNE_ALL || (mode == GEMM_TUNE_GROUPED && g.varying != GEMM_VARY_NONE);
  std::vector<HeuristicResult> results(tuned ? TUNING_CANDIDATES : 1);
  int found = 0;
  Status st = api.heuristic(s.handle, p.desc, p.a, p.b, p.d, p.d, pref, (int)results.size(), results.data(), &found);
  api.prefDestroy(pref);
  if (st != 0) found = 0;
  for (int i = 0; i < found; i++)
    if (results[i].state == 0) p.candidates.push_back(results[i]);
  if (!p.candidates.empty()) {
    p.usable = true;
    p.algo = p.candidates[0].algo;
    p.workspace = p.candidates[0].workspaceSize;
  }
  if (p.candidates.size() < 2) p.candidates.clear();
  return p;
}

void destroyPlan(Plan& p) {
  for (void* l : {p.a, p.b, p.d})
    if (l) api.layoutDestroy(l);
  if (p.desc) api.descDestroy(p.desc);
  p = Plan{};
}

/**
 * Times each kept candidate on g's own operands (beta 0: the output is overwritten by the real
 * call that follows) and keeps the fastest. Waits for the device first, so other streams' work does
 * not skew the times; it runs once per plan.
 */
void tune(DeviceState& s, Plan& p, const Gemm& g, cudaStream_t stream, void* workspace) {
  std::vector<HeuristicResult> candidates;
  candidates.swap(p.candidates);
  check(cudaDeviceSynchronize(), "gemm tuning: synchronize");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "gemm tuning: event");
  check(cudaEventCreate(&stop), "gemm tuning: event");
  const float alpha = 1.0f, beta = 0.0f;
  float best = INFINITY;
  for (const HeuristicResult& c : candidates) {
    if (c.workspaceSize > WORKSPACE_BYTES) continue;
    auto run = [&]() {
      return api.matmul(s.handle, p.desc, &alpha, g.A, p.a, g.B, p.b, &beta, g.C, p.d, g.C, p.d, &c.algo, workspace,
                        c.workspaceSize, stream);
    };
    if (run() != 0) continue;  // an algorithm this shape cannot run after all
    check(cudaEventRecord(start, stream), "gemm tuning: event");
    for (int r = 0; r < TUNING_REPS; r++) run();
    check(cudaEventRecord(stop, stream), "gemm tuning: event");
    check(cudaEventSynchronize(stop), "gemm tuning: event");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "gemm tuning: event");
    if (ms < best) {
      best = ms;
      p.algo = c.algo;
      p.workspace = c.workspaceSize;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  gemmCounts.tuned++;
}

int gemmChoice = -1;

/** A grouped GEMM's changing dimension rounded up to a bucket, so a handful of plans serve all steps. */
int bucketOf(int size) {
  int step = size <= 1024 ? 128 : size <= 8192 ? 512 : 4096;
  return (size + step - 1) / step * step;
}

/** The stored (rows, cols) of A, B and D for g, as makePlan lays them out. */
void setShapes(const Plan& p, const Gemm& g) {
  auto put = [](void* l, uint64_t rows, uint64_t cols) {
    lt(api.layoutSet(l, LAYOUT_ROWS, &rows, sizeof(rows)), "cublasLtMatrixLayoutSetAttribute");
    lt(api.layoutSet(l, LAYOUT_COLS, &cols, sizeof(cols)), "cublasLtMatrixLayoutSetAttribute");
  };
  if (g.transA) put(p.a, g.k, g.m); else put(p.a, g.m, g.k);
  if (g.transB) put(p.b, g.n, g.k); else put(p.b, g.k, g.n);
  put(p.d, g.m, g.n);
}
}  // namespace

int gemmImplementation() {
  if (gemmChoice < 0) {
    const char* env = getenv("GRIN_GEMM");
    gemmChoice = env && std::string(env) == "cublas" ? GEMM_CUBLAS : GEMM_LT;
  }
  return gemmChoice;
}
void setGemmImplementation(int impl) {
  if (impl != GEMM_CUBLAS && impl != GEMM_LT)
    throw Error("cuda: gemm implementation must be 0 (cublasLt) or 1 (cublas)");
  gemmChoice = impl;
}

void setGemmTuning(int mode) {
  if (mode != GEMM_TUNE_OFF && mode != GEMM_TUNE_GROUPED && mode != GEMM_TUNE_ALL)
    throw Error("cuda: gemm tuning must be 0 (off), 1 (grouped) or 2 (all)");
  if (mode == tuning) return;
  tuning = mode;
  // plans made before keep one algorithm: drop them, so the setting holds for every GEMM from now
  for (DeviceState& s : devices) {
    for (auto& entry : s.plans) destroyPlan(entry.second);
    s.plans.clear();
  }
}
int gemmTuning() { return tuningMode(); }

std::string cublasLtStatus(std::string* path) {
  const Api& a = loadLt();
  if (path) *path = a.path;
  return a.error;
}

size_t cublasLtPlanCount() {
  size_t n = 0;
  for (const DeviceState& s : devices) n += s.plans.size();
  return n;
}

bool ltMatmul(int device, const Gemm& g, int epilogue, void* bias, cudaStream_t onStream, void* onWorkspace) {
  if (!loadLt().error.empty()) return false;
  if (g.dtype != BF16 && g.dtype != F32) throw Error("cuda: matmul needs f32 or bf16 operands");
  cudaStream_t stream = onStream ? onStream : streamFor(device);
  DeviceState& s = stateFor(device);
  void* workspace = onWorkspace ? onWorkspace : s.workspace;
  int item = itemSize(g.dtype);
  uint32_t align[4] = {alignment(g.A, g.lda, g.batch > 1 ? g.strideA : 0, item),
                       alignment(g.B, g.ldb, g.batch > 1 ? g.strideB : 0, item),
                       alignment(g.C, g.ldc, g.batch > 1 ? g.strideC : 0, item), 0};
  align[3] = align[2];
  uint32_t biasAlign = epilogue == EPI_NONE ? 0 : alignment(bias, 0, 0, item);
  // A grouped GEMM plans for its bucket's size (planned) and runs at its own (g).
  Gemm planned = g;
  if (g.varying == GEMM_VARY_N) planned.n = bucketOf(g.n);
  if (g.varying == GEMM_VARY_K) planned.k = bucketOf(g.k);
  Key key = {g.dtype, g.transA, g.transB, g.m, planned.n, planned.k, g.lda, g.ldb, g.ldc, g.batch,
             g.batch > 1 ? g.strideA : 0, g.batch > 1 ? g.strideB : 0, g.batch > 1 ? g.strideC : 0, epilogue,
             align[0], align[1], align[2], biasAlign, g.varying};
  auto it = s.plans.find(key);
  if (it == s.plans.end()) {
    if (s.plans.size() >= MAX_PLANS) {  // safe: cublasLtMatmul reads descriptors during the call, not later
      for (auto& entry : s.plans) destroyPlan(entry.second);
      s.plans.clear();
    }
    it = s.plans.emplace(key, makePlan(s, planned, epilogue, bias, align)).first;
  }
  Plan& p = it->second;
  if (!p.usable) return false;
  if (g.varying != GEMM_VARY_NONE) setShapes(p, g);
  if (epilogue != EPI_NONE)
    lt(api.descSet(p.desc, DESC_BIAS_POINTER, &bias, sizeof(bias)), "cublasLtMatmulDescSetAttribute");
  if (!p.candidates.empty() && g.beta == 0.f) tune(s, p, g, stream, workspace);
  const float alpha = 1.0f, beta = g.beta;
  Status st = api.matmul(s.handle, p.desc, &alpha, g.A, p.a, g.B, p.b, &beta, g.C, p.d, g.C, p.d, &p.algo,
                         workspace, p.workspace, stream);
  if (st != 0 && g.varying != GEMM_VARY_NONE) {
    // The bucket's algorithm was picked (or timed) at another size of the changing dimension and
    // this one is outside what it supports (seen: status 7 at k 178 in a bucket of 256): plan this
    // exact shape instead. Nothing ran, so the call can be repeated.
    Gemm exact = g;
    exact.varying = GEMM_VARY_NONE;
    return ltMatmul(device, exact, epilogue, bias, onStream, onWorkspace);
  }
  if (st != 0)
    throw Error("cuda: cublasLtMatmul failed with status " + std::to_string(st) + " (m " + std::to_string(g.m) +
                ", n " + std::to_string(g.n) + ", k " + std::to_string(g.k) + ", batch " + std::to_string(g.batch) +
                ", epilogue " + std::to_string(epilogue) + ")");
  return true;
}

void* cublasLtWorkspace(int device, size_t* bytes) {
  if (!loadLt().error.empty()) return nullptr;
  *bytes = WORKSPACE_BYTES;
  return stateFor(device).workspace;
}

}  // namespace grin
