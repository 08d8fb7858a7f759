// Per-device context: one non-blocking stream per device (every op of that device is ordered on
// it, which is what makes the caching allocator's immediate reuse safe) and a small device slot
// where index kernels record an out-of-range value instead of throwing; toHost reads it after the
// sync and throws then. A second, side stream takes the launches made between sideBegin and
// sideEnd (an optimizer step overlapping the next forward; src/side-stream.ts keeps the main
// stream and the allocator in order with events). Test: tests/layout.test.ts (GPU), and
// tests/optim.test.ts with tests/side-stream-bookkeeping.test.ts for the side stream.
#include <mutex>
#include <vector>

#include "common.h"

namespace grin {

namespace {
struct Context {
  bool ready = false;
  cudaStream_t stream = nullptr;
  int64_t* errors = nullptr;
  cudaStream_t side = nullptr;  // created by the first sideBegin
  cudaEvent_t joined = nullptr;  // main's point that side work starts after
  bool onSide = false;
};
std::vector<Context> contexts;
std::mutex contextsMutex;
int currentDevice = -1;

const char* errorOp(int64_t code) {
  switch (code) {
    case ERR_EMBEDDING: return "embedding: id";
    case ERR_INDEX_SELECT: return "index_select: index";
    case ERR_INDEX_ADD: return "index_add: index";
    case ERR_GATHER: return "gather: index";
    case ERR_SCATTER_ADD: return "scatter_add: index";
    case ERR_CROSS_ENTROPY: return "cross_entropy: target";
    case ERR_MOE_PERMUTE: return "moe_permute: expert id";
    default: return "unknown op: value";
  }
}
}  // namespace

/** The current device's highest (main stream) or lowest (side stream) stream priority. */
static int streamPriority(bool highest) {
  int least = 0, greatest = 0;
  check(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
  return highest ? greatest : least;
}

static Context& contextFor(int device) {
  std::lock_guard<std::mutex> lock(contextsMutex);
  if (device < 0) throw Error("cuda: negative device index " + std::to_string(device));
  if ((size_t)device >= contexts.size()) contexts.resize(device + 1);
  Context& c = contexts[device];
  if (currentDevice != device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    currentDevice = device;
  }
  if (!c.ready) {
    // the main stream at the highest priority: the block scheduler serves it before the side
    // stream, which then fills the SMs the main stream leaves idle
    check(cudaStreamCreateWithPriority(&c.stream, cudaStreamNonBlocking, streamPriority(true)), "cudaStreamCreate");
    check(cudaMalloc(&c.errors, 4 * sizeof(int64_t)), "cudaMalloc (error slot)");
    check(cudaMemsetAsync(c.errors, 0, 4 * sizeof(int64_t), c.stream), "cudaMemset (error slot)");
    c.ready = true;
  }
  return c;
}

cudaStream_t streamFor(int device) {
  Context& c = contextFor(device);
  return c.onSide ? c.side : c.stream;
}

void sideBegin(int device) {
  Context& c = contextFor(device);
  if (c.onSide) throw Error("cuda: sideBegin: the side stream is already in use");
  if (!c.side) {
    check(cudaStreamCreateWithPriority(&c.side, cudaStreamNonBlocking, streamPriority(false)), "cudaStreamCreate (side)");
    check(cudaEventCreateWithFlags(&c.joined, cudaEventDisableTiming), "cudaEventCreate (side)");
  }
  // everything enqueued on the main stream so far happens before the side work
  check(cudaEventRecord(c.joined, c.stream), "cudaEventRecord (side begin)");
  check(cudaStreamWaitEvent(c.side, c.joined, 0), "cudaStreamWaitEvent (side begin)");
  c.onSide = true;
}

void sideEnd(int device) { contextFor(device).onSide = false; }

bool onSideStream(int device) { return contextFor(device).onSide; }

void sideRecord(int device, cudaEvent_t event) {
  Context& c = contextFor(device);
  if (!c.side) throw Error("cuda: sideRecord before any sideBegin");
  check(cudaEventRecord(event, c.side), "cudaEventRecord (side)");
}

void mainWait(int device, cudaEvent_t event) {
  check(cudaStreamWaitEvent(contextFor(device).stream, event, 0), "cudaStreamWaitEvent (main)");
}

void sideSynchronize(int device) {
  Context& c = contextFor(device);
  if (c.side) check(cudaStreamSynchronize(c.side), "cudaStreamSynchronize (side)");
}
int64_t* errorSlot(int device) { return contextFor(device).errors; }

bool hopperDevice(int device) {
  static int major[64];  // 0 = not asked yet
  if (device < 0 || device >= 64) return false;
  if (!major[device] && cudaDeviceGetAttribute(&major[device], cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess)
    return false;
  // the build's sm_90a code; later GPUs run the compute_90 PTX, which has no wgmma
  return major[device] == 9;
}

std::string takeAsyncError(int device) {
  Context& c = contextFor(device);
  int64_t slot[4];
  check(cudaMemcpyAsync(slot, c.errors, sizeof(slot), cudaMemcpyDeviceToHost, c.stream), "read error slot");
  check(cudaStreamSynchronize(c.stream), "cudaStreamSynchronize");
  if (slot[0] == 0) return "";
  check(cudaMemsetAsync(c.errors, 0, sizeof(slot), c.stream), "clear error slot");
  return std::string(errorOp(slot[0])) + " " + std::to_string(slot[1]) + " at position " +
         std::to_string(slot[3]) + " is out of range (valid 0.." + std::to_string(slot[2] - 1) +
         "); a CUDA kernel found it, so it is reported at the next host read, not where the op was called";
}

}  // namespace grin
