// GrinConfig: the GRIN-MoE / Phi-3.5-MoE config.json (transformers' PhimoeConfig), parsed and
// validated with errors that name the file, the field and what is allowed. Reads both the v4 form
// (rope_theta + rope_scaling at top level, as GRIN / Phi-3.5-MoE ship) and transformers v5's
// rope_parameters. Defaults for absent optional fields follow PhimoeConfig.
// Test: cd packages/model-grin && npx vitest run src/config (memory.ts holds the size estimate)

/** Longrope (Phi-3 "su" scaling): per-frequency extension factors and the cos/sin scale (mscale). */
export interface LongRopeScaling {
  type: 'longrope';
  shortFactor: number[];
  longFactor: number[];
  shortMscale: number;
  longMscale: number;
  originalMaxPositions: number;
}

export interface GrinConfig {
  vocabSize: number;
  hiddenSize: number;
  /** Per expert. */
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  hiddenAct: 'silu';
  maxPositionEmbeddings: number;
  initializerRange: number;
  /** Used as the LayerNorm eps (PhiMoE uses LayerNorm despite the name). */
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: LongRopeScaling | null;
  /** Query q sees key k iff 0 <= q - k < slidingWindow; null: no window. */
  slidingWindow: number | null;
  attentionBias: boolean;
  lmHeadBias: boolean;
  tieWordEmbeddings: boolean;
  numLocalExperts: number;
  numExpertsPerTok: number;
  routerJitterNoise: number;
  inputJitterNoise: number;
  routerAuxLossCoef: number;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The router registry name (not a PhimoeConfig field; config.json key "router", default sparsemixer-v2). */
  router: string;
}

/** GRIN-MoE sizes (DESIGN.md): 16 experts x 6400, 32 layers, about 42B parameters. */
export const defaultGrinConfig: GrinConfig = Object.freeze({
  vocabSize: 32064,
  hiddenSize: 4096,
  intermediateSize: 6400,
  numHiddenLayers: 32,
  numAttentionHeads: 32,
  numKeyValueHeads: 8,
  headDim: 128,
  hiddenAct: 'silu',
  maxPositionEmbeddings: 4096,
  initializerRange: 0.02,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  slidingWindow: 2047,
  attentionBias: true,
  lmHeadBias: true,
  tieWordEmbeddings: false,
  numLocalExperts: 16,
  numExpertsPerTok: 2,
  routerJitterNoise: 0.01,
  inputJitterNoise: 0.01,
  routerAuxLossCoef: 0.001,
  bosTokenId: 1,
  eosTokenIds: [32000],
  padTokenId: null,
  router: 'sparsemixer-v2',
}) as GrinConfig;

export class ConfigError extends Error {}

type Json = Record<string, unknown>;

