// A small SentencePiece-style BPE trainer for the embedded default training run: spaces become
// '▁', words are counted once in a frequency dictionary, pair counts are updated incrementally and
// the best pair comes from a max-heap. The result is a Hugging Face tokenizer.json (BPE, byte
// fallback, Llama-2 layout) that loadTokenizer reads back. Test: npx vitest run src/tokenizer/bpe-trainer.test.ts

import { HfTokenizer } from './hf-tokenizer.js';
import {
  byteToken,
  SENTENCEPIECE_DECODER,
  SENTENCEPIECE_LEGACY_NORMALIZER,
  specialToken,
  type TokenizerJson,
} from './types.js';

export interface TrainBpeOptions {
  /** Total tokens: 4 specials + 256 byte pieces + characters + merges. Default 4096. */
  vocabSize?: number;
  /** A pair (and a character) must occur this often to enter the vocabulary. Default 2. */
  minFrequency?: number;
  /** At most this many single characters; rarer ones fall back to bytes. Default 1000. */
  maxCharacters?: number;
}

export const TRAINED_SPECIAL_TOKENS = ['<unk>', '<s>', '</s>', '<pad>'] as const;
const NOT_MERGEABLE = -1;
const PAIR_BASE = 65536; // pair key = left * PAIR_BASE + right; ids stay below 2^16

/** Splits text the way the encoder sees it: '▁' starts a word, each '\n' is a word of its own. */
function countWords(texts: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const text of texts) {
    if (text.length === 0) continue;
    const lines = `▁${text.replaceAll(' ', '▁')}`.split('\n');
    lines.forEach((line, index) => {
      if (index > 0) counts.set('\n', (counts.get('\n') ?? 0) + 1);
      for (const word of line.split(/(?=▁)/)) {
        if (word.length > 0) counts.set(word, (counts.get(word) ?? 0) + 1);
      }
    });
  }
  return counts;
}

