// A Tokenizer over a Hugging Face tokenizer.json, run by @huggingface/tokenizers (pure JS, no
// native or wasm part), plus loadTokenizer(modelDir) which reads tokenizer.json, the optional
// tokenizer_config.json (special token names) and config.json (vocab_size, for padded embeddings).
// Test: cd packages/model-grin && npx vitest run src/tokenizer/hf-tokenizer.test.ts

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import type {
  DecodeOptions,
  EncodeOptions,
  SpecialIds,
  Tokenizer,
  TokenizerConfigJson,
  TokenizerJson,
} from './types.js';

export interface HfTokenizerOptions {
  /** Embedding rows; defaults to the largest token id + 1. Smaller than that is an error. */
  vocabSize?: number;
  config?: TokenizerConfigJson;
  /** Overrides the ids found from the config's token names. */
  specialIds?: SpecialIds;
  stopIds?: number[];
  /** Added to stopIds (config.json's eos_token_id list, for example). */
  extraStopIds?: number[];
  /** Run BPE word by word with a cache where that cannot change the result (default true). */
  wordCache?: boolean;
}

interface BpeModel {
  vocab: string[];
  bpe(token: string): string[];
}

/**
 * SentencePiece-style BPE runs over a whole segment ("▁The▁jury▁said"), which is slow for long
 * paragraphs. When no token holds '▁' after another character, no merge can cross the start of a
 * '▁' run, so BPE per word (each word cached) gives the same pieces, several times faster.
 */
function installWordCache(model: BpeModel | null): void {
  if (!model || typeof model.bpe !== 'function' || !Array.isArray(model.vocab)) return;
  if (model.vocab.some((token) => typeof token === 'string' && /[^▁]▁/.test(token))) return;
  const wholeSegment = model.bpe.bind(model);
  model.bpe = (token: string) => {
    const words = token.split(/(?<=[^▁])(?=▁)/);
    return words.length === 1 ? wholeSegment(token) : words.flatMap(wholeSegment);
  };
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly specialIds: SpecialIds;
  readonly stopIds: readonly number[];
  readonly json: TokenizerJson;
  readonly config: TokenizerConfigJson;
  private readonly library: HfLibraryTokenizer;
  private readonly tokenById: (string | undefined)[] = [];
  private readonly idByToken = new Map<string, number>();
  private readonly specialSet: Set<number>;

  constructor(json: TokenizerJson, options: HfTokenizerOptions = {}) {
    if (json.model?.type !== 'BPE') {
      throw new Error(
        `tokenizer.json: model.type is ${JSON.stringify(json.model?.type)}; only "BPE" is supported`,
      );
    }
    this.json = json;
    this.config = options.config ?? {};
    for (const [token, id] of Object.entries(json.model.vocab)) this.setToken(token, id);
    for (const added of json.added_tokens) this.setToken(added.content, added.id);
    this.specialSet = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
    const tokenCount = this.tokenById.length;
    this.vocabSize = options.vocabSize ?? tokenCount;
    if (this.vocabSize < tokenCount) {
      throw new Error(
        `vocab_size (${this.vocabSize}) is smaller than the largest token id + 1 (${tokenCount})`,
      );
    }
    this.specialIds = options.specialIds ?? this.specialIdsFromConfig();
    const stopIds = options.stopIds ?? (this.specialIds.eos === undefined ? [] : [this.specialIds.eos]);
    this.stopIds = [...new Set([...stopIds, ...(options.extraStopIds ?? [])])];
    this.library = new HfLibraryTokenizer(json, { clean_up_tokenization_spaces: false, ...this.config });
    if (options.wordCache ?? true) installWordCache(this.library.model as unknown as BpeModel | null);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = text.length === 0 ? [] : this.library.encode(text, { add_special_tokens: false }).ids;
    if (opts.addBos && this.specialIds.bos !== undefined) ids.unshift(this.specialIds.bos);
    return ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    // Padding rows (e.g. Phi-3's 32011..32063) have no token: they decode to nothing.
    const known = ids.filter((id) => this.tokenById[id] !== undefined);
    if (known.length === 0) return '';
    return this.library.decode(known, {
      skip_special_tokens: opts.skipSpecial ?? false,
      clean_up_tokenization_spaces: false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.idByToken.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenById[id];
  }

  isSpecial(id: number): boolean {
    return this.specialSet.has(id);
  }

  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(this.json, null, 2));
    const name = (id: number | undefined) => (id === undefined ? null : (this.tokenById[id] ?? null));
    const config: TokenizerConfigJson = {
      ...this.config,
      bos_token: name(this.specialIds.bos),
      eos_token: name(this.specialIds.eos),
      pad_token: name(this.specialIds.pad),
      unk_token: name(this.specialIds.unk),
      tokenizer_class: this.config.tokenizer_class ?? 'LlamaTokenizer',
    };
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config, null, 2));
  }

  private setToken(token: string, id: number): void {
    this.tokenById[id] = token;
    this.idByToken.set(token, id);
  }

  private specialIdsFromConfig(): SpecialIds {
    // tokenizer_config.json may hold a name or an AddedToken object {content: ...}.
    const lookup = (value: unknown, fallbacks: string[]): number | undefined => {
      const name = typeof value === 'string' ? value : (value as { content?: string } | null)?.content;
      if (name !== undefined && name !== null) return this.idByToken.get(name);
      if (value === null) return undefined;
      for (const fallback of fallbacks) {
        const id = this.idByToken.get(fallback);
        if (id !== undefined) return id;
      }
      return undefined;
    };
    const c = this.config;
    return {
      bos: lookup(c.bos_token, ['<s>', '<|begin_of_text|>', '<bos>']),
      eos: lookup(c.eos_token, ['</s>', '<|endoftext|>', '<|end_of_text|>', '<eos>']),
      pad: lookup(c.pad_token, ['<pad>']),
      unk: lookup(c.unk_token ?? this.json.model.unk_token, ['<unk>']),
    };
  }
}

function readJson<T>(path: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${path}: cannot read (${(error as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new Error(`${path}: not valid JSON (${(error as Error).message})`);
  }
}

/**
 * Loads a tokenizer from a model directory holding a Hugging Face tokenizer.json (BPE), e.g. a
 * downloaded Phi-3.5-MoE or GRIN-MoE checkpoint, or a directory written by Tokenizer.save().
 */
export function loadTokenizer(modelDir: string): HfTokenizer {
  const tokenizerPath = join(modelDir, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    throw new Error(`${tokenizerPath} not found: a model directory needs a Hugging Face tokenizer.json`);
  }
  const json = readJson<TokenizerJson>(tokenizerPath);
  const configPath = join(modelDir, 'tokenizer_config.json');
  const config = existsSync(configPath) ? readJson<TokenizerConfigJson>(configPath) : {};
  const modelConfigPath = join(modelDir, 'config.json');
  const modelConfig = existsSync(modelConfigPath)
    ? readJson<{ vocab_size?: number; eos_token_id?: number | number[] }>(modelConfigPath)
    : {};
  const tokenCount =
    Math.max(-1, ...Object.values(json.model?.vocab ?? {}), ...(json.added_tokens ?? []).map((t) => t.id)) +
    1;
  const vocabSize = Math.max(tokenCount, modelConfig.vocab_size ?? 0);
  const extraStopIds = [modelConfig.eos_token_id ?? []].flat();
  return new HfTokenizer(json, { vocabSize, config, extraStopIds });
}