/** Parses and validates a config.json object; `source` names the file in errors. */
export function parseConfig(json: unknown, source = 'config.json'): GrinConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ConfigError(`${source}: expected a JSON object, got ${describe(json)}`);
  }
  const raw = json as Json;
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(`${source}: ${field} ${problem}`);
  };
  const has = (field: string) => raw[field] !== undefined && raw[field] !== null;
  const int = (field: string, fallback?: number, min = 1): number => {
    if (!has(field)) {
      if (fallback === undefined) return fail(field, `is missing; expected an integer >= ${min}`);
      return fallback;
    }
    const v = raw[field];
    if (typeof v !== 'number' || !Number.isInteger(v))
      return fail(field, `is ${describe(v)}; expected an integer >= ${min}`);
    if (v < min) return fail(field, `(${v}) must be >= ${min}`);
    return v;
  };
  const num = (field: string, fallback: number, min = 0): number => {
    if (!has(field)) return fallback;
    const v = raw[field];
    if (typeof v !== 'number' || !Number.isFinite(v))
      return fail(field, `is ${describe(v)}; expected a number >= ${min}`);
    if (v < min) return fail(field, `(${v}) must be >= ${min}`);
    return v;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    if (!has(field)) return fallback;
    const v = raw[field];
    if (typeof v !== 'boolean') return fail(field, `is ${describe(v)}; expected true or false`);
    return v;
  };
  const tokenId = (field: string, fallback: number | null): number | null =>
    has(field) ? int(field, undefined, 0) : fallback;

  const vocabSize = int('vocab_size');
  const hiddenSize = int('hidden_size');
  const intermediateSize = int('intermediate_size');
  const numHiddenLayers = int('num_hidden_layers');
  const numAttentionHeads = int('num_attention_heads');
  const numKeyValueHeads = has('num_key_value_heads') ? int('num_key_value_heads') : numAttentionHeads;
  const numLocalExperts = int('num_local_experts');
  const numExpertsPerTok = int('num_experts_per_tok', 2);
  if (numAttentionHeads % numKeyValueHeads !== 0) {
    fail(
      'num_key_value_heads',
      `(${numKeyValueHeads}) must divide num_attention_heads (${numAttentionHeads})`,
    );
  }
  if (hiddenSize % numAttentionHeads !== 0) {
    fail('num_attention_heads', `(${numAttentionHeads}) must divide hidden_size (${hiddenSize})`);
  }
  const headDim = has('head_dim') ? int('head_dim') : hiddenSize / numAttentionHeads;
  if (headDim * numAttentionHeads !== hiddenSize) {
    fail(
      'head_dim',
      `(${headDim}) times num_attention_heads (${numAttentionHeads}) must equal hidden_size (${hiddenSize})`,
    );
  }
  if (headDim % 2 !== 0)
    fail('head_dim', `(hidden_size / num_attention_heads = ${headDim}) must be even for RoPE`);
  if (numExpertsPerTok > numLocalExperts) {
    fail('num_experts_per_tok', `(${numExpertsPerTok}) must be <= num_local_experts (${numLocalExperts})`);
  }
  const hiddenAct = raw.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') fail('hidden_act', `is ${describe(hiddenAct)}; only "silu" is supported`);
  let slidingWindow: number | null = null;
  if (has('sliding_window')) {
    const w = raw.sliding_window;
    if (typeof w !== 'number' || !Number.isInteger(w))
      fail('sliding_window', `is ${describe(w)}; expected an integer >= 1 or null`);
    if ((w as number) < 1) fail('sliding_window', `(${w}) must be >= 1 (or null for no window)`);
    slidingWindow = w as number;
  }
  const maxPositionEmbeddings = int('max_position_embeddings', 4096 * 32);
  const router = raw.router ?? 'sparsemixer-v2';
  if (typeof router !== 'string')
    fail('router', `is ${describe(router)}; expected a router name such as "sparsemixer-v2"`);
  const eos = raw.eos_token_id;
  let eosTokenIds: number[] = [2];
  if (eos === null) eosTokenIds = [];
  else if (typeof eos === 'number' && Number.isInteger(eos)) eosTokenIds = [eos];
  else if (Array.isArray(eos) && eos.every((e) => Number.isInteger(e))) eosTokenIds = eos as number[];
  else if (eos !== undefined)
    fail('eos_token_id', `is ${describe(eos)}; expected a token id or a list of them`);

  const { ropeTheta, ropeScaling } = parseRope(raw, source, headDim, maxPositionEmbeddings);
  return {
    vocabSize,
    hiddenSize,
    intermediateSize,
    numHiddenLayers,
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    hiddenAct: 'silu',
    maxPositionEmbeddings,
    initializerRange: num('initializer_range', 0.02),
    rmsNormEps: num('rms_norm_eps', 1e-5),
    ropeTheta,
    ropeScaling,
    slidingWindow,
    attentionBias: bool('attention_bias', false),
    lmHeadBias: bool('lm_head_bias', false),
    tieWordEmbeddings: bool('tie_word_embeddings', false),
    numLocalExperts,
    numExpertsPerTok,
    routerJitterNoise: num('router_jitter_noise', 0.01),
    inputJitterNoise: num('input_jitter_noise', 0),
    routerAuxLossCoef: num('router_aux_loss_coef', 0.001),
    bosTokenId: tokenId('bos_token_id', 1),
    eosTokenIds,
    padTokenId: tokenId('pad_token_id', null),
    router: router as string,
  };
}

