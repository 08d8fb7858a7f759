// Pure data transforms of the dashboard: metrics records into chart series, the run files'
// JSON checked against the shapes README.md documents (clear errors instead of a blank chart), and
// per-layer cosine similarity between categories' expert distributions (the fixture uses it; `grin
// eval routing` writes the same shape). Test: cd apps/dashboard && npx vitest run src/web/transforms
export type MetricRecord = Record<string, number>;

export interface Series {
  step: number[];
  loss: number[];
  /** Aligned with step; null where that step had no evaluation. */
  valLoss: (number | null)[];
  lr: number[];
  tokensPerSecond: number[];
}

export const emptySeries = (): Series => ({ step: [], loss: [], valLoss: [], lr: [], tokensPerSecond: [] });

/** Appends records in place (a resumed run may repeat steps: the newer line wins). */
export function appendRecords(series: Series, records: MetricRecord[]): Series {
  for (const r of records) {
    if (typeof r.step !== 'number') continue;
    let at = series.step.length;
    while (at > 0 && series.step[at - 1]! >= r.step) at--;
    for (const key of Object.keys(series) as (keyof Series)[]) series[key].length = at;
    series.step.push(r.step);
    series.loss.push(r.loss ?? Number.NaN);
    series.valLoss.push(typeof r.val_loss === 'number' ? r.val_loss : null);
    series.lr.push(r.lr ?? Number.NaN);
    series.tokensPerSecond.push(r.tokens_per_s ?? Number.NaN);
  }
  return series;
}

export class ShapeError extends Error {}

const isMatrix = (m: unknown, rows?: number, cols?: number): m is number[][] =>
  Array.isArray(m) &&
  (rows === undefined || m.length === rows) &&
  m.every(
    (row) =>
      Array.isArray(row) &&
      (cols === undefined || row.length === cols) &&
      row.every((v) => typeof v === 'number'),
  );

export interface ExpertLoad {
  experts: number;
  balanced: number;
  layers: number[][];
  maxOverBalanced: number[];
}

export function checkExpertLoad(json: unknown, source = 'routing/expert-load.json'): ExpertLoad {
  const j = json as ExpertLoad;
  if (!Number.isInteger(j?.experts) || !isMatrix(j.layers, undefined, j.experts)) {
    throw new ShapeError(`${source}: expected {experts: E, balanced, layers: number[L][E], maxOverBalanced}`);
  }
  return {
    experts: j.experts,
    balanced: j.balanced ?? 1 / j.experts,
    layers: j.layers,
    maxOverBalanced: j.maxOverBalanced ?? j.layers.map((r) => Math.max(...r) * j.experts),
  };
}

export interface CategorySimilarity {
  categories: string[];
  layers: number;
  /** [L][C][C] cosine similarity of the categories' expert distributions. */
  similarity: number[][][];
}

export function checkCategorySimilarity(
  json: unknown,
  source = 'eval/category-similarity.json',
): CategorySimilarity {
  const j = json as CategorySimilarity;
  const C = j?.categories?.length;
  if (
    !Array.isArray(j?.categories) ||
    !Array.isArray(j.similarity) ||
    !j.similarity.every((m) => isMatrix(m, C, C))
  ) {
    throw new ShapeError(
      `${source}: expected {categories: string[C], layers: L, similarity: number[L][C][C]}`,
    );
  }
  return { categories: j.categories, layers: j.similarity.length, similarity: j.similarity };
}

export interface Genre {
  experts: number;
  categories: string[];
  layers: number;
  distributions: Record<string, number[][]>;
}

const cosine = (a: number[], b: number[]) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((v, i) => {
    dot += v * b[i]!;
    na += v * v;
    nb += b[i]! * b[i]!;
  });
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
};

/** Per layer, the cosine similarity of every pair of categories' expert distributions. */
export function categorySimilarity(genre: Genre): CategorySimilarity {
  const similarity = Array.from({ length: genre.layers }, (_, l) =>
    genre.categories.map((a) =>
      genre.categories.map((b) => cosine(genre.distributions[a]![l]!, genre.distributions[b]![l]!)),
    ),
  );
  return { categories: genre.categories, layers: genre.layers, similarity };
}

export interface TokenRouting {
  experts: number;
  layers: number;
  topK: number;
  text?: string;
  tokens: { piece: string; id?: number; experts: number[][]; weights: number[][] }[];
}

export function checkTokenRouting(json: unknown, source = 'routing/token-routing.json'): TokenRouting {
  const j = json as TokenRouting;
  const ok =
    Number.isInteger(j?.experts) &&
    Number.isInteger(j.layers) &&
    Array.isArray(j.tokens) &&
    j.tokens.every(
      (t) => typeof t.piece === 'string' && isMatrix(t.experts, j.layers) && isMatrix(t.weights, j.layers),
    );
  if (!ok)
    throw new ShapeError(
      `${source}: expected {experts, layers, topK, tokens: [{piece, experts: number[L][K], weights: number[L][K]}]}`,
    );
  return { ...j, topK: j.topK ?? j.tokens[0]?.experts[0]?.length ?? 2 };
}

export interface Compare {
  title?: string;
  runs: { label: string; router?: string; metrics: MetricRecord[] }[];
}

export function checkCompare(json: unknown, source = 'compare.json'): Compare {
  const j = json as Compare;
  if (
    !Array.isArray(j?.runs) ||
    j.runs.length < 1 ||
    !j.runs.every((r) => typeof r.label === 'string' && Array.isArray(r.metrics))
  ) {
    throw new ShapeError(
      `${source}: expected {runs: [{label, router?, metrics: [{step, loss, val_loss?}]}]}`,
    );
  }
  return j;
}

/** Compare runs on one step axis: x = union of steps, one loss column per run (null where absent). */
export function alignCompare(
  compare: Compare,
  key: 'loss' | 'val_loss',
): { step: number[]; columns: (number | null)[][] } {
  const steps = [
    ...new Set(
      compare.runs.flatMap((r) => r.metrics.filter((m) => typeof m[key] === 'number').map((m) => m.step!)),
    ),
  ].sort((a, b) => a - b);
  const columns = compare.runs.map((r) => {
    const byStep = new Map(
      r.metrics.filter((m) => typeof m[key] === 'number').map((m) => [m.step!, m[key]!]),
    );
    return steps.map((s) => byStep.get(s) ?? null);
  });
  return { step: steps, columns };
}

/** Tokenizer pieces shown as text: SentencePiece's '▁' and byte-level 'Ġ' become spaces. */
export function showPiece(piece: string): string {
  return piece.replace(/[▁Ġ]/g, ' ').replace(/Ċ/g, '\n');
}

/**
 * Axis tick labels: each tick in the fewest significant digits that still write its value (up to
 * floating-point noise), so ticks are never rounded into one another: 0.0012 and 0.0014 are not
 * both '0.001' (as uPlot's own labels had it on the learning-rate axis), nor 1500 written '2000'.
 */
export function tickLabels(values: readonly number[]): string[] {
  const scale = Math.max(...values.map(Math.abs), Number.MIN_VALUE);
  return values.map((v) => {
    for (let digits = 1; digits <= 15; digits++) {
      const rounded = Number(v.toPrecision(digits));
      if (Math.abs(rounded - v) <= 1e-9 * scale) return String(rounded);
    }
    return String(v);
  });
}
