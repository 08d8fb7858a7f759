// The dense baseline against GrinModel (one expert, top-1, switch router: weight softmax = 1, so the
// MoE block IS one MLP: the same logits from the same weights), its parameter count (= the MoE's
// active parameters minus the router gates), and a measured tokens/s ratio on a tiny model.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initRandom, parseConfig } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { DenseModel, denseParameterShapes } from './dense.js';
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

describe('throughput', () => {
  it('measures MoE and dense training steps in one run and reports their ratio', async () => {
    const config = parseConfig({ ...base, num_local_experts: 4, num_experts_per_tok: 2 });
    const out = join(mkdtempSync(join(tmpdir(), 'grin-tput-')), 'eval', 'throughput.json');
    const result = await measureThroughput(config, { batchSize: 2, seqLen: 16, steps: 2, warmup: 1, out });
    expect(result.moe.stepSeconds).toHaveLength(2);
    expect(result.dense.stepSeconds).toHaveLength(2);
    expect(result.tokensPerStep).toBe(32);
    expect(result.ratio).toBeCloseTo(result.moe.tokensPerSecond / result.dense.tokensPerSecond, 12);
    expect(result.ratio).toBeGreaterThan(0);
    const gates = 4 * 16 * 2;
    expect(result.dense.parameters).toBe(result.moe.activeParameters - gates);
    expect(result.moe.parameters - result.moe.activeParameters).toBe(2 * 3 * 16 * 8 * 2);
    expect(JSON.parse(readFileSync(out, 'utf8')).ratio).toBeCloseTo(result.ratio, 12);
    await expect(measureThroughput(config, { seqLen: 128 })).rejects.toThrow(
      /seqLen 128 exceeds max_position_embeddings 64/,
    );
  });
});
