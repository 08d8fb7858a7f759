// Training throughput on the present device: tokens/s of one full step (forward, next-token loss
// (+ the load-balancing loss for the MoE), backward, AdamW) of a GRIN MoE and of its dense twin with
// the same active parameters (dense.ts), measured in the same run in alternating steps so that
// machine noise hits both alike, on the same token batches. Ratio = MoE tokens/s / dense tokens/s
// (higher is better for MoE). Each model also reports its training FLOPs per token (the matmuls it
// runs, trainingFlopsPerToken) and the FLOP/s that makes.
// Test: cd packages/eval && npx vitest run src/throughput
import { type GrinConfig, initRandom, type ModelDType, nextTokenLoss } from '@grin-moe/model-grin';
import { balanceLoss } from '@grin-moe/router-sparsemixer';
import * as T from '@grin-moe/tensor';
import { initDense } from './dense.js';
import { EvaluationError, writeJson } from './io.js';

export interface ThroughputOptions {
  batchSize?: number;
  seqLen?: number;
  /** Timed steps per model (default 3), after `warmup` untimed ones (default 1). */
  steps?: number;
  warmup?: number;
  seed?: number;
  dtype?: ModelDType;
  device?: string;
  out?: string;
  progress?: (done: number, total: number) => void;
}

export interface ModelThroughput {
  parameters: number;
  /** Training FLOPs per token: forward + backward (3 x forward) of every matmul, trainingFlopsPerToken. */
  flopsPerToken: number;
  /** flopsPerToken x tokensPerSecond. */
  flopsPerSecond: number;
  /** Parameters one token passes through (MoE: K of the E experts). */
  activeParameters: number;
  /** Median over the timed steps. */
  tokensPerSecond: number;
  stepSeconds: number[];
}

