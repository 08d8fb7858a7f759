// How good is SparseMixer-v2's router gradient? For a small E the expected output of a routed
// layer, E[O](z) with O = sum_k multiplier_k * y_{D_k}, can be enumerated exactly (both picks and
// both coins), so its exact gradient comes from central differences of that expectation. We
// compare it with (a) SparseMixer-v2's backward averaged over many sampled routings, and (b) the
// gate-value proxy of GShard/Mixtral applied to the same samples (differentiate the sampled gate
// value p_D with the pick held fixed). Run: pnpm --filter @grin-moe/router-sparsemixer report
import * as T from '@grin-moe/tensor';
import { getRouter } from '../router.js';
import { PARTIAL_FACTOR } from '../sparsemixer.js';

function maskedSoftmax(z: number[], picked: number[], eps: number): number[] {
  const src = z.map((v, j) => (picked.includes(j) ? -Infinity : v));
  const zmax = Math.max(...src);
  const l = src.map((v, j) => ((zmax - z[j]!) / Math.max(Math.abs(z[j]!), zmax) > 2 * eps ? -Infinity : v));
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** E[O] over both Gumbel picks and both Heun coins, enumerated. */
export function expectedOutput(z: number[], y: number[], eps: number): number {
  const coin = (p: number[], d: number) =>
    p.indexOf(Math.max(...p)) === d ? 1 : 0.25 + 0.75 * PARTIAL_FACTOR;
  const p1 = maskedSoftmax(z, [], eps);
  let total = 0;
  p1.forEach((q1, d1) => {
    if (q1 === 0) return;
    const p2 = maskedSoftmax(z, [d1], eps);
    let second = 0;
    p2.forEach((q2, d2) => {
      if (q2 > 0) second += q2 * coin(p2, d2) * q2 * y[d2]!;
    });
    total += q1 * (coin(p1, d1) * q1 * y[d1]! + second);
  });
  return total;
}

export function exactGradient(z: number[], y: number[], eps: number, h = 1e-6): number[] {
  return z.map((_, j) => {
    const plus = [...z];
    const minus = [...z];
    plus[j]! += h;
    minus[j]! -= h;
    return (expectedOutput(plus, y, eps) - expectedOutput(minus, y, eps)) / (2 * h);
  });
}

/** Mean over `samples` routings of SparseMixer-v2's router gradient and of the gate-value proxy. */
export function sampledGradients(z: number[], y: number[], eps: number, samples: number, seed: number) {
  const E = z.length;
  const logits = T.tensor(Array.from({ length: samples }, () => z).flat(), {
    shape: [samples, E],
    dtype: 'f64',
  }).setRequiresGrad();
  const yTensor = T.tensor(y, { dtype: 'f64' });
  const out = getRouter('sparsemixer-v2').route(logits, {
    training: true,
    jitterEps: eps,
    generator: new T.Generator(seed),
  });
  const upstream = T.noGrad(() => T.embedding(yTensor.reshape([E, 1]), out.experts_TK).reshape([samples, 2]));
  T.sum(T.mul(out.weights_TK, upstream)).backward();
  const mean = (rows: number[][]) => z.map((_, j) => rows.reduce((a, r) => a + r[j]!, 0) / rows.length);
  const sparse = mean(logits.grad!.toList() as number[][]);
  // Gate-value proxy: d/dz of sum_k factor_k * p^{(k)}_{D_k}(z) * y_{D_k} with the picks fixed.
  const ids = out.experts_TK.toList() as number[][];
  const factors = (out.weights_TK.toList() as number[][]).map((row, t) =>
    row.map((w, k) => w / maskedSoftmax(z, k === 0 ? [] : [ids[t]![0]!], eps)[ids[t]![k]!]!),
  );
  const proxy = z.map(() => 0);
  ids.forEach((picks, t) => {
    picks.forEach((d, k) => {
      const p = maskedSoftmax(z, k === 0 ? [] : [picks[0]!], eps);
      for (let j = 0; j < E; j++)
        proxy[j]! += (factors[t]![k]! * y[d]! * p[d]! * ((j === d ? 1 : 0) - p[j]!)) / samples;
    });
  });
  return { sparse, proxy, forwardMean: (T.sum(T.mul(out.weights_TK, upstream)).item() as number) / samples };
}

export function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((s, v, i) => s + v * b[i]!, 0);
  return dot / Math.sqrt(a.reduce((s, v) => s + v * v, 0) * b.reduce((s, v) => s + v * v, 0));
}

export function relativeError(a: number[], exact: number[]): number {
  return Math.sqrt(a.reduce((s, v, i) => s + (v - exact[i]!) ** 2, 0) / exact.reduce((s, v) => s + v * v, 0));
}

export interface ReportRow {
  setting: string;
  cosineSparseMixer: number;
  cosineProxy: number;
  relErrorSparseMixer: number;
  relErrorProxy: number;
}

export function estimatorReport(samples = 200_000): ReportRow[] {
  const settings: Array<{ name: string; z: number[]; y: number[]; eps: number }> = [
    {
      name: 'E=4, three logits in the band, eps=0.01',
      z: [1.2, 1.19, -0.3, 1.18],
      y: [1.0, -2.0, 0.5, 3.0],
      eps: 0.01,
    },
    { name: 'E=4, near logits, eps=0.5', z: [0.9, 0.7, 0.8, 0.3], y: [2.0, -1.0, 0.5, -0.5], eps: 0.5 },
    { name: 'E=6, eps=0.3', z: [0.5, 0.45, 0.3, 0.6, 0.2, 0.55], y: [1, -1, 2, -2, 0.5, 1.5], eps: 0.3 },
  ];
  return settings.map(({ name, z, y, eps }, i) => {
    const exact = exactGradient(z, y, eps);
    const { sparse, proxy } = sampledGradients(z, y, eps, samples, 100 + i);
    return {
      setting: name,
      cosineSparseMixer: cosine(sparse, exact),
      cosineProxy: cosine(proxy, exact),
      relErrorSparseMixer: relativeError(sparse, exact),
      relErrorProxy: relativeError(proxy, exact),
    };
  });
}
