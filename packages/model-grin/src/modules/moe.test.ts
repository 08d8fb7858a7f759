// The MoE block's two implementations on the CPU: `grouped` (the device path's ops: fused jitter,
// permute, grouped linears, SiLU-GLU, gather-sum) against `loop` (the reference) in f64, forward and
// every gradient, in training (jitter and SparseMixer sampling from one seed) and eval, for each
// built-in router; and the dropless invariants: counts sum to T*K, nothing dropped, empty experts,
// one expert taking every token, T = 1, an odd width, and a forked router's bad id refused.
// Run: cd packages/model-grin && npx vitest run src/modules/moe
import { getRouter, registerRouter } from '@grin-moe/router-sparsemixer';
import { add, Generator, mul, sum, type Tensor, tensor, tidy } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { type MoeImplementation, moe } from './moe.js';

// An odd width cannot pass the config's RoPE check; the MoE block never reads the attention's shapes.
const configFor = (router: string, hidden = 16, experts = 4, topK = 2) => ({
  ...parseConfig({
    vocab_size: 8,
    hidden_size: 16,
    intermediate_size: 6,
    num_hidden_layers: 1,
    num_attention_heads: 1,
    num_key_value_heads: 1,
    num_local_experts: experts,
    num_experts_per_tok: topK,
    initializer_range: 0.5,
    input_jitter_noise: 0.01,
    router_jitter_noise: 0.01,
    router,
  }),
  hiddenSize: hidden,
});

function runBlock(
  router: string,
  implementation: MoeImplementation,
  training: boolean,
  shape: number[],
  hidden = 16,
) {
  const config = configFor(router, hidden, 4, router === 'switch-top1' ? 1 : 2);
  const model = initRandom(config, new Generator(3), { dtype: 'f64' });
  const x = tensor(
    Array.from({ length: shape.reduce((a, b) => a * b, 1) * hidden }, (_, i) => Math.sin(i * 0.61) * 1.7),
    { shape: [...shape, hidden], dtype: 'f64', requiresGrad: true },
  );
  const weights = tensor(
    Array.from({ length: x.size }, (_, i) => Math.cos(i * 0.3)),
    { shape: [...x.shape], dtype: 'f64' },
  );
  const { out_BSD, balance } = moe(config, model.params, 0, x, {
    training,
    generator: new Generator(77),
    moeImplementation: implementation,
  });
  tidy(() => add(sum(mul(out_BSD, weights)), sum(mul(balance.meanProbs_E, balance.counts_E)))).backward();
  const grads = new Map<string, Tensor | null>([['x', x.grad]]);
  for (const [name, p] of model.params) grads.set(name, p.grad);
  return { out: out_BSD, counts: balance.counts_E, grads };
}

describe('moe: grouped equals loop (f64, CPU)', () => {
  it.each([
    ['sparsemixer-v2', true],
    ['sparsemixer-v2', false],
    ['gshard-top2', true],
    ['switch-top1', true],
  ] as const)('%s, training %s: output, counts and every gradient', (router, training) => {
    const loop = runBlock(router, 'loop', training, [2, 5]);
    const grouped = runBlock(router, 'grouped', training, [2, 5]);
    expectAllClose(grouped.out, loop.out, { atol: 1e-12, rtol: 1e-10 });
    expect(Array.from(grouped.counts.toArray())).toEqual(Array.from(loop.counts.toArray()));
    for (const [name, grad] of loop.grads) {
      const other = grouped.grads.get(name);
      if (!grad) {
        // an expert no token picked has no gradient in the loop; the grouped path gives zeros
        if (other) expect(Array.from(other.toArray()).every((v) => v === 0)).toBe(true);
        continue;
      }
      expectAllClose(other!, grad, { atol: 1e-12, rtol: 1e-10 });
    }
  });

  it.each([
    ['one token', [1, 1], 16],
    ['an odd width', [1, 3], 7],
  ])('%s', (_, shape, hidden) => {
    const loop = runBlock('sparsemixer-v2', 'loop', true, shape, hidden);
    const grouped = runBlock('sparsemixer-v2', 'grouped', true, shape, hidden);
    expectAllClose(grouped.out, loop.out, { atol: 1e-12, rtol: 1e-10 });
    expectAllClose(grouped.grads.get('x')!, loop.grads.get('x')!, { atol: 1e-12, rtol: 1e-10 });
  });
});

/** A forked router that sends every token to fixed experts (an empty expert, a full one, or a bad id). */
function fixedRouter(name: string, picks: number[]) {
  registerRouter({
    name,
    defaultTopK: picks.length,
    description: 'test fork: fixed picks',
    route(logits_TE, options) {
      const T = logits_TE.shape[0]!;
      const base = getRouter('gshard-top2').route(logits_TE, { ...options, topK: picks.length });
      const experts_TK = tensor(Array.from({ length: T }, () => picks).flat(), {
        shape: [T, picks.length],
        dtype: 'i32',
      });
      return { experts_TK, weights_TK: base.weights_TK, probs_TE: base.probs_TE };
    },
  });
  return name;
}

describe('moe: dropless invariants', () => {
  it.each(['loop', 'grouped'] as const)(
    '%s: every pick counted, empty experts, one expert taking all',
    (impl) => {
      for (const picks of [
        [2, 0],
        [1, 1],
      ]) {
        const router = fixedRouter(`fixed-${picks.join('-')}`, picks);
        const config = configFor(router);
        const model = initRandom(config, new Generator(3), { dtype: 'f64' });
        const x = tensor(
          Array.from({ length: 6 * 16 }, (_, i) => Math.sin(i)),
          { shape: [2, 3, 16], dtype: 'f64' },
        );
        const { out_BSD, balance } = moe(config, model.params, 0, x, {
          training: false,
          moeImplementation: impl,
        });
        const counts = Array.from(balance.counts_E.toArray());
        expect(counts.reduce((a, c) => a + c, 0)).toBe(6 * 2);
        expect(counts).toEqual([0, 1, 2, 3].map((e) => 6 * picks.filter((p) => p === e).length));
        // nothing dropped: every token's output is non-zero
        const out = out_BSD.toArray();
        for (let t = 0; t < 6; t++) expect(out.slice(t * 16, t * 16 + 16).some((v) => v !== 0)).toBe(true);
      }
    },
  );

  it.each([
    ['loop', 'MoE: the router picked expert 7 for token 0 (pick 1); valid ids are 0..3'],
    ['grouped', 'moe_permute: expert id 7 of token 0, pick 1 is outside 0..3'],
  ] as const)('%s: an out-of-range id from a forked router is refused', (impl, message) => {
    const config = configFor(fixedRouter('fixed-bad', [0, 7]));
    const model = initRandom(config, new Generator(3), { dtype: 'f64' });
    const x = tensor(
      Array.from({ length: 16 }, (_, i) => i),
      { shape: [1, 1, 16], dtype: 'f64' },
    );
    expect(() => moe(config, model.params, 0, x, { training: false, moeImplementation: impl })).toThrow(
      message,
    );
  });
});
