// Caching device allocator, one pool per device. Sizes are rounded to classes (512 B steps up to
// 1 MiB, 2 MiB steps above) and a freed block goes straight back to its class's free list: every
// op of a device runs on its one stream, so a later op that reuses the block is ordered after the
// last op that used it (stream-ordered reuse, no sync). On cudaMalloc failure the cache is
// returned to the driver and the allocation retried once. Test: tests/layout.test.ts (GPU: tests/cases/layout.ts has the allocator cases).
#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common.h"

namespace grin {

namespace {
struct Pool {
  std::map<size_t, std::vector<void*>> free;  // size class -> cached blocks
  std::unordered_map<void*, size_t> sizes;      // every block we own -> its class
  MemoryStats stats{};
};
std::vector<Pool> pools;
std::mutex poolsMutex;

size_t sizeClass(size_t bytes) {
  const size_t small = 512, large = 2u << 20;
  if (bytes <= (1u << 20)) return (bytes + small - 1) / small * small;
  return (bytes + large - 1) / large * large;
}

Pool& poolFor(int device) {
  if ((size_t)device >= pools.size()) pools.resize(device + 1);
  return pools[device];
}

void releaseCached(int device, Pool& pool) {
  check(cudaStreamSynchronize(streamFor(device)), "cudaStreamSynchronize (empty cache)");
  for (auto& entry : pool.free) {
    for (void* p : entry.second) {
      cudaFree(p);
      pool.sizes.erase(p);
      pool.stats.reserved -= entry.first;
      pool.stats.cached -= entry.first;
    }
  }
  pool.free.clear();
}
}  // namespace

void* deviceAlloc(int device, size_t bytes) {
  if (bytes == 0) return nullptr;
  streamFor(device);  // makes the device current
  std::lock_guard<std::mutex> lock(poolsMutex);
  Pool& pool = poolFor(device);
  size_t cls = sizeClass(bytes);
  auto it = pool.free.find(cls);
  if (it != pool.free.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    pool.stats.cached -= cls;
    pool.stats.inUse += cls;
    pool.stats.peakInUse = std::max(pool.stats.peakInUse, pool.stats.inUse);
    pool.stats.reuses++;
    return p;
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, cls);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // clear the (non-sticky) error before retrying
    releaseCached(device, pool);
    status = cudaMalloc(&p, cls);
  }
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error("cuda: out of memory allocating " + std::to_string(bytes) + " bytes on device " +
                std::to_string(device) + " (in use " + std::to_string(pool.stats.inUse) + " bytes): " +
                cudaGetErrorString(status));
  }
  pool.sizes[p] = cls;
  pool.stats.reserved += cls;
  pool.stats.inUse += cls;
  pool.stats.peakInUse = std::max(pool.stats.peakInUse, pool.stats.inUse);
  pool.stats.mallocs++;
  // Pointers travel to JS as doubles: they must stay exact below 2^53.
  if ((uint64_t)p >= (1ull << 53)) throw Error("cuda: device pointer above 2^53 cannot be passed to JS");
  return p;
}

void deviceFree(int device, void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(poolsMutex);
  Pool& pool = poolFor(device);
  auto it = pool.sizes.find(ptr);
  if (it == pool.sizes.end()) throw Error("cuda: free of a pointer this allocator does not own");
  pool.free[it->second].push_back(ptr);
  pool.stats.inUse -= it->second;
  pool.stats.cached += it->second;
  pool.stats.frees++;
}

MemoryStats memoryStats(int device) {
  std::lock_guard<std::mutex> lock(poolsMutex);
  return poolFor(device).stats;
}

void resetPeakMemory(int device) {
  std::lock_guard<std::mutex> lock(poolsMutex);
  Pool& pool = poolFor(device);
  pool.stats.peakInUse = pool.stats.inUse;
}

void emptyCache(int device) {
  streamFor(device);
  std::lock_guard<std::mutex> lock(poolsMutex);
  releaseCached(device, poolFor(device));
}

}  // namespace grin
