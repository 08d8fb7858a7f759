// Shared by the tests: a tiny real model (random weights, 2 layers, 4 experts top-2) with a BPE
// tokenizer trained on the fixture texts, and the float64 reference arithmetic the tests check
// the analyses against (log-softmax of a row, next-token log-probs by a direct loop over logits).
// Test: cd packages/eval && npx vitest run src
import { join } from 'node:path';
import { type GrinModel, initRandom, parseConfig, type Tokenizer, trainBpe } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';

export const fixtures = join(import.meta.dirname, '..', 'fixtures');

const texts = [
  'The cat sat on the mat. The dog ran to the park. A man is washing a car.',
  'Question: Which animal says meow? Answer: cat. What is 2 + 2? Answer: 4.',
  'The jury said the election was conducted well. She walked into the dark room.',
  'The following are multiple choice questions (with answers) about astronomy. A. B. C. D.',
];

export function tinyModel(
  seed = 3,
  overrides: Record<string, unknown> = {},
): { model: GrinModel; tokenizer: Tokenizer } {
  const tokenizer = trainBpe(texts, { vocabSize: 300, minFrequency: 1 });
  const config = parseConfig({
    vocab_size: 304,
    hidden_size: 16,
    intermediate_size: 12,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_local_experts: 4,
    num_experts_per_tok: 2,
    max_position_embeddings: 512,
    sliding_window: 64,
    rope_theta: 10000,
    initializer_range: 0.3,
    eos_token_id: 2,
    ...overrides,
  });
  return { model: initRandom(config, new T.Generator(seed)).eval(), tokenizer };
}

export function logSoftmaxRow(values: ArrayLike<number>, offset: number, length: number): Float64Array {
  let max = -Infinity;
  for (let v = 0; v < length; v++) max = Math.max(max, values[offset + v]!);
  let total = 0;
  for (let v = 0; v < length; v++) total += Math.exp(values[offset + v]! - max);
  const out = new Float64Array(length);
  for (let v = 0; v < length; v++) out[v] = values[offset + v]! - max - Math.log(total);
  return out;
}

/** log p(ids[s+1] | ids[..s]) for s = 0..n-2, from one unbatched forward pass and a loop over the logits. */
export function referenceLogProbs(model: GrinModel, ids: number[]): number[] {
  const V = model.config.vocabSize;
  const logits = T.noGrad(() =>
    T.tidy(() =>
      model
        .forward(T.tensor(Int32Array.from(ids), { shape: [1, ids.length], dtype: 'i32' }), {
          training: false,
        })
        .logits_BSV.toArray(),
    ),
  );
  const out: number[] = [];
  for (let s = 0; s + 1 < ids.length; s++) out.push(logSoftmaxRow(logits, s * V, V)[ids[s + 1]!]!);
  return out;
}
