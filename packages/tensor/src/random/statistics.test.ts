// Distribution checks at fixed seeds. The draws are deterministic, so these cannot flake; each bound is
// about 5 standard errors wide (noted inline), loose at this seed yet tight enough to catch a wrong
// formula, a lost bit or a biased integer map. Run: cd packages/tensor && npx vitest run src/random
import { describe, expect, it } from 'vitest';
import { Generator } from './generator.js';
import { float32Below, unitFloat32, unitFloat64 } from './transforms.js';

const N = 200_000;

function moments(values: ArrayLike<number>): { mean: number; variance: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  const mean = sum / values.length;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i]! - mean) ** 2;
  return { mean, variance: squares / (values.length - 1) };
}

// Math.min(...values) overflows the stack at this N.
function extremes(values: ArrayLike<number>): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  return { min, max };
}

function chiSquare(counts: number[], expected: number): number {
  return counts.reduce((total, count) => total + (count - expected) ** 2 / expected, 0);
}

describe.each(['f32', 'f64'] as const)('%s draws', (dtype) => {
  it('uniform: mean 1/2, variance 1/12, flat over 16 bins, inside [0, 1)', () => {
    const values = new Generator(1).uniform(N, dtype);
    const { mean, variance } = moments(values);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.0033); // se 0.00065
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.0009); // se 0.00017
    const bins = new Array<number>(16).fill(0);
    for (const v of values) bins[Math.floor(v * 16)]!++;
    const chi2 = chiSquare(bins, N / 16);
    // 15 degrees of freedom: P(chi2 > 40) ~ 4e-4, P(chi2 < 3) ~ 4e-4 (too flat is a bug too).
    expect(chi2).toBeLessThan(40);
    expect(chi2).toBeGreaterThan(3);
    const { min, max } = extremes(values);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(min).toBeLessThan(1e-4);
    expect(max).toBeLessThan(1);
    expect(max).toBeGreaterThan(1 - 1e-4);
  });

  it('uniform with low/high: mean and range', () => {
    const values = new Generator(2).uniform(N, dtype, -3, 5);
    expect(Math.abs(moments(values).mean - 1)).toBeLessThan(0.026); // se 0.0052
    const { min, max } = extremes(values);
    expect(min).toBeGreaterThanOrEqual(-3);
    expect(max).toBeLessThan(5);
  });

  it('normal: mean 0, std 1, 68.27% within one sigma; mean/std parameters apply', () => {
    const values = new Generator(3).normal(N + 1, dtype);
    const { mean, variance } = moments(values);
    expect(Math.abs(mean)).toBeLessThan(0.011); // se 0.0022
    expect(Math.abs(Math.sqrt(variance) - 1)).toBeLessThan(0.008); // se 0.0016
    const within = values.filter((v) => Math.abs(v) < 1).length / values.length;
    expect(Math.abs(within - 0.682689)).toBeLessThan(0.0052); // se 0.00104
    expect(values.every(Number.isFinite)).toBe(true);
    const shifted = moments(new Generator(3).normal(N, dtype, 10, 3));
    expect(Math.abs(shifted.mean - 10)).toBeLessThan(0.033);
    expect(Math.abs(Math.sqrt(shifted.variance) - 3)).toBeLessThan(0.024);
  });

  it('exponential: mean 1/rate, never negative, -0 or infinite', () => {
    const values = new Generator(4).exponential(N, dtype);
    expect(Math.abs(moments(values).mean - 1)).toBeLessThan(0.011); // se 0.0022
    expect(values.every((v) => Number.isFinite(v) && v >= 0 && !Object.is(v, -0))).toBe(true);
    const fast = moments(new Generator(4).exponential(N, dtype, 4));
    expect(Math.abs(fast.mean - 0.25)).toBeLessThan(0.0028);
  });

  it('gumbel: mean Euler-Mascheroni 0.5772, variance pi^2/6, never infinite', () => {
    const values = new Generator(5).gumbel(N, dtype);
    const { mean, variance } = moments(values);
    expect(Math.abs(mean - 0.5772156649)).toBeLessThan(0.0145); // se 0.0029
    expect(Math.abs(variance - Math.PI ** 2 / 6)).toBeLessThan(0.04); // se ~0.008
    expect(values.every(Number.isFinite)).toBe(true);
  });
});

