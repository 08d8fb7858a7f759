// Memory estimate for a GrinConfig: parameter count, and bytes for parameters, gradients, AdamW
// state and activations, so loading on CPU can refuse a model that cannot fit with a clear
// message instead of dying in an allocation (the 42B model is a GPU job).
// Test: cd packages/model-grin && npx vitest run src/config src/checkpoint
import { freemem, totalmem } from 'node:os';
import { ConfigError, type GrinConfig } from './config.js';
/** Parameter count of the model the config describes. */
export function countParameters(c: GrinConfig): number {
  const H = c.hiddenSize;
  const kv = c.numKeyValueHeads * c.headDim;
  const attnBias = c.attentionBias ? 1 : 0;
  const attention = 2 * H * H + 2 * H * kv + attnBias * (2 * H + 2 * kv);
  const moe = c.numLocalExperts * (H + 3 * H * c.intermediateSize);
  const layer = attention + moe + 4 * H;
  const head = (c.tieWordEmbeddings ? 0 : c.vocabSize * H) + (c.lmHeadBias ? c.vocabSize : 0);
  return c.vocabSize * H + c.numHiddenLayers * layer + 2 * H + head;
}

export interface MemoryEstimate {
  parameters: number;
  bytes: { params: number; grads: number; optimizer: number; activations: number; total: number };
}

const DTYPE_BYTES = { f32: 4, f64: 8, bf16: 2, f16: 2 } as const;

/**
 * Rough bytes to hold the model: parameters, and when training their gradients, AdamW's two f32
 * moments (plus f32 master weights for 16-bit parameters) and activations for `tokens` tokens.
 */
export function estimateMemory(
  config: GrinConfig,
  {
    dtype = 'f32',
    training = false,
    tokens = 2048,
  }: { dtype?: keyof typeof DTYPE_BYTES; training?: boolean; tokens?: number } = {},
): MemoryEstimate {
  const n = countParameters(config);
  const b = DTYPE_BYTES[dtype];
  const params = n * b;
  const grads = training ? n * b : 0;
  const optimizer = training ? n * 8 + (b < 4 ? n * 4 : 0) : 0;
  // Per token and layer: a dozen hidden-sized tensors, K expert activations (3 x intermediate),
  // and the logits once; inference keeps about one layer alive at a time.
  const perLayer =
    tokens * (12 * config.hiddenSize + 3 * config.numExpertsPerTok * config.intermediateSize) * b;
  const activations =
    (training ? config.numHiddenLayers : 2) * perLayer + tokens * config.vocabSize * b * (training ? 2 : 1);
  return {
    parameters: n,
    bytes: { params, grads, optimizer, activations, total: params + grads + optimizer + activations },
  };
}

/** Throws a clear error (instead of dying in an allocation) when the model cannot fit in host memory. */
export function assertFitsInHostMemory(
  config: GrinConfig,
  options: {
    dtype?: keyof typeof DTYPE_BYTES;
    training?: boolean;
    tokens?: number;
    source?: string;
    available?: number;
  } = {},
): void {
  const estimate = estimateMemory(config, options);
  const available = options.available ?? totalmem();
  if (estimate.bytes.total > available) {
    const gib = (v: number) => `${(v / 2 ** 30).toFixed(1)} GiB`;
    throw new ConfigError(
      `${options.source ?? 'model'}: needs about ${gib(estimate.bytes.total)} (${(estimate.parameters / 1e9).toFixed(2)}B parameters in ${options.dtype ?? 'f32'}` +
        `${options.training ? ', with gradients, AdamW moments and activations' : ''}) but this machine has ${gib(totalmem())} ` +
        `(${gib(freemem())} free); run it on a GPU machine (--device cuda) or load a smaller model`,
    );
  }
}
