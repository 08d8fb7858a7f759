// NCCL, loaded at run time with dlopen (no NCCL headers or library at build time): the few
// prototypes and enum values below are NCCL's own (nccl.h, 2.x). Communicators live in a table
// here and JS holds their index; every collective is enqueued on the device's one stream
// (streamFor), so it is ordered with the kernels around it. Registered into the addon's exports by
// registerNccl (called from addon.cpp). JS side: src/nccl.ts. Test: tools/device/run-parallel.sh (GPU).
#define NAPI_VERSION 8
#include <dlfcn.h>
#include <glob.h>
#include <node_api.h>

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "common.h"

namespace grin {

namespace {
typedef int Result;  // ncclSuccess = 0
typedef void* Comm;
struct UniqueId {
  char internal[128];
};
// ncclDataType_t: ncclUint8 1, ncclInt32 2, ncclFloat32 7, ncclBfloat16 9
int ncclType(int dtype) {
  switch (dtype) {
    case F32: return 7;
    case BF16: return 9;
    case I32: return 2;
    case BOOL: return 1;
    default: throw Error("nccl: unknown dtype code " + std::to_string(dtype));
  }
}
// ncclRedOp_t: ncclSum 0, ncclProd 1, ncclMax 2, ncclMin 3, ncclAvg 4 (NCCL >= 2.10); JS passes these.

struct Library {
  bool tried = false;
  void* handle = nullptr;
  std::string path, error;
  Result (*getVersion)(int*) = nullptr;
  const char* (*errorString)(Result) = nullptr;
  Result (*getUniqueId)(UniqueId*) = nullptr;
  Result (*commInitRank)(Comm*, int, UniqueId, int) = nullptr;
  Result (*commDestroy)(Comm) = nullptr;
  Result (*commAbort)(Comm) = nullptr;
  Result (*allReduce)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*broadcast)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*allGather)(const void*, void*, size_t, int, Comm, cudaStream_t) = nullptr;
  Result (*reduceScatter)(const void*, void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*send)(const void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*recv)(void*, size_t, int, int, Comm, cudaStream_t) = nullptr;
  Result (*groupStart)() = nullptr;
  Result (*groupEnd)() = nullptr;
};
Library lib;
std::mutex libMutex;
struct Communicator {
  Comm comm = nullptr;
  int device = 0;
};
std::vector<Communicator> comms;

std::vector<std::string> candidates() {
  std::vector<std::string> out;
  if (const char* env = getenv("GRIN_NCCL_PATH")) out.push_back(env);
  out.push_back("libnccl.so.2");
  out.push_back("libnccl.so");
  const char* patterns[] = {"/usr/lib/x86_64-linux-gnu/libnccl.so.2*",
                            "/usr/local/cuda/lib64/libnccl.so.2*",
                            "/usr/local/nccl*/lib/libnccl.so.2*",
                            "/opt/*/.venv/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2*",
                            "/usr/local/lib/python3*/dist-packages/nvidia/nccl/lib/libnccl.so.2*",
                            "/usr/local/lib/python3*/site-packages/nvidia/nccl/lib/libnccl.so.2*",
                            "/usr/lib/python3/dist-packages/nvidia/nccl/lib/libnccl.so.2*"};
  for (const char* pattern : patterns) {
    glob_t g;
    if (glob(pattern, 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; i++) out.push_back(g.gl_pathv[i]);
    globfree(&g);
  }
  return out;
}

template <typename F>
bool bind(void* h, const char* name, F& fn) {
  fn = (F)dlsym(h, name);
  return fn != nullptr;
}

/** Loads NCCL once; "" when usable, else why not (every path tried). */
const std::string& load() {
  std::lock_guard<std::mutex> lock(libMutex);
  if (lib.tried) return lib.error;
  lib.tried = true;
  std::string tried;
  for (const std::string& path : candidates()) {
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char* e = dlerror();
      tried += "\n  " + path + ": " + (e ? e : "not found");
      continue;
    }
    bool ok = bind(h, "ncclGetVersion", lib.getVersion) && bind(h, "ncclGetErrorString", lib.errorString) &&
              bind(h, "ncclGetUniqueId", lib.getUniqueId) && bind(h, "ncclCommInitRank", lib.commInitRank) &&
              bind(h, "ncclCommDestroy", lib.commDestroy) && bind(h, "ncclCommAbort", lib.commAbort) &&
              bind(h, "ncclAllReduce", lib.allReduce) && bind(h, "ncclBroadcast", lib.broadcast) &&
              bind(h, "ncclAllGather", lib.allGather) && bind(h, "ncclReduceScatter", lib.reduceScatter) &&
              bind(h, "ncclSend", lib.send) && bind(h, "ncclRecv", lib.recv) &&
              bind(h, "ncclGroupStart", lib.groupStart) && bind(h, "ncclGroupEnd", lib.groupEnd);
    if (ok) {
      lib.handle = h;
      lib.path = path;
      return lib.error;
    }
    tried += "\n  " + path + ": missing NCCL 2.7+ symbols (ncclSend/ncclRecv, ncclCommAbort...)";
    dlclose(h);
  }
  lib.error = "NCCL not found (set GRIN_NCCL_PATH or LD_LIBRARY_PATH to libnccl.so.2); tried:" + tried;
  return lib.error;
}

