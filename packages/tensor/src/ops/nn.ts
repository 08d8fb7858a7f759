// Neural-network ops: softmax, log-softmax, layer norm, rotate-half RoPE (+ its cos/sin tables,
// longrope scaling as transformers' Phi-3 rotary embedding), fused cross-entropy and dropout.
// Shapes are checked here, values (targets, ids) by the kernels. Mirrors torch.nn.functional.
// Test: cd packages/tensor && npx vitest run src/ops/nn
import { broadcastShapes, formatShape, normalizeAxis, shapesEqual } from '../core/shape.js';
import type { Tensor } from '../core/tensor.js';
import type { Generator } from '../random/generator.js';
import { defaultGenerator } from '../random/global.js';
import { tensor } from './creation.js';
import { runOp } from './dispatch.js';
import { mul } from './elementwise.js';

export function softmax(x: Tensor, axis = -1): Tensor {
  return runOp('softmax', [x], { axis: normalizeAxis('softmax', axis, x.rank) })[0]!;
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return runOp('log_softmax', [x], { axis: normalizeAxis('logSoftmax', axis, x.rank) })[0]!;
}

/** LayerNorm over the last axis with PyTorch's biased variance: (x - mean) / sqrt(var + eps) * weight + bias. */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  if (x.rank === 0) throw new RangeError(`layerNorm: x ${x.describe()} needs at least one axis`);
  const d = x.shape[x.rank - 1]!;
  for (const [name, t] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (t && (t.rank !== 1 || t.shape[0] !== d)) {
      throw new RangeError(
        `layerNorm: ${name} ${t.describe()} must be [${d}], the last axis of x ${x.describe()}`,
      );
    }
    if (t && t.dtype !== x.dtype) {
      throw new TypeError(`layerNorm: ${name} ${t.describe()} must have the dtype of x ${x.describe()}`);
    }
  }
  const inputs = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  const [y, mean, rstd] = runOp('layer_norm', inputs, { eps, hasWeight: !!weight, hasBias: !!bias });
  // The autograd node keeps its own handles to the statistics.
  mean!.dispose();
  rstd!.dispose();
  return y!;
}

/**
 * Rotate-half RoPE as transformers' apply_rotary_pos_emb: x * cos + rotate_half(x) * sin, with
 * rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]). cos and sin ([S,D], [B,1,S,D], ...) broadcast
 * to x ([B,H,S,D]). cos and sin are treated as constants (they receive no gradient).
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  // Shapes are checked here, once for every backend; kernels trust them.
  const d = x.shape[x.rank - 1]!;
  for (const [name, t] of [
    ['cos', cos],
    ['sin', sin],
  ] as const) {
    if (t.dtype !== x.dtype)
      throw new TypeError(`rope: ${name} ${t.describe()} must have the dtype of x ${x.describe()}`);
    const shape = broadcastShapes(`rope (${name} against x)`, x.shape, t.shape);
    if (!shapesEqual(shape, x.shape) || t.shape[t.rank - 1] !== d) {
      throw new RangeError(
        `rope: ${name} ${t.describe()} must broadcast to x ${x.describe()} with last axis ${d}`,
      );
    }
  }
  if (d % 2 !== 0) {
    throw new RangeError(
      `rope: the last axis of x ${x.describe()} must be even (rotate-half pairs j with j + D/2)`,
    );
  }
  return runOp('rope', [x, cos, sin], { transpose: false })[0]!;
}

/**
 * Longrope scaling (transformers' Phi3/PhiMoE rotary embedding, rope_scaling.type 'longrope').
 * inv_freq is divided elementwise by the extension factors (D/2 of them) and cos/sin are
 * multiplied by `factor` (the attention factor, config short_mscale / long_mscale). longFactor is
 * used when the largest position + 1 exceeds originalMaxPositions, shortFactor otherwise; with
 * only one list given, that one is used.
 */
export interface RopeScaling {
  shortFactor?: number[];
  longFactor?: number[];
  factor?: number;
  originalMaxPositions?: number;
}

export interface RopeTableOptions {
  scaling?: RopeScaling;
  dtype?: 'f32' | 'f64';
  device?: string;
}

/**
 * cos and sin tables [S, D] for the given positions: inv_freq_i = 1 / theta^(2i/D), freqs =
 * position * inv_freq duplicated as cat(freqs, freqs). In f32 every step is rounded to f32 as
 * transformers computes it in float32. A positions tensor is read back to the host (a sync).
 */
