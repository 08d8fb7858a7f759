// The sparse MoE block of PhiMoE (transformers' PhimoeSparseMoeBlock), dropless: every token goes
// to its K experts, no capacity, nothing dropped, routing weights NOT renormalised. The router comes
// from the registry by name (default sparsemixer-v2). Shape legend: T tokens (B*S), D hidden size,
// E experts, K picks per token, I expert intermediate size, N = T*K routed rows.
// bf16 activations (cuda): the jitter is drawn in f32 and rounded to bf16, and the router runs on
// f32 logits (as transformers takes the routing softmax in float32); its weights come back as bf16.
// Two implementations of the same numerics: `loop` (the CPU reference: one host sort, then three
// linears per expert) and `grouped` (the default off the CPU: fused jitter, the fused router where
// the device has one, a device permute, w1|w3 and w2 as grouped linears, a fused SiLU-GLU and a
// gather-sum combine; one host read of the E counts per layer).
// Test: cd packages/model-grin && npx vitest run src/parity src/modules
import {
  type BalanceStats,
  balanceStats,
  getRouter,
  hasFusedRouting,
  routeFused,
} from '@grin-moe/router-sparsemixer';
import {
  backendOf,
  cast,
  concat,
  type Generator,
  groupedLinear,
  hasKernel,
  indexAdd,
  indexSelect,
  linear,
  mean,
  moeCombine,
  moeDispatch,
  moePermute,
  mul,
  rand,
  randomScale,
  silu,
  siluGlu,
  split,
  type Tensor,
  tensor,
  tidy,
  zeros,
} from '@grin-moe/tensor';
import type { GrinConfig } from '../config.js';
import { expertPrefix, type ParameterMap, param } from './names.js';
import { expertDropoutMask } from './regularizers.js';

export interface MoeOptions {
  training: boolean;
  generator?: Generator;
  /** Also return the router's picks (read-only; the numerics do not change). */
  trace?: boolean;
  /** 'auto' (default): `grouped` on a device backend with the MoE kernels (cuda), `loop` elsewhere. */
  moeImplementation?: MoeImplementation;
  /** Dropout probability on the experts' hidden activation, in training only (default 0). */
  expertDropout?: number;
}

export type MoeImplementation = 'auto' | 'loop' | 'grouped';

/** The router's picks of one layer: expert ids (i32) and their weights, per token. */
export interface RoutingTrace {
  experts_TK: Tensor;
  weights_TK: Tensor;
}

/**
 * Rows of the routed table grouped by expert. `token_N` lists, expert after expert, the token each
 * routed row reads; `slot_N` the flat index t*K + k of its routing weight; `counts_E` the group sizes.
 */
export interface ExpertGroups {
  token_N: Tensor;
  slot_N: Tensor;
  counts_E: number[];
}

/**
 * CPU path: one host read of the small [T,K] id table per layer, then a counting sort by expert.
 * A GPU grouped-GEMM path replaces this function (a device-side sort with no sync).
 */
export function groupByExpert(experts_TK: Tensor, numExperts: number): ExpertGroups {
  const ids = experts_TK.toArray() as Int32Array;
  const K = experts_TK.shape[1]!;
  const counts_E = new Array<number>(numExperts).fill(0);
  ids.forEach((e, flat) => {
    if (!(e >= 0 && e < numExperts))
      throw new RangeError(
        `MoE: the router picked expert ${e} for token ${Math.floor(flat / K)} (pick ${flat % K}); valid ids are 0..${numExperts - 1}`,
      );
    counts_E[e]!++;
  });
  const starts = new Array<number>(numExperts).fill(0);
  for (let e = 1; e < numExperts; e++) starts[e] = starts[e - 1]! + counts_E[e - 1]!;
  const token = new Int32Array(ids.length);
  const slot = new Int32Array(ids.length);
  ids.forEach((e, flat) => {
    const at = starts[e]!++;
    token[at] = Math.floor(flat / K);
    slot[at] = flat;
  });
  const device = experts_TK.device;
  return {
    token_N: tensor(token, { dtype: 'i32', device }),
    slot_N: tensor(slot, { dtype: 'i32', device }),
    counts_E,
  };
}

