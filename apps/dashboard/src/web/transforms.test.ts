// Data transforms of the page: metrics into series (appends, resumed steps), shape checks with
// clear errors, category cosine similarity, compare alignment, token piece display.
// Run: cd apps/dashboard && npx vitest run src/web/transforms
import { describe, expect, it } from 'vitest';
import {
  alignCompare,
  appendRecords,
  categorySimilarity,
  checkCategorySimilarity,
  checkCompare,
  checkExpertLoad,
  checkTokenRouting,
  emptySeries,
  showPiece,
  tickLabels,
} from './transforms.js';

describe('transforms', () => {
  it('appends metrics; a repeated step (resume) replaces the tail', () => {
    const series = emptySeries();
    appendRecords(series, [
      { step: 1, loss: 5, lr: 0.1, tokens_per_s: 10 },
      { step: 2, loss: 4, lr: 0.2, tokens_per_s: 11, val_loss: 4.5 },
      { step: 3, loss: 3, lr: 0.3, tokens_per_s: 12 },
    ]);
    expect(series.valLoss).toEqual([null, 4.5, null]);
    appendRecords(series, [{ step: 2, loss: 3.9, lr: 0.2, tokens_per_s: 11 }]);
    expect(series.step).toEqual([1, 2]);
    expect(series.loss).toEqual([5, 3.9]);
    expect(series.valLoss).toEqual([null, null]);
  });

  it('checks the JSON shapes and says which file and shape was expected', () => {
    expect(checkExpertLoad({ experts: 2, layers: [[0.5, 0.5]] })).toMatchObject({
      balanced: 0.5,
      maxOverBalanced: [1],
    });
    expect(() => checkExpertLoad({ experts: 3, layers: [[0.5, 0.5]] })).toThrow(
      /routing\/expert-load.json: expected/,
    );
    expect(() => checkCategorySimilarity({ categories: ['a', 'b'], similarity: [[[1]]] })).toThrow(
      /number\[L\]\[C\]\[C\]/,
    );
    expect(() =>
      checkTokenRouting({ experts: 2, layers: 1, tokens: [{ piece: 'a', experts: [], weights: [] }] }),
    ).toThrow(/token-routing/);
    expect(
      checkTokenRouting({
        experts: 2,
        layers: 1,
        tokens: [{ piece: 'a', experts: [[1, 0]], weights: [[0.6, 0.4]] }],
      }).topK,
    ).toBe(2);
    expect(() => checkCompare({ runs: [{ metrics: [] }] })).toThrow(/compare.json/);
  });

  it('computes per-layer cosine similarity between categories', () => {
    const result = categorySimilarity({
      experts: 2,
      layers: 1,
      categories: ['a', 'b', 'c'],
      distributions: { a: [[1, 0]], b: [[0, 1]], c: [[1, 1]] },
    });
    expect(result.similarity[0]![0]).toEqual([1, 0, expect.closeTo(Math.SQRT1_2, 12)]);
    expect(result.similarity[0]![1]![1]).toBe(1);
    expect(checkCategorySimilarity(result).layers).toBe(1);
  });

  it('aligns compare curves on the union of steps', () => {
    const aligned = alignCompare(
      {
        runs: [
          {
            label: 'a',
            metrics: [
              { step: 1, loss: 2 },
              { step: 2, loss: 1 },
            ],
          },
          { label: 'b', metrics: [{ step: 2, loss: 3 }] },
        ],
      },
      'loss',
    );
    expect(aligned).toEqual({
      step: [1, 2],
      columns: [
        [2, 1],
        [null, 3],
      ],
    });
  });

  it('shows tokenizer pieces as text', () => {
    expect(showPiece('▁the')).toBe(' the');
    expect(showPiece('Ġcat')).toBe(' cat');
  });
});

describe('tickLabels', () => {
  it('writes each tick exactly, in as few digits as that takes', () => {
    // uPlot labelled this learning-rate axis 0.001, 0.001, 0.0014 ...
    expect(tickLabels([0.001, 0.0012, 0.0014, 0.0016])).toEqual(['0.001', '0.0012', '0.0014', '0.0016']);
    expect(tickLabels([0, 500, 1000, 1500])).toEqual(['0', '500', '1000', '1500']);
    expect(tickLabels([1.5e-4, 1.5e-4])).toEqual(['0.00015', '0.00015']);
    expect(tickLabels([0.1, 0.2, 0.30000000000000004])).toEqual(['0.1', '0.2', '0.3']);
    expect(tickLabels([2.0001, 2.0002])).toEqual(['2.0001', '2.0002']);
  });
});
