// N-API bindings (plain node_api.h, no node-addon-api): converts JS numbers / Float64Array layouts
// into kernel calls. Device pointers travel as JS numbers (exact below 2^53, checked at
// allocation). C++ exceptions become JS errors. The JS side is src/native.ts.
// Build: node scripts/build-native.mjs. Test: tests/*.test.ts on a GPU machine.
#define NAPI_VERSION 8
#include <node_api.h>
#include <cuda_profiler_api.h>

#include <functional>
#include <vector>

#include "attention.h"
#include "kernels.h"

using namespace grin;

namespace {

struct Args {
  napi_env env;
  napi_value argv[20];
  size_t argc = 20;
  Args(napi_env e, napi_callback_info info) : env(e) { napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr); }
  double num(size_t i) const {
    double v = 0;
    if (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok)
      throw Error("native call: argument " + std::to_string(i) + " must be a number");
    return v;
  }
  int64_t i64(size_t i) const { return (int64_t)num(i); }
  int i32(size_t i) const { return (int)num(i); }
  bool flag(size_t i) const { return num(i) != 0; }
  void* ptr(size_t i) const { return (void*)(uintptr_t)num(i); }
  /** A typed array's bytes: (data, length in bytes). */
  std::pair<void*, size_t> bytes(size_t i) const {
    napi_typedarray_type type;
    size_t length, offset;
    void* data;
    napi_value buffer;
    if (i >= argc || napi_get_typedarray_info(env, argv[i], &type, &length, &data, &buffer, &offset) != napi_ok)
      throw Error("native call: argument " + std::to_string(i) + " must be a typed array");
    size_t width = type == napi_uint8_array || type == napi_int8_array ? 1
                   : type == napi_uint16_array || type == napi_int16_array ? 2
                   : type == napi_float64_array || type == napi_bigint64_array ? 8 : 4;
    return {data, length * width};
  }
  const double* f64(size_t i, size_t need) const {
    auto b = bytes(i);
    if (b.second < need * 8) throw Error("native call: metadata array " + std::to_string(i) + " is too short");
    return (const double*)b.first;
  }
  /** [ndim, operands, shape..., strides of operand 0..., operand 1..., ...] */
  Layout layout(size_t i) const {
    const double* m = f64(i, 2);
    Layout L{};
    L.ndim = (int)m[0];
    int ops = (int)m[1];
    if (L.ndim > MAX_DIMS || ops > MAX_OPERANDS) throw Error("native call: layout has too many axes or operands");
    m = f64(i, 2 + L.ndim * (1 + ops));
    for (int d = 0; d < L.ndim; d++) L.shape[d] = (int64_t)m[2 + d];
    for (int k = 0; k < ops; k++)
      for (int d = 0; d < L.ndim; d++) L.strides[k][d] = (int64_t)m[2 + L.ndim * (1 + k) + d];
    return L;
  }
  /** [ndim, shape..., a..., b...] */
  Dims dims(size_t i) const {
    const double* m = f64(i, 1);
    Dims D{};
    D.ndim = (int)m[0];
    if (D.ndim > MAX_DIMS) throw Error("native call: too many axes");
    m = f64(i, 1 + 3 * D.ndim);
    for (int d = 0; d < D.ndim; d++) {
      D.shape[d] = (int64_t)m[1 + d];
      D.a[d] = (int64_t)m[1 + D.ndim + d];
      D.b[d] = (int64_t)m[1 + 2 * D.ndim + d];
    }
    return D;
  }
};

napi_value number(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}
napi_value string(napi_env env, const std::string& s) {
  napi_value out;
  napi_create_string_utf8(env, s.c_str(), s.size(), &out);
  return out;
}
void set(napi_env env, napi_value obj, const char* key, napi_value v) { napi_set_named_property(env, obj, key, v); }

typedef std::function<napi_value(const Args&)> Body;
std::vector<std::pair<const char*, Body>>& table() {
  static std::vector<std::pair<const char*, Body>> t;
  return t;
}

