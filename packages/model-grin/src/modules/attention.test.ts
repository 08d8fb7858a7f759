// The attention implementation choice: 'fused' (the sdpa op) gives the eager path's output and every
// gradient (f64 on the CPU, where both kernels are the reference ones), with GQA, a window shorter
// than the sequence and a KV cache; 'auto' stays eager on the CPU and where packed documents need
// their mask; 'fused' with that mask and unknown names are refused.
// Run: cd packages/model-grin && npx vitest run src/modules/attention
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { initRandom } from '../init.js';
import { createKvCache, idsTensor } from '../model.js';
import { type AttentionImplementation, usesFusedAttention } from './attention.js';

const config = parseConfig({
  vocab_size: 24,
  hidden_size: 32,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  num_experts_per_tok: 2,
  initializer_range: 0.5,
  max_position_embeddings: 64,
  sliding_window: 6,
  attention_bias: true,
});
const ids = [3, 17, 5, 9, 22, 8, 1, 14, 6, 11, 2, 19, 7];

/** Logits and every parameter's gradient of a next-token-style loss, in f64. */
function run(implementation: AttentionImplementation) {
  const model = initRandom(config, new T.Generator(4), { dtype: 'f64' });
  for (const p of model.parameters()) p.setRequiresGrad();
  const { logits_BSV } = model.forward(idsTensor([ids]), {
    training: false,
    attentionImplementation: implementation,
  });
  const up = T.tensor(new T.Generator(9).normal(logits_BSV.size, 'f64'), {
    shape: [...logits_BSV.shape],
    dtype: 'f64',
  });
  T.sum(T.mul(logits_BSV, up)).backward();
  return { logits_BSV, grads: model.namedParameters().map(([name, p]) => [name, p.grad] as const) };
}

describe('attention implementations', () => {
  it("'fused' gives the eager path's logits and every gradient (f64, GQA, window 6 < S = 13)", () => {
    const fused = run('fused');
    const eager = run('eager');
    expectAllClose(fused.logits_BSV, eager.logits_BSV, { atol: 1e-12, rtol: 1e-10 }, 'logits');
    let attentionGrads = 0;
    eager.grads.forEach(([name, g], i) => {
      const other = fused.grads[i]![1];
      if (!g) return expect(other).toBeNull();
      expectAllClose(other!, g, { atol: 1e-12, rtol: 1e-9 }, name);
      if (name.includes('self_attn')) attentionGrads++;
    });
    expect(attentionGrads).toBe(2 * 8); // q/k/v/o weights and biases of both layers
  });

  it("'fused' with a KV cache: prefill then one token at a time, as the eager path", () => {
    const logits = (implementation: AttentionImplementation) => {
      const model = initRandom(config, new T.Generator(4), { dtype: 'f64' });
      const cache = createKvCache(config);
      const out = [
        model.forward(idsTensor([ids.slice(0, 8)]), { cache, attentionImplementation: implementation }),
      ];
      for (const id of ids.slice(8))
        out.push(model.forward(idsTensor([[id]]), { cache, attentionImplementation: implementation }));
      return out.map((o) => o.logits_BSV);
    };
    const fused = logits('fused');
    logits('eager').forEach((l, i) =>
      expectAllClose(fused[i]!, l, { atol: 1e-12, rtol: 1e-10 }, `step ${i}`),
    );
  });

  it("'auto' is eager on the CPU and with packed documents, fused elsewhere", () => {
    const mask = T.zeros([1, 2, 2], { dtype: 'bool' });
    expect(usesFusedAttention(undefined, 'cpu', undefined)).toBe(false);
    expect(usesFusedAttention('auto', 'cuda', undefined)).toBe(true);
    expect(usesFusedAttention('auto', 'cuda', mask)).toBe(false);
    expect(usesFusedAttention('eager', 'cuda', undefined)).toBe(false);
    expect(usesFusedAttention('fused', 'cpu', undefined)).toBe(true);
  });

  it("refuses 'fused' with packed documents, and unknown names", () => {
    const model = initRandom(config, new T.Generator(4));
    const documents_BS = T.tensor([0, 0, 1, 1], { shape: [1, 4], dtype: 'i32' });
    expect(() =>
      model.forward(idsTensor([ids.slice(0, 4)]), { documents_BS, attentionImplementation: 'fused' }),
    ).toThrow("attention: implementation 'fused' cannot apply packed documents' mask (documents_BS)");
    expect(() =>
      model.forward(idsTensor([ids.slice(0, 4)]), {
        attentionImplementation: 'flash' as AttentionImplementation,
      }),
    ).toThrow("attention: implementation must be 'auto', 'eager' or 'fused', got 'flash'");
  });
});
