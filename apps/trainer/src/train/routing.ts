// Routing analysis written into the run directory at the end of training, on up to 16 windows of
// each genre of the validation split, through @grin-moe/eval (each window routed once): expert-load.json
// (eval expertLoad), genre.json (per genre, picks per expert per layer), eval/category-similarity.json
// (categorySimilarity, GRIN Fig. 6) and token-routing.json (tokenRouting of the first validation
// sentences, Fig. 7): every file the dashboard's routing panels read.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { categorySimilarity, expertLoad, routingCounts, tokenRouting } from '@grin-moe/eval';
import type { GrinModel, Tokenizer } from '@grin-moe/model-grin';
import type { TrainConfig } from './config.js';
import type { TokenStream } from './dataset.js';

export interface ValidationWindows {
  /** The whole validation stream: tokens and the category (genre) of each. */
  stream: TokenStream;
}

/** Windows routed per category: 16 x 64 tokens of each genre at the default sequence length. */
const WINDOWS_PER_CATEGORY = 16;

/**
 * Up to `limit` windows of `seqLen` tokens per category, in stream order, each window wholly of
 * that category: every genre is represented, not only the first ones of the stream.
 */
export function windowsByCategory(stream: TokenStream, seqLen: number, limit: number): number[][][] {
  const windows: number[][][] = stream.categories.map(() => []);
  let start = 0;
  while (start + seqLen <= stream.tokens.length) {
    const c = stream.categoryOf[start]!;
    const end = start + seqLen;
    if (stream.categoryOf[end - 1] === c && windows[c]!.length < limit) {
      windows[c]!.push(Array.from(stream.tokens.subarray(start, end)));
      start = end;
    } else {
      // skip to the next category boundary, so windows never straddle two documents' genres
      while (start < stream.tokens.length && stream.categoryOf[start] === c) start++;
    }
  }
  return windows;
}

const normalise = (row: number[]) => {
  const total = row.reduce((a, b) => a + b, 0);
  return row.map((v) => (total > 0 ? v / total : 0));
};

const writeJson = (path: string, value: unknown) => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
};

/**
 * The first validation window decoded, cut after its last full sentence (or whole), whitespace folded: the
 * text whose tokens the token-routing view shows (short enough to read one token per column).
 */
export function sampleSentences(tokenizer: Tokenizer, stream: TokenStream, seqLen: number): string {
  const text = tokenizer
    .decode(Array.from(stream.tokens.subarray(0, seqLen)), { skipSpecial: true })
    .replace(/\s+/g, ' ')
    .trim();
  // A sentence ends after a lower-case word of 3+ letters, so 'Sen.' and 'J.' do not end one.
  const ends = [...text.matchAll(/(?<![A-Za-z])[a-z]{3,}[.!?](?= )/g)];
  const last = ends.at(-1);
  return last ? text.slice(0, last.index + last[0].length) : text;
}

export function writeRoutingReport(
  runDir: string,
  model: GrinModel,
  validation: ValidationWindows,
  config: TrainConfig,
  tokenizer: Tokenizer,
): void {
  const { seqLen } = config.data;
  const { numHiddenLayers: L, numLocalExperts: E } = model.config;
  const { stream } = validation;
  const total = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  const distributions: Record<string, number[][]> = {};
  const tokens: Record<string, number> = {};
  windowsByCategory(stream, seqLen, WINDOWS_PER_CATEGORY).forEach((windows, c) => {
    if (!windows.length) return;
    const counts = routingCounts(model, windows, config.optim.batchSize);
    counts.forEach((row, l) => row.forEach((n, e) => (total[l]![e]! += n)));
    distributions[stream.categories[c]!] = counts.map(normalise);
    tokens[stream.categories[c]!] = windows.length * seqLen;
  });
  const routed = Object.values(tokens).reduce((a, b) => a + b, 0);
  writeJson(join(runDir, 'routing', 'expert-load.json'), expertLoad(total, routed));
  writeJson(join(runDir, 'routing', 'genre.json'), {
    experts: E,
    categories: Object.keys(distributions),
    layers: L,
    distributions,
  });
  writeJson(join(runDir, 'eval', 'category-similarity.json'), categorySimilarity(distributions, tokens));
  writeJson(
    join(runDir, 'routing', 'token-routing.json'),
    tokenRouting(model, tokenizer, sampleSentences(tokenizer, stream, seqLen)),
  );
}
