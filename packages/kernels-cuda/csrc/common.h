// Host-side shared declarations for the grin-moe CUDA addon: dtype codes (the same numbers as
// src/native.ts), the strided layout passed to kernels, per-device context (stream, caching
// allocator, async error slot) and error helpers. Kernels live in *.cu; bindings in addon.cpp.
// Build: node scripts/build-native.mjs. Test: vitest tests/ (GPU) or tools/device/run-gpu-tests.sh.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace grin {

enum DType : int { F32 = 0, BF16 = 1, I32 = 2, BOOL = 3 };
inline int itemSize(int dtype) { return dtype == BF16 ? 2 : dtype == BOOL ? 1 : 4; }

constexpr int MAX_DIMS = 8;
constexpr int MAX_OPERANDS = 4;

/** Element strides of up to four operands over one (merged) shape; operand 0 is the output. */
struct Layout {
  int ndim;
  int64_t shape[MAX_DIMS];
  int64_t strides[MAX_OPERANDS][MAX_DIMS];
};

/** Whether n elements and every operand's largest offset fit in 32 bits (so kernels index in u32). */
inline bool fits32(const Layout& L, int operands, int64_t n) {
  if (n >= (1ll << 31)) return false;
  for (int k = 0; k < operands; k++) {
    int64_t last = 0;
    for (int d = 0; d < L.ndim; d++) last += (L.shape[d] - 1) * L.strides[k][d];
    if (last >= (1ll << 31) || last < 0) return false;
  }
  return true;
}

/** A shape with two stride sets (gather / scatter: where to read, where to write). */
struct Dims {
  int ndim;
  int64_t shape[MAX_DIMS];
  int64_t a[MAX_DIMS];
  int64_t b[MAX_DIMS];
};

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    throw Error(std::string("cuda: ") + what + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
}
/** Launch errors surface here without a sync; faults inside kernels surface at the next read. */
inline void checkLaunch(const char* what) { check(cudaGetLastError(), what); }

inline unsigned gridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return (unsigned)(blocks < 1 ? 1 : blocks > (1 << 30) ? (1 << 30) : blocks);
}

// ---- per-device context (context.cpp) ----------------------------------------------------------
/** Makes `device` current (initialising its context once) and returns the stream launches go to:
 * the main stream, or between sideBegin and sideEnd the side stream. */
cudaStream_t streamFor(int device);
/** Launches go to the side stream, after everything enqueued on the main stream so far. */
void sideBegin(int device);
void sideEnd(int device);
bool onSideStream(int device);
/** Records `event` on the side stream. */
void sideRecord(int device, cudaEvent_t event);
/** The main stream waits for `event` (recorded on the side stream) before its later work. */
void mainWait(int device, cudaEvent_t event);
/** Waits on the host for the side stream's work (no-op before any sideBegin). */
void sideSynchronize(int device);
/** Device-side slot [code, value, limit, position] that index kernels fill instead of throwing. */
int64_t* errorSlot(int device);
/** Compute capability 9.0 (Hopper: the build's sm_90a code runs, wgmma and all); asked once per device. */
bool hopperDevice(int device);
/** Reads and clears the error slot (after a stream sync); empty string when nothing went wrong. */
std::string takeAsyncError(int device);

// Async error codes (the op names are in context.cpp).
enum AsyncError : int {
  ERR_EMBEDDING = 1,
  ERR_INDEX_SELECT = 2,
  ERR_INDEX_ADD = 3,
  ERR_GATHER = 4,
  ERR_SCATTER_ADD = 5,
  ERR_CROSS_ENTROPY = 6,
  ERR_MOE_PERMUTE = 7,
};

// ---- caching allocator (allocator.cpp) --------------------------------------------------------
void* deviceAlloc(int device, size_t bytes);
void deviceFree(int device, void* ptr);
struct MemoryStats {
  size_t inUse, cached, reserved;
  /** Largest inUse since the pool began or since resetPeakMemory (torch.cuda.max_memory_allocated). */
  size_t peakInUse;
  uint64_t mallocs, reuses, frees;
};
MemoryStats memoryStats(int device);
void emptyCache(int device);
void resetPeakMemory(int device);

/** A scratch buffer from the caching allocator, returned at scope exit (stream order keeps it safe). */
struct Scratch {
  int device;
  void* ptr;
  Scratch(int d, size_t bytes) : device(d), ptr(deviceAlloc(d, bytes)) {}
  ~Scratch() { deviceFree(device, ptr); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

}  // namespace grin
