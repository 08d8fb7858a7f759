// config.json parsing: both rope forms (v4 rope_scaling, v5 rope_parameters), PhimoeConfig defaults,
// every validation error naming the file and field, and the memory estimate of the 42B model.
// Run: cd packages/model-grin && npx vitest run src/config
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configToJson, defaultGrinConfig, parseConfig } from './config.js';
import { countParameters, estimateMemory } from './memory.js';

const base = {
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 16,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  num_key_value_heads: 2,
  num_local_experts: 4,
};
const longrope = {
  type: 'longrope',
  short_factor: [1, 1, 1, 1, 1, 1, 1, 1.5],
  long_factor: [2, 2, 2, 2, 2, 2, 2, 2],
  short_mscale: 1.2,
  long_mscale: 1.3,
};

describe('parseConfig', () => {
  it('reads the v5 rope_parameters form of the fixtures', () => {
    const json = JSON.parse(
      readFileSync(join(__dirname, '..', 'fixtures', 'mha-longrope', 'config.json'), 'utf8'),
    );
    const c = parseConfig(json);
    expect(c.ropeTheta).toBe(10000);
    expect(c.ropeScaling).toMatchObject({ shortMscale: 1.243, longMscale: 1.243, originalMaxPositions: 32 });
    expect(c.ropeScaling!.longFactor).toHaveLength(8);
    expect(c.slidingWindow).toBe(7);
    expect(c.attentionBias && c.lmHeadBias).toBe(true);
    const plain = parseConfig(
      JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'gqa2-window5', 'config.json'), 'utf8')),
    );
    expect(plain.ropeScaling).toBeNull();
    expect(plain.numKeyValueHeads).toBe(2);
  });

  it('reads the v4 form of GRIN / Phi-3.5-MoE (rope_theta + rope_scaling, top-level original_max_position_embeddings)', () => {
    const c = parseConfig({
      ...base,
      rope_theta: 500,
      rope_scaling: longrope,
      original_max_position_embeddings: 16,
      max_position_embeddings: 256,
    });
    expect(c.ropeTheta).toBe(500);
    expect(c.ropeScaling).toEqual({
      type: 'longrope',
      shortFactor: longrope.short_factor,
      longFactor: longrope.long_factor,
      shortMscale: 1.2,
      longMscale: 1.3,
      originalMaxPositions: 16,
    });
    // Round trip through configToJson.
    expect(parseConfig(configToJson(c))).toEqual(c);
  });

  it('falls back to transformers attention factor when no mscale is given', () => {
    const { short_mscale: _s, long_mscale: _l, ...noScale } = longrope;
    const c = parseConfig({
      ...base,
      rope_scaling: { ...noScale, original_max_position_embeddings: 16 },
      max_position_embeddings: 64,
    });
    expect(c.ropeScaling!.shortMscale).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(16)), 12);
  });

  it('applies PhimoeConfig defaults', () => {
    const c = parseConfig(base);
    expect(c).toMatchObject({
      numExpertsPerTok: 2,
      hiddenAct: 'silu',
      rmsNormEps: 1e-5,
      ropeTheta: 1e6,
      slidingWindow: null,
      attentionBias: false,
      lmHeadBias: false,
      routerJitterNoise: 0.01,
      inputJitterNoise: 0,
      maxPositionEmbeddings: 131072,
      router: 'sparsemixer-v2',
      eosTokenIds: [2],
    });
  });

  it.each([
    [{ vocab_size: undefined }, /cfg\.json: vocab_size is missing; expected an integer >= 1/],
    [{ hidden_size: '32' }, /cfg\.json: hidden_size is "32"; expected an integer >= 1/],
    [{ vocab_size: 0 }, /vocab_size \(0\) must be >= 1/],
    [
      { num_key_value_heads: 3, num_attention_heads: 4 },
      /num_key_value_heads \(3\) must divide num_attention_heads \(4\)/,
    ],
    [
      { num_attention_heads: 3, num_key_value_heads: 1 },
      /num_attention_heads \(3\) must divide hidden_size \(32\)/,
    ],
    [{ sliding_window: 0 }, /sliding_window \(0\) must be >= 1/],
    [{ num_experts_per_tok: 5 }, /num_experts_per_tok \(5\) must be <= num_local_experts \(4\)/],
    [{ hidden_act: 'gelu' }, /hidden_act is "gelu"; only "silu" is supported/],
    [
      { rope_scaling: { ...longrope, long_factor: [1, 2] }, original_max_position_embeddings: 16 },
      /rope_scaling\.long_factor has 2 entries; expected head_dim \/ 2 = 8/,
    ],
    [{ rope_scaling: { ...longrope } }, /original_max_position_embeddings .* longrope needs an integer/],
    [
      { rope_parameters: { rope_type: 'yarn', rope_theta: 1 } },
      /rope_parameters\.rope_type is "yarn"; supported: "default", "longrope"/,
    ],
    [{ attention_bias: 1 }, /attention_bias is 1; expected true or false/],
  ])('rejects %o', (patch, message) => {
    expect(() => parseConfig({ ...base, ...patch }, 'cfg.json')).toThrow(message);
  });
});

describe('memory', () => {
  it('the default config is the ~42B GRIN-MoE model', () => {
    const n = countParameters(defaultGrinConfig);
    expect(n / 1e9).toBeGreaterThan(41.5);
    expect(n / 1e9).toBeLessThan(42.5);
    const inference = estimateMemory(defaultGrinConfig, { dtype: 'bf16' });
    expect(inference.bytes.params).toBe(2 * n);
    const training = estimateMemory(defaultGrinConfig, { dtype: 'bf16', training: true });
    // bf16 params + grads, f32 master + two moments: 16 bytes per parameter before activations.
    expect(training.bytes.params + training.bytes.grads + training.bytes.optimizer).toBe(16 * n);
  });
});
