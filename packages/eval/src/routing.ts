// Routing analysis of a trained MoE (GRIN paper, section 5): expert load per layer (Fig. 5: the
// fraction of the top-K picks each expert gets, rows sum to 1, balanced = 1/E, max over balanced
// per layer), the cosine similarity of the routing distributions of text categories (Fig. 6, one
// C x C matrix per layer and their average; default categories: Brown genres), and the experts
// picked for each token of one text (Fig. 7). Eval mode, so routing is deterministic.
// Test: cd packages/eval && npx vitest run src/routing
import { join } from 'node:path';
import type { GrinModel, Tokenizer } from '@grin-moe/model-grin';
import * as T from '@grin-moe/tensor';
import { EvaluationError, type TextDocument, writeJson } from './io.js';
import { tokenStream } from './perplexity.js';

export interface RoutingOptions {
  /** Tokens per window (default: min(256, max_position_embeddings)). */
  seqLen?: number;
  batchSize?: number;
  /** Tokens of each category that are routed (default 4096). */
  maxTokensPerCategory?: number;
  /** Run directory: writes routing/expert-load.json and eval/category-similarity.json (as the dashboard reads them). */
  runDir?: string;
  progress?: (done: number, total: number) => void;
}

/** Top-K picks per expert [L][E] over windows of token ids (every token of every window counts). */
export function routingCounts(model: GrinModel, windows: number[][], batchSize = 4): number[][] {
  const { numHiddenLayers: L, numLocalExperts: E } = model.config;
  const counts = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  T.noGrad(() => {
    let i = 0;
    while (i < windows.length) {
      const length = windows[i]!.length;
      const batch: number[][] = [];
      while (i < windows.length && batch.length < batchSize && windows[i]!.length === length)
        batch.push(windows[i++]!);
      T.tidy(() => {
        const ids_BS = T.tensor(Int32Array.from(batch.flat()), {
          shape: [batch.length, length],
          dtype: 'i32',
          device: model.device,
        });
        const { balance } = model.forward(ids_BS, { training: false });
        balance.forEach((b, l) => {
          const layerCounts = b.counts_E.toArray();
          for (let e = 0; e < E; e++) counts[l]![e]! += layerCounts[e]!;
        });
      });
    }
  });
  return counts;
}

const normalise = (row: number[]) => {
  const total = row.reduce((a, b) => a + b, 0);
  return row.map((v) => (total > 0 ? v / total : 0));
};

export interface ExpertLoad {
  experts: number;
  balanced: number;
  tokens: number;
  /** [L][E], each row sums to 1. */
  layers: number[][];
  /** Per layer: the busiest expert's share over 1/E (1 = perfectly balanced). */
  maxOverBalanced: number[];
}

export function expertLoad(counts_LE: number[][], tokens: number): ExpertLoad {
  const E = counts_LE[0]?.length ?? 0;
  const layers = counts_LE.map(normalise);
  return {
    experts: E,
    balanced: 1 / E,
    tokens,
    layers,
    maxOverBalanced: layers.map((row) => Math.max(...row) * E),
  };
}

/** cos(a, b) for every pair of rows; a zero row has similarity 0 with everything (1 with itself). */
export function cosineSimilarityMatrix(rows: number[][]): number[][] {
  const norms = rows.map((r) => Math.sqrt(r.reduce((a, v) => a + v * v, 0)));
  return rows.map((a, i) =>
    rows.map((b, j) => {
      if (i === j) return 1;
      if (norms[i] === 0 || norms[j] === 0) return 0;
      return a.reduce((s, v, e) => s + v * b[e]!, 0) / (norms[i]! * norms[j]!);
    }),
  );
}

export interface CategorySimilarity {
  categories: string[];
  tokens: Record<string, number>;
  /** Per category, per layer, the distribution of picks over experts. */
  distributions: Record<string, number[][]>;
  layers: number;
  /** [L][C][C] cosine similarity of the categories' distributions, layer by layer. */
  similarity: number[][][];
  /** [C][C] mean of the per-layer matrices. */
  average: number[][];
}

export function categorySimilarity(
  distributions: Record<string, number[][]>,
  tokens: Record<string, number> = {},
): CategorySimilarity {
  const categories = Object.keys(distributions);
  if (categories.length === 0) throw new EvaluationError('routing: no categories to compare');
  const L = distributions[categories[0]!]!.length;
  const similarity = Array.from({ length: L }, (_, l) =>
    cosineSimilarityMatrix(categories.map((c) => distributions[c]![l]!)),
  );
  const average = categories.map((_, i) =>
    categories.map((_, j) => similarity.reduce((s, m) => s + m[i]![j]!, 0) / L),
  );
  return { categories, tokens, distributions, layers: L, similarity, average };
}

