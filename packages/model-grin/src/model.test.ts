// GrinModel beyond the fixtures: f64 gradients against central finite differences (tight), chunked
// forward with a KV cache equals one full forward, training mode (SparseMixer sampling, input
// jitter) is reproducible from a seed and reaches every routed parameter, every routed expert
// weight's training-mode gradient equals finite differences on sampled entries, and nothing leaks.
// Run: cd packages/model-grin && npx vitest run src/model
import { concat, Generator, liveStorages, noGrad, type Tensor, tidy } from '@grin-moe/tensor';
import { expectAllClose, expectNoLeaks } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { initRandom } from './init.js';
import { createKvCache, disposeKvCache, idsTensor, nextTokenLoss } from './model.js';

const config = parseConfig({
  vocab_size: 30,
  hidden_size: 16,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  sliding_window: 3,
  initializer_range: 0.3,
  attention_bias: true,
  lm_head_bias: true,
  rope_theta: 10000,
  input_jitter_noise: 0.01,
});
const rows = [
  [1, 5, 9, 2, 7, 7, 3, 11],
  [4, 0, 29, 13, 8, 6, 1, 2],
];

describe('GrinModel', () => {
  it('f64 gradients match central finite differences', () => {
    const model = initRandom(config, new Generator(5), { dtype: 'f64' });
    const ids = idsTensor(rows);
    const lossOf = () => noGrad(() => tidy(() => nextTokenLoss(model.forward(ids).logits_BSV, ids).item()));
    tidy(() => nextTokenLoss(model.forward(ids).logits_BSV, ids)).backward();
    const names = [
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.1.self_attn.v_proj.bias',
      'model.layers.0.block_sparse_moe.gate.weight',
      'model.layers.1.block_sparse_moe.experts.2.w2.weight',
      'model.layers.0.post_attention_layernorm.weight',
      'lm_head.bias',
    ];
    const eps = 1e-6;
    for (const name of names) {
      const p = model.params.get(name)!;
      const data = p.storage.data as Float64Array;
      const grad = (p.grad?.toArray() ?? new Float64Array(p.size)) as Float64Array;
      for (const i of [0, Math.floor(p.size / 2), p.size - 1]) {
        const at = p.offset + i;
        const saved = data[at]!;
        data[at] = saved + eps;
        const up = lossOf();
        data[at] = saved - eps;
        const down = lossOf();
        data[at] = saved;
        const numeric = (up - down) / (2 * eps);
        expect(
          Math.abs(grad[i]! - numeric),
          `${name}[${i}] analytic ${grad[i]} numeric ${numeric}`,
        ).toBeLessThan(1e-7 + 1e-6 * Math.abs(numeric));
      }
    }
  });

  it('a chunked forward through the KV cache equals one full forward', () => {
    const model = initRandom(config, new Generator(9), { dtype: 'f64' });
    noGrad(() => {
      const full = model.forward(idsTensor(rows)).logits_BSV;
      const cache = createKvCache(config);
      const parts: Tensor[] = [];
      for (const [start, end] of [
        [0, 5],
        [5, 6],
        [6, 8],
      ] as const) {
        parts.push(model.forward(idsTensor(rows.map((r) => r.slice(start, end))), { cache }).logits_BSV);
      }
      expect(cache.length).toBe(8);
      expect(cache.layers[0]!.key_BHkvSD!.shape[2]).toBe(2); // window 3: the last 2 keys
      expectAllClose(concat(parts, 1), full, { atol: 1e-12, rtol: 1e-12 }, 'chunked logits');
      disposeKvCache(cache);
    });
  });

  it('trains reproducibly from a seed and reaches every routed parameter', () => {
    const model = initRandom(config, new Generator(2)).train();
    const ids = idsTensor(rows);
    const step = (seed: number) =>
      tidy(() => {
        const { logits_BSV, balance } = model.forward(ids, { generator: new Generator(seed) });
        expect(balance).toHaveLength(2);
        expect(Array.from(balance[0]!.counts_E.toArray()).reduce((a, b) => a + b, 0)).toBe(16 * 2);
        return nextTokenLoss(logits_BSV, ids);
      });
    const a = step(1);
    const b = step(1);
    expect(a.item()).toBe(b.item());
    expect(step(2).item()).not.toBe(a.item());
    const evalLoss = noGrad(() =>
      tidy(() => nextTokenLoss(model.forward(ids, { training: false }).logits_BSV, ids).item()),
    );
    expect(evalLoss).not.toBe(a.item());
    a.backward();
    for (const [name, p] of model.namedParameters()) {
      if (!name.includes('.experts.')) expect(p.grad, name).toBeTruthy();
    }
  });

  it('training mode: every routed expert weight gets its finite-difference gradient (sampled entries)', () => {
    // With the draws replayed from one seed the picks stay put under a 1e-6 nudge, so an expert's
    // gradient is the plain derivative of the loss (the router's is an estimator, checked elsewhere).
    const model = initRandom(config, new Generator(6), { dtype: 'f64' }).train();
    const ids = idsTensor(rows);
    const forward = () => model.forward(ids, { generator: new Generator(11) });
    const lossOf = () => noGrad(() => tidy(() => nextTokenLoss(forward().logits_BSV, ids).item()));
    const counts = tidy(() => {
      const { logits_BSV, balance } = forward();
      nextTokenLoss(logits_BSV, ids).backward();
      return balance.map((b) => Array.from(b.counts_E.toArray()));
    });
    const pick = new Generator(13);
    const eps = 1e-6;
    let checked = 0;
    for (const [name, p] of model.namedParameters()) {
      const match = /^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\./.exec(name);
      if (!match) continue;
      const routed = counts[Number(match[1])]![Number(match[2])]! > 0;
      if (!routed) {
        expect(
          Array.from(p.grad?.toArray() ?? []).every((g) => g === 0),
          `${name}: no tokens, no gradient`,
        ).toBe(true);
        continue;
      }
      expect(p.grad, name).toBeTruthy();
      const grad = p.grad!.toArray() as Float64Array;
      expect(
        grad.some((g) => g !== 0),
        `${name}: routed tokens give a nonzero gradient`,
      ).toBe(true);
      const data = p.storage.data as Float64Array;
      for (const i of pick.randint(3, 0, p.size)) {
        const at = p.offset + i;
        const saved = data[at]!;
        data[at] = saved + eps;
        const up = lossOf();
        data[at] = saved - eps;
        const down = lossOf();
        data[at] = saved;
        const numeric = (up - down) / (2 * eps);
        expect(
          Math.abs(grad[i]! - numeric),
          `${name}[${i}] analytic ${grad[i]} numeric ${numeric}`,
        ).toBeLessThan(1e-8 + 1e-6 * Math.abs(numeric));
        checked++;
      }
    }
    // 2 layers x 4 experts x 3 weights, 3 entries each where the expert was routed to
    expect(checked).toBe(counts.flat().filter((c) => c > 0).length * 3 * 3);
    expect(checked).toBeGreaterThanOrEqual(2 * 2 * 3 * 3);
  });

  it('an eval forward frees everything it allocates; the rotary tables it keeps go with the model', () => {
    const empty = liveStorages();
    const model = initRandom(config, new Generator(3));
    const ids = idsTensor(rows);
    const forward = () => noGrad(() => tidy(() => void model.forward(ids).logits_BSV.toArray()));
    const before = liveStorages();
    forward(); // the first forward builds the model's cos / sin tables (two storages)
    expect(liveStorages() - before).toBe(2);
    expectNoLeaks(forward);
    model.dispose();
    ids.dispose();
    expect(liveStorages()).toBe(empty);
  });
});
