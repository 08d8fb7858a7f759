// The dropless MoE ops against inline reference loops (permute order, grouped linear per group,
// the gather-sum combine, SiLU-GLU) and f64 finite differences, with empty groups, one group
// holding every row, a single token, and the refusals of bad ids and counts.
// Run: cd packages/tensor && npx vitest run src/ops/moe
import { describe, expect, it } from 'vitest';
import * as T from '../index.js';
import { expectAllClose, expectNoLeaks, gradcheck } from '../testing.js';

const wave = (shape: number[], scale = 0.37, shift = 0.2) =>
  T.tensor(
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * scale + shift) * 0.9),
    { shape, dtype: 'f64', requiresGrad: true },
  );
const ids = (rows: number[][]) =>
  T.tensor(rows.flat(), { dtype: 'i32', shape: [rows.length, rows[0]!.length] });
const host = (t: T.Tensor) => Array.from(t.toArray() as ArrayLike<number>);

describe('moePermute', () => {
  it.each([
    [
      'mixed picks, expert 1 empty',
      [
        [2, 0],
        [0, 3],
        [3, 2],
        [0, 2],
      ],
      4,
    ],
    [
      'every pick on one expert',
      [
        [1, 1],
        [1, 1],
        [1, 1],
      ],
      3,
    ],
    ['one token', [[2, 0]], 3],
    ['top-1', [[0], [2], [0]], 3],
  ])('%s: counts, stable rows in token order, positions', (_, rows, E) => {
    const { counts_E, rowSlot_N, position_TK } = T.moePermute(ids(rows), E);
    const flat = rows.flat();
    const K = rows[0]!.length;
    const counts = Array.from({ length: E }, (_, e) => flat.filter((x) => x === e).length);
    expect(host(counts_E)).toEqual(counts);
    // reference: expert by expert, the picks in flat (token, pick) order
    const order = Array.from({ length: E }, (_, e) => flat.flatMap((x, i) => (x === e ? [i] : []))).flat();
    expect(host(rowSlot_N)).toEqual(order);
    const position = host(position_TK);
    order.forEach((slot, row) => expect(position[slot]).toBe(row));
    expect(host(counts_E).reduce((a, c) => a + c, 0)).toBe(rows.length * K);
  });

  it('refuses an expert id outside 0..E-1, naming the token and pick', () => {
    expect(() =>
      T.moePermute(
        ids([
          [0, 1],
          [4, 0],
        ]),
        4,
      ),
    ).toThrow('moe_permute: expert id 4 of token 1, pick 0 is outside 0..3');
    expect(() => T.moePermute(ids([[-1, 1]]), 4)).toThrow('expert id -1 of token 0, pick 0');
  });
});

describe('groupedLinear', () => {
  it.each([
    [[2, 0, 3], 1],
    [[0, 4, 1], 2],
    [[5], 2],
  ])('counts %j, %i part(s): each group times its own weights', (counts, parts) => {
    const N = counts.reduce((a, c) => a + c, 0);
    const x = wave([N, 3]);
    const weights = Array.from({ length: parts * counts.length }, (_, i) => wave([2, 3], 0.5 + i * 0.11, i));
    const y = T.groupedLinear(x, weights, counts, parts);
    let r0 = 0;
    const pieces: T.Tensor[] = [];
    counts.forEach((n, e) => {
      if (n === 0) return;
      const rows = x.slice([r0, r0 + n]);
      pieces.push(
        T.concat(
          Array.from({ length: parts }, (_, p) => T.linear(rows, weights[p * counts.length + e]!)),
          1,
        ),
      );
      r0 += n;
    });
    expectAllClose(y, T.concat(pieces, 0), { atol: 1e-12, rtol: 1e-12 });
    gradcheck((a, ...ws) => T.groupedLinear(a!, ws, counts, parts), [x, ...weights]);
  });

  it('gives zero weight gradients to an empty group', () => {
    const x = wave([3, 2]);
    const weights = [wave([2, 2]), wave([2, 2], 0.9)];
    T.sum(T.groupedLinear(x, weights, [3, 0])).backward();
    expect(host(weights[1]!.grad!)).toEqual([0, 0, 0, 0]);
  });

  it('refuses counts that do not cover the rows and weights of the wrong shape', () => {
    const x = wave([3, 2]);
    expect(() => T.groupedLinear(x, [wave([2, 2]), wave([2, 2])], [1, 1])).toThrow(
      'groupedLinear: counts sum to 2, but x has 3 rows',
    );
    expect(() => T.groupedLinear(x, [wave([2, 3])], [3])).toThrow('groupedLinear: weight 0 is');
    expect(() => T.groupedLinear(x, [wave([2, 2])], [3], 2)).toThrow('1 weights for 1 groups of 2 part(s)');
  });
});