napi_value call(napi_env env, napi_callback_info info) {
  void* data;
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  try {
    Args args(env, info);
    napi_value out = (*(Body*)data)(args);
    if (out) return out;
    napi_get_undefined(env, &out);
    return out;
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

struct Register {
  Register(const char* name, Body body) { table().emplace_back(name, std::move(body)); }
};
#define BIND(name) static Register bind_##name(#name, [](const Args& a) -> napi_value
#define END );

napi_value probe(const Args& a) {
  napi_env env = a.env;
  napi_value out, devices;
  napi_create_object(env, &out);
  napi_create_array(env, &devices);
  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    set(env, out, "error", string(env, std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status)));
    count = 0;
  }
  for (int d = 0; d < count; d++) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, d) != cudaSuccess) continue;
    napi_value dev;
    napi_create_object(env, &dev);
    set(env, dev, "name", string(env, p.name));
    set(env, dev, "memoryBytes", number(env, (double)p.totalGlobalMem));
    set(env, dev, "computeCapability", string(env, std::to_string(p.major) + "." + std::to_string(p.minor)));
    set(env, dev, "multiprocessors", number(env, p.multiProcessorCount));
    napi_set_element(env, devices, d, dev);
  }
  set(env, out, "devices", devices);
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);
  set(env, out, "runtimeVersion", number(env, runtime));
  set(env, out, "driverVersion", number(env, driver));
  if (count > 0) {
    std::string path, error = loadCublas(&path);
    if (!error.empty()) set(env, out, "cublasError", string(env, error));
    else set(env, out, "cublasPath", string(env, path));
  }
  return out;
}

}  // namespace

BIND(probe) { return probe(a); } END
BIND(alloc) { return number(a.env, (double)(uintptr_t)deviceAlloc(a.i32(0), (size_t)a.num(1))); } END
BIND(free) { deviceFree(a.i32(0), a.ptr(1)); return nullptr; } END
BIND(upload) {
  auto host = a.bytes(2);
  if (host.second) check(cudaMemcpyAsync(a.ptr(1), host.first, host.second, cudaMemcpyHostToDevice, streamFor(a.i32(0))), "upload");
  return nullptr;
} END
BIND(download) {  // the one sync point: copy, wait, then report what index kernels found
  int device = a.i32(0);
  auto host = a.bytes(2);
  if (host.second) check(cudaMemcpyAsync(host.first, a.ptr(1), host.second, cudaMemcpyDeviceToHost, streamFor(device)), "download");
  std::string error = takeAsyncError(device);
  if (!error.empty()) throw Error("cuda: " + error);
  return nullptr;
} END
BIND(synchronize) {
  sideSynchronize(a.i32(0));
  std::string error = takeAsyncError(a.i32(0));
  if (!error.empty()) throw Error("cuda: " + error);
  return nullptr;
} END
BIND(memoryStats) {
  MemoryStats s = memoryStats(a.i32(0));
  napi_value out;
  napi_create_object(a.env, &out);
  set(a.env, out, "inUseBytes", number(a.env, (double)s.inUse));
  set(a.env, out, "cachedBytes", number(a.env, (double)s.cached));
  set(a.env, out, "reservedBytes", number(a.env, (double)s.reserved));
  set(a.env, out, "cudaMallocs", number(a.env, (double)s.mallocs));
  set(a.env, out, "reuses", number(a.env, (double)s.reuses));
  set(a.env, out, "frees", number(a.env, (double)s.frees));
  set(a.env, out, "peakInUseBytes", number(a.env, (double)s.peakInUse));
  return out;
} END
BIND(resetPeakMemory) { resetPeakMemory(a.i32(0)); return nullptr; } END
BIND(emptyCache) { emptyCache(a.i32(0)); return nullptr; } END
// An event on `device`. The device is made current through its context (streamFor), never by a bare
// cudaSetDevice: that would leave context.cpp's record of the current device stale, and a later
// launch for the recorded device would skip its cudaSetDevice and go to the wrong one.
static cudaEvent_t newEvent(int device, unsigned flags, const char* what) {
  streamFor(device);
  cudaEvent_t e;
  check(cudaEventCreateWithFlags(&e, flags), what);
  return e;
}

