// Routing analysis: the model's trace hook changes nothing and agrees with the balance counts;
// cosine similarity against a hand computation; expert load rows sum to 1; the per-category
// distributions against counts made by hand from per-token traces; per-token routing of a text.
// Run: cd packages/eval && npx vitest run src/routing
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as T from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { readDocuments } from './io.js';
import { tokenStream } from './perplexity.js';
import {
  categorySimilarity,
  cosineSimilarityMatrix,
  expertLoad,
  routingAnalysis,
  tokenRouting,
  windowsOf,
} from './routing.js';
import { fixtures, tinyModel } from './test-helpers.js';

const { model, tokenizer } = tinyModel();
const E = model.config.numLocalExperts;

/** Picks per expert [L][E] counted on the host from the trace of each window. */
function tracedCounts(windows: number[][]): number[][] {
  const counts = Array.from({ length: model.config.numHiddenLayers }, () => new Array<number>(E).fill(0));
  for (const w of windows) {
    const ids = T.tensor(Int32Array.from(w), { shape: [1, w.length], dtype: 'i32' });
    const { routing } = model.forward(ids, { training: false, trace: true });
    routing!.forEach((r, l) => {
      for (const e of r.experts_TK.toArray()) counts[l]![e]!++;
    });
  }
  return counts;
}

describe('routing trace hook', () => {
  it('returns per-layer experts and weights without changing the logits', () => {
    const ids = T.tensor(
      Int32Array.from(tokenizer.encode('The cat sat on the mat. The dog ran.').slice(0, 12)),
      { shape: [1, 12], dtype: 'i32' },
    );
    const plain = model.forward(ids, { training: false });
    const traced = model.forward(ids, { training: false, trace: true });
    expect(plain.routing).toBeUndefined();
    expect(Array.from(traced.logits_BSV.toArray())).toEqual(Array.from(plain.logits_BSV.toArray()));
    expect(traced.routing).toHaveLength(2);
    traced.routing!.forEach((r, l) => {
      expect(r.experts_TK.shape).toEqual([12, 2]);
      expect(r.weights_TK.shape).toEqual([12, 2]);
      const counts = new Array<number>(E).fill(0);
      for (const e of r.experts_TK.toArray()) counts[e]!++;
      expect(counts).toEqual(Array.from(plain.balance[l]!.counts_E.toArray()));
    });
  });
});

describe('routing analysis', () => {
  it('cosine similarity matches a hand computation', () => {
    const m = cosineSimilarityMatrix([
      [1, 0],
      [1, 1],
      [0, 2],
    ]);
    const r = Math.SQRT1_2;
    const expected = [
      [1, r, 0],
      [r, 1, r],
      [0, r, 1],
    ];
    m.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(expected[i]![j]!, 12)));
    const s = categorySimilarity({
      a: [
        [1, 0],
        [1, 0],
      ],
      b: [
        [1, 1],
        [0, 1],
      ],
    });
    expect(s.similarity[0]![0]![1]).toBeCloseTo(r, 12);
    expect(s.similarity[1]![0]![1]).toBe(0);
    expect(s.layers).toBe(2);
    expect(s.average[0]![1]).toBeCloseTo(r / 2, 12);
  });

  it('expert load normalises each layer and reports max over balanced', () => {
    const load = expertLoad(
      [
        [2, 2, 2, 2],
        [8, 0, 0, 0],
      ],
      4,
    );
    expect(load.layers).toEqual([
      [0.25, 0.25, 0.25, 0.25],
      [1, 0, 0, 0],
    ]);
    expect(load.maxOverBalanced).toEqual([1, 4]);
    expect(load.balanced).toBe(0.25);
  });

  it('measures load and category similarity on a labelled set, against traced counts', () => {
    const runDir = mkdtempSync(join(tmpdir(), 'grin-routing-'));
    const docs = readDocuments(join(fixtures, 'genres.jsonl'));
    const { load, similarity } = routingAnalysis(model, tokenizer, docs, {
      seqLen: 16,
      batchSize: 2,
      runDir,
    });
    for (const row of load.layers) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    for (const m of load.maxOverBalanced) expect(m).toBeGreaterThanOrEqual(1);
    expect(similarity.categories).toEqual(['news', 'fiction', 'learned']);
    const total = Array.from({ length: 2 }, () => new Array<number>(E).fill(0));
    for (const category of similarity.categories) {
      const ids = tokenStream(
        tokenizer,
        docs.filter((d) => d.category === category).map((d) => d.text),
      );
      expect(similarity.tokens[category]).toBe(ids.length);
      const counts = tracedCounts(windowsOf(ids, 16));
      counts.forEach((row, l) => {
        const sum = row.reduce((a, b) => a + b, 0);
        expect(sum).toBe(2 * ids.length);
        row.forEach((c, e) => {
          expect(similarity.distributions[category]![l]![e]).toBeCloseTo(c / sum, 12);
          total[l]![e]! += c;
        });
      });
    }
    total.forEach((row, l) =>
      row.forEach((c, e) => expect(load.layers[l]![e]).toBeCloseTo(c / row.reduce((a, b) => a + b, 0), 12)),
    );
    for (const m of [...similarity.similarity, similarity.average]) {
      m.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(m[j]![i]!, 12)));
      m.forEach((row, i) => expect(row[i]).toBe(1));
    }
    expect(JSON.parse(readFileSync(join(runDir, 'routing', 'expert-load.json'), 'utf8')).layers).toHaveLength(
      2,
    );
    expect(existsSync(join(runDir, 'eval', 'category-similarity.json'))).toBe(true);
  });

  it('lists the experts and weights of every token of a text', () => {
    const text = 'The jury said the cat sat.';
    const out = join(mkdtempSync(join(tmpdir(), 'grin-tokens-')), 'routing', 'token-routing.json');
    const result = tokenRouting(model, tokenizer, text, { out });
    const ids = tokenizer.encode(text);
    expect(result.tokens.map((t) => t.id)).toEqual(ids);
    expect(
      result.tokens
        .map((t) => t.piece)
        .join('')
        .replace(/▁/g, ' ')
        .trim(),
    ).toBe(text);
    const counts = tracedCounts([ids]);
    for (let l = 0; l < 2; l++) {
      const mine = new Array<number>(E).fill(0);
      for (const t of result.tokens) {
        expect(new Set(t.experts[l]).size).toBe(2);
        for (const w of t.weights[l]!) expect(w).toBeGreaterThan(0);
        for (const e of t.experts[l]!) mine[e]!++;
      }
      expect(mine).toEqual(counts[l]);
    }
    expect(JSON.parse(readFileSync(out, 'utf8')).tokens).toHaveLength(ids.length);
    expect(() => tokenRouting(model, tokenizer, '')).toThrow(/no tokens/);
  });
});
