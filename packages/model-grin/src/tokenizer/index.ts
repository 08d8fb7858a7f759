// Public API of the tokenizer folder: the Tokenizer interface, loadTokenizer (tokenizer.json),
// phi3Tokenizer + applyPhi3ChatTemplate (GRIN / Phi-3.5-MoE), renderChatTemplate (any checkpoint's
// Jinja template), trainBpe, createStreamDecoder.
// Test: cd packages/model-grin && npx vitest run src/tokenizer

export { TRAINED_SPECIAL_TOKENS, type TrainBpeOptions, trainBpe, trainBpeJson } from './bpe-trainer.js';
export {
  type ChatMessage,
  chatTemplateOf,
  type RenderChatOptions,
  renderChatTemplate,
  specialTokenStrings,
} from './chat-template.js';
export { HfTokenizer, type HfTokenizerOptions, loadTokenizer } from './hf-tokenizer.js';
export {
  applyPhi3ChatTemplate,
  PHI3_CHAT_TEMPLATE,
  PHI3_IDS,
  PHI3_STOP_IDS,
  PHI3_TOKENIZER_CONFIG,
  PHI3_VOCAB_SIZE,
  type Phi3JsonOptions,
  phi3Tokenizer,
  phi3TokenizerJson,
} from './phi3.js';
export { createStreamDecoder, type StreamDecoder, type StreamDecoderOptions } from './stream-decoder.js';
export type {
  AddedTokenJson,
  DecodeOptions,
  EncodeOptions,
  SpecialIds,
  Tokenizer,
  TokenizerConfigJson,
  TokenizerJson,
} from './types.js';
