// The estimator report's exact expectation is right: the enumerated E[O] equals the Monte Carlo
// mean of SparseMixer-v2's forward value over many seeded samples; and the README's table is what
// the report computes (same seeds and sample count, to the printed digits), with its claims bounded.
// Run: cd packages/router-sparsemixer && npx vitest run src/report
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { estimatorReport, expectedOutput, sampledGradients } from './estimator.js';

/** The rows of the README's "How good is the estimator?" table: setting and four numbers. */
function readmeTable(): Array<{ setting: string; figures: string[] }> {
  const readme = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## How good is the estimator?'));
  return section
    .split('\n')
    .filter((line) => /^\| E=/.test(line))
    .map((line) => {
      const cells = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      return { setting: cells[0]!, figures: cells.slice(1) };
    });
}

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
  it("the README's figures are the report's (200,000 samples), and its claims hold", () => {
    const table = readmeTable();
    const rows = estimatorReport(200_000);
    expect(table.map((r) => r.setting)).toEqual(rows.map((r) => r.setting));
    rows.forEach((r, i) => {
      expect(table[i]!.figures, r.setting).toEqual([
        r.cosineSparseMixer.toFixed(4),
        r.cosineProxy.toFixed(4),
        r.relErrorSparseMixer.toFixed(3),
        r.relErrorProxy.toFixed(3),
      ]);
      // "Both point in nearly the exact direction"; SparseMixer-v2's magnitude is closer everywhere
      expect(Math.min(r.cosineSparseMixer, r.cosineProxy), r.setting).toBeGreaterThan(0.98);
      expect(r.relErrorSparseMixer, r.setting).toBeLessThan(r.relErrorProxy);
      // "relative error 0.09-0.39 against 0.40-0.44"
      expect(r.relErrorSparseMixer).toBeGreaterThanOrEqual(0.085);
      expect(r.relErrorSparseMixer).toBeLessThan(0.395);
      expect(r.relErrorProxy).toBeGreaterThanOrEqual(0.395);
      expect(r.relErrorProxy).toBeLessThan(0.445);
    });
    // "most clearly when the band is narrow": the largest gap is the eps=0.01 row
    const gaps = rows.map((r) => r.relErrorProxy - r.relErrorSparseMixer);
    expect(gaps.indexOf(Math.max(...gaps))).toBe(0);
  });
});
