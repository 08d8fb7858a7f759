// GrinModel: PhimoeForCausalLM in TypeScript. embed -> decoder layers -> final LayerNorm -> lm_head
// (with bias). Parameters are plain Tensors keyed by their ORIGINAL checkpoint names, so saving and
// loading need no renaming. Single-device; parallelism wraps it from outside.
// Shape legend: B batch, S positions, D hidden size, V vocab, Dh head dim.
// Test: cd packages/model-grin && npx vitest run src/parity src/model
import type { BalanceStats } from '@grin-moe/router-sparsemixer';
import {
  cast,
  concat,
  crossEntropy,
  embedding,
  full,
  type Generator,
  layerNorm,
  linear,
  ne,
  persist,
  ropeTables,
  type Tensor,
  tensor,
  tidy,
} from '@grin-moe/tensor';
import type { GrinConfig } from './config.js';
import type { AttentionImplementation, LayerKvCache } from './modules/attention.js';
import { decoderLayer } from './modules/decoder.js';
import type { MoeImplementation, RoutingTrace } from './modules/moe.js';
import { optionalParam, type ParameterMap, param, parameterShapes } from './modules/names.js';
import { neftuneNoise } from './modules/regularizers.js';

/** Dtypes a model is built or loaded in (its parameters on the host). */
export type ModelDType = 'f32' | 'f64';
/**
 * Dtypes a model computes in: bf16 (parameters and activations in bf16, f32 statistics inside the
 * kernels) needs a backend with bf16 arithmetic (cuda); the CPU backend only stores bf16.
 */
export type ComputeDType = ModelDType | 'bf16';

/** Per-layer keys/values of the positions seen so far (trimmed to the sliding window). */
export interface KvCache {
  layers: LayerKvCache[];
  /** Positions processed so far: the next call's positionOffset. */
  length: number;
}

export function createKvCache(config: GrinConfig): KvCache {
  return {
    layers: Array.from({ length: config.numHiddenLayers }, () => ({ key_BHkvSD: null, value_BHkvSD: null })),
    length: 0,
  };
}

export function disposeKvCache(cache: KvCache): void {
  for (const layer of cache.layers) {
    layer.key_BHkvSD?.dispose();
    layer.value_BHkvSD?.dispose();
    layer.key_BHkvSD = layer.value_BHkvSD = null;
  }
}

export interface ForwardOptions {
  /** Default: the model's train()/eval() mode. */
  training?: boolean;
  /** Given: new keys/values are appended and the positions continue from cache.length. */
  cache?: KvCache;
  /** Absolute position of ids[:, 0] (default: cache.length, else 0). */
  positionOffset?: number;
  /** Random stream for input jitter and router sampling in training. */
  generator?: Generator;
  /**
   * Precomputed cos/sin [S, Dh] for these positions instead of rotaryTables (parity tests inject
   * transformers' own, whose float32 cos differs from ours by an ulp here and there).
   */
  rotary?: { cos: Tensor; sin: Tensor };
  /** Also return every layer's router picks in `routing` (for routing analysis; same numerics). */
  trace?: boolean;
  /** The MoE block's implementation: 'auto' (default: grouped off the CPU), 'loop' or 'grouped'. */
  moeImplementation?: MoeImplementation;
  /**
   * Attention's implementation: 'auto' (default: the fused sdpa op off the CPU, unless documents_BS
   * needs its mask), 'eager' (transformers' eager path, the CPU reference) or 'fused'.
   */
  attentionImplementation?: AttentionImplementation;
  /** NEFTune: U(-1, 1) * alpha / sqrt(S * D) added to the input embeddings, in training only. */
  neftuneAlpha?: number;
  /** Dropout probability on every expert's hidden activation, in training only. */
  expertDropout?: number;
  /**
   * Packed sequences: the document of each token, i32 [B, S]; a token attends only to earlier
   * tokens of its own document. RoPE is relative, so a document's logits do not depend on where in
   * the row it sits (up to rounding; longrope's length-dependent factors aside). Not with a cache.
   */
  documents_BS?: Tensor;
}

export interface ForwardOutput {
  logits_BSV: Tensor;
  /** One per layer, for the load-balancing loss (the trainer sums it). */
  balance: BalanceStats[];
  /** With `trace: true`: per layer, the experts [T,K] (i32) and weights [T,K] of each token (T = B*S). */
  routing?: RoutingTrace[];
}