/** w2(silu(w1 x) * w3 x) for one expert's rows x_ND; `mask_NI` (expert dropout) scales the hidden. */
export function expertMlp(params: ParameterMap, prefix: string, x_ND: Tensor, mask_NI?: Tensor): Tensor {
  return tidy(() => {
    const gate_NI = silu(linear(x_ND, param(params, `${prefix}.w1.weight`)));
    const up_NI = linear(x_ND, param(params, `${prefix}.w3.weight`));
    const hidden_NI = mul(gate_NI, up_NI);
    return linear(mask_NI ? mul(hidden_NI, mask_NI) : hidden_NI, param(params, `${prefix}.w2.weight`));
  });
}

/** The expert-dropout mask over all N routed rows (expert order), or null when it is off. */
function dropoutMask(config: GrinConfig, rows: number, like: Tensor, options: MoeOptions): Tensor | null {
  const p = options.expertDropout ?? 0;
  if (!options.training || p === 0) return null;
  return expertDropoutMask(rows, config.intermediateSize, p, like, options.generator);
}

export function moe(
  config: GrinConfig,
  params: ParameterMap,
  layer: number,
  x_BSD: Tensor,
  options: MoeOptions,
): { out_BSD: Tensor; balance: BalanceStats; routing?: RoutingTrace } {
  const implementation = options.moeImplementation ?? 'auto';
  if (implementation !== 'auto' && implementation !== 'loop' && implementation !== 'grouped')
    throw new RangeError(`moe: implementation must be 'auto', 'loop' or 'grouped', got '${implementation}'`);
  const grouped =
    implementation === 'grouped' ||
    (implementation === 'auto' && hasGroupedKernels(backendOf(x_BSD.device).name));
  return grouped
    ? moeGrouped(config, params, layer, x_BSD, options)
    : moeLoop(config, params, layer, x_BSD, options);
}

const GROUPED_OPS = ['moe_permute', 'moe_dispatch', 'grouped_linear', 'silu_glu', 'moe_combine'] as const;

/** 'auto' picks the grouped path on a device backend that has its kernels (cuda), the loop elsewhere. */
function hasGroupedKernels(backend: string): boolean {
  return backend !== 'cpu' && GROUPED_OPS.every((op) => hasKernel(op, backend));
}

/** The dropless block as grouped ops: no per-token host work, one read of the E counts. */
function moeGrouped(
  config: GrinConfig,
  params: ParameterMap,
  layer: number,
  x_BSD: Tensor,
  options: MoeOptions,
): { out_BSD: Tensor; balance: BalanceStats; routing?: RoutingTrace } {
  const [B, S, D] = x_BSD.shape as [number, number, number];
  const T = B * S;
  const E = config.numLocalExperts;
  const K = config.numExpertsPerTok;
  return tidy(() => {
    let x_TD = x_BSD.reshape([T, D]);
    const eps = config.inputJitterNoise;
    if (options.training && eps > 0)
      x_TD = randomScale(x_TD, { low: 1 - eps, high: 1 + eps, generator: options.generator });
    const gateLogits_TE = linear(x_TD, param(params, `model.layers.${layer}.block_sparse_moe.gate.weight`));
    const logits_TE = gateLogits_TE.dtype === 'bf16' ? cast(gateLogits_TE, 'f32') : gateLogits_TE;
    const routeOptions = {
      training: options.training,
      jitterEps: config.routerJitterNoise,
      topK: K,
      generator: options.generator,
    };
    let experts_TK: Tensor;
    let weights_TK: Tensor;
    let balance: BalanceStats;
    if (hasFusedRouting(config.router, logits_TE.device)) {
      const fused = routeFused(config.router, logits_TE, routeOptions);
      ({ experts_TK, weights_TK } = fused);
      balance = { counts_E: fused.counts_E, meanProbs_E: mean(fused.probs_TE, 0), tokens: T, topK: K };
    } else {
      const routed = getRouter(config.router).route(logits_TE, routeOptions);
      ({ experts_TK, weights_TK } = routed);
      balance = balanceStats(experts_TK, routed.probs_TE);
    }
    const { counts_E, position_TK } = moePermute(experts_TK, E);
    const counts = Array.from(counts_E.toArray() as Int32Array); // the one host read of the layer
    const expert = (e: number, name: string) => param(params, `${expertPrefix(layer, e)}.${name}.weight`);
    const range = Array.from({ length: E }, (_, e) => e);
    const routed_ND = moeDispatch(x_TD, position_TK);
    const gateUp_N2I = groupedLinear(
      routed_ND,
      [...range.map((e) => expert(e, 'w1')), ...range.map((e) => expert(e, 'w3'))],
      counts,
      2,
    );
    const hidden_NI = siluGlu(gateUp_N2I);
    const mask_NI = dropoutMask(config, T * K, hidden_NI, options);
    const expert_ND = groupedLinear(
      mask_NI ? mul(hidden_NI, mask_NI) : hidden_NI,
      range.map((e) => expert(e, 'w2')),
      counts,
    );
    const weights = weights_TK.dtype === x_TD.dtype ? weights_TK : cast(weights_TK, x_TD.dtype);
    const out_BSD = moeCombine(expert_ND, weights, position_TK).reshape([B, S, D]);
    return options.trace
      ? { out_BSD, balance, routing: { experts_TK, weights_TK: weights_TK.detach() } }
      : { out_BSD, balance };
  });
}