export function ropeTables(
  positions: number[] | Tensor,
  headDim: number,
  theta = 10000,
  options: RopeTableOptions = {},
): { cos: Tensor; sin: Tensor } {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new RangeError(`ropeTables: headDim must be a positive even integer, got ${headDim}`);
  }
  const dtype = options.dtype ?? 'f32';
  const round = dtype === 'f32' ? Math.fround : (v: number) => v;
  const pos = Array.isArray(positions) ? positions : Array.from(positions.toArray() as ArrayLike<number>);
  const half = headDim / 2;
  const ext = extensionFactors(options.scaling, pos, half);
  const mscale = options.scaling?.factor ?? 1;
  const invFreq = Array.from({ length: half }, (_, i) => {
    const power = round(theta ** round((2 * i) / headDim));
    return round(1 / round(round(ext[i]!) * power));
  });
  const cos =
    dtype === 'f32' ? new Float32Array(pos.length * headDim) : new Float64Array(pos.length * headDim);
  const sin =
    dtype === 'f32' ? new Float32Array(pos.length * headDim) : new Float64Array(pos.length * headDim);
  pos.forEach((p, s) => {
    for (let i = 0; i < half; i++) {
      const angle = round(p * invFreq[i]!);
      const [c, n] = [round(Math.cos(angle)) * mscale, round(Math.sin(angle)) * mscale];
      cos[s * headDim + i] = cos[s * headDim + half + i] = c;
      sin[s * headDim + i] = sin[s * headDim + half + i] = n;
    }
  });
  const shape = [pos.length, headDim];
  return {
    cos: tensor(cos, { shape, dtype, device: options.device }),
    sin: tensor(sin, { shape, dtype, device: options.device }),
  };
}

function extensionFactors(scaling: RopeScaling | undefined, positions: number[], half: number): number[] {
  const { shortFactor, longFactor, originalMaxPositions } = scaling ?? {};
  const longest = positions.reduce((m, p) => Math.max(m, p + 1), 0);
  const useLong =
    longFactor && (!shortFactor || (originalMaxPositions !== undefined && longest > originalMaxPositions));
  const factors = useLong ? longFactor : shortFactor;
  if (!factors) return new Array<number>(half).fill(1);
  if (factors.length !== half) {
    throw new RangeError(
      `ropeTables: rope scaling ${useLong ? 'longFactor' : 'shortFactor'} has ${factors.length} entries, expected headDim/2 = ${half}`,
    );
  }
  return factors;
}

export interface CrossEntropyOptions {
  ignoreIndex?: number;
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * Fused log-softmax + NLL over logits [..., V] and i32 targets [...]. Rows whose target is
 * ignoreIndex (default -100) count for nothing; 'mean' divides by the number of other rows, so a
 * batch with every target ignored gives NaN (0/0), as PyTorch does. 'none' returns targets' shape.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const { ignoreIndex = -100, reduction = 'mean' } = options;
  if (!['mean', 'sum', 'none'].includes(reduction)) {
    throw new RangeError(`crossEntropy: reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  }
  if (targets.dtype !== 'i32') {
    throw new TypeError(`crossEntropy: targets must be i32, got ${targets.describe()}`);
  }
  const lead = logits.shape.slice(0, -1);
  if (logits.rank < 2 || formatShape(lead) !== formatShape(targets.shape)) {
    throw new RangeError(
      `crossEntropy: logits ${logits.describe()} must be [...,V] over targets ${targets.describe()} [...]`,
    );
  }
  const v = logits.shape[logits.rank - 1]!;
  const flat = logits.rank === 2 ? logits : logits.reshape([-1, v]);
  const flatTargets = targets.rank === 1 ? targets : targets.reshape([-1]);
  try {
    const out = runOp('cross_entropy', [flat, flatTargets], { ignoreIndex, reduction })[0]!;
    if (reduction !== 'none' || targets.rank === 1) return out;
    const shaped = out.reshape([...targets.shape]);
    out.dispose();
    return shaped;
  } finally {
    if (flat !== logits) flat.dispose();
    if (flatTargets !== targets) flatTargets.dispose();
  }
}

export interface DropoutOptions {
  training?: boolean;
  generator?: Generator;
}

/**
 * Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
 * p = 0 or training: false returns an alias of x. The mask is drawn on the host from the seeded
 * generator (default: defaultGenerator()) and uploaded; its gradient flows through mul.
 */
export function dropout(x: Tensor, p: number, options: DropoutOptions = {}): Tensor {
  const { training = true, generator = defaultGenerator() } = options;
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (x.dtype !== 'f32' && x.dtype !== 'f64')
    throw new TypeError(`dropout: x must be f32 or f64, got ${x.describe()}`);
  if (p === 0 || !training) return x.identity();
  const keep = p === 1 ? new Uint8Array(x.size) : generator.bernoulli(x.size, 1 - p);
  const scale = p === 1 ? 0 : 1 / (1 - p);
  const values = x.dtype === 'f64' ? new Float64Array(x.size) : new Float32Array(x.size);
  for (let i = 0; i < keep.length; i++) values[i] = keep[i] ? scale : 0;
  const mask = tensor(values, { shape: [...x.shape], dtype: x.dtype, device: x.device });
  try {
    return mul(x, mask);
  } finally {
    mask.dispose();
  }
}