void require() {
  const std::string& error = load();
  if (!error.empty()) throw Error("nccl: " + error);
}

void check(Result status, const char* what) {
  if (status != 0)
    throw Error(std::string("nccl: ") + what + ": " + (lib.errorString ? lib.errorString(status) : "error") +
                " (ncclResult " + std::to_string(status) + ")");
}

Communicator& commAt(int index) {
  if (index < 0 || (size_t)index >= comms.size() || !comms[index].comm)
    throw Error("nccl: communicator " + std::to_string(index) + " is not open (destroyed, or never created)");
  return comms[index];
}

// ---- N-API glue (the addon's own Args helper is private to addon.cpp) ------------------------
struct Call {
  napi_env env;
  napi_value argv[8];
  size_t argc = 8;
  Call(napi_env e, napi_callback_info info) : env(e) { napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr); }
  double num(size_t i) const {
    double v = 0;
    if (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok)
      throw Error("nccl call: argument " + std::to_string(i) + " must be a number");
    return v;
  }
  int i32(size_t i) const { return (int)num(i); }
  void* ptr(size_t i) const { return (void*)(uintptr_t)num(i); }
  size_t count(size_t i) const { return (size_t)num(i); }
  /** The 128 bytes of an ncclUniqueId in a Uint8Array. */
  UniqueId* id(size_t i) const {
    napi_typedarray_type type;
    size_t length, offset;
    void* data;
    napi_value buffer;
    if (i >= argc || napi_get_typedarray_info(env, argv[i], &type, &length, &data, &buffer, &offset) != napi_ok ||
        type != napi_uint8_array || length != sizeof(UniqueId))
      throw Error("nccl call: argument " + std::to_string(i) + " must be a Uint8Array of 128 bytes (an ncclUniqueId)");
    return (UniqueId*)data;
  }
  napi_value number(double v) const {
    napi_value out;
    napi_create_double(env, v, &out);
    return out;
  }
};

typedef napi_value (*Body)(const Call&);
struct Entry {
  const char* name;
  Body body;
};

napi_value dispatch(napi_env env, napi_callback_info info) {
  void* data;
  size_t argc = 0;
  napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data);
  try {
    Call call(env, info);
    napi_value out = ((Body)data)(call);
    if (out) return out;
    napi_get_undefined(env, &out);
    return out;
  } catch (const std::exception& e) {
    napi_throw_error(env, nullptr, e.what());
    return nullptr;
  }
}

napi_value ncclLoad(const Call& c) {
  napi_value out;
  napi_create_object(c.env, &out);
  const std::string& error = load();
  auto setString = [&](const char* key, const std::string& s) {
    napi_value v;
    napi_create_string_utf8(c.env, s.c_str(), s.size(), &v);
    napi_set_named_property(c.env, out, key, v);
  };
  if (!error.empty()) {
    setString("error", error);
    return out;
  }
  int version = 0;
  check(lib.getVersion(&version), "ncclGetVersion");
  napi_set_named_property(c.env, out, "version", c.number(version));
  setString("path", lib.path);
  return out;
}

// (id: Uint8Array(128)) fills a fresh unique id
napi_value ncclUniqueId(const Call& c) {
  require();
  check(lib.getUniqueId(c.id(0)), "ncclGetUniqueId");
  return nullptr;
}