// CUDA events for timing on the device's stream: record needs no sync; elapsed waits for `stop`.
BIND(eventCreate) { return number(a.env, (double)(uintptr_t)newEvent(a.i32(0), cudaEventDefault, "cudaEventCreate")); } END
BIND(eventRecord) { check(cudaEventRecord((cudaEvent_t)a.ptr(1), streamFor(a.i32(0))), "cudaEventRecord"); return nullptr; } END
BIND(eventElapsed) {
  check(cudaEventSynchronize((cudaEvent_t)a.ptr(1)), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, (cudaEvent_t)a.ptr(0), (cudaEvent_t)a.ptr(1)), "cudaEventElapsedTime");
  return number(a.env, (double)ms);
} END
BIND(eventDestroy) { check(cudaEventDestroy((cudaEvent_t)a.ptr(0)), "cudaEventDestroy"); return nullptr; } END
// Nsight's capture range (nsys --capture-range=cudaProfilerApi, ncu --profile-from-start off).
BIND(profilerStart) { streamFor(a.i32(0)); check(cudaProfilerStart(), "cudaProfilerStart"); return nullptr; } END
BIND(profilerStop) { streamFor(a.i32(0)); check(cudaProfilerStop(), "cudaProfilerStop"); return nullptr; } END
// The side stream (context.cpp; src/side-stream.ts): fences are events without timing.
BIND(fenceCreate) {
  return number(a.env, (double)(uintptr_t)newEvent(a.i32(0), cudaEventDisableTiming, "cudaEventCreate (fence)"));
} END
BIND(sideBegin) { sideBegin(a.i32(0)); return nullptr; } END
BIND(sideEnd) { sideEnd(a.i32(0)); return nullptr; } END
BIND(sideRecord) { sideRecord(a.i32(0), (cudaEvent_t)a.ptr(1)); return nullptr; } END
BIND(mainWait) { mainWait(a.i32(0), (cudaEvent_t)a.ptr(1)); return nullptr; } END
BIND(fenceDone) {
  const cudaError_t status = cudaEventQuery((cudaEvent_t)a.ptr(0));
  if (status != cudaSuccess && status != cudaErrorNotReady) check(status, "cudaEventQuery");
  if (status == cudaErrorNotReady) cudaGetLastError();  // not an error: clear it
  return number(a.env, status == cudaSuccess ? 1 : 0);
} END
BIND(fenceSynchronize) { check(cudaEventSynchronize((cudaEvent_t)a.ptr(0)), "cudaEventSynchronize (fence)"); return nullptr; } END

