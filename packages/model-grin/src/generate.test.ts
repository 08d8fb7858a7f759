// Generation: cached and uncached decoding agree token for token (greedy, on a random small model,
// with a prompt longer than the sliding window), sampling is reproducible from a seed, stop tokens
// and the streaming callback behave. Run: cd packages/model-grin && npx vitest run src/generate
import { Generator, liveStorages } from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { generate, sampleToken } from './generate.js';
import { initRandom } from './init.js';

const config = parseConfig({
  vocab_size: 50,
  hidden_size: 32,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  sliding_window: 4,
  initializer_range: 0.5,
  attention_bias: true,
  lm_head_bias: true,
  rope_theta: 10000,
});

describe('generate', () => {
  const model = initRandom(config, new Generator(7), { dtype: 'f64' });

  it('cached and uncached greedy decoding give the same tokens (prompt longer than the window)', () => {
    const prompt = [3, 17, 9, 41, 2, 30, 11];
    const cached = generate(model, prompt, { maxNewTokens: 12, stopTokens: [] });
    const uncached = generate(model, prompt, { maxNewTokens: 12, stopTokens: [], useCache: false });
    expect(cached.tokens).toHaveLength(12);
    expect(cached.tokens).toEqual(uncached.tokens);
    expect(new Set(cached.tokens).size).toBeGreaterThan(1);
  });

  it('also agrees without a sliding window and in f32', () => {
    const unwindowed = initRandom({ ...config, slidingWindow: null }, new Generator(3), { dtype: 'f32' });
    const prompt = [1, 2, 3];
    const a = generate(unwindowed, prompt, { maxNewTokens: 8, stopTokens: [] });
    const b = generate(unwindowed, prompt, { maxNewTokens: 8, stopTokens: [], useCache: false });
    expect(a.tokens).toEqual(b.tokens);
  });

  it('temperature / top-p sampling is reproducible with a fixed seed and cache-independent', () => {
    const run = (seed: number, useCache = true) =>
      generate(model, [5, 6, 7], {
        maxNewTokens: 10,
        temperature: 0.9,
        topP: 0.8,
        generator: new Generator(seed),
        stopTokens: [],
        useCache,
      }).tokens;
    expect(run(42)).toEqual(run(42));
    expect(run(42)).toEqual(run(42, false));
    expect(run(1)).not.toEqual(run(2));
  });

  it('stops at a stop token and streams through onToken', () => {
    const free = generate(model, [1, 2], { maxNewTokens: 5, stopTokens: [] }).tokens;
    const seen: number[] = [];
    const result = generate(model, [1, 2], {
      maxNewTokens: 5,
      stopTokens: [free[2]!],
      onToken: (t) => void seen.push(t),
    });
    expect(result.stopReason).toBe('stop-token');
    expect(result.tokens).toEqual(free.slice(0, free.indexOf(free[2]!) + 1));
    expect(seen).toEqual(result.tokens);
    const stopped = generate(model, [1, 2], { maxNewTokens: 5, stopTokens: [], onToken: (_, i) => i < 1 });
    expect(stopped).toEqual({ tokens: free.slice(0, 2), stopReason: 'callback' });
  });

  it('frees everything it allocates', () => {
    const before = liveStorages();
    generate(model, [4, 5, 6, 7, 8, 9], { maxNewTokens: 4, stopTokens: [] });
    expect(liveStorages()).toBe(before);
  });
});

describe('sampleToken', () => {
  it('is greedy at temperature 0 (lowest id on ties) and keeps only the nucleus', () => {
    expect(sampleToken([1, 3, 3, 2], {})).toBe(1);
    const generator = new Generator(0);
    const picks = new Set(
      Array.from({ length: 200 }, () =>
        sampleToken([0, 5, 4.9, -3], { temperature: 1, topP: 0.5, generator }),
      ),
    );
    expect([...picks]).toEqual([1]);
    const wide = new Set(
      Array.from({ length: 200 }, () =>
        sampleToken([0, 5, 4.9, -3], { temperature: 1, topP: 0.99, generator }),
      ),
    );
    expect(wide).toEqual(new Set([1, 2]));
  });
  it('rejects bad settings', () => {
    expect(() => sampleToken([1, 2], { temperature: 1 })).toThrow(/needs a generator/);
    expect(() => sampleToken([1, 2], { topP: 0 })).toThrow(/topP/);
  });
});
