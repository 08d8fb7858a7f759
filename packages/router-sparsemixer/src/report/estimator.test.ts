// The estimator report's exact expectation is right: the enumerated E[O] equals the Monte Carlo
// mean of SparseMixer-v2's forward value over many seeded samples.
import { describe, expect, it } from 'vitest';
import { estimatorReport, expectedOutput, sampledGradients } from './estimator.js';

describe('estimator report', () => {
  it('enumerated expectation matches the sampled forward mean', () => {
    const z = [0.9, 0.7, 0.8, 0.3];
    const y = [2.0, -1.0, 0.5, -0.5];
    const { forwardMean } = sampledGradients(z, y, 0.5, 40_000, 3);
    // forward values are bounded by max|y|*2, so 40k samples give a standard error below 0.01
    expect(Math.abs(forwardMean - expectedOutput(z, y, 0.5))).toBeLessThan(0.03);
  });
  it('produces finite rows', () => {
    const rows = estimatorReport(2_000);
    expect(rows).toHaveLength(3);
    for (const r of rows)
      expect(Number.isFinite(r.cosineSparseMixer) && Number.isFinite(r.cosineProxy)).toBe(true);
  });
});