/** Non-overlapping windows of at most seqLen tokens. */
export function windowsOf(ids: number[], seqLen: number): number[][] {
  const windows: number[][] = [];
  for (let s = 0; s < ids.length; s += seqLen) windows.push(ids.slice(s, s + seqLen));
  return windows;
}

/** Expert load over all documents and the category-by-category similarity of routing. */
export function routingAnalysis(
  model: GrinModel,
  tokenizer: Tokenizer,
  docs: TextDocument[],
  options: RoutingOptions = {},
): { load: ExpertLoad; similarity: CategorySimilarity } {
  const seqLen = options.seqLen ?? Math.min(256, model.config.maxPositionEmbeddings);
  const cap = options.maxTokensPerCategory ?? 4096;
  const byCategory = new Map<string, string[]>();
  for (const d of docs) {
    const name = d.category ?? 'text';
    byCategory.set(name, [...(byCategory.get(name) ?? []), d.text]);
  }
  const L = model.config.numHiddenLayers;
  const E = model.config.numLocalExperts;
  const total = Array.from({ length: L }, () => new Array<number>(E).fill(0));
  const distributions: Record<string, number[][]> = {};
  const tokens: Record<string, number> = {};
  let done = 0;
  for (const [name, texts] of byCategory) {
    const ids = tokenStream(tokenizer, texts, cap);
    const counts = routingCounts(model, windowsOf(ids, seqLen), options.batchSize);
    counts.forEach((row, l) => row.forEach((c, e) => (total[l]![e]! += c)));
    distributions[name] = counts.map(normalise);
    tokens[name] = ids.length;
    options.progress?.(++done, byCategory.size);
  }
  const load = expertLoad(
    total,
    Object.values(tokens).reduce((a, b) => a + b, 0),
  );
  const similarity = categorySimilarity(distributions, tokens);
  if (options.runDir) {
    writeJson(join(options.runDir, 'routing', 'expert-load.json'), load);
    writeJson(join(options.runDir, 'eval', 'category-similarity.json'), similarity);
  }
  return { load, similarity };
}

export interface TokenRoute {
  id: number;
  /** The vocabulary entry (e.g. '▁jury') and the token decoded on its own ('jury'). */
  piece: string;
  text: string;
  /** [L][K] expert ids and routing weights of this token. */
  experts: number[][];
  weights: number[][];
}

export interface TokenRouting {
  text: string;
  experts: number;
  layers: number;
  topK: number;
  tokens: TokenRoute[];
}

/** The experts each token of `text` is routed to, layer by layer (one forward pass with trace). */
export function tokenRouting(
  model: GrinModel,
  tokenizer: Tokenizer,
  text: string,
  options: { out?: string; addBos?: boolean } = {},
): TokenRouting {
  const ids = tokenizer.encode(text, { addBos: options.addBos ?? false });
  if (ids.length === 0) throw new EvaluationError('routing: the text has no tokens');
  if (ids.length > model.config.maxPositionEmbeddings) {
    throw new EvaluationError(
      `routing: the text has ${ids.length} tokens, more than the model's context of ${model.config.maxPositionEmbeddings}`,
    );
  }
  const K = model.config.numExpertsPerTok;
  const perLayer = T.noGrad(() =>
    T.tidy(() => {
      const ids_BS = T.tensor(Int32Array.from(ids), {
        shape: [1, ids.length],
        dtype: 'i32',
        device: model.device,
      });
      const { routing } = model.forward(ids_BS, { training: false, trace: true });
      return routing!.map((r) => ({
        experts: Array.from(r.experts_TK.toArray()),
        weights: Array.from(r.weights_TK.toArray()),
      }));
    }),
  );
  const tokens = ids.map((id, t) => ({
    id,
    piece: tokenizer.idToToken(id) ?? String(id),
    text: tokenizer.decode([id]),
    experts: perLayer.map((layer) => layer.experts.slice(t * K, (t + 1) * K)),
    weights: perLayer.map((layer) => layer.weights.slice(t * K, (t + 1) * K)),
  }));
  const result: TokenRouting = {
    text,
    experts: model.config.numLocalExperts,
    layers: perLayer.length,
    topK: K,
    tokens,
  };
  return options.out ? writeJson(options.out, result) : result;
}