/** Max-heap of (count, pair key); ties go to the smaller key so training is deterministic. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): [count: number, key: number] {
    const top: [number, number] = [this.counts[0]!, this.keys[0]!];
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let best = i;
        if (left < this.counts.length && this.before(left, best)) best = left;
        if (right < this.counts.length && this.before(right, best)) best = right;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }

  private before(i: number, j: number): boolean {
    const ci = this.counts[i]!;
    const cj = this.counts[j]!;
    return ci > cj || (ci === cj && this.keys[i]! < this.keys[j]!);
  }

  private swap(i: number, j: number): void {
    [this.counts[i], this.counts[j]] = [this.counts[j]!, this.counts[i]!];
    [this.keys[i], this.keys[j]] = [this.keys[j]!, this.keys[i]!];
  }
}

/** Learns the vocabulary and merges; returns the tokenizer.json. */
export function trainBpeJson(texts: readonly string[], options: TrainBpeOptions = {}): TokenizerJson {
  const vocabSize = options.vocabSize ?? 4096;
  const minFrequency = Math.max(1, options.minFrequency ?? 2);
  const maxCharacters = options.maxCharacters ?? 1000;
  const baseSize = TRAINED_SPECIAL_TOKENS.length + 256;
  if (vocabSize < baseSize + 1 || vocabSize > PAIR_BASE) {
    throw new Error(`trainBpe: vocabSize (${vocabSize}) must be between ${baseSize + 1} and ${PAIR_BASE}`);
  }
  const tokens: string[] = [...TRAINED_SPECIAL_TOKENS];
  for (let byte = 0; byte < 256; byte++) tokens.push(byteToken(byte));

  const wordCounts = countWords(texts);
  const charCounts = new Map<string, number>();
  for (const [word, count] of wordCounts) {
    for (const char of word) charCounts.set(char, (charCounts.get(char) ?? 0) + count);
  }
  const characters = [...charCounts]
    .filter(([, count]) => count >= minFrequency)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, Math.min(maxCharacters, vocabSize - baseSize))
    .map(([char]) => char);
  tokens.push(...characters);
  const idOf = new Map(tokens.map((token, id) => [token, id]));

  // Words as symbol ids; characters outside the alphabet are barriers that never merge.
  const words: number[][] = [];
  const frequencies: number[] = [];
  for (const [word, count] of wordCounts) {
    words.push(Array.from(word, (char) => idOf.get(char) ?? NOT_MERGEABLE));
    frequencies.push(count);
  }
  const pairCounts = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addPair = (left: number, right: number, word: number, delta: number) => {
    if (left === NOT_MERGEABLE || right === NOT_MERGEABLE) return;
    const key = left * PAIR_BASE + right;
    const count = (pairCounts.get(key) ?? 0) + delta;
    if (count > 0) pairCounts.set(key, count);
    else pairCounts.delete(key);
    if (delta > 0) {
      let set = pairWords.get(key);
      if (!set) pairWords.set(key, (set = new Set()));
      set.add(word);
    }
  };
  words.forEach((symbols, w) => {
    for (let i = 0; i + 1 < symbols.length; i++) addPair(symbols[i]!, symbols[i + 1]!, w, frequencies[w]!);
  });
  const heap = new PairHeap();
  for (const [key, count] of pairCounts) heap.push(count, key);

  const merges: string[] = [];
  while (tokens.length < vocabSize && heap.size > 0) {
    const [stored, key] = heap.pop();
    const count = pairCounts.get(key) ?? 0;
    if (count !== stored) {
      if (count > 0) heap.push(count, key); // counts only fell since the push: re-queue
      continue;
    }
    if (count < minFrequency) break;
    const left = Math.floor(key / PAIR_BASE);
    const right = key % PAIR_BASE;
    const merged = tokens[left]! + tokens[right]!;
    let mergedId = idOf.get(merged);
    if (mergedId === undefined) {
      mergedId = tokens.length;
      tokens.push(merged);
      idOf.set(merged, mergedId);
    }
    merges.push(`${tokens[left]} ${tokens[right]}`);
    const touched = new Set<number>();
    for (const w of pairWords.get(key) ?? []) {
      const symbols = words[w]!;
      const frequency = frequencies[w]!;
      for (let i = 0; i + 1 < symbols.length; i++) {
        if (symbols[i] !== left || symbols[i + 1] !== right) continue;
        if (i > 0) {
          addPair(symbols[i - 1]!, left, w, -frequency);
          addPair(symbols[i - 1]!, mergedId, w, frequency);
          touched.add(symbols[i - 1]! * PAIR_BASE + mergedId);
        }
        if (i + 2 < symbols.length) {
          addPair(right, symbols[i + 2]!, w, -frequency);
          addPair(mergedId, symbols[i + 2]!, w, frequency);
          touched.add(mergedId * PAIR_BASE + symbols[i + 2]!);
        }
        symbols.splice(i, 2, mergedId);
      }
    }
    pairCounts.delete(key);
    pairWords.delete(key);
    for (const newKey of touched) {
      const newCount = pairCounts.get(newKey);
      if (newCount !== undefined) heap.push(newCount, newKey);
    }
  }

  const vocab: Record<string, number> = {};
  tokens.forEach((token, id) => {
    vocab[token] = id;
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TRAINED_SPECIAL_TOKENS.map((token, id) => specialToken(id, token)),
    normalizer: SENTENCEPIECE_LEGACY_NORMALIZER,
    pre_tokenizer: null,
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
      merges,
    },
  };
}

/** Trains a byte-fallback BPE tokenizer: <unk>=0, <s>=1, </s>=2, <pad>=3. */
export function trainBpe(texts: readonly string[], options: TrainBpeOptions = {}): HfTokenizer {
  return new HfTokenizer(trainBpeJson(texts, options), {
    config: {
      bos_token: '<s>',
      eos_token: '</s>',
      pad_token: '<pad>',
      unk_token: '<unk>',
      add_bos_token: true,
    },
  });
}
