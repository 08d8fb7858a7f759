// scaledDotProductAttention against a plain f64 loop over every (batch, head, query, key), for
// GQA ratios 1, 2 and 4, causal sliding windows shorter than S and cached decoding (S < Skv);
// gradients by finite differences. Run: cd packages/tensor && npx vitest run src/ops/attention
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const f64 = (shape: number[], scale = 0.37, shift = 0.2) =>
  T.tensor(
    Array.from({ length: numel(shape) }, (_, i) => Math.sin(i * scale + shift) * 1.1 + 0.03 * (i % 5)),
    {
      shape,
      dtype: 'f64',
      requiresGrad: true,
    },
  );
const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);

interface Case {
  b: number;
  h: number;
  hkv: number;
  s: number;
  skv: number;
  d: number;
  causal?: boolean;
  slidingWindow?: number;
}

/** out[b,h,i,:] = sum_k p_k v[b,h/rep,k,:], p = softmax over the keys query i (at i + Skv - S) may see. */
function reference(
  q: T.Tensor,
  k: T.Tensor,
  v: T.Tensor,
  c: Case,
  scale: number,
  allowed?: (b: number, h: number, i: number, j: number) => boolean,
) {
  const [qs, ks, vs] = [host(q), host(k), host(v)];
  const dv = v.shape[3]!;
  const out: number[] = [];
  for (let b = 0; b < c.b; b++) {
    for (let h = 0; h < c.h; h++) {
      const g = Math.floor(h / (c.h / c.hkv));
      for (let i = 0; i < c.s; i++) {
        const position = i + c.skv - c.s;
        const scores: number[] = [];
        for (let j = 0; j < c.skv; j++) {
          const visible =
            (!c.causal || j <= position) &&
            (c.slidingWindow === undefined || position - j < c.slidingWindow) &&
            (allowed?.(b, h, i, j) ?? true);
          let dot = 0;
          for (let e = 0; e < c.d; e++)
            dot += qs[((b * c.h + h) * c.s + i) * c.d + e]! * ks[((b * c.hkv + g) * c.skv + j) * c.d + e]!;
          scores.push(visible ? dot * scale : -Infinity);
        }
        const m = Math.max(...scores);
        const p = scores.map((x) => Math.exp(x - m));
        const total = p.reduce((a, x) => a + x, 0);
        for (let e = 0; e < dv; e++) {
          let acc = 0;
          for (let j = 0; j < c.skv; j++)
            acc += (p[j]! / total) * vs[((b * c.hkv + g) * c.skv + j) * dv + e]!;
          out.push(acc);
        }
      }
    }
  }
  return out;
}

const cases: Case[] = [
  { b: 1, h: 2, hkv: 2, s: 4, skv: 4, d: 3 },
  { b: 2, h: 2, hkv: 2, s: 5, skv: 5, d: 4, causal: true },
  { b: 1, h: 4, hkv: 2, s: 6, skv: 6, d: 2, causal: true, slidingWindow: 3 },
  { b: 2, h: 4, hkv: 1, s: 5, skv: 5, d: 3, causal: true, slidingWindow: 2 },
  { b: 1, h: 8, hkv: 2, s: 7, skv: 7, d: 2, causal: true, slidingWindow: 1 },
  { b: 1, h: 4, hkv: 2, s: 2, skv: 6, d: 3, causal: true, slidingWindow: 3 },
  { b: 2, h: 2, hkv: 1, s: 1, skv: 5, d: 4, causal: true, slidingWindow: 4 },
  { b: 1, h: 2, hkv: 2, s: 3, skv: 5, d: 2, causal: false },
];

