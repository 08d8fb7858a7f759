// The tokenizer interface every tokenizer in this package implements, and the subset of the
// Hugging Face tokenizer.json schema we read and write (BPE model, SentencePiece-style '▁').
// Implementations: hf-tokenizer.ts (any tokenizer.json), phi3.ts, bpe-trainer.ts.
// Test: cd packages/model-grin && npx vitest run src/tokenizer

export interface SpecialIds {
  bos?: number;
  eos?: number;
  pad?: number;
  unk?: number;
}

export interface EncodeOptions {
  /** Prepend the BOS id (when the tokenizer has one). Default false. */
  addBos?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<s>, </s>, <|end|>, ...) from the text. Default false. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  /** Rows of the embedding: may exceed the number of tokens (Phi-3 pads 32011 -> 32064). */
  readonly vocabSize: number;
  readonly specialIds: SpecialIds;
  /** Ids that end generation (eos, and for chat models the end-of-turn tokens). */
  readonly stopIds: readonly number[];
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** Whether the id is an added special token (skipped by decode with skipSpecial). */
  isSpecial(id: number): boolean;
  /** Writes tokenizer.json and tokenizer_config.json into dir (created if missing). */
  save(dir: string): void;
}

/** One entry of tokenizer.json's added_tokens. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of a Hugging Face tokenizer.json that a BPE tokenizer needs. */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: unknown;
  pre_tokenizer: unknown;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string | null;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges?: boolean;
    vocab: Record<string, number>;
    merges: string[] | [string, string][];
  };
}

/** The tokenizer_config.json fields we read and write. */
export interface TokenizerConfigJson {
  bos_token?: string | null;
  eos_token?: string | null;
  pad_token?: string | null;
  unk_token?: string | null;
  add_bos_token?: boolean;
  chat_template?: string;
  [key: string]: unknown;
}

export function specialToken(id: number, content: string, rstrip = false): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip, normalized: false, special: true };
}

/** SentencePiece byte-fallback piece for a byte: 0x0a -> '<0x0A>'. */
export function byteToken(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`;
}

/** The Llama-2 decoder: '▁' -> ' ', byte pieces -> bytes, drop the one space the encoder prepended. */
export const SENTENCEPIECE_DECODER = {
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};

/** The Llama-2 ("legacy") normalizer: prepend '▁' to every text segment, spaces become '▁'. */
export const SENTENCEPIECE_LEGACY_NORMALIZER = {
  type: 'Sequence',
  normalizers: [
    { type: 'Prepend', prepend: '▁' },
    { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
  ],
};
