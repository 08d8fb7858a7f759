// NEFTune noise and expert dropout: the noise's range, mean and variance (U(-m, m): 0 and m^2/3),
// the mask's zero fraction (p) and kept value (1/(1-p)) within 5 standard errors, nothing in eval
// mode, the same seed giving the same loss, and the loop and grouped MoE paths applying the same
// dropout mask (f64, forward and every gradient).
// Run: cd packages/model-grin && npx vitest run src/modules/regularizers
import { add, Generator, mul, sum, type Tensor, tensor, tidy, zeros } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { idsTensor, nextTokenLoss } from '../model.js';
import { type MoeImplementation, moe } from './moe.js';
import { expertDropoutMask, neftuneNoise } from './regularizers.js';

const config = parseConfig({
  vocab_size: 16,
  hidden_size: 16,
  intermediate_size: 6,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_local_experts: 4,
  num_experts_per_tok: 2,
  initializer_range: 0.5,
  max_position_embeddings: 32,
});

function moments(values: ArrayLike<number>): { mean: number; variance: number; min: number; max: number } {
  let s = 0;
  let s2 = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / values.length;
  return { mean, variance: s2 / values.length - mean * mean, min, max };
}

describe('neftuneNoise', () => {
  it('is U(-m, m) with m = alpha / sqrt(S * D): range, mean 0, variance m^2/3', () => {
    const [B, S, D] = [4, 50, 100];
    const alpha = 5;
    const m = alpha / Math.sqrt(S * D);
    const noise = neftuneNoise(zeros([B, S, D], { dtype: 'f64' }), alpha, new Generator(11)).toArray();
    const n = noise.length;
    const { mean, variance, min, max } = moments(noise);
    expect(min).toBeGreaterThanOrEqual(-m);
    expect(max).toBeLessThan(m);
    expect(max - min).toBeGreaterThan(1.99 * m); // fills the range
    // U(-m, m): sd of the mean m/sqrt(3n); the variance estimate's sd is m^2 sqrt(4/45)/sqrt(n)
    expect(Math.abs(mean)).toBeLessThan((5 * m) / Math.sqrt(3 * n));
    expect(Math.abs(variance - (m * m) / 3)).toBeLessThan((5 * m * m * Math.sqrt(4 / 45)) / Math.sqrt(n));
  });

  it('adds to the input, and alpha 0 leaves it unchanged', () => {
    const x = tensor(
      Array.from({ length: 2 * 3 * 4 }, (_, i) => i),
      { shape: [2, 3, 4], dtype: 'f64' },
    );
    expectAllClose(neftuneNoise(x, 0, new Generator(1)), x.toArray(), { atol: 0, rtol: 0 });
    const noisy = neftuneNoise(x, 1, new Generator(1)).toArray();
    const m = 1 / Math.sqrt(12);
    x.toArray().forEach((v, i) => {
      expect(Math.abs(noisy[i]! - v)).toBeLessThan(m);
      expect(noisy[i]).not.toBe(v);
    });
  });
});

describe('expertDropoutMask', () => {
  it.each([0.1, 0.5])('p = %s: zero fraction p, kept value 1/(1-p), mean 1', (p) => {
    const like = zeros([1], { dtype: 'f64' });
    const mask = expertDropoutMask(400, 50, p, like, new Generator(5)).toArray();
    const n = mask.length;
    let zerosCount = 0;
    for (const v of mask) {
      if (v === 0) zerosCount++;
      else expect(v).toBe(1 / (1 - p));
    }
    expect(Math.abs(zerosCount / n - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
    expect(Math.abs(moments(mask).mean - 1)).toBeLessThan((5 * Math.sqrt(p / (1 - p))) / Math.sqrt(n));
  });

  it('refuses p outside [0, 1)', () => {
    expect(() => expertDropoutMask(2, 2, 1, zeros([1]))).toThrow('expertDropout: p must be in [0, 1), got 1');
  });
});

function runBlock(implementation: MoeImplementation, expertDropout: number, training = true) {
  const model = initRandom(config, new Generator(3), { dtype: 'f64' });
  const x = tensor(
    Array.from({ length: 2 * 5 * 16 }, (_, i) => Math.sin(i * 0.61) * 1.7),
    { shape: [2, 5, 16], dtype: 'f64', requiresGrad: true },
  );
  const weights = tensor(
    Array.from({ length: x.size }, (_, i) => Math.cos(i * 0.3)),
    { shape: [...x.shape], dtype: 'f64' },
  );
  const { out_BSD, balance } = moe(config, model.params, 0, x, {
    training,
    generator: new Generator(77),
    moeImplementation: implementation,
    expertDropout,
  });
  tidy(() => add(sum(mul(out_BSD, weights)), sum(mul(balance.meanProbs_E, balance.counts_E)))).backward();
  const grads = new Map<string, Tensor | null>([['x', x.grad]]);
  for (const [name, p] of model.params) grads.set(name, p.grad);
  return { out: out_BSD, grads };
}

describe('expert dropout in the MoE block', () => {
  it('loop and grouped apply the same mask: output and every gradient (f64)', () => {
    const loop = runBlock('loop', 0.3);
    const grouped = runBlock('grouped', 0.3);
    expectAllClose(grouped.out, loop.out, { atol: 1e-12, rtol: 1e-10 });
    let compared = 0;
    for (const [name, grad] of loop.grads) {
      const other = grouped.grads.get(name);
      if (!grad) continue;
      expectAllClose(other!, grad, { atol: 1e-12, rtol: 1e-10 }, name);
      compared++;
    }
    expect(compared).toBeGreaterThan(10);
    // and the mask is really applied: the output differs from the undropped block
    const plain = runBlock('loop', 0).out.toArray();
    expect(loop.out.toArray().some((v, i) => Math.abs(v - plain[i]!) > 1e-6)).toBe(true);
  });

  it.each(['loop', 'grouped'] as const)('%s: nothing in eval mode', (implementation) => {
    expectAllClose(
      runBlock(implementation, 0.5, false).out,
      runBlock(implementation, 0, false).out.toArray(),
      {
        atol: 0,
        rtol: 0,
      },
    );
  });
});

describe('the model with both regularizers', () => {
  const ids = idsTensor([
    [1, 5, 3, 9, 2, 7, 4, 8],
    [6, 2, 11, 3, 14, 1, 0, 5],
  ]);
  const lossOf = (options: {
    training: boolean;
    seed?: number;
    neftuneAlpha?: number;
    expertDropout?: number;
  }) => {
    const model = initRandom(config, new Generator(9), { dtype: 'f64' });
    const { logits_BSV } = model.forward(ids, {
      ...options,
      generator: new Generator(options.seed ?? 1),
      moeImplementation: 'loop',
    });
    return nextTokenLoss(logits_BSV, ids).item();
  };

  it('eval mode: the same loss with and without them', () => {
    expect(lossOf({ training: false, neftuneAlpha: 5, expertDropout: 0.5 })).toBe(
      lossOf({ training: false }),
    );
  });

  it('training: the same seed gives the same loss, another seed another, and each regularizer moves it', () => {
    const both = { training: true, neftuneAlpha: 5, expertDropout: 0.2 };
    const first = lossOf({ ...both, seed: 4 });
    expect(lossOf({ ...both, seed: 4 })).toBe(first);
    expect(lossOf({ ...both, seed: 5 })).not.toBe(first);
    const none = lossOf({ training: true, seed: 4 });
    expect(lossOf({ training: true, seed: 4, neftuneAlpha: 5 })).not.toBe(none);
    expect(lossOf({ training: true, seed: 4, expertDropout: 0.2 })).not.toBe(none);
  });
});
