// Packed sequences (forward(ids, { documents_BS })): two documents in one row give each document the
// logits it gets alone (f64; RoPE is relative, so the second document's offset changes nothing but
// rounding; the test gives RoPE tables computed in f64, as the model's own are f32 like
// transformers'), in both MoE implementations, and without the document mask they would not.
// Run: cd packages/model-grin && npx vitest run src/packed
import { Generator, ropeTables, type Tensor, tensor } from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.js';
import { initRandom } from './init.js';
import { idsTensor } from './model.js';

const config = parseConfig({
  vocab_size: 24,
  hidden_size: 16,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_local_experts: 4,
  num_experts_per_tok: 2,
  initializer_range: 0.5,
  max_position_embeddings: 32,
  sliding_window: 32,
});
const docA = [3, 17, 5, 9, 22];
const docB = [8, 1, 14, 6];

/** cos/sin [S, Dh] of positions 0..S-1 in f64 (the model's own tables are f32, ~1e-7 apart). */
const rotary = (S: number) =>
  ropeTables(
    Array.from({ length: S }, (_, i) => i),
    config.headDim,
    config.ropeTheta,
    { dtype: 'f64' },
  );

function rows(t: Tensor, V: number): number[][] {
  const values = Array.from(t.toArray() as Float64Array);
  return Array.from({ length: values.length / V }, (_, i) => values.slice(i * V, (i + 1) * V));
}

describe('packed documents', () => {
  it.each(['loop', 'grouped'] as const)(
    '%s: each document gets the logits it gets alone',
    (moeImplementation) => {
      const model = initRandom(config, new Generator(4), { dtype: 'f64' }).eval();
      const V = config.vocabSize;
      const alone = [docA, docB].flatMap((doc) =>
        rows(
          model.forward(idsTensor([doc]), { moeImplementation, rotary: rotary(doc.length) }).logits_BSV,
          V,
        ),
      );
      const documents_BS = tensor([...docA.map(() => 0), ...docB.map(() => 1)], {
        shape: [1, 9],
        dtype: 'i32',
      });
      const packed = model.forward(idsTensor([[...docA, ...docB]]), {
        documents_BS,
        moeImplementation,
        rotary: rotary(9),
      }).logits_BSV;
      expectAllClose(packed, alone.flat(), { atol: 1e-12, rtol: 1e-10 });
      // without the mask the second document sees the first
      const unmasked = rows(
        model.forward(idsTensor([[...docA, ...docB]]), { moeImplementation, rotary: rotary(9) }).logits_BSV,
        V,
      );
      expect(Math.abs(unmasked[6]![0]! - alone[6]![0]!)).toBeGreaterThan(1e-6);
    },
  );

  it('refuses documents with a KV cache', () => {
    const model = initRandom(config, new Generator(4), { dtype: 'f64' });
    const cache = { layers: [], length: 0 };
    expect(() =>
      model.forward(idsTensor([docA]), {
        documents_BS: tensor([0, 0, 0, 0, 0], { shape: [1, 5], dtype: 'i32' }),
        cache,
      }),
    ).toThrow('documents_BS (packed sequences) cannot be used with a KV cache');
  });
});