describe('scaledDotProductAttention', () => {
  it.each(cases)('matches the reference loop: %o', (c) => {
    const q = f64([c.b, c.h, c.s, c.d]);
    const k = f64([c.b, c.hkv, c.skv, c.d], 0.71, 1.3);
    const v = f64([c.b, c.hkv, c.skv, c.d], 1.13, 0.4);
    const out = T.scaledDotProductAttention(q, k, v, c);
    expect(out.shape).toEqual([c.b, c.h, c.s, c.d]);
    expectAllClose(out, reference(q, k, v, c, 1 / Math.sqrt(c.d)), { atol: 1e-12 });
  });
  it.each([cases[2]!, cases[3]!, cases[5]!])('gradients of q, k and v match finite differences: %o', (c) => {
    const q = f64([c.b, c.h, c.s, c.d]);
    const k = f64([c.b, c.hkv, c.skv, c.d], 0.71, 1.3);
    const v = f64([c.b, c.hkv, c.skv, c.d], 1.13, 0.4);
    gradcheck((a, b, e) => T.scaledDotProductAttention(a!, b!, e!, c), [q, k, v]);
  });
  it('reads projections laid out [B,S,H,D] through a transpose, with a custom scale', () => {
    const c: Case = { b: 2, h: 4, hkv: 2, s: 3, skv: 3, d: 2, causal: true, slidingWindow: 2 };
    const q = f64([2, 3, 4, 2]);
    const k = f64([2, 3, 2, 2], 0.71, 1.3);
    const v = f64([2, 3, 2, 2], 1.13, 0.4);
    const run = (a: T.Tensor, b: T.Tensor, e: T.Tensor) =>
      T.scaledDotProductAttention(a.transpose(1, 2), b.transpose(1, 2), e.transpose(1, 2), {
        ...c,
        scale: 0.7,
      });
    const want = reference(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), c, 0.7);
    expectAllClose(run(q, k, v), want, { atol: 1e-12 });
    gradcheck(run, [q, k, v]);
  });
  it('applies a bool mask (true = attend) and an additive float mask', () => {
    const c: Case = { b: 2, h: 2, hkv: 1, s: 3, skv: 4, d: 2, causal: true };
    const q = f64([2, 2, 3, 2]);
    const k = f64([2, 1, 4, 2], 0.71, 1.3);
    const v = f64([2, 1, 4, 3], 1.13, 0.4);
    const padding = [1, 1, 1, 1, 0, 1, 1, 1]; // batch 1 cannot see key 0
    const allowed = (b: number, _h: number, _i: number, j: number) => padding[b * 4 + j] === 1;
    const bool = T.tensor(padding, { shape: [2, 1, 1, 4], dtype: 'bool' });
    const float = T.tensor(
      padding.map((x) => (x ? 0 : -Infinity)),
      { shape: [2, 1, 1, 4], dtype: 'f64' },
    );
    const want = reference(q, k, v, c, 1 / Math.sqrt(2), allowed);
    expectAllClose(T.scaledDotProductAttention(q, k, v, { ...c, mask: bool }), want, { atol: 1e-12 });
    expectAllClose(T.scaledDotProductAttention(q, k, v, { ...c, mask: float }), want, { atol: 1e-12 });
    gradcheck((a, b, e) => T.scaledDotProductAttention(a!, b!, e!, { ...c, mask: bool }), [q, k, v]);
  });
  it('builds the block mask of transformers eager path: q sees k iff k <= q and q - k < window', () => {
    const mask = T.attentionBlockMask(3, 5, { causal: true, slidingWindow: 2 })!;
    expect(mask.toList()).toEqual([
      [1, 0, 0, 1, 1],
      [1, 1, 0, 0, 1],
      [1, 1, 1, 0, 0],
    ]);
    expect(T.attentionBlockMask(3, 3, {})).toBeNull();
    expect(host(T.repeatKv(T.tensor([1, 2], { shape: [1, 2, 1, 1] }), 3))).toEqual([1, 1, 1, 2, 2, 2]);
  });
  it('names mismatched shapes', () => {
    const z = (...shape: number[]) => T.zeros(shape);
    expect(() => T.scaledDotProductAttention(z(1, 6, 2, 4), z(1, 4, 2, 4), z(1, 4, 2, 4))).toThrow(
      /key\/value heads \(4\) must divide query heads \(6\); got q f32\[1,6,2,4\] on cpu, k f32\[1,4,2,4\]/,
    );
    expect(() => T.scaledDotProductAttention(z(1, 2, 2, 4), z(1, 2, 2, 3), z(1, 2, 2, 3))).toThrow(
      /k must be \[1,Hkv,Skv,4\] to match q/,
    );
    expect(() => T.scaledDotProductAttention(z(1, 2, 2, 4), z(1, 2, 2, 4), z(1, 2, 3, 4))).toThrow(
      /v must be \[1,2,2,Dv\] to match k/,
    );
    expect(() => T.scaledDotProductAttention(z(2, 2, 4), z(2, 2, 4), z(2, 2, 4))).toThrow(
      /must be \[B,H,S,D\]/,
    );
    expect(() =>
      T.scaledDotProductAttention(z(1, 1, 3, 2), z(1, 1, 2, 2), z(1, 1, 2, 2), { causal: true }),
    ).toThrow(/causal attention needs at least as many keys \(2\) as queries \(3\)/);
  });
  it('frees every temporary, forward and backward', () => {
    const q = f64([1, 4, 3, 2]);
    const k = f64([1, 2, 3, 2], 0.71, 1.3);
    const v = f64([1, 2, 3, 2], 1.13, 0.4);
    expectNoLeaks(
      () =>
        T.tidy(() =>
          T.sum(T.scaledDotProductAttention(q, k, v, { causal: true, slidingWindow: 2 })).backward(),
        ),
      3, // q.grad, k.grad, v.grad
    );
    expect(k.grad?.shape).toEqual([1, 2, 3, 2]);
  });
});

