// SparseMixer-v2 against an inline per-token reference of DESIGN.md's semantics (independent of
// the PyTorch dumps), the jitter band, sampling statistics, and general top-k.
// Run: cd packages/router-sparsemixer && npx vitest run src/sparsemixer
import * as T from '@grin-moe/tensor';
import { expectAllClose, gradcheck } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { getRouter, PARTIAL_FACTOR } from './index.js';

const router = getRouter('sparsemixer-v2');

/** DESIGN.md's slot() for one token, in plain numbers. */
function referenceToken(
  z: number[],
  draws: { exp: number[][]; u: number[] },
  eps: number,
  upstream: number[],
) {
  const E = z.length;
  const picked: number[] = [];
  const weights: number[] = [];
  const grad = new Array<number>(E).fill(0);
  for (let k = 0; k < draws.u.length; k++) {
    const src = z.map((v, j) => (picked.includes(j) ? -Infinity : v));
    const zmax = Math.max(...src);
    const l = src.map((v, j) => {
      const ratio = (zmax - z[j]!) / Math.max(Math.abs(z[j]!), zmax);
      return ratio > 2 * eps ? -Infinity : v; // NaN (0/0) compares false: kept
    });
    const scores = l.map((v, j) => v - Math.log(draws.exp[k]![j]!));
    const D = scores.indexOf(Math.max(...scores));
    const m = Math.max(...l);
    const e = l.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / s);
    const top = p.indexOf(Math.max(...p));
    const full = D === top || draws.u[k]! > 0.75;
    weights.push(p[D]! * (full ? 1 : PARTIAL_FACTOR));
    for (let j = 0; j < E; j++) grad[j]! += upstream[k]! * p[D]! * ((j === D ? 1 : 0) - p[j]!);
    picked.push(D);
  }
  return { picked, weights, grad };
}

function randomCase(Tn: number, E: number, K: number, seed: number) {
  const g = new T.Generator(seed);
  const z = T.randn([Tn, E], { dtype: 'f64', generator: g, std: 1.2 });
  const exp = Array.from({ length: K }, () => T.randExponential([Tn, E], { dtype: 'f64', generator: g }));
  const u = Array.from({ length: K }, () => T.rand([Tn, 1], { dtype: 'f64', generator: g }));
  const upstream = T.randn([Tn, K], { dtype: 'f64', generator: g });
  return { z, exp, u, upstream };
}

describe('sparsemixer-v2 forward and backward', () => {
  it.each([
    [24, 8, 2, 0.01],
    [16, 16, 2, 0.05],
    [12, 6, 1, 0.01],
    [10, 6, 3, 0.02],
  ])('T=%i E=%i K=%i eps=%f matches the per-token reference', (Tn, E, K, eps) => {
    const { z, exp, u, upstream } = randomCase(Tn, E, K, Tn * 31 + E);
    const logits = T.clone(z).setRequiresGrad();
    const out = router.route(logits, {
      training: true,
      topK: K,
      jitterEps: eps,
      draws: { exponential: exp, uniform: u },
    });
    T.sum(T.mul(out.weights_TK, upstream)).backward();
    const zs = z.toList() as number[][];
    const ex = exp.map((t) => t.toList() as number[][]);
    const us = u.map((t) => t.toArray() as Float64Array);
    const up = upstream.toList() as number[][];
    const ids = out.experts_TK.toList() as number[][];
    const ws = out.weights_TK.toList() as number[][];
    const gs = logits.grad!.toList() as number[][];
    zs.forEach((row, t) => {
      const ref = referenceToken(row, { exp: ex.map((e) => e[t]!), u: us.map((v) => v[t]!) }, eps, up[t]!);
      expect(ids[t]).toEqual(ref.picked);
      expectAllClose(ws[t]!, ref.weights, { atol: 1e-14, rtol: 1e-12 });
      expectAllClose(gs[t]!, ref.grad, { atol: 1e-14, rtol: 1e-12 });
    });
  });

  it('eval mode is deterministic top-k of the masked softmax, not renormalised, with autograd gradients', () => {
    const z = T.tensor(
      [
        [2.0, 1.999, 0.5, -1],
        [0, 0, 0, 0],
      ],
      { dtype: 'f64' },
    );
    const out = router.route(z, { training: false, jitterEps: 0.01 });
    expect(out.experts_TK.toList()).toEqual([
      [0, 1],
      [0, 1],
    ]);
    // row 0: band keeps 0 and 1 for slot 1; slot 2 sees only expert 1 in its band -> weight 1
    const p0 = Math.exp(2) / (Math.exp(2) + Math.exp(1.999));
    expectAllClose(out.weights_TK, [p0, 1, 0.25, 1 / 3], { atol: 1e-12 });
    const x = T.tensor([[0.3, 0.2, -0.1]], { dtype: 'f64', requiresGrad: true });
    gradcheck((a) => router.route(a, { training: false, jitterEps: 0.5 }).weights_TK, [x]);
  });
});

