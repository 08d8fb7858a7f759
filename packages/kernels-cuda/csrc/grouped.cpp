// The MoE's grouped linear: rows in expert order, group e (counts[e] rows) times its own weights.
// Four ways to run the GEMMs (setGroupedImplementation; `grin bench moe` times all four):
//  - Lt serial (default): one cuBLASLt GEMM per (expert, part), one after another on the device's
//    stream; with the bucket plans tuned (GEMM tuning 'grouped') it is a few percent from the side
//    streams either way (`grin bench moe` has the side streams ahead, `grin bench train`'s whole
//    step has it ahead: README.md, Grouped GEMM), with no extra streams, events or workspaces;
//  - Lt on side streams: the same GEMMs with experts spread over four side streams with their own
//    workspaces, so one expert's last wave overlaps the next one's first (a 1000-row expert GEMM is
//    only ~3 waves of tiles on 132 SMs); it was the default before the plans were tuned;
//  - cuBLAS grouped: cublasGemmGroupedBatchedEx, every problem in one call;
//  - wgmma: our Hopper kernel (grouped_wgmma.cu, TMA + wgmma) runs the bf16 forward and input
//    gradient with every expert in one launch; the weight gradient, f32 and the shapes it does not
//    take run Lt serial.
// The changing row count is bucketed in the Lt plan cache (Gemm::varying), so a training step runs
// no heuristic once its buckets are warm. parts = 2 stacks w1 and w3 side by side in one output
// [N, 2 * out] (what the fused SiLU-GLU reads); where the two weights also lie stacked in memory,
// the forward and the input gradient run them as one GEMM. Row-major products map onto
// column-major cuBLAS as in src/kernels/matmul.ts. Test: tests/cases/moe.ts (GPU).
#include <vector>

#include "kernels.h"