/**
 * cos/sin [S, Dh] for positions offset..offset+S-1, longrope factors and mscale by sequence length.
 * Computed in float32 and then cast, as transformers does for every model dtype (f64 included).
 */
export function rotaryTables(
  config: GrinConfig,
  offset: number,
  length: number,
  dtype: ComputeDType,
  device = 'cpu',
): { cos: Tensor; sin: Tensor } {
  const positions = Array.from({ length }, (_, i) => offset + i);
  const scaling = config.ropeScaling;
  // transformers picks the long factors once the longest position + 1 exceeds the original context.
  const long = scaling !== null && offset + length > scaling.originalMaxPositions;
  const tables = ropeTables(positions, config.headDim, config.ropeTheta, {
    dtype: 'f32',
    device,
    scaling: scaling
      ? {
          shortFactor: scaling.shortFactor,
          longFactor: scaling.longFactor,
          originalMaxPositions: scaling.originalMaxPositions,
          factor: long ? scaling.longMscale : scaling.shortMscale,
        }
      : undefined,
  });
  if (dtype === 'f32') return tables;
  const out = { cos: cast(tables.cos, dtype), sin: cast(tables.sin, dtype) };
  tables.cos.dispose();
  tables.sin.dispose();
  return out;
}

/**
 * rotaryTables' rows from tables kept per factor set (short / long) and grown on demand, as views:
 * a 4096-position table costs tens of milliseconds of host time (a Math.cos per entry), which a
 * training step would pay on every forward while the GPU waits. Rows equal rotaryTables' for the
 * same positions: a row depends only on its position and the factor set, and the short table never
 * reaches past the original context (its factors would switch).
 */
export class RotaryCache {
  private readonly tables = new Map<'short' | 'long', { cos: Tensor; sin: Tensor; length: number }>();

  constructor(
    readonly config: GrinConfig,
    readonly dtype: ComputeDType,
    readonly device = 'cpu',
  ) {}

  /** cos/sin [length, Dh] for positions offset..offset+length-1 (views: dispose them, not the cache). */
  rows(offset: number, length: number): { cos: Tensor; sin: Tensor } {
    const scaling = this.config.ropeScaling;
    const end = offset + length;
    const long = scaling !== null && end > scaling.originalMaxPositions;
    const key = long ? 'long' : 'short';
    let table = this.tables.get(key);
    if (!table || table.length < end) {
      const cap = scaling !== null && !long ? scaling.originalMaxPositions : Number.POSITIVE_INFINITY;
      const size = Math.min(cap, Math.max(end, 2 * (table?.length ?? 0)));
      if (table) [table.cos, table.sin].forEach((t) => t.dispose());
      table = { ...persist(rotaryTables(this.config, 0, size, this.dtype, this.device)), length: size };
      this.tables.set(key, table);
    }
    return { cos: table.cos.slice([offset, end]), sin: table.sin.slice([offset, end]) };
  }

  dispose(): void {
    for (const t of this.tables.values()) [t.cos, t.sin].forEach((x) => x.dispose());
    this.tables.clear();
  }
}

export class GrinModel {
  training = false;
  private readonly rotary: RotaryCache;

  constructor(
    readonly config: GrinConfig,
    /** Parameters by checkpoint name, in checkpoint order. */
    readonly params: ParameterMap,
    readonly dtype: ComputeDType,
    readonly device = 'cpu',
  ) {
    if (dtype === 'bf16' && device === 'cpu')
      throw new Error(
        "GrinModel: bf16 needs device 'cuda' (the CPU backend stores bf16 but has no bf16 arithmetic); use f32 or f64 on the CPU",
      );
    for (const [name, shape] of parameterShapes(config)) {
      const t = params.get(name);
      if (!t) throw new Error(`GrinModel: parameter '${name}' [${shape}] is missing`);
      if (t.shape.join() !== shape.join())
        throw new Error(`GrinModel: parameter '${name}' is [${t.shape}], expected [${shape}]`);
      if (t.dtype !== dtype)
        throw new Error(`GrinModel: parameter '${name}' is ${t.dtype}, expected ${dtype}`);
      t.name ??= name;
      if (!t.gradNode) t.setRequiresGrad(true);
    }
    this.rotary = new RotaryCache(config, dtype, device);
  }