// (device, ranks, id, rank) -> communicator index; blocks until every rank has joined
napi_value ncclCommInit(const Call& c) {
  require();
  int device = c.i32(0);
  streamFor(device);  // makes the device current
  Communicator entry{nullptr, device};
  check(lib.commInitRank(&entry.comm, c.i32(1), *c.id(2), c.i32(3)), "ncclCommInitRank");
  comms.push_back(entry);
  return c.number((double)(comms.size() - 1));
}

// (comm, abort) frees the communicator; abort = 1 does not wait for queued work (a failed peer)
napi_value ncclCommFree(const Call& c) {
  Communicator& entry = commAt(c.i32(0));
  streamFor(entry.device);
  Comm comm = entry.comm;
  entry.comm = nullptr;
  check(c.i32(1) ? lib.commAbort(comm) : lib.commDestroy(comm), c.i32(1) ? "ncclCommAbort" : "ncclCommDestroy");
  return nullptr;
}

// (comm, dtype, op, send, recv, count)
napi_value ncclAllReduce(const Call& c) {
  Communicator& e = commAt(c.i32(0));
  check(lib.allReduce(c.ptr(3), c.ptr(4), c.count(5), ncclType(c.i32(1)), c.i32(2), e.comm, streamFor(e.device)),
        "ncclAllReduce");
  return nullptr;
}

// (comm, dtype, root, send, recv, count)
napi_value ncclBroadcast(const Call& c) {
  Communicator& e = commAt(c.i32(0));
  check(lib.broadcast(c.ptr(3), c.ptr(4), c.count(5), ncclType(c.i32(1)), c.i32(2), e.comm, streamFor(e.device)),
        "ncclBroadcast");
  return nullptr;
}

// (comm, dtype, send, recv, sendCount)
napi_value ncclAllGather(const Call& c) {
  Communicator& e = commAt(c.i32(0));
  check(lib.allGather(c.ptr(2), c.ptr(3), c.count(4), ncclType(c.i32(1)), e.comm, streamFor(e.device)),
        "ncclAllGather");
  return nullptr;
}

// (comm, dtype, op, send, recv, recvCount)
napi_value ncclReduceScatter(const Call& c) {
  Communicator& e = commAt(c.i32(0));
  check(lib.reduceScatter(c.ptr(3), c.ptr(4), c.count(5), ncclType(c.i32(1)), c.i32(2), e.comm,
                          streamFor(e.device)),
        "ncclReduceScatter");
  return nullptr;
}

// (comm, dtype, sendPtr, sendCount, sendPeer, recvPtr, recvCount, recvPeer): one grouped exchange;
// a count of 0 leaves that side out (a plain send or recv). Grouping lets a rank send to itself.
napi_value ncclSendRecv(const Call& c) {
  Communicator& e = commAt(c.i32(0));
  int type = ncclType(c.i32(1));
  cudaStream_t stream = streamFor(e.device);
  check(lib.groupStart(), "ncclGroupStart");
  Result sent = c.count(3) ? lib.send(c.ptr(2), c.count(3), type, c.i32(4), e.comm, stream) : 0;
  Result received = c.count(6) ? lib.recv(c.ptr(5), c.count(6), type, c.i32(7), e.comm, stream) : 0;
  Result ended = lib.groupEnd();
  check(sent, "ncclSend");
  check(received, "ncclRecv");
  check(ended, "ncclGroupEnd");
  return nullptr;
}

const Entry entries[] = {
    {"ncclLoad", ncclLoad},           {"ncclUniqueId", ncclUniqueId},         {"ncclCommInit", ncclCommInit},
    {"ncclCommFree", ncclCommFree},   {"ncclAllReduce", ncclAllReduce},       {"ncclBroadcast", ncclBroadcast},
    {"ncclAllGather", ncclAllGather}, {"ncclReduceScatter", ncclReduceScatter}, {"ncclSendRecv", ncclSendRecv},
};
}  // namespace

void registerNccl(napi_env env, napi_value exports) {
  for (const Entry& entry : entries) {
    napi_value fn;
    napi_create_function(env, entry.name, NAPI_AUTO_LENGTH, dispatch, (void*)entry.body, &fn);
    napi_set_named_property(env, exports, entry.name, fn);
  }
}

}  // namespace grin