BIND(unary) { unary(a.i32(0), a.i32(1), a.i32(2), (float)a.num(3), a.ptr(4), a.ptr(5), a.i64(6), a.layout(7), a.flag(8)); return nullptr; } END
BIND(binary) { binary(a.i32(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4), a.ptr(5), a.i64(6), a.layout(7), a.flag(8)); return nullptr; } END
BIND(where) { where(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.ptr(5), a.i64(6), a.layout(7)); return nullptr; } END
BIND(maskedFill) { maskedFill(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), (uint32_t)a.num(5), a.i64(6), a.layout(7)); return nullptr; } END
BIND(addInplace) { addInplace(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (float)a.num(4), a.i64(5), a.layout(6)); return nullptr; } END
BIND(copy) { copyStrided(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.i64(4), a.layout(5)); return nullptr; } END
BIND(copyBytes) { copyBytes(a.i32(0), a.ptr(1), a.ptr(2), (size_t)a.num(3)); return nullptr; } END
BIND(fill) { fill(a.i32(0), a.i32(1), a.ptr(2), (uint32_t)a.num(3), a.i64(4)); return nullptr; } END
BIND(cast) { cast(a.i32(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4), a.i64(5)); return nullptr; } END
BIND(arange) { arange(a.i32(0), a.i32(1), a.ptr(2), a.num(3), a.num(4), a.i64(5)); return nullptr; } END
BIND(sum) { sum(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.i64(4), a.i64(5), a.dims(6), a.dims(7), a.flag(8)); return nullptr; } END
BIND(max) { maxAlong(a.i32(0), a.i32(1), a.ptr(2), (int32_t*)a.ptr(3), a.ptr(4), a.i64(5), a.i64(6), a.i64(7)); return nullptr; } END
BIND(softmax) { softmax(a.i32(0), a.i32(1), a.flag(2), a.ptr(3), a.ptr(4), a.i64(5), a.i64(6), a.i64(7)); return nullptr; } END
BIND(attentionSoftmax) {
  attentionSoftmax(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.i64(4), a.i64(5), a.i64(6), (float)a.num(7), a.flag(8), a.i64(9));
  return nullptr;
} END
BIND(attentionSoftmaxBackward) {
  attentionSoftmaxBackward(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.i64(5), a.i64(6), (float)a.num(7));
  return nullptr;
} END
BIND(layerNorm) {
  layerNorm(a.i32(0), a.i32(1), a.ptr(2), (float*)a.ptr(3), (float*)a.ptr(4), a.ptr(5), a.ptr(6), a.ptr(7), a.i64(8), a.i64(9), (float)a.num(10));
  return nullptr;
} END
BIND(layerNormBackward) {
  layerNormBackward(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.ptr(5), a.ptr(6), (const float*)a.ptr(7), (const float*)a.ptr(8), a.ptr(9), a.i64(10), a.i64(11));
  return nullptr;
} END
BIND(crossEntropy) {
  crossEntropy(a.i32(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4), (const int32_t*)a.ptr(5), a.i64(6), a.i64(7), a.i32(8));
  return nullptr;
} END
BIND(crossEntropyBackward) {
  crossEntropyBackward(a.i32(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4), a.ptr(5), (const int32_t*)a.ptr(6), a.i64(7), a.i64(8), a.i32(9));
  return nullptr;
} END
BIND(embedding) { embedding(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.i64(6), a.i64(7)); return nullptr; } END
BIND(indexSelect) { indexSelect(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.i64(6), a.i64(7), a.i64(8)); return nullptr; } END
BIND(indexAdd) { indexAdd(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.i64(6), a.i64(7), a.i64(8)); return nullptr; } END
BIND(gather) { gather(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.dims(6), a.i64(7), a.i64(8)); return nullptr; } END
BIND(scatterAdd) { scatterAdd(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.dims(6), a.i64(7), a.i64(8)); return nullptr; } END
BIND(adamw) {
  AdamW h{(float)a.num(8), (float)a.num(9), (float)a.num(10), (float)a.num(11), (float)a.num(12), (float)a.num(13), (float)a.num(14)};
  adamw(a.i32(0), a.i32(1), a.i32(2), a.ptr(3), a.ptr(4), (float*)a.ptr(5), (float*)a.ptr(6), a.i64(7), (const float*)a.ptr(15), h);
  return nullptr;
} END
BIND(adamwMixed) {
  AdamW h{(float)a.num(8), (float)a.num(9), (float)a.num(10), (float)a.num(11), (float)a.num(12), (float)a.num(13), (float)a.num(14)};
  adamwMixed(a.i32(0), a.i32(1), a.i32(16), a.ptr(2), a.ptr(3), (float*)a.ptr(4), a.ptr(5), a.ptr(6), a.i64(7), (const float*)a.ptr(15), h, (uint32_t)a.i64(17));
  return nullptr;
} END
BIND(rope) {
  rope(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.ptr(5), a.i64(6), a.i64(7), a.layout(8), a.i64(9), a.i64(10), a.i64(11), a.flag(12));
  return nullptr;
} END
BIND(topk) { topk(a.i32(0), a.i32(1), a.ptr(2), (int32_t*)a.ptr(3), a.ptr(4), a.i64(5), a.i64(6), a.i64(7), a.i64(8)); return nullptr; } END
// Philox reservations travel as (key0, key1, counter low, counter high), each a u32 in a number.
static uint64_t counterOf(const Args& a, size_t i) { return (uint64_t)a.num(i) | ((uint64_t)a.num(i + 1) << 32); }
BIND(random) {  // (d, distribution, out, n, key0, key1, counterLo, counterHi, a, b)
  randomFill(a.i32(0), a.i32(1), (float*)a.ptr(2), a.i64(3), (uint32_t)a.num(4), (uint32_t)a.num(5), counterOf(a, 6),
             a.num(8), a.num(9));
  return nullptr;
} END
BIND(randomScale) {  // (d, dtype, out, x, n, low, high, key0, key1, counterLo, counterHi)
  randomScale(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.i64(4), a.num(5), a.num(6), (uint32_t)a.num(7),
              (uint32_t)a.num(8), counterOf(a, 9));
  return nullptr;
} END
BIND(moePermute) {  // (d, counts, rowSlot, position, experts, n, E)
  moePermute(a.i32(0), (int32_t*)a.ptr(1), (int32_t*)a.ptr(2), (int32_t*)a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5),
             a.i32(6));
  return nullptr;
} END
BIND(moeDispatch) {  // (d, dtype, out, x, position, tokens, K, D)
  moeDispatch(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), (const int32_t*)a.ptr(4), a.i64(5), a.i32(6), a.i64(7));
  return nullptr;
} END
BIND(moeCombine) {  // (d, dtype, out, y, w (0: ones), position, tokens, K, D)
  moeCombine(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), (const int32_t*)a.ptr(5), a.i64(6), a.i32(7), a.i64(8));
  return nullptr;
} END
BIND(moeCombineBackward) {  // (d, dtype, dy, dw, g, y, w, position, tokens, K, D)
  moeCombineBackward(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.ptr(5), a.ptr(6), (const int32_t*)a.ptr(7),
                     a.i64(8), a.i32(9), a.i64(10));
  return nullptr;
} END
BIND(siluGlu) { siluGlu(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.i64(4), a.i64(5)); return nullptr; } END
BIND(siluGluBackward) {
  siluGluBackward(a.i32(0), a.i32(1), a.ptr(2), a.ptr(3), a.ptr(4), a.i64(5), a.i64(6));
  return nullptr;
} END
BIND(moeRoute) {  // (d, router, logits, experts, weights, probs, counts, T, E, K, eps, training, key0, key1, cLo, cHi)
  moeRoute(a.i32(0), a.i32(1), (const float*)a.ptr(2), (int32_t*)a.ptr(3), (float*)a.ptr(4), (float*)a.ptr(5),
           (float*)a.ptr(6), a.i64(7), a.i32(8), a.i32(9), a.num(10), a.flag(11), (uint32_t)a.num(12),
           (uint32_t)a.num(13), counterOf(a, 14));
  return nullptr;
} END
BIND(moeRouteBackward) {  // (d, router, logits, experts, gw, gp (0: none), dz, T, E, K, eps)
  moeRouteBackward(a.i32(0), a.i32(1), (const float*)a.ptr(2), (const int32_t*)a.ptr(3), (const float*)a.ptr(4),
                   (const float*)a.ptr(5), (float*)a.ptr(6), a.i64(7), a.i32(8), a.i32(9), a.num(10));
  return nullptr;
} END
BIND(sumSquaresMany) {  // (device, out, Float64Array [pointer, size, dtype] per tensor)
  auto table = a.bytes(2);
  int count = (int)(table.second / 8 / 3);
  const double* m = (const double*)table.first;
  std::vector<const void*> xs(count);
  std::vector<int64_t> ns(count);
  std::vector<int> dtypes(count);
  for (int i = 0; i < count; i++) {
    xs[i] = (const void*)(uintptr_t)m[3 * i];
    ns[i] = (int64_t)m[3 * i + 1];
    dtypes[i] = (int)m[3 * i + 2];
  }
  sumSquaresMany(a.i32(0), (float*)a.ptr(1), xs.data(), ns.data(), dtypes.data(), count);
  return nullptr;
} END
BIND(sumSquares) { sumSquares(a.i32(0), a.i32(1), (float*)a.ptr(2), a.ptr(3), a.i64(4)); return nullptr; } END
BIND(setGroupedImplementation) { setGroupedImplementation(a.i32(0)); return nullptr; } END
BIND(groupedInfo) {
  napi_value out;
  napi_create_object(a.env, &out);
  set(a.env, out, "implementation", number(a.env, groupedImplementation()));
  std::string error = cublasGroupedStatus();
  if (!error.empty()) set(a.env, out, "cublasGroupedError", string(a.env, error));
  return out;
} END
// (d, dtype, mode, counts Float64Array [E], parts, in, out, first, second, result, weights Float64Array [parts*E])
BIND(groupedLinear) {
  auto countBytes = a.bytes(3);
  auto weightBytes = a.bytes(10);
  int E = (int)(countBytes.second / 8), parts = a.i32(4);
  if ((int64_t)(weightBytes.second / 8) != (int64_t)parts * E)
    throw Error("groupedLinear: need parts * E weight pointers");
  std::vector<int64_t> counts(E);
  std::vector<void*> weights(parts * E);
  for (int e = 0; e < E; e++) counts[e] = (int64_t)((const double*)countBytes.first)[e];
  for (int i = 0; i < parts * E; i++) weights[i] = (void*)(uintptr_t)((const double*)weightBytes.first)[i];
  groupedLinear(a.i32(0), a.i32(1), a.i32(2), counts.data(), E, parts, a.i64(5), a.i64(6), a.ptr(7), a.ptr(8),
                a.ptr(9), weights.data());
  return nullptr;
} END
// sdpa shape: Float64Array [B, H, Hkv, S, Skv, D, Dv, window, scale, causal]
static SdpaShape sdpaShape(const Args& a, size_t i) {
  const double* m = a.f64(i, 10);
  return SdpaShape{(int)m[0], (int)m[1], (int)m[2], (int)m[3], (int)m[4], (int)m[5], (int)m[6], (int)m[7], (float)m[8], m[9] != 0};
}
BIND(sdpa) { sdpaForward(a.i32(0), a.i32(1), sdpaShape(a, 2), a.ptr(3), (float*)a.ptr(4), a.ptr(5), a.ptr(6), a.ptr(7)); return nullptr; } END
BIND(sdpaInfo) {
  napi_value out;
  napi_create_object(a.env, &out);
  set(a.env, out, "tensorCoreCalls", number(a.env, (double)sdpaCounts.tensorCore));
  set(a.env, out, "generalCalls", number(a.env, (double)sdpaCounts.general));
  set(a.env, out, "wgmmaForwardCalls", number(a.env, (double)sdpaCounts.wgmmaForward));
  set(a.env, out, "wgmmaBackwardCalls", number(a.env, (double)sdpaCounts.wgmmaBackward));
  set(a.env, out, "wgmmaStoredDsCalls", number(a.env, (double)sdpaCounts.wgmmaStoredDs));
  return out;
} END
BIND(sdpaBackwardScratchBytes) {
  return number(a.env, (double)sdpaBackwardScratchBytes(a.i32(0), a.i32(1), sdpaShape(a, 2)));
} END
BIND(sdpaBackward) {
  sdpaBackward(a.i32(0), a.i32(1), sdpaShape(a, 2), a.ptr(3), a.ptr(4), a.ptr(5), (const float*)a.ptr(6), (float*)a.ptr(7),
               (size_t)a.i64(8), a.ptr(9), a.ptr(10), a.ptr(11), a.ptr(12), a.ptr(13));
  return nullptr;
} END

