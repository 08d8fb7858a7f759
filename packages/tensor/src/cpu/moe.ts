// CPU reference kernels of the dropless MoE ops (ops/moe.ts): the permute (a counting sort of the
// picks by expert, stable in token order), the dispatch of rows into that order, the grouped linear and its two gradients, the
// gather-sum combine and its backward, and the fused SiLU-GLU. Plain loops with f64 sums: these
// are what the CUDA kernels are tested against. Test: cd packages/tensor && npx vitest run src/ops/moe
import { registerKernel } from '../core/registry.js';
import type { Tensor } from '../core/tensor.js';
import { allocate } from '../ops/dispatch.js';
import { dense, type FloatArray } from './backend.js';
import { requireFloat } from './nn.js';

registerKernel('moe_permute', 'cpu', ([experts], { numExperts }) => {
  const ids = experts as Tensor;
  // shapes, dtypes, counts: checked by the ops (ops/moe.ts); the kernels check id values.
  const [T, K] = ids.shape as [number, number];
  const picks = dense<Int32Array>(ids);
  const counts = allocate([numExperts], 'i32', ids.device);
  const rowSlot = allocate([T * K], 'i32', ids.device);
  const position = allocate([T, K], 'i32', ids.device);
  const counts_E = dense<Int32Array>(counts);
  counts_E.fill(0);
  picks.forEach((e, flat) => {
    if (!(e >= 0 && e < numExperts)) {
      throw new RangeError(
        `moe_permute: expert id ${e} of token ${Math.floor(flat / K)}, pick ${flat % K} is outside 0..${numExperts - 1}`,
      );
    }
    counts_E[e]!++;
  });
  const next = new Int32Array(numExperts);
  for (let e = 1; e < numExperts; e++) next[e] = next[e - 1]! + counts_E[e - 1]!;
  const slots = dense<Int32Array>(rowSlot);
  const rows = dense<Int32Array>(position);
  picks.forEach((e, flat) => {
    const row = next[e]!++;
    slots[row] = flat;
    rows[flat] = row;
  });
  return [counts, rowSlot, position];
});

function checkGroups(op: string, counts: number[], rows: number): void {
  const total = counts.reduce((a, c) => a + c, 0);
  if (total !== rows) throw new RangeError(`${op}: group counts sum to ${total}, but x has ${rows} rows`);
}

/** Calls visit(part, group, firstRow, rowCount) for every (part, group) with rows. */
function eachGroup(
  counts: number[],
  parts: number,
  visit: (p: number, e: number, r0: number, n: number) => void,
) {
  let r0 = 0;
  counts.forEach((n, e) => {
    for (let p = 0; p < parts; p++) if (n > 0) visit(p, e, r0, n);
    r0 += n;
  });
}

registerKernel('grouped_linear', 'cpu', ([x, ...weights], { counts, parts }) => {
  requireFloat('grouped_linear', x!, 'x');
  const [N, In] = x!.shape as [number, number]; // counts: checked by the op (ops/moe.ts groupedLinear)
  const E = counts.length;
  const Out = weights[0]!.shape[0]!;
  const out = allocate([N, parts * Out], x!.dtype, x!.device);
  const xs = dense<FloatArray>(x!);
  const ys = dense<FloatArray>(out);
  ys.fill(0);
  eachGroup(counts, parts, (p, e, r0, n) => {
    const w = dense<FloatArray>(weights[p * E + e]!);
    for (let r = r0; r < r0 + n; r++)
      for (let o = 0; o < Out; o++) {
        let acc = 0;
        for (let i = 0; i < In; i++) acc += xs[r * In + i]! * w[o * In + i]!;
        ys[r * parts * Out + p * Out + o] = acc;
      }
  });
  return [out];
});

registerKernel('grouped_linear_input_grad', 'cpu', ([g, ...weights], { counts, parts }) => {
  const E = counts.length;
  const [Out, In] = weights[0]!.shape as [number, number];
  const N = g!.shape[0]!;
  checkGroups('grouped_linear_input_grad', counts, N);
  const dx = allocate([N, In], g!.dtype, g!.device);
  const gs = dense<FloatArray>(g!);
  const dxs = dense<FloatArray>(dx);
  const acc = new Float64Array(N * In);
  eachGroup(counts, parts, (p, e, r0, n) => {
    const w = dense<FloatArray>(weights[p * E + e]!);
    for (let r = r0; r < r0 + n; r++)
      for (let o = 0; o < Out; o++) {
        const grad = gs[r * parts * Out + p * Out + o]!;
        for (let i = 0; i < In; i++) acc[r * In + i] += grad * w[o * In + i]!;
      }
  });
  dxs.set(acc);
  return [dx];
});

