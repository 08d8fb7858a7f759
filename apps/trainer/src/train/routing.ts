// Routing analysis written into the run directory at the end of training, on the validation
// windows, through @grin-moe/eval (each window routed once, grouped by genre): expert-load.json
// (eval expertLoad), genre.json (per genre, picks per expert per layer), eval/category-similarity.json
// (categorySimilarity, GRIN Fig. 6) and token-routing.json (tokenRouting of the first validation
// sentences, Fig. 7): every file the dashboard's routing panels read.
// Test: cd apps/trainer && npx vitest run src/train/train.test.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { categorySimilarity, expertLoad, routingCounts, tokenRouting } from '@grin-moe/eval';
import type { GrinModel, Tokenizer } from '@grin-moe/model-grin';
import type { TrainConfig } from './config.js';

export interface ValidationWindows {
  ids: Int32Array;
  rows: number;
  category: Uint8Array;
  categories: string[];
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
 * Up to three sentences from the start of the first validation window, decoded: the text whose
 * tokens the token-routing view shows (short enough to read one token per column).
 */
export function sampleSentences(tokenizer: Tokenizer, validation: ValidationWindows, seqLen: number): string {
  const text = tokenizer.decode(Array.from(validation.ids.subarray(0, seqLen)), { skipSpecial: true }).trim();
  const sentences = text.match(/[^.!?]+[.!?]+/g) ?? [text];
  return sentences.slice(0, 3).join('').trim() || text;
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
  const window = (r: number) => Array.from(validation.ids.subarray(r * seqLen, (r + 1) * seqLen));
  const total = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  const distributions: Record<string, number[][]> = {};
  const tokens: Record<string, number> = {};
  validation.categories.forEach((name, c) => {
    const rows = Array.from({ length: validation.rows }, (_, r) => r).filter(
      (r) => validation.category[r] === c,
    );
    if (!rows.length) return;
    const counts = routingCounts(model, rows.map(window), config.optim.batchSize);
    counts.forEach((row, l) => row.forEach((n, e) => (total[l]![e]! += n)));
    distributions[name] = counts.map(normalise);
    tokens[name] = rows.length * seqLen;
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
    tokenRouting(model, tokenizer, sampleSentences(tokenizer, validation, seqLen)),
  );
}
