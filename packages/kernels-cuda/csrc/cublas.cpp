// cuBLAS, loaded at run time with dlopen so the addon builds where the toolkit has no cuBLAS (CI,
// the CPU machines). We declare the few prototypes we call; enum values are cuBLAS's own.
// cublasGemmStridedBatchedEx is the fallback behind cuBLASLt (cublaslt.cpp) and the `cublas` choice of
// setGemmImplementation: bf16 or f32 inputs, f32 accumulate (CUBLAS_COMPUTE_32F, so f32 products do
// not silently use TF32). Test: tests/matmul.test.ts (GPU).
#include <dlfcn.h>
#include <glob.h>

#include <mutex>
#include <vector>

#include "kernels.h"

namespace grin {

namespace {
typedef void* Handle;
typedef int Status;  // CUBLAS_STATUS_SUCCESS = 0
constexpr int CUDA_R_32F = 0, CUDA_R_16BF = 14;
constexpr int CUBLAS_COMPUTE_32F = 68;
constexpr int CUBLAS_GEMM_DEFAULT = -1;

typedef Status (*CreateFn)(Handle*);
typedef Status (*SetStreamFn)(Handle, cudaStream_t);
typedef Status (*SetWorkspaceFn)(Handle, void*, size_t);
typedef Status (*GemmFn)(Handle, int, int, int, int, int, const void*, const void*, int, int, long long,
                         const void*, int, int, long long, const void*, void*, int, int, long long, int,
                         int, int);

typedef Status (*GroupedFn)(Handle, const int*, const int*, const int*, const int*, const int*, const void*,
                            const void* const*, int, const int*, const void* const*, int, const int*,
                            const void*, void* const*, int, const int*, int, const int*, int);

struct Library {
  bool tried = false;
  GroupedFn grouped = nullptr;  // cublasGemmGroupedBatchedEx (cuBLAS >= 12.5), optional
  void* handle = nullptr;
  std::string path, error;
  CreateFn create = nullptr;
  SetStreamFn setStream = nullptr;
  SetWorkspaceFn setWorkspace = nullptr;  // optional (cuBLAS >= 11)
  GemmFn gemm = nullptr;
};
Library lib;
std::mutex libMutex;
std::vector<Handle> handles;

void* symbol(void* h, const char* a, const char* b) {
  void* s = dlsym(h, a);
  return s ? s : dlsym(h, b);
}

std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char* env = getenv("GRIN_CUBLAS_PATH")) out.push_back(env);
  out.push_back("libcublas.so.13");
  out.push_back("libcublas.so");
  const char* patterns[] = {"/usr/local/cuda/lib64/libcublas.so.1*",
                            "/usr/local/cuda/targets/x86_64-linux/lib/libcublas.so.1*",
                            "/usr/local/cuda-1*/lib64/libcublas.so.1*",
                            "/usr/lib/x86_64-linux-gnu/libcublas.so.1*",
                            "/opt/*/.venv/lib/python3*/site-packages/nvidia/cu13/lib/libcublas.so.1*",
                            "/opt/*/.venv/lib/python3*/site-packages/nvidia/cublas/lib/libcublas.so.1*",
                            "/usr/local/lib/python3*/dist-packages/nvidia/cu13/lib/libcublas.so.1*",
                            "/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib/libcublas.so.1*"};
  for (const char* pattern : patterns) {
    glob_t g;
    if (glob(pattern, 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) out.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return out;
}
}  // namespace

/** Loads cuBLAS once; returns "" when usable, else why not. */
std::string loadCublas(std::string* pathOut) {
  std::lock_guard<std::mutex> lock(libMutex);
  if (!lib.tried) {
    lib.tried = true;
    std::string tried;
    for (const std::string& path : candidates()) {
      // cublasLt sits beside cublas; load it first so an absolute path finds it too.
      std::string dir = path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/') + 1);
      if (!dir.empty()) dlopen((dir + "libcublasLt.so.13").c_str(), RTLD_NOW | RTLD_GLOBAL);
      void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!h) {
        const char* e = dlerror();
        tried += "\n  " + path + ": " + (e ? e : "not found");
        continue;
      }
      lib.create = (CreateFn)symbol(h, "cublasCreate_v2", "cublasCreate");
      lib.setStream = (SetStreamFn)symbol(h, "cublasSetStream_v2", "cublasSetStream");
      lib.gemm = (GemmFn)dlsym(h, "cublasGemmStridedBatchedEx");
      lib.setWorkspace = (SetWorkspaceFn)symbol(h, "cublasSetWorkspace_v2", "cublasSetWorkspace");
      lib.grouped = (GroupedFn)dlsym(h, "cublasGemmGroupedBatchedEx");
      if (lib.create && lib.setStream && lib.gemm) {
        lib.handle = h;
        lib.path = path;
        break;
      }
      tried += "\n  " + path + ": missing cublasCreate/cublasSetStream/cublasGemmStridedBatchedEx";
      dlclose(h);
    }
    if (!lib.handle)
      lib.error = "cuBLAS not found (set GRIN_CUBLAS_PATH or LD_LIBRARY_PATH to libcublas.so.13); tried:" + tried;
  }
  if (pathOut) *pathOut = lib.path;
  return lib.error;
}