namespace grin {

namespace {
constexpr int SIDE_STREAMS = 4;
int implementation = GROUPED_LT_SERIAL;

struct Side {
  bool ready = false;
  cudaStream_t streams[SIDE_STREAMS];
  cudaEvent_t done[SIDE_STREAMS];
  cudaEvent_t fork;
  void* workspaces[SIDE_STREAMS];
};
std::vector<Side> sides;

Side& sideFor(int device) {
  streamFor(device);  // makes the device current
  if ((size_t)device >= sides.size()) sides.resize(device + 1);
  Side& s = sides[device];
  if (!s.ready) {
    check(cudaEventCreateWithFlags(&s.fork, cudaEventDisableTiming), "cudaEventCreate (grouped gemm)");
    for (int i = 0; i < SIDE_STREAMS; i++) {
      check(cudaStreamCreateWithFlags(&s.streams[i], cudaStreamNonBlocking), "cudaStreamCreate (grouped gemm)");
      check(cudaEventCreateWithFlags(&s.done[i], cudaEventDisableTiming), "cudaEventCreate (grouped gemm)");
      check(cudaMalloc(&s.workspaces[i], LT_WORKSPACE_BYTES), "cudaMalloc (grouped gemm workspace)");
    }
    s.ready = true;
  }
  return s;
}

/** One GEMM of the grouped linear: which expert and part it serves, and the call. */
struct Problem {
  int expert, part;
  Gemm g;
};
}  // namespace

void setGroupedImplementation(int impl) {
  if (impl < GROUPED_LT_STREAMS || impl > GROUPED_WGMMA)
    throw Error(
        "cuda: grouped gemm implementation must be 0 (Lt streams), 1 (Lt serial), 2 (cuBLAS grouped) or 3 (wgmma)");
  implementation = impl;
}
int groupedImplementation() { return implementation; }

void groupedLinear(int device, int dtype, int mode, const int64_t* counts, int E, int parts, int64_t in, int64_t out,
                   const void* first, const void* second, void* result, void* const* weights) {
  if (dtype != BF16 && dtype != F32) throw Error("grouped_linear (cuda): needs f32 or bf16 operands");
  if (in > INT32_MAX || out > INT32_MAX) throw Error("grouped_linear (cuda): a dimension is above 2^31 - 1");
  const int64_t item = itemSize(dtype), wide = parts * out;
  if (implementation == GROUPED_WGMMA && dtype == BF16 &&
      groupedGemmWgmma(device, mode, counts, E, parts, in, out, first, second, result, weights)) {
    gemmCounts.wgmmaGrouped++;
    return;
  }
  auto at = [item](const void* base, int64_t elements) { return (void*)((const char*)base + elements * item); };
  cudaStream_t main = streamFor(device);
  std::vector<Problem> problems;
  int64_t r0 = 0;
  for (int e = 0; e < E; e++) {
    int64_t rows = counts[e];
    if (rows > INT32_MAX) throw Error("grouped_linear (cuda): a group has more than 2^31 - 1 rows");
    // w1 and w3 stacked in one [2 * out, in] block (stackExpertWeights in model-grin lays them out
    // so): the forward and the input gradient take both parts in one GEMM of twice the width
    bool stacked = parts == 2 && mode != 2 && rows > 0 &&
                   (const char*)weights[E + e] == (const char*)weights[e] + out * in * item;
    if (stacked) {
      Gemm g{};
      g.dtype = dtype;
      g.batch = 1;
      if (mode == 0) {
        g.transA = true, g.transB = false, g.m = (int)wide, g.n = (int)rows, g.k = (int)in;
        g.A = weights[e], g.lda = in, g.B = at(first, r0 * in), g.ldb = in;
        g.C = at(result, r0 * wide), g.ldc = wide, g.varying = GEMM_VARY_N;
      } else {
        g.transA = false, g.transB = false, g.m = (int)in, g.n = (int)rows, g.k = (int)wide;
        g.A = weights[e], g.lda = in, g.B = at(first, r0 * wide), g.ldb = wide;
        g.C = at(result, r0 * in), g.ldc = in, g.varying = GEMM_VARY_N;
      }
      problems.push_back({e, 0, g});
      r0 += rows;
      continue;
    }
    for (int p = 0; p < parts; p++) {
      void* w = weights[p * E + e];
      if (rows == 0) {
        if (mode == 2) check(cudaMemsetAsync(w, 0, out * in * item, main), "grouped_linear: zero an empty group");
        continue;
      }
      Gemm g{};
      g.dtype = dtype;
      g.batch = 1;
      if (mode == 0) {  // y[rows, p] = x_rows w^T, i.e. y^T (out x rows) = op(w) x_rows^T
        g.transA = true, g.transB = false, g.m = (int)out, g.n = (int)rows, g.k = (int)in;
        g.A = w, g.lda = in, g.B = at(first, r0 * in), g.ldb = in;
        g.C = at(result, r0 * wide + p * out), g.ldc = wide, g.varying = GEMM_VARY_N;
      } else if (mode == 1) {  // dx_rows (+)= g[rows, p] w: the parts accumulate in order
        g.transA = false, g.transB = false, g.m = (int)in, g.n = (int)rows, g.k = (int)out;
        g.A = w, g.lda = in, g.B = at(first, r0 * wide + p * out), g.ldb = wide;
        g.C = at(result, r0 * in), g.ldc = in, g.beta = p > 0 ? 1.f : 0.f, g.varying = GEMM_VARY_N;
      } else {  // dw = g[rows, p]^T x_rows: dw^T (in x out) = x_rows^T g[rows, p]
        g.transA = false, g.transB = true, g.m = (int)in, g.n = (int)out, g.k = (int)rows;
        g.A = at(second, r0 * in), g.lda = in, g.B = at(first, r0 * wide + p * out), g.ldb = wide;
        g.C = w, g.ldc = in, g.varying = GEMM_VARY_K;
      }
      problems.push_back({e, p, g});
    }
    r0 += rows;
  }
  if (problems.empty()) return;
  if (implementation == GROUPED_CUBLAS) {
    // the input gradient's parts add into one output: part 0 in one call, then the rest with beta 1
    std::vector<Gemm> batch;
    for (int p = 0; p < parts; p++) {
      for (const Problem& q : problems)
        if (mode != 1 || q.part == p) batch.push_back(q.g);
      if (!batch.empty() && !cublasGroupedGemm(device, batch)) {
        for (const Gemm& g : batch) gemm(device, g);  // this cuBLAS has no grouped call
      }
      batch.clear();
      if (mode != 1) break;
    }
    return;
  }
  if (implementation != GROUPED_LT_STREAMS || problems.size() == 1) {
    for (const Problem& q : problems) gemm(device, q.g);
    return;
  }
  Side& side = sideFor(device);
  check(cudaEventRecord(side.fork, main), "grouped gemm: fork");
  for (int i = 0; i < SIDE_STREAMS; i++) check(cudaStreamWaitEvent(side.streams[i], side.fork, 0), "grouped gemm: wait");
  // An expert's parts stay on one stream (the input gradient accumulates them in order). A call Lt
  // cannot plan, and the parts after it, run on the device's stream after the join.
  std::vector<const Problem*> later;
  int skipExpert = -1;
  for (const Problem& q : problems) {
    int lane = q.expert % SIDE_STREAMS;
    if (q.expert == skipExpert || !ltMatmul(device, q.g, EPI_NONE, nullptr, side.streams[lane], side.workspaces[lane])) {
      skipExpert = q.expert;
      later.push_back(&q);
      continue;
    }
    gemmCounts.lt++;
  }
  for (int i = 0; i < SIDE_STREAMS; i++) {
    check(cudaEventRecord(side.done[i], side.streams[i]), "grouped gemm: join");
    check(cudaStreamWaitEvent(main, side.done[i], 0), "grouped gemm: join");
  }
  for (const Problem* q : later) gemm(device, q->g);
}

}  // namespace grin
