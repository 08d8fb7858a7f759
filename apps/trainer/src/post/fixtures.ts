// A tiny base model (2 layers, width 32, 4 experts, a BPE of 300 tokens) with an 18-conversation
// chat set and its preference set, written to a folder: the inputs of the post-training tests and
// of the CPU vs CUDA post-training parity (device-parity.ts).
// Test: cd apps/trainer && npx vitest run src/post/post.test.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initRandom, parseConfig, saveModel, trainBpe } from '@grin-moe/model-grin';
import { Generator } from '@grin-moe/tensor';

export interface PostFixture {
  modelDir: string;
  /** Chat JSONL for sft. */
  chatFile: string;
  /** Preference JSONL for dpo (the chat answers chosen, a refusal rejected). */
  prefFile: string;
}

const colors = ['red', 'green', 'blue', 'amber', 'violet', 'white'];

export const fixtureChats = colors.flatMap((color, i) =>
  [0, 1, 2].map((k) => ({
    messages: [
      { role: 'user', content: `Name colour ${i * 3 + k}.` },
      { role: 'assistant', content: `It is ${color}.` },
    ],
  })),
);

export function writePostFixture(root: string): PostFixture {
  const chatFile = join(root, 'chat.jsonl');
  writeFileSync(chatFile, fixtureChats.map((c) => `${JSON.stringify(c)}\n`).join(''));
  const prefFile = join(root, 'pref.jsonl');
  writeFileSync(
    prefFile,
    fixtureChats
      .map((c, i) =>
        JSON.stringify({
          prompt: c.messages[0]!.content,
          chosen: c.messages[1]!.content,
          rejected: `No idea, sorry ${i}.`,
        }),
      )
      .join('\n'),
  );
  const modelDir = join(root, 'base');
  const tokenizer = trainBpe(
    fixtureChats.map((c) => `Question: ${c.messages[0]!.content}\nAnswer: ${c.messages[1]!.content}`),
    { vocabSize: 300 },
  );
  const config = parseConfig({
    vocab_size: tokenizer.vocabSize,
    hidden_size: 32,
    intermediate_size: 16,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_local_experts: 4,
    num_experts_per_tok: 2,
    max_position_embeddings: 64,
    sliding_window: 64,
  });
  saveModel(modelDir, initRandom(config, new Generator(5), { dtype: 'f32' }));
  tokenizer.save(modelDir);
  return { modelDir, chatFile, prefFile };
}
