// The dense baseline against GrinModel (one expert, top-1, switch router: weight softmax = 1, so the
// MoE block IS one MLP: the same logits from the same weights), its parameter count (= the MoE's
// active parameters minus the router gates); measureThroughput gives both models the same token
// batches (spied on their forwards) and FLOPs per token equal to a count over each model's own
// weights and the attention mask's (query, key) pairs. Run: cd packages/eval && npx vitest run src/throughput
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GrinConfig, GrinModel, initRandom, parseConfig } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { describe, expect, it, vi } from 'vitest';
import { DenseModel, denseParameterShapes, initDense } from './dense.js';
import { measureThroughput } from './throughput.js';

const base = {
  vocab_size: 64,
  hidden_size: 16,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  max_position_embeddings: 64,
  rope_theta: 10000,
  initializer_range: 0.2,
};

describe('dense baseline', () => {
  it('equals a one-expert top-1 GrinModel with the same weights', () => {
    const config = parseConfig({
      ...base,
      num_local_experts: 1,
      num_experts_per_tok: 1,
      router: 'switch-top1',
    });
    const moe = initRandom(config, new T.Generator(1)).eval();
    const params = new Map<string, T.Tensor>();
    for (const [name] of denseParameterShapes(config)) {
      const source = name.replace(/\.mlp\./, '.block_sparse_moe.experts.0.');
      params.set(name, moe.params.get(source)!);
    }
    const dense = new DenseModel(config, params);
    const ids = T.tensor(new Int32Array([1, 5, 9, 2, 33, 7, 0, 63]), { shape: [2, 4], dtype: 'i32' });
    const expected = moe.forward(ids, { training: false }).logits_BSV.toArray();
    const actual = dense.forward(ids).logits_BSV.toArray();
    expect(actual.length).toBe(2 * 4 * 64);
    actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 5));
  });
});

/**
 * The reference count, from the model's own weights: every 2-D weight but the embedding is a
 * matmul a token passes through (an expert's only K times in E), and attention is counted pair by
 * pair over the (query, key) pairs the mask lets through.
 */
function countedFlopsPerToken(params: Map<string, T.Tensor>, config: GrinConfig, seqLen: number): number {
  let matmul = 0;
  for (const [name, p] of params) {
    if (p.rank !== 2 || name === 'model.embed_tokens.weight') continue;
    const share = /\.experts\.\d+\./.test(name) ? config.numExpertsPerTok / config.numLocalExperts : 1;
    matmul += p.size * share;
  }
  let pairs = 0;
  for (let q = 0; q < seqLen; q++)
    for (let k = 0; k <= q; k++) if (config.slidingWindow === null || q - k < config.slidingWindow) pairs++;
  const attention =
    (config.numHiddenLayers * pairs * 2 * 2 * config.numAttentionHeads * config.headDim) / seqLen;
  return 3 * (2 * matmul + attention);
}

describe('throughput', () => {
  it('times both models on the same tokens and counts their FLOPs as their weights say', async () => {
    const config = parseConfig({ ...base, num_local_experts: 4, num_experts_per_tok: 2, sliding_window: 5 });
    const seen = { moe: [] as number[][], dense: [] as number[][] };
    const moeForward = GrinModel.prototype.forward;
    const denseForward = DenseModel.prototype.forward;
    const spies = [
      vi.spyOn(GrinModel.prototype, 'forward').mockImplementation(function (this: GrinModel, ids, options) {
        seen.moe.push(Array.from(ids.toArray()));
        return moeForward.call(this, ids, options);
      }),
      vi.spyOn(DenseModel.prototype, 'forward').mockImplementation(function (this: DenseModel, ids) {
        seen.dense.push(Array.from(ids.toArray()));
        return denseForward.call(this, ids);
      }),
    ];
    const out = join(mkdtempSync(join(tmpdir(), 'grin-tput-')), 'eval', 'throughput.json');
    let result: Awaited<ReturnType<typeof measureThroughput>>;
    try {
      result = await measureThroughput(config, { batchSize: 2, seqLen: 16, steps: 2, warmup: 1, out });
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    // warmup + steps batches, each seen by both models, and not all the same batch
    expect(seen.moe).toHaveLength(3);
    expect(seen.dense).toEqual(seen.moe);
    expect(new Set(seen.moe.map(String)).size).toBe(3);
    expect(result.tokensPerStep).toBe(32);
    expect(result.moe.stepSeconds).toHaveLength(2);

    // FLOPs: the formula against a count over the actual weights of each model
    const moe = initRandom(config, new T.Generator(0));
    const dense = initDense(config, new T.Generator(0));
    expect(result.moe.flopsPerToken).toBeCloseTo(countedFlopsPerToken(moe.params, config, 16), 6);
    expect(result.dense.flopsPerToken).toBeCloseTo(countedFlopsPerToken(dense.params, config, 16), 6);
    // the dense twin has the same matmuls but the router gate (H x E, forward and backward)
    expect(result.moe.flopsPerToken - result.dense.flopsPerToken).toBeCloseTo(3 * 2 * 2 * 16 * 4, 6);
    expect(result.moe.flopsPerSecond).toBeCloseTo(result.moe.flopsPerToken * result.moe.tokensPerSecond, 0);
    const gates = 4 * 16 * 2;
    expect(result.dense.parameters).toBe(result.moe.activeParameters - gates);
    expect(result.moe.parameters - result.moe.activeParameters).toBe(2 * 3 * 16 * 8 * 2);
    expect(JSON.parse(readFileSync(out, 'utf8')).moe.flopsPerToken).toBe(result.moe.flopsPerToken);
    moe.dispose();
    dense.dispose();
    await expect(measureThroughput(config, { seqLen: 128 })).rejects.toThrow(
      /seqLen 128 exceeds max_position_embeddings 64/,
    );
  });
});