export interface ThroughputResult {
  device: string;
  batchSize: number;
  seqLen: number;
  tokensPerStep: number;
  experts: number;
  topK: number;
  moe: ModelThroughput;
  dense: ModelThroughput;
  /** moe.tokensPerSecond / dense.tokensPerSecond */
  ratio: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Training FLOPs per token of one step, matmuls only (norms, softmax and the optimizer are noise at
 * these sizes): 2 per multiply-add over each weight a token passes through (q, k, v, o; the router
 * gate and K of the E experts, or the dense GLU of width K x I; lm_head; the embedding is a lookup),
 * plus QK^T and AV over the keys each query sees (causal, within the sliding window), all times 3
 * for forward + backward (input and weight gradients).
 */
export function trainingFlopsPerToken(config: GrinConfig, seqLen: number, model: 'moe' | 'dense'): number {
  const { hiddenSize: H, intermediateSize: I, headDim: D, numLocalExperts: E, numExpertsPerTok: K } = config;
  const heads = config.numAttentionHeads;
  const attentionWeights = 2 * H * heads * D + 2 * H * config.numKeyValueHeads * D;
  const mlpWeights = 3 * H * I * K + (model === 'moe' ? H * E : 0);
  const window = config.slidingWindow ?? seqLen;
  let keys = 0;
  for (let q = 0; q < seqLen; q++) keys += Math.min(q + 1, window);
  const attention = 2 * 2 * heads * D * (keys / seqLen);
  const forward =
    config.numHiddenLayers * (2 * (attentionWeights + mlpWeights) + attention) + 2 * H * config.vocabSize;
  return 3 * forward;
}

/** One training step; returns its wall time in seconds (the loss read is the sync point). */
async function timedStep(lossOf: () => Promise<T.Tensor>, optimizer: T.AdamW): Promise<number> {
  const start = performance.now();
  const scope = new T.Scope();
  try {
    const loss = await lossOf();
    loss.backward();
    loss.item();
  } finally {
    scope.dispose();
  }
  optimizer.stepOnce();
  optimizer.zeroGrad();
  return (performance.now() - start) / 1000;
}

export async function measureThroughput(
  config: GrinConfig,
  options: ThroughputOptions = {},
): Promise<ThroughputResult> {
  const {
    batchSize = 4,
    seqLen = 64,
    steps = 3,
    warmup = 1,
    seed = 0,
    dtype = 'f32',
    device = 'cpu',
  } = options;
  for (const [name, value, min] of [
    ['batchSize', batchSize, 1],
    ['seqLen', seqLen, 2],
    ['steps', steps, 1],
    ['warmup', warmup, 0],
  ] as const) {
    if (!Number.isInteger(value) || value < min)
      throw new EvaluationError(`throughput: ${name} must be an integer >= ${min}, got ${value}`);
  }
  if (seqLen > config.maxPositionEmbeddings)
    throw new EvaluationError(
      `throughput: seqLen ${seqLen} exceeds max_position_embeddings ${config.maxPositionEmbeddings}`,
    );
  const generator = new T.Generator(seed);
  const moe = initRandom(config, generator.fork(1), { dtype, device }).train();
  const dense = initDense(config, generator.fork(2), { dtype, device });
  const moeOptimizer = new T.AdamW(moe.parameters(), { lr: 1e-4 });
  const denseOptimizer = new T.AdamW(dense.parameters(), { lr: 1e-4 });
  const data = generator.fork(3);
  const routerStream = generator.fork(4);
  const batch = () =>
    T.tensor(data.randint(batchSize * seqLen, 0, config.vocabSize), {
      shape: [batchSize, seqLen],
      dtype: 'i32',
      device,
    });
  const moeLoss = async (ids: T.Tensor) => {
    const out = moe.forward(ids, { training: true, generator: routerStream });
    const { loss: aux } = await balanceLoss(out.balance, { alpha: 0.01, mode: 'local' });
    return T.add(nextTokenLoss(out.logits_BSV, ids), aux);
  };
  const denseLoss = async (ids: T.Tensor) => {
    return nextTokenLoss(dense.forward(ids).logits_BSV, ids);
  };
  const moeTimes: number[] = [];
  const denseTimes: number[] = [];
  try {
    const total = warmup + steps;
    for (let i = 0; i < total; i++) {
      // Alternate which model goes first, so neither always runs on a warmer cache.
      const order = i % 2 ? (['dense', 'moe'] as const) : (['moe', 'dense'] as const);
      const ids = batch(); // both models train on the same tokens in step i
      try {
        for (const which of order) {
          const seconds =
            which === 'moe'
              ? await timedStep(() => moeLoss(ids), moeOptimizer)
              : await timedStep(() => denseLoss(ids), denseOptimizer);
          if (i >= warmup) (which === 'moe' ? moeTimes : denseTimes).push(seconds);
        }
      } finally {
        ids.dispose();
      }
      options.progress?.(i + 1, total);
    }
    const tokensPerStep = batchSize * seqLen;
    const count = (ts: T.Tensor[]) => ts.reduce((a, t) => a + t.size, 0);
    const expertParams = 3 * config.hiddenSize * config.intermediateSize * config.numHiddenLayers;
    const moeParams = count(moe.parameters());
    const summary = (
      times: number[],
      parameters: number,
      activeParameters: number,
      model: 'moe' | 'dense',
    ): ModelThroughput => {
      const tokensPerSecond = tokensPerStep / median(times);
      const flopsPerToken = trainingFlopsPerToken(config, seqLen, model);
      return {
        parameters,
        flopsPerToken,
        flopsPerSecond: flopsPerToken * tokensPerSecond,
        activeParameters,
        tokensPerSecond,
        stepSeconds: times,
      };
    };
    const moeResult = summary(
      moeTimes,
      moeParams,
      moeParams - expertParams * (config.numLocalExperts - config.numExpertsPerTok),
      'moe',
    );
    const denseParams = count(dense.parameters());
    const denseResult = summary(denseTimes, denseParams, denseParams, 'dense');
    const result: ThroughputResult = {
      device,
      batchSize,
      seqLen,
      tokensPerStep,
      experts: config.numLocalExperts,
      topK: config.numExpertsPerTok,
      moe: moeResult,
      dense: denseResult,
      ratio: moeResult.tokensPerSecond / denseResult.tokensPerSecond,
    };
    return options.out ? writeJson(options.out, result) : result;
  } finally {
    moe.dispose();
    dense.dispose();
  }
}