/** The reference: a host counting sort, then each expert's three linears on its rows. */
function moeLoop(
  config: GrinConfig,
  params: ParameterMap,
  layer: number,
  x_BSD: Tensor,
  options: MoeOptions,
): { out_BSD: Tensor; balance: BalanceStats; routing?: RoutingTrace } {
  const [B, S, D] = x_BSD.shape as [number, number, number];
  const E = config.numLocalExperts;
  return tidy(() => {
    let x_TD = x_BSD.reshape([B * S, D]);
    const eps = config.inputJitterNoise;
    if (options.training && eps > 0) {
      // The same f32 (or f64) draws whatever the activation dtype, so a seed picks the same noise.
      const drawDType = x_TD.dtype === 'f64' ? 'f64' : 'f32';
      const noise_TD = rand([B * S, D], {
        low: 1 - eps,
        high: 1 + eps,
        dtype: drawDType,
        device: x_TD.device,
        generator: options.generator,
      });
      x_TD = mul(x_TD, noise_TD.dtype === x_TD.dtype ? noise_TD : cast(noise_TD, x_TD.dtype));
    }
    const gateLogits_TE = linear(x_TD, param(params, `model.layers.${layer}.block_sparse_moe.gate.weight`));
    const logits_TE = gateLogits_TE.dtype === 'bf16' ? cast(gateLogits_TE, 'f32') : gateLogits_TE;
    const { experts_TK, weights_TK, probs_TE } = getRouter(config.router).route(logits_TE, {
      training: options.training,
      jitterEps: config.routerJitterNoise,
      topK: config.numExpertsPerTok,
      generator: options.generator,
    });
    const balance = balanceStats(experts_TK, probs_TE);
    const { token_N, slot_N, counts_E } = groupByExpert(experts_TK, E);
    const routed_ND = indexSelect(x_TD, 0, token_N);
    // split: views whose gradients come back as one concat instead of E zero-padded copies
    const pieces = split(routed_ND, counts_E, 0);
    const mask_NI = dropoutMask(config, routed_ND.shape[0]!, x_TD, options);
    const masks = mask_NI ? split(mask_NI, counts_E, 0) : [];
    const outputs: Tensor[] = [];
    counts_E.forEach((count, e) => {
      if (count > 0) outputs.push(expertMlp(params, expertPrefix(layer, e), pieces[e]!, masks[e]));
    });
    const routedWeights_N1 = indexSelect(weights_TK.reshape([-1]), 0, slot_N).unsqueeze(1);
    const weights_N1 =
      routedWeights_N1.dtype === x_TD.dtype ? routedWeights_N1 : cast(routedWeights_N1, x_TD.dtype);
    const expert_ND = outputs.length === 1 ? outputs[0]! : concat(outputs, 0);
    const combined_TD = indexAdd(
      zeros([B * S, D], { dtype: x_TD.dtype, device: x_TD.device }),
      0,
      token_N,
      mul(expert_ND, weights_N1),
    );
    const out_BSD = combined_TD.reshape([B, S, D]);
    return options.trace
      ? { out_BSD, balance, routing: { experts_TK, weights_TK: weights_TK.detach() } }
      : { out_BSD, balance };
  });
}