static Handle handleFor(int device, cudaStream_t stream) {
  std::string error = loadCublas(nullptr);
  if (!error.empty()) throw Error("cuda: matmul: " + error);
  if ((size_t)device >= handles.size()) handles.resize(device + 1, nullptr);
  if (!handles[device]) {
    Status s = lib.create(&handles[device]);
    if (s != 0) throw Error("cuda: cublasCreate failed with status " + std::to_string(s));
    s = lib.setStream(handles[device], stream);
    if (s != 0) throw Error("cuda: cublasSetStream failed with status " + std::to_string(s));
    // the workspace PyTorch gives cuBLAS on Hopper (shared with Lt: one stream orders them)
    size_t bytes = 0;
    void* workspace = cublasLtWorkspace(device, &bytes);
    if (workspace && lib.setWorkspace) {
      s = lib.setWorkspace(handles[device], workspace, bytes);
      if (s != 0) throw Error("cuda: cublasSetWorkspace failed with status " + std::to_string(s));
    }
  }
  return handles[device];
}

static void legacyGemm(int device, const Gemm& g) {
  cudaStream_t stream = streamFor(device);
  Handle h = handleFor(device, stream);
  int type = g.dtype == BF16 ? CUDA_R_16BF : CUDA_R_32F;
  const float alpha = 1.0f, beta = g.beta;
  Status s = lib.gemm(h, g.transA ? 1 : 0, g.transB ? 1 : 0, g.m, g.n, g.k, &alpha, g.A, type, (int)g.lda, g.strideA,
                      g.B, type, (int)g.ldb, g.strideB, &beta, g.C, type, (int)g.ldc, g.strideC, g.batch,
                      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != 0)
    throw Error("cuda: cublasGemmStridedBatchedEx failed with status " + std::to_string(s) + " (m " +
                std::to_string(g.m) + ", n " + std::to_string(g.n) + ", k " + std::to_string(g.k) + ", lda " +
                std::to_string(g.lda) + ", ldb " + std::to_string(g.ldb) + ", ldc " + std::to_string(g.ldc) +
                ", batch " + std::to_string(g.batch) + ")");
}

std::string cublasGroupedStatus() {
  std::string error = loadCublas(nullptr);
  if (!error.empty()) return error;
  return lib.grouped ? "" : lib.path + " has no cublasGemmGroupedBatchedEx (needs cuBLAS 12.5 or later)";
}

bool cublasGroupedGemm(int device, const std::vector<Gemm>& problems) {
  if (problems.empty()) return true;
  if (!cublasGroupedStatus().empty()) return false;
  cudaStream_t stream = streamFor(device);
  Handle h = handleFor(device, stream);
  size_t count = problems.size();
  std::vector<int> transA(count), transB(count), m(count), n(count), k(count), lda(count), ldb(count), ldc(count),
      sizes(count, 1);
  std::vector<float> alpha(count, 1.f), beta(count);
  std::vector<const void*> pointers(3 * count);
  int type = problems[0].dtype == BF16 ? CUDA_R_16BF : CUDA_R_32F;
  for (size_t i = 0; i < count; i++) {
    const Gemm& g = problems[i];
    transA[i] = g.transA, transB[i] = g.transB, m[i] = g.m, n[i] = g.n, k[i] = g.k;
    lda[i] = (int)g.lda, ldb[i] = (int)g.ldb, ldc[i] = (int)g.ldc, beta[i] = g.beta;
    pointers[i] = g.A, pointers[count + i] = g.B, pointers[2 * count + i] = g.C;
  }
  // the pointer arrays live on the device; a pageable copy is staged before cudaMemcpyAsync returns
  Scratch table(device, pointers.size() * sizeof(void*));
  check(cudaMemcpyAsync(table.ptr, pointers.data(), pointers.size() * sizeof(void*), cudaMemcpyHostToDevice, stream),
        "grouped gemm: upload the pointer table");
  const void* const* A = table.as<const void*>();
  Status s = lib.grouped(h, transA.data(), transB.data(), m.data(), n.data(), k.data(), alpha.data(), A, type,
                         lda.data(), A + count, type, ldb.data(), beta.data(), (void* const*)(A + 2 * count), type,
                         ldc.data(), (int)count, sizes.data(), CUBLAS_COMPUTE_32F);
  if (s != 0) throw Error("cuda: cublasGemmGroupedBatchedEx failed with status " + std::to_string(s));
  gemmCounts.cublas += count;
  return true;
}

/**
 * Column-major strided-batched GEMM: C[i] = op(A[i]) * op(B[i]) + beta C[i] (alpha 1). src/kernels/matmul.ts
 * maps row-major products onto it. Lt first (cublaslt.cpp); cuBLAS when chosen or when Lt has no plan.
 */
GemmCounts gemmCounts;

bool gemm(int device, const Gemm& g, int epilogue, void* bias) {
  if (g.dtype != BF16 && g.dtype != F32) throw Error("cuda: matmul needs f32 or bf16 operands");
  if (epilogue != EPI_NONE && g.batch != 1) throw Error("cuda: gemm epilogues take batch 1");
  if (gemmImplementation() == GEMM_LT && ltMatmul(device, g, epilogue, bias)) {
    gemmCounts.lt++;
    gemmCounts.epilogues += epilogue != EPI_NONE;
    return true;
  }
  legacyGemm(device, g);
  gemmCounts.cublas++;
  return epilogue == EPI_NONE;
}

}  // namespace grin