describe('attentionSoftmax (fused)', () => {
  it.each([
    [4, 4, 0],
    [5, 5, 2],
    [3, 7, 3],
    [6, 6, 1],
  ])('S=%i Skv=%i window=%i equals scale + mask + softmax, forward and backward', (S, Skv, window) => {
    const x = T.tensor(
      Array.from({ length: 2 * S * Skv }, (_, i) => Math.sin(i * 0.37) * 2),
      { shape: [2, S, Skv], dtype: 'f64', requiresGrad: true },
    );
    const blocked = T.attentionBlockMask(S, Skv, { causal: true, slidingWindow: window || undefined });
    const reference = (a: T.Tensor) => {
      const scaled = T.mul(a, 0.7);
      return T.softmax(blocked ? T.maskedFill(scaled, blocked, Number.NEGATIVE_INFINITY) : scaled, -1);
    };
    expectAllClose(T.attentionSoftmax(x, { scale: 0.7, window }), reference(x), { atol: 1e-14 });
    gradcheck((a) => T.attentionSoftmax(a, { scale: 0.7, window }), [x]);
  });
});

describe('sdpa (fused) against the composite', () => {
  // An all-true bool mask forces the composite path (matmul, masked fill, softmax, matmul).
  const composite = (q: T.Tensor, k: T.Tensor, v: T.Tensor, c: Case) =>
    T.scaledDotProductAttention(q, k, v, {
      ...c,
      mask: T.tensor([1], { shape: [1, 1, 1, 1], dtype: 'bool' }),
    });
  it.each(cases)('forward and gradients equal the composite: %o', (c) => {
    const q = f64([c.b, c.h, c.s, c.d]);
    const k = f64([c.b, c.hkv, c.skv, c.d], 0.71, 1.3);
    const v = f64([c.b, c.hkv, c.skv, c.d + 1], 1.13, 0.4); // Dv != D
    const [out, lse] = T.runOp('sdpa', [q, k, v], {
      scale: 0.6,
      window: c.slidingWindow ?? 0,
      causal: c.causal ?? false,
    });
    expect(lse!.shape).toEqual([c.b, c.h, c.s]);
    expect(lse!.dtype).toBe('f64');
    expectAllClose(out!, composite(q, k, v, { ...c, scale: 0.6 } as Case), { atol: 1e-13 });
    const upstream = f64([c.b, c.h, c.s, c.d + 1], 0.53, 0.9);
    const grads = (run: (a: T.Tensor, b: T.Tensor, e: T.Tensor) => T.Tensor) => {
      const inputs = [q, k, v].map((t) => t.detach().setRequiresGrad());
      T.sum(T.mul(run(inputs[0]!, inputs[1]!, inputs[2]!), upstream)).backward();
      return inputs.map((t) => t.grad!);
    };
    const fused = grads((a, b, e) => T.scaledDotProductAttention(a, b, e, c));
    const reference = grads((a, b, e) => composite(a, b, e, c));
    for (let i = 0; i < 3; i++) expectAllClose(fused[i]!, reference[i]!, { atol: 1e-12 });
  });
  it.each([cases[1]!, cases[4]!, cases[6]!, cases[7]!])('gradcheck of the fused op in f64: %o', (c) => {
    const q = f64([c.b, c.h, c.s, c.d]);
    const k = f64([c.b, c.hkv, c.skv, c.d], 0.71, 1.3);
    const v = f64([c.b, c.hkv, c.skv, c.d], 1.13, 0.4);
    gradcheck((a, b, e) => T.scaledDotProductAttention(a!, b!, e!, c), [q, k, v]);
  });
  it('saves the row log-sum-exp of the scaled, masked scores', () => {
    const q = f64([1, 2, 3, 2]);
    const k = f64([1, 1, 4, 2], 0.71, 1.3);
    const v = f64([1, 1, 4, 2], 1.13, 0.4);
    const [, lse] = T.runOp('sdpa', [q, k, v], { scale: 0.5, window: 2, causal: true });
    const [qs, ks] = [host(q), host(k)];
    const want: number[] = [];
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < 3; i++) {
        const position = i + 1;
        let total = 0;
        for (let j = position - 1; j <= position; j++)
          total += Math.exp(
            0.5 * (qs[(h * 3 + i) * 2]! * ks[j * 2]! + qs[(h * 3 + i) * 2 + 1]! * ks[j * 2 + 1]!),
          );
        want.push(Math.log(total));
      }
    expectAllClose(lse!, want, { atol: 1e-13 });
  });
});