describe('uniform edges and resolution', () => {
  it('the largest word maps below 1, and f32 draws stay below high when rounding would reach it', () => {
    expect(unitFloat32(0xffffffff)).toBe(1 - 2 ** -24);
    expect(Math.fround(unitFloat32(0xffffffff))).toBeLessThan(1);
    expect(unitFloat64(0xffffffff, 0xffffffff)).toBe(1 - 2 ** -53);
    // [1, 1 + 2^-23) holds one float32; low + scale * u rounds up to high for about half the draws.
    const high = 1 + 2 ** -23;
    const values = new Generator(6).uniform(1000, 'f32', 1, high);
    expect(values.every((v) => v === 1)).toBe(true);
    expect(float32Below(high)).toBe(1);
    expect(float32Below(1)).toBe(1 - 2 ** -24);
    expect(float32Below(0.1)).toBeLessThan(0.1);
  });

  it('f64 uniforms carry more than 24 bits; f32 ones exactly 24', () => {
    const f64 = new Generator(7).uniform(10000, 'f64');
    const beyond24 = f64.filter((v) => !Number.isInteger(v * 2 ** 24)).length;
    expect(beyond24).toBeGreaterThan(9990);
    // A value with all of bits 41..53 zero has probability 2^-13, so nearly every draw shows some.
    const beyond40 = f64.filter((v) => !Number.isInteger(v * 2 ** 40)).length;
    expect(beyond40).toBeGreaterThan(9990);
    const f32 = new Generator(7).uniform(10000, 'f32');
    expect(f32.every((v) => Number.isInteger(v * 2 ** 24))).toBe(true);
  });
});

describe('integer draws', () => {
  it('randint: inside [low, high), each value equally likely', () => {
    const values = new Generator(8).randint(N, -3, 4);
    const counts = new Array<number>(7).fill(0);
    for (const v of values) counts[v + 3]!++; // an out-of-range value would make a NaN count
    expect(counts.reduce((total, count) => total + count, 0)).toBe(N);
    expect(chiSquare(counts, N / 7)).toBeLessThan(22.5); // 6 dof: P(> 22.5) ~ 1e-3
  });

  it('randint: the full int32 range and a range of one', () => {
    const full = new Generator(9).randint(N, -(2 ** 31), 2 ** 31);
    expect(full.some((v) => v < -(2 ** 30))).toBe(true);
    expect(full.some((v) => v > 2 ** 30)).toBe(true);
    expect(Math.abs(moments(full).mean) / 2 ** 31).toBeLessThan(0.0065); // se 0.0013
    expect(new Generator(9).randint(50, 17, 18).every((v) => v === 17)).toBe(true);
  });

  it('randint: a large non-power-of-two range shows no low-bit or high-range bias', () => {
    const range = 3 * 2 ** 29; // a modulo map would favour the lower third
    const values = new Generator(10).randint(N, 0, range);
    const thirds = [0, 0, 0];
    let odd = 0;
    for (const v of values) {
      thirds[Math.floor(v / 2 ** 29)]!++;
      odd += v & 1;
    }
    expect(chiSquare(thirds, N / 3)).toBeLessThan(14); // 2 dof: P(> 14) ~ 1e-3
    expect(Math.abs(odd / N - 0.5)).toBeLessThan(0.0056); // se 0.0011
  });

  it('bernoulli: frequency p, and p = 0 / p = 1 are exact', () => {
    const generator = new Generator(11);
    const values = generator.bernoulli(N, 0.3);
    const ones = values.reduce((total, v) => total + v, 0);
    expect(Math.abs(ones / N - 0.3)).toBeLessThan(0.0052); // se 0.001
    expect(generator.bernoulli(1000, 0).every((v) => v === 0)).toBe(true);
    expect(generator.bernoulli(1000, 1).every((v) => v === 1)).toBe(true);
  });

  it('permutation: a permutation of 0..n-1 for several n', () => {
    const generator = new Generator(12);
    for (const n of [0, 1, 2, 3, 1000, 4099]) {
      const values = Array.from(generator.permutation(n));
      expect(values.slice().sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
  });

  it('permutation: all 6 orders of 3 items about equally often', () => {
    const generator = new Generator(13);
    const counts = new Map<string, number>();
    const trials = 60_000;
    for (let t = 0; t < trials; t++) {
      const order = Array.from(generator.permutation(3)).join('');
      counts.set(order, (counts.get(order) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    expect(chiSquare([...counts.values()], trials / 6)).toBeLessThan(20.5); // 5 dof: P(> 20.5) ~ 1e-3
  });
});