registerKernel('grouped_linear_weight_grad', 'cpu', ([g, x], { counts, parts }) => {
  const E = counts.length;
  const [N, In] = x!.shape as [number, number];
  checkGroups('grouped_linear_weight_grad', counts, N);
  const Out = g!.shape[1]! / parts;
  const gs = dense<FloatArray>(g!);
  const xs = dense<FloatArray>(x!);
  const grads = Array.from({ length: parts * E }, () => {
    const dw = allocate([Out, In], x!.dtype, x!.device);
    dense<FloatArray>(dw).fill(0);
    return dw;
  });
  eachGroup(counts, parts, (p, e, r0, n) => {
    const dw = dense<FloatArray>(grads[p * E + e]!);
    for (let o = 0; o < Out; o++)
      for (let i = 0; i < In; i++) {
        let acc = 0;
        for (let r = r0; r < r0 + n; r++) acc += gs[r * parts * Out + p * Out + o]! * xs[r * In + i]!;
        dw[o * In + i] = acc;
      }
  });
  return grads;
});

registerKernel('moe_dispatch', 'cpu', ([x, position]) => {
  requireFloat('moe_dispatch', x!, 'x');
  const [T, D] = x!.shape as [number, number];
  const K = position!.shape[1]!;
  const out = allocate([T * K, D], x!.dtype, x!.device);
  const xs = dense<FloatArray>(x!);
  const rows = dense<Int32Array>(position!);
  const os = dense<FloatArray>(out);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < K; k++) os.set(xs.subarray(t * D, (t + 1) * D), rows[t * K + k]! * D);
  return [out];
});

registerKernel('moe_combine', 'cpu', ([y, weights, position]) => {
  requireFloat('moe_combine', y!, 'y');
  const [T, K] = weights!.shape as [number, number];
  const D = y!.shape[1]!;
  const out = allocate([T, D], y!.dtype, y!.device);
  const ys = dense<FloatArray>(y!);
  const ws = dense<FloatArray>(weights!);
  const rows = dense<Int32Array>(position!);
  const os = dense<FloatArray>(out);
  for (let t = 0; t < T; t++)
    for (let d = 0; d < D; d++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += ws[t * K + k]! * ys[rows[t * K + k]! * D + d]!;
      os[t * D + d] = acc;
    }
  return [out];
});

registerKernel('moe_combine_backward', 'cpu', ([g, y, weights, position]) => {
  const [T, K] = weights!.shape as [number, number];
  const [N, D] = y!.shape as [number, number];
  const dy = allocate([N, D], y!.dtype, y!.device);
  const dweights = allocate([T, K], weights!.dtype, weights!.device);
  const gs = dense<FloatArray>(g!);
  const ys = dense<FloatArray>(y!);
  const ws = dense<FloatArray>(weights!);
  const rows = dense<Int32Array>(position!);
  const dys = dense<FloatArray>(dy);
  const dws = dense<FloatArray>(dweights);
  dys.fill(0);
  for (let t = 0; t < T; t++)
    for (let k = 0; k < K; k++) {
      const row = rows[t * K + k]!;
      let dot = 0;
      for (let d = 0; d < D; d++) {
        dys[row * D + d] = ws[t * K + k]! * gs[t * D + d]!;
        dot += gs[t * D + d]! * ys[row * D + d]!;
      }
      dws[t * K + k] = dot;
    }
  return [dy, dweights];
});

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

registerKernel('silu_glu', 'cpu', ([h]) => {
  requireFloat('silu_glu', h!, 'h');
  const [N, twoI] = h!.shape as [number, number];
  const I = twoI / 2;
  const out = allocate([N, I], h!.dtype, h!.device);
  const hs = dense<FloatArray>(h!);
  const os = dense<FloatArray>(out);
  for (let r = 0; r < N; r++)
    for (let i = 0; i < I; i++) {
      const gate = hs[r * twoI + i]!;
      os[r * I + i] = gate * sigmoid(gate) * hs[r * twoI + I + i]!;
    }
  return [out];
});

registerKernel('silu_glu_backward', 'cpu', ([g, h]) => {
  const [N, twoI] = h!.shape as [number, number];
  const I = twoI / 2;
  const dh = allocate([N, twoI], h!.dtype, h!.device);
  const gs = dense<FloatArray>(g!);
  const hs = dense<FloatArray>(h!);
  const dhs = dense<FloatArray>(dh);
  for (let r = 0; r < N; r++)
    for (let i = 0; i < I; i++) {
      const gate = hs[r * twoI + i]!;
      const up = hs[r * twoI + I + i]!;
      const s = sigmoid(gate);
      const grad = gs[r * I + i]!;
      dhs[r * twoI + i] = grad * up * s * (1 + gate * (1 - s));
      dhs[r * twoI + I + i] = grad * gate * s;
    }
  return [dh];
});
