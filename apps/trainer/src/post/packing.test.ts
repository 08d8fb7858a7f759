// SFT packing: conversations packed first-fit into rows of seqLen tokens with document ids give the
// same assistant-token loss as one padded row each (f64 model, eval mode; the model's f32 RoPE
// tables bound the agreement at ~1e-7 relative), in fewer rows; a document's first token is never a
// target even when it is an assistant token; without the document mask the loss would differ.
// Run: cd apps/trainer && npx vitest run src/post/packing
import { initRandom, parseConfig, trainBpe } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { PLAIN_CHAT_TEMPLATE, tokenizeConversation } from './chat-data.js';
import { type PaddedRows, packRows, padRows } from './examples.js';
import { assistantLoss, maskedTargets } from './losses.js';

const questions = ['Name a colour.', 'And a number?', 'Which genre is this?', 'Say hi.', 'Finish: the cat'];
const answers = ['Red.', 'Seven, I think.', 'It is news.', 'Hi!', 'sat on the mat.'];
const tokenizer = trainBpe(
  [...questions, ...answers].map((t) => `Question: ${t}\nAnswer: ${t}`),
  { vocabSize: 300 },
);
const template = { template: PLAIN_CHAT_TEMPLATE, specialTokens: { eos_token: '</s>' }, source: 'plain' };
const examples = questions.map((q, i) =>
  tokenizeConversation(
    [
      { role: 'user', content: q },
      { role: 'assistant', content: answers[i]! },
    ],
    template,
    tokenizer,
    `example ${i}`,
  ),
);
const config = parseConfig({
  vocab_size: tokenizer.vocabSize,
  hidden_size: 16,
  intermediate_size: 8,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_local_experts: 4,
  num_experts_per_tok: 2,
  initializer_range: 0.3,
  max_position_embeddings: 256,
  sliding_window: 256,
});
const model = initRandom(config, new T.Generator(3), { dtype: 'f64' }).eval();

function loss(rows: PaddedRows, masked = true): number {
  const shape = [rows.rows, rows.length];
  const ids = T.tensor(rows.ids, { shape, dtype: 'i32' });
  const targets = T.tensor(maskedTargets(rows.ids, rows.learned, rows.rows, rows.length), {
    shape,
    dtype: 'i32',
  });
  const documents_BS =
    rows.documents && masked ? T.tensor(rows.documents, { shape, dtype: 'i32' }) : undefined;
  return assistantLoss(model.forward(ids, { documents_BS }).logits_BSV, targets).item();
}

describe('packRows', () => {
  it('packs first fit, with document ids, into fewer rows', () => {
    const longest = Math.max(...examples.map((e) => e.ids.length));
    const packed = packRows(examples, 2 * longest + 1, 0);
    expect(packed.rows).toBeLessThan(examples.length);
    expect(packed.tokens).toBe(examples.reduce((a, e) => a + e.ids.length, 0));
    const first = Array.from(packed.documents!.subarray(0, packed.length));
    expect(first.slice(0, examples[0]!.ids.length).every((d) => d === 0)).toBe(true);
    expect(first[examples[0]!.ids.length]).toBe(1);
  });

  it('the loss equals the padded batch, and would not without the document mask', () => {
    const padded = loss(padRows(examples, 0));
    const rows = packRows(examples, 2 * Math.max(...examples.map((e) => e.ids.length)), 0);
    expect(rows.rows).toBeLessThan(examples.length);
    expect(Math.abs(loss(rows) - padded)).toBeLessThan(1e-6 * Math.abs(padded));
    expect(Math.abs(loss(rows, false) - padded)).toBeGreaterThan(1e-4);
  });

  it("a document's first token is not a target, even an assistant one", () => {
    const leading = { ids: [5, 6, 7], assistant: [true, true, true] };
    const rows = packRows([examples[0]!, leading], 64, 0);
    const at = examples[0]!.ids.length;
    expect(Array.from(rows.learned.subarray(at, at + 3))).toEqual([0, 1, 1]);
  });
});