BIND(gemm) {  // returns 1 when the epilogue (argument 17) was applied, 0 when the caller must apply it
  Gemm g{a.i32(1), a.flag(2), a.flag(3), a.i32(4), a.i32(5), a.i32(6), a.ptr(7), a.i64(8), a.i64(9),
         a.ptr(10), a.i64(11), a.i64(12), a.ptr(13), a.i64(14), a.i64(15), a.i32(16)};
  int epilogue = a.argc > 17 ? a.i32(17) : EPI_NONE;
  return number(a.env, gemm(a.i32(0), g, epilogue, epilogue != EPI_NONE ? a.ptr(18) : nullptr) ? 1 : 0);
} END
BIND(setGemmImplementation) { setGemmImplementation(a.i32(0)); return nullptr; } END
BIND(setGemmTuning) { setGemmTuning(a.i32(0)); return nullptr; } END
BIND(gemmInfo) {
  napi_value out;
  napi_create_object(a.env, &out);
  std::string path, error = cublasLtStatus(&path);
  set(a.env, out, "implementation", number(a.env, gemmImplementation()));
  if (error.empty()) set(a.env, out, "cublasLtPath", string(a.env, path));
  else set(a.env, out, "cublasLtError", string(a.env, error));
  set(a.env, out, "plans", number(a.env, (double)cublasLtPlanCount()));
  set(a.env, out, "ltCalls", number(a.env, (double)gemmCounts.lt));
  set(a.env, out, "cublasCalls", number(a.env, (double)gemmCounts.cublas));
  set(a.env, out, "fusedEpilogues", number(a.env, (double)gemmCounts.epilogues));
  set(a.env, out, "tuning", number(a.env, gemmTuning()));
  set(a.env, out, "tunedPlans", number(a.env, (double)gemmCounts.tuned));
  set(a.env, out, "wgmmaGroupedCalls", number(a.env, (double)gemmCounts.wgmmaGrouped));
  return out;
} END

namespace grin {
void registerNccl(napi_env env, napi_value exports);  // nccl.cpp
}

NAPI_MODULE_INIT() {
  registerNccl(env, exports);
  for (auto& entry : table()) {
    napi_value fn;
    napi_create_function(env, entry.first, NAPI_AUTO_LENGTH, call, &entry.second, &fn);
    napi_set_named_property(env, exports, entry.first, fn);
  }
  return exports;
}