describe('moeCombine', () => {
  it('sums each token’s K rows times its weights, and differentiates both', () => {
    const experts = ids([
      [1, 0],
      [0, 1],
      [1, 1],
    ]);
    const { position_TK } = T.moePermute(experts, 2);
    const y = wave([6, 4]);
    const weights = wave([3, 2], 1.3, 0.4);
    const out = T.moeCombine(y, weights, position_TK);
    const pos = host(position_TK);
    const ys = host(y);
    const ws = host(weights);
    const expected = Array.from({ length: 12 }, (_, i) => {
      const [t, d] = [Math.floor(i / 4), i % 4];
      return ws[2 * t]! * ys[pos[2 * t]! * 4 + d]! + ws[2 * t + 1]! * ys[pos[2 * t + 1]! * 4 + d]!;
    });
    expectAllClose(out, T.tensor(expected, { shape: [3, 4], dtype: 'f64' }), { atol: 1e-14 });
    gradcheck((a, b) => T.moeCombine(a!, b!, position_TK), [y, weights]);
  });

  it('refuses a row count other than T*K', () => {
    const { position_TK } = T.moePermute(ids([[0, 1]]), 2);
    expect(() => T.moeCombine(wave([3, 2]), wave([1, 2]), position_TK)).toThrow('must have T*K rows');
  });
});

describe('moeDispatch', () => {
  it('copies each token to its K rows, and sums them back in backward', () => {
    const experts = ids([
      [2, 0],
      [0, 1],
      [2, 2],
    ]);
    const { position_TK, rowSlot_N } = T.moePermute(experts, 3);
    const x = wave([3, 5]);
    const routed = T.moeDispatch(x, position_TK);
    const xs = host(x);
    const expected = host(rowSlot_N).flatMap((slot) =>
      xs.slice(Math.floor(slot / 2) * 5, Math.floor(slot / 2) * 5 + 5),
    );
    expect(host(routed)).toEqual(expected);
    gradcheck((a) => T.moeDispatch(a!, position_TK), [x]);
  });
});

describe('siluGlu', () => {
  it('is silu of the first half times the second, with its gradient', () => {
    const h = wave([3, 6], 0.77, -0.3);
    const [gate, up] = T.split(h, [3, 3], 1) as [T.Tensor, T.Tensor];
    expectAllClose(T.siluGlu(h), T.mul(T.silu(gate), up), { atol: 1e-14 });
    gradcheck((a) => T.siluGlu(a!), [h]);
    expect(() => T.siluGlu(wave([2, 3]))).toThrow('siluGlu: h must be [N, 2I]');
  });
});

describe('the MoE ops leak nothing', () => {
  it('forward and backward release every temporary', () => {
    const x = wave([4, 3]);
    const w = [wave([2, 3]), wave([2, 3], 0.8)];
    expectNoLeaks(() => {
      T.tidy(() => {
        const { counts_E, position_TK } = T.moePermute(
          ids([
            [0, 1],
            [1, 0],
          ]),
          2,
        );
        const counts = host(counts_E);
        const h = T.groupedLinear(x, w, counts);
        const out = T.moeCombine(h, T.full([2, 2], 0.5, { dtype: 'f64' }), position_TK);
        T.sum(out).backward();
      });
      for (const t of [x, ...w]) {
        t.grad?.dispose();
        t.grad = null;
      }
    });
  });
});

// These checks live in the ops, once for every backend: the kernels trust them.
describe('moe argument checks (op layer)', () => {
  it('names the op, the argument, what it got and what it needs', () => {
    const f32Ids = T.tensor([0, 1], { shape: [1, 2] });
    expect(() => T.moePermute(f32Ids, 2)).toThrow(
      'moePermute: experts must be [T, K] i32, got f32[1,2] on cpu',
    );
    expect(() => T.moeDispatch(wave([1, 3]), f32Ids)).toThrow(
      'moeDispatch: position must be i32, got f32[1,2] on cpu',
    );
    expect(() => T.moeCombine(wave([2, 3]), wave([1, 2]), f32Ids)).toThrow(
      'moeCombine: position must be i32, got f32[1,2] on cpu',
    );
    expect(() => T.moeCombine(wave([2, 3]), T.ones([1, 2]), ids([[0, 1]]))).toThrow(
      'moeCombine: dtypes differ (f64[2,3] on cpu and f32[1,2] on cpu)',
    );
  });
});
