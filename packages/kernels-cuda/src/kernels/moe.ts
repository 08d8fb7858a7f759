// cuda kernels of the dropless MoE ops (csrc/moe.cu, csrc/grouped.cpp): the permute, dispatch,
// grouped linear (one GEMM per expert and part, bucketed Lt plans), the gather-sum combine and
// the fused SiLU-GLU, each with its backward. Group counts arrive as attributes (host numbers):
// the MoE block reads its E counts once per layer. Mirrors packages/tensor/src/cpu/moe.ts.
// Test: tests/moe.test.ts (GPU).
import { allocate, registerKernel, type Tensor } from '@grin-moe/tensor';
import { addr, dev, dtypeCode, native } from '../backend.js';

function requireFloat(op: string, t: Tensor): void {
  if (t.dtype !== 'f32' && t.dtype !== 'bf16')
    throw new TypeError(`${op} (cuda): needs f32 or bf16, got ${t.describe()}`);
}

registerKernel('moe_permute', 'cuda', ([experts], { numExperts }) => {
  const [T, K] = experts!.shape as [number, number];
  const counts = allocate([numExperts], 'i32', experts!.device);
  const rowSlot = allocate([T * K], 'i32', experts!.device);
  const position = allocate([T, K], 'i32', experts!.device);
  native().moePermute(
    dev(experts!),
    addr(counts),
    addr(rowSlot),
    addr(position),
    addr(experts!),
    T * K,
    numExperts,
  );
  return [counts, rowSlot, position];
});

registerKernel('moe_dispatch', 'cuda', ([x, position]) => {
  requireFloat('moe_dispatch', x!);
  const [T, D] = x!.shape as [number, number];
  const K = position!.shape[1]!;
  const out = allocate([T * K, D], x!.dtype, x!.device);
  native().moeDispatch(dev(x!), dtypeCode(x!.dtype), addr(out), addr(x!), addr(position!), T, K, D);
  return [out];
});

registerKernel('moe_combine', 'cuda', ([y, weights, position]) => {
  requireFloat('moe_combine', y!);
  const [T, K] = weights!.shape as [number, number];
  const D = y!.shape[1]!;
  const out = allocate([T, D], y!.dtype, y!.device);
  native().moeCombine(
    dev(y!),
    dtypeCode(y!.dtype),
    addr(out),
    addr(y!),
    addr(weights!),
    addr(position!),
    T,
    K,
    D,
  );
  return [out];
});

registerKernel('moe_combine_backward', 'cuda', ([g, y, weights, position]) => {
  const [T, K] = weights!.shape as [number, number];
  const D = y!.shape[1]!;
  const dy = allocate(y!.shape, y!.dtype, y!.device);
  const dweights = allocate([T, K], weights!.dtype, weights!.device);
  native().moeCombineBackward(
    dev(y!),
    dtypeCode(y!.dtype),
    addr(dy),
    addr(dweights),
    addr(g!),
    addr(y!),
    addr(weights!),
    addr(position!),
    T,
    K,
    D,
  );
  return [dy, dweights];
});

registerKernel('silu_glu', 'cuda', ([h]) => {
  requireFloat('silu_glu', h!);
  const [N, twoI] = h!.shape as [number, number];
  const out = allocate([N, twoI / 2], h!.dtype, h!.device);
  native().siluGlu(dev(h!), dtypeCode(h!.dtype), addr(out), addr(h!), N, twoI / 2);
  return [out];
});

registerKernel('silu_glu_backward', 'cuda', ([g, h]) => {
  const [N, twoI] = h!.shape as [number, number];
  const dh = allocate(h!.shape, h!.dtype, h!.device);
  native().siluGluBackward(dev(h!), dtypeCode(h!.dtype), addr(dh), addr(g!), addr(h!), N, twoI / 2);
  return [dh];
});

const pointers = (ts: Tensor[]) => Float64Array.from(ts, addr);

registerKernel('grouped_linear', 'cuda', ([x, ...weights], { counts, parts }) => {
  requireFloat('grouped_linear', x!);
  const [N, In] = x!.shape as [number, number];
  const Out = weights[0]!.shape[0]!;
  const y = allocate([N, parts * Out], x!.dtype, x!.device);
  native().groupedLinear(
    dev(x!),
    dtypeCode(x!.dtype),
    0,
    Float64Array.from(counts),
    parts,
    In,
    Out,
    addr(x!),
    0,
    addr(y),
    pointers(weights),
  );
  return [y];
});

registerKernel('grouped_linear_input_grad', 'cuda', ([g, ...weights], { counts, parts }) => {
  const [Out, In] = weights[0]!.shape as [number, number];
  const N = g!.shape[0]!;
  const dx = allocate([N, In], g!.dtype, g!.device);
  if (counts.every((c) => c === 0)) return [dx];
  native().groupedLinear(
    dev(g!),
    dtypeCode(g!.dtype),
    1,
    Float64Array.from(counts),
    parts,
    In,
    Out,
    addr(g!),
    0,
    addr(dx),
    pointers(weights),
  );
  return [dx];
});

registerKernel('grouped_linear_weight_grad', 'cuda', ([g, x], { counts, parts }) => {
  const In = x!.shape[1]!;
  const Out = g!.shape[1]! / parts;
  const grads = Array.from({ length: parts * counts.length }, () => allocate([Out, In], x!.dtype, x!.device));
  native().groupedLinear(
    dev(x!),
    dtypeCode(x!.dtype),
    2,
    Float64Array.from(counts),
    parts,
    In,
    Out,
    addr(g!),
    addr(x!),
    0,
    pointers(grads),
  );
  return grads;
});
