// Every core op that crosses the registry, with its attributes. Backends implement these names;
// autograd/rules.ts must give each one a rule (or mark it non-differentiable): the compiler
// checks that the rule table covers this list.
// Test: cd packages/tensor && npx vitest run src/core
import type { DType } from './dtype.js';

type None = Record<string, never>;
export interface AxisAttrs {
  axis: number;
}

export interface CoreOpAttrs {
  // creation (dispatched on an explicit device: they have no inputs)
  full: { shape: number[]; dtype: DType; value: number };
  arange: { start: number; step: number; n: number; dtype: DType };
  // layout
  contiguous: None;
  cast: { dtype: DType };
  concat: AxisAttrs;
  slice_scatter: { starts: number[]; steps: number[] };
  // views: metadata only, no kernel; listed so that autograd covers them
  reshape: { shape: number[] };
  permute: { dims: number[] };
  expand: { shape: number[] };
  slice: { starts: number[]; ends: number[]; steps: number[] };
  /** Views of consecutive pieces along an axis; one node, so the backward is one concat. */
  split: { axis: number; sizes: number[] };
  // elementwise
  neg: None;
  exp: None;
  log: None;
  sqrt: None;
  rsqrt: None;
  abs: None;
  silu: None;
  sigmoid: None;
  tanh: None;
  relu: None;
  pow: { exponent: number };
  add: None;
  sub: None;
  mul: None;
  div: None;
  maximum: None;
  minimum: None;
  eq: None;
  ne: None;
  lt: None;
  le: None;
  gt: None;
  ge: None;
  where: None;
  masked_fill: { value: number };
  // reductions
  sum: { axes: number[]; keepdim: boolean };
  max: { axis: number; keepdim: boolean };
  /** sum of x * x over every element, accumulated in f32 (f64 for f64) whatever x's dtype: a 0-d f32/f64. */
  sum_squares: None;
  /**
   * Over a list of tensors: each one's sum_squares, added in list order in f32 (what a loop of
   * sum_squares and add gives, bit for bit), in one call: gradient norms without a launch per tensor.
   */
  sum_squares_many: None;
  // linear algebra and neural-network ops
  matmul: None;
  /** y = x w^T (+ b) over x [..., in], w [out, in], b [out]: one fused GEMM where the backend has it. */
  linear: { hasBias: boolean };
  /** Inputs [g [..., out], x [..., in]] -> [dw = g^T x [out, in], db = sum of g's rows [out] if hasBias]. */
  linear_weight_grad: { hasBias: boolean };
  softmax: AxisAttrs;
  log_softmax: AxisAttrs;
  layer_norm: { eps: number; hasWeight: boolean; hasBias: boolean };
  layer_norm_backward: { eps: number; hasWeight: boolean };
  embedding: None;
  rope: { transpose: boolean };
  gather: AxisAttrs;
  scatter_add: AxisAttrs;
  index_select: AxisAttrs;
  index_add: AxisAttrs;
  topk: { k: number; axis: number };
  cross_entropy: { ignoreIndex: number; reduction: 'mean' | 'sum' | 'none' };
  cross_entropy_backward: { ignoreIndex: number; reduction: 'mean' | 'sum' | 'none' };
  /** softmax(scale * scores) over the last axis with a causal / sliding-window mask, fused. */
  attention_softmax: { scale: number; causal: boolean; window: number };
  attention_softmax_backward: { scale: number };
  /**
   * Fused attention softmax(scale * q k^T + mask) v over q [B,H,S,D], k [B,Hkv,Skv,D], v [B,Hkv,Skv,Dv]
   * (grouped heads, causal / sliding window as attention_softmax); outputs [out, lse [B,H,S]] where
   * lse is the row log-sum-exp of the scaled scores (f32; f64 for f64 inputs).
   */
  sdpa: { scale: number; window: number; causal: boolean };
  /** Inputs [q, k, v, out, lse, dOut] -> [dq, dk, dv], probabilities recomputed from lse. */
  sdpa_backward: { scale: number; window: number; causal: boolean };
  silu_backward: None;
  // random draws from a Philox reservation (random/generator.ts documents the stream)
  /** Draws `shape` values starting at block `counter` of stream `key`; a creation op (no inputs). */
  random: {
    shape: number[];
    dtype: DType;
    distribution: 'uniform' | 'normal' | 'exponential';
    /** uniform: low, high; normal: mean, std; exponential: rate, unused. */
    a: number;
    b: number;
    key: [number, number];
    counter: [number, number];
  };
  /**
   * x * U(low, high), the uniform drawn per element of x (row-major) as `random` draws it from
   * (key, counter), in x's float dtype (f32 draws rounded to bf16 for bf16). Its own gradient: the
   * backward runs the same op on g, regenerating the draws instead of keeping them.
   */
  random_scale: { low: number; high: number; key: [number, number]; counter: [number, number] };
  // dropless MoE (ops/moe.ts). N = T*K routed rows in expert order.
  /** experts_TK (i32) -> [counts_E, rowSlot_N (flat t*K+k of each row), position_TK (row of each pick)], all i32. */
  moe_permute: { numExperts: number };
  /** x [N, in] in groups of `counts` rows, weights parts*E x [out, in] -> [N, parts*out]. */
  grouped_linear: { counts: number[]; parts: number };
  /** [g [N, parts*out], ...weights] -> [dx [N, in]] (the parts summed). */
  grouped_linear_input_grad: { counts: number[]; parts: number };
  /** [g [N, parts*out], x [N, in]] -> parts*E weight gradients [out, in] (zero for empty groups). */
  grouped_linear_weight_grad: { counts: number[]; parts: number };
  /** [x_TD, position_TK] -> x_ND with row position[t, k] = x[t]: token rows copied into expert order. */
  moe_dispatch: None;
  /** [y_ND, weights_TK, position_TK] -> out_TD = sum_k weights_TK * y[position_TK]: a gather-sum. */
  moe_combine: None;
  /** [g_TD, y_ND, weights_TK, position_TK] -> [dy_ND, dweights_TK]. */
  moe_combine_backward: None;
  /** h [N, 2I] -> silu(h[:, :I]) * h[:, I:] (the GLU of w1 and w3 stacked). */
  silu_glu: None;
  /** [g [N, I], h [N, 2I]] -> dh [N, 2I]. */
  silu_glu_backward: None;
  // in place, outside autograd (optimizers, gradient accumulation)
  add_inplace: { alpha: number };
  copy_inplace: None;
  adamw_step: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; step: number };
  /**
   * AdamW on an f32 master copy of a bf16 parameter (inputs: param bf16, grad bf16|f32, master f32,
   * exp_avg and exp_avg_sq both f32 or both bf16): the master takes the adamw_step update, then the
   * parameter is re-rounded from it (round-to-nearest-even). bf16 moments are stored by stochastic
   * rounding with draws keyed by `salt` (a u32; optim/rounding.ts).
   */
  adamw_step_mixed: {
    lr: number;
    beta1: number;
    beta2: number;
    eps: number;
    weightDecay: number;
    step: number;
    salt?: number;
  };
}

/**
 * Every op the registry knows: the core ops above, plus ops another package declares by merging
 * into this interface (the router package's fused `moe_route`). Those run through runKernel inside
 * a custom autograd function of their own, so only the core ops need a rule in the gradient table.
 */
export interface OpAttrs extends CoreOpAttrs {}

export type OpName = keyof OpAttrs;
export type CoreOpName = keyof CoreOpAttrs;