describe('the jitter band', () => {
  it('an expert can be drawn iff (max - z_j) / max(|z_j|, max) <= 2 eps', () => {
    const eps = 0.05;
    const rows = [
      [1, 0.95, 0.9, 0.89, -1],
      [-1, -1.05, -1.11, -3, 0.2],
      [0, 0, 0.001, -0.001, 5],
      [3, 3, 3, 3, 3],
    ];
    const z = T.tensor(rows, { dtype: 'f64' });
    const [Tn, E] = [rows.length, 5];
    for (let j = 0; j < E; j++) {
      // Force expert j: a tiny Exp draw makes l_j - log X_j win whenever l_j is finite.
      const exp = T.tensor(
        Array.from({ length: Tn * E }, (_, i) => (i % E === j ? 1e-300 : 1)),
        { shape: [Tn, E], dtype: 'f64' },
      );
      const ones = T.ones([Tn, 1], { dtype: 'f64' });
      const out = router.route(z, {
        training: true,
        topK: 1,
        jitterEps: eps,
        draws: { exponential: [exp], uniform: [ones] },
      });
      rows.forEach((row, t) => {
        const zmax = Math.max(...row);
        const inside =
          (zmax - row[j]!) / Math.max(Math.abs(row[j]!), zmax) <= 2 * eps ||
          Number.isNaN((zmax - row[j]!) / Math.max(Math.abs(row[j]!), zmax));
        const got = (out.experts_TK.toArray() as Int32Array)[t];
        expect({ t, j, drawn: got === j }).toEqual({ t, j, drawn: inside });
      });
    }
  });
});

describe('sampling statistics (seeded)', () => {
  it('first-pick frequencies follow the masked softmax (chi-square)', () => {
    const row = [1.0, 0.99, 0.985, 0.5, 0.982, -2];
    const eps = 0.01;
    const N = 20000;
    const z = T.tensor(Array.from({ length: N }, () => row).flat(), { shape: [N, row.length] });
    const out = router.route(z, { training: true, topK: 1, jitterEps: eps, generator: new T.Generator(7) });
    const counts = new Array<number>(row.length).fill(0);
    for (const id of out.experts_TK.toArray() as Int32Array) counts[id]!++;
    const zmax = Math.max(...row);
    const kept = row.map((v) => (zmax - v) / Math.max(Math.abs(v), zmax) <= 2 * eps);
    const e = row.map((v, j) => (kept[j] ? Math.exp(v) : 0));
    const s = e.reduce((a, b) => a + b, 0);
    let chi2 = 0;
    let dof = -1;
    row.forEach((_, j) => {
      if (!kept[j]) return expect(counts[j]).toBe(0);
      const expected = (N * e[j]!) / s;
      chi2 += (counts[j]! - expected) ** 2 / expected;
      dof++;
    });
    // 3 degrees of freedom: P(chi2 > 16.27) = 0.001
    expect(dof).toBe(3);
    expect(chi2).toBeLessThan(16.27);
  });

  it('the coin gives the full weight to non-argmax picks a quarter of the time', () => {
    const N = 20000;
    const z = T.tensor(Array.from({ length: N }, () => [1, 1]).flat(), { shape: [N, 2] });
    const out = router.route(z, { training: true, topK: 1, jitterEps: 0.01, generator: new T.Generator(11) });
    const ids = out.experts_TK.toArray() as Int32Array;
    const w = out.weights_TK.toArray() as Float32Array;
    let partial = 0;
    let off = 0;
    ids.forEach((id, t) => {
      if (id === 1) {
        off++;
        if (Math.abs(w[t]! - 0.5 * PARTIAL_FACTOR) < 1e-6) partial++;
      }
    });
    // argmax of [0.5, 0.5] is expert 0; picks of expert 1 are full with probability 0.25
    expect(Math.abs(off / N - 0.5)).toBeLessThan(0.02);
    expect(Math.abs(partial / off - 0.75)).toBeLessThan(0.02);
  });

  it('the same seed replays the same routing', () => {
    const z = T.randn([64, 8], { generator: new T.Generator(1) });
    const a = router.route(z, { training: true, generator: new T.Generator(5) });
    const b = router.route(z, { training: true, generator: new T.Generator(5) });
    expect(Array.from(a.experts_TK.toArray())).toEqual(Array.from(b.experts_TK.toArray()));
    expect(Array.from(a.weights_TK.toArray())).toEqual(Array.from(b.weights_TK.toArray()));
  });
});

describe('errors', () => {
  it('names the problem', () => {
    expect(() => router.route(T.zeros([4]), { training: false })).toThrow(/logits must be \[T,E\]/);
    expect(() => router.route(T.zeros([4, 3]), { training: false, topK: 4 })).toThrow(
      /top-k 4 must be an integer in 1..3/,
    );
    const z = T.zeros([2, 3]);
    expect(() =>
      router.route(z, {
        training: true,
        draws: { exponential: [T.ones([2, 3])], uniform: [T.ones([2, 1])] },
      }),
    ).toThrow(/injected draws lack slot 2/);
    expect(() => getRouter('top9')).toThrow(
      /unknown router 'top9'; valid routers: sparsemixer-v2, gshard-top2, switch-top1/,
    );
  });
});