  train(flag = true): this {
    this.training = flag;
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  namedParameters(): Array<[string, Tensor]> {
    return [...this.params];
  }
  parameters(): Tensor[] {
    return [...this.params.values()];
  }

  forward(ids_BS: Tensor, options: ForwardOptions = {}): ForwardOutput {
    if (ids_BS.rank !== 2 || ids_BS.dtype !== 'i32')
      throw new TypeError(`GrinModel.forward: ids must be i32 [B,S], got ${ids_BS.describe()}`);
    const training = options.training ?? this.training;
    const cache = options.cache;
    const offset = options.positionOffset ?? cache?.length ?? 0;
    const S = ids_BS.shape[1]!;
    const config = this.config;
    const p = this.params;
    if (options.documents_BS && cache)
      throw new RangeError(
        'GrinModel.forward: documents_BS (packed sequences) cannot be used with a KV cache',
      );
    const out = tidy(() => {
      const documents = options.documents_BS;
      const blocked_BSS = documents ? ne(documents.unsqueeze(2), documents.unsqueeze(1)) : undefined;
      const { cos, sin } = options.rotary ?? this.rotary.rows(offset, S);
      let x_BSD = embedding(param(p, 'model.embed_tokens.weight'), ids_BS);
      if (training && options.neftuneAlpha)
        x_BSD = neftuneNoise(x_BSD, options.neftuneAlpha, options.generator);
      const balance: BalanceStats[] = [];
      const routing: RoutingTrace[] = [];
      for (let layer = 0; layer < config.numHiddenLayers; layer++) {
        const result = decoderLayer(config, p, layer, x_BSD, {
          cos_SD: cos,
          sin_SD: sin,
          training,
          cache: cache?.layers[layer],
          generator: options.generator,
          trace: options.trace,
          moeImplementation: options.moeImplementation,
          attentionImplementation: options.attentionImplementation,
          expertDropout: options.expertDropout,
          blocked_BSS,
        });
        x_BSD.dispose();
        x_BSD = result.out_BSD;
        balance.push(result.balance);
        if (result.routing) routing.push(result.routing);
      }
      const normed_BSD = layerNorm(
        x_BSD,
        param(p, 'model.norm.weight'),
        param(p, 'model.norm.bias'),
        config.rmsNormEps,
      );
      const head = config.tieWordEmbeddings
        ? param(p, 'model.embed_tokens.weight')
        : param(p, 'lm_head.weight');
      const logits_BSV = linear(normed_BSD, head, optionalParam(p, 'lm_head.bias'));
      return options.trace ? { logits_BSV, balance, routing } : { logits_BSV, balance };
    });
    if (cache) cache.length = offset + S;
    return out;
  }

  /** Frees every parameter (and its gradient) and the rotary tables. */
  dispose(): void {
    for (const t of this.params.values()) t.dispose();
    this.rotary.dispose();
  }
}

/**
 * Mean next-token cross-entropy: logits[:, :-1] against ids[:, 1:] (the reference `loss`). bf16
 * logits are taken in f32, as transformers' loss upcasts them, so the loss is an f32 0-d tensor.
 */
export function nextTokenLoss(logits_BSV: Tensor, ids_BS: Tensor): Tensor {
  return tidy(() => {
    const logits = logits_BSV.dtype === 'bf16' ? cast(logits_BSV, 'f32') : logits_BSV;
    const [B, S] = ids_BS.shape as [number, number];
    if (S < 2) throw new RangeError(`nextTokenLoss: need at least 2 positions, got ids ${ids_BS.describe()}`);
    // Targets shifted left, the last position ignored: the same mean as slicing logits[:, :-1],
    // without copying the logits (or their gradient) through a slice.
    const last_B1 = full([B, 1], IGNORE, { dtype: 'i32', device: ids_BS.device });
    const targets_BS = concat([ids_BS.slice(null, [1, S]), last_B1], 1);
    return crossEntropy(logits, targets_BS, { ignoreIndex: IGNORE });
  });
}

const IGNORE = -100;

/** An i32 [B,S] tensor from rows of token ids. */
export function idsTensor(rows: number[][], device = 'cpu'): Tensor {
  const S = rows[0]?.length ?? 0;
  return tensor(Int32Array.from(rows.flat()), { shape: [rows.length, S], dtype: 'i32', device });
}