/** v4: rope_theta + rope_scaling; v5: rope_parameters {rope_type, rope_theta, ...}. */
function parseRope(
  raw: Json,
  source: string,
  headDim: number,
  maxPositions: number,
): { ropeTheta: number; ropeScaling: LongRopeScaling | null } {
  const v5 = raw.rope_parameters;
  const fieldName = v5 !== undefined && v5 !== null ? 'rope_parameters' : 'rope_scaling';
  const params = (fieldName === 'rope_parameters' ? v5 : raw.rope_scaling) ?? null;
  if (params !== null && (typeof params !== 'object' || Array.isArray(params))) {
    throw new ConfigError(`${source}: ${fieldName} is ${describe(params)}; expected an object or null`);
  }
  const p = (params ?? {}) as Json;
  const thetaValue = p.rope_theta ?? raw.rope_theta ?? 1e6;
  if (typeof thetaValue !== 'number' || !(thetaValue > 0)) {
    throw new ConfigError(`${source}: rope_theta is ${describe(thetaValue)}; expected a positive number`);
  }
  const kind = p.rope_type ?? p.type ?? 'default';
  if (params === null || kind === 'default') return { ropeTheta: thetaValue, ropeScaling: null };
  if (kind !== 'longrope' && kind !== 'su') {
    throw new ConfigError(
      `${source}: ${fieldName}.rope_type is ${describe(kind)}; supported: "default", "longrope"`,
    );
  }
  const half = headDim / 2;
  const factors = (key: string): number[] => {
    const list = p[key];
    if (!Array.isArray(list) || !list.every((v) => typeof v === 'number' && v > 0)) {
      throw new ConfigError(
        `${source}: ${fieldName}.${key} is ${describe(list)}; expected a list of ${half} positive numbers (head_dim / 2)`,
      );
    }
    if (list.length !== half) {
      throw new ConfigError(
        `${source}: ${fieldName}.${key} has ${list.length} entries; expected head_dim / 2 = ${half}`,
      );
    }
    return list as number[];
  };
  const shortFactor = factors('short_factor');
  const longFactor = factors('long_factor');
  const original = p.original_max_position_embeddings ?? raw.original_max_position_embeddings;
  if (typeof original !== 'number' || !Number.isInteger(original) || original < 1) {
    throw new ConfigError(
      `${source}: ${fieldName}.original_max_position_embeddings (or the top-level field) is ${describe(original)}; longrope needs an integer >= 1`,
    );
  }
  // transformers' default attention factor when the config gives no mscale.
  const extension = maxPositions / original;
  const fallback =
    typeof p.attention_factor === 'number'
      ? p.attention_factor
      : extension <= 1
        ? 1
        : Math.sqrt(1 + Math.log(extension) / Math.log(original));
  const mscale = (key: string): number => {
    const v = p[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !(v > 0))
      throw new ConfigError(`${source}: ${fieldName}.${key} is ${describe(v)}; expected a positive number`);
    return v;
  };
  return {
    ropeTheta: thetaValue,
    ropeScaling: {
      type: 'longrope',
      shortFactor,
      longFactor,
      shortMscale: mscale('short_mscale'),
      longMscale: mscale('long_mscale'),
      originalMaxPositions: original,
    },
  };
}

/** The config.json object transformers would write (v4 layout, which real GRIN checkpoints use). */
export function configToJson(
  config: GrinConfig,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const scaling = config.ropeScaling;
  return {
    architectures: ['PhiMoEForCausalLM'],
    model_type: 'phimoe',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    intermediate_size: config.intermediateSize,
    num_hidden_layers: config.numHiddenLayers,
    num_attention_heads: config.numAttentionHeads,
    num_key_value_heads: config.numKeyValueHeads,
    hidden_act: config.hiddenAct,
    max_position_embeddings: config.maxPositionEmbeddings,
    initializer_range: config.initializerRange,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: scaling
      ? {
          type: 'longrope',
          short_factor: scaling.shortFactor,
          long_factor: scaling.longFactor,
          short_mscale: scaling.shortMscale,
          long_mscale: scaling.longMscale,
          original_max_position_embeddings: scaling.originalMaxPositions,
        }
      : null,
    ...(scaling ? { original_max_position_embeddings: scaling.originalMaxPositions } : {}),
    sliding_window: config.slidingWindow,
    attention_bias: config.attentionBias,
    lm_head_bias: config.lmHeadBias,
    tie_word_embeddings: config.tieWordEmbeddings,
    num_local_experts: config.numLocalExperts,
    num_experts_per_tok: config.numExpertsPerTok,
    router_jitter_noise: config.routerJitterNoise,
    input_jitter_noise: config.inputJitterNoise,
    router_aux_loss_coef: config.routerAuxLossCoef,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    pad_token_id: config.padTokenId,
    ...(config.router !== 'sparsemixer-v2' ? { router: config.router } : {}),
    ...extra,
  };
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  const text = JSON.stringify(v);
  return text === undefined ? String(v) : text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
