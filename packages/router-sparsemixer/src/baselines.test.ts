// GShard top-2 and Switch top-1 against closed forms; their gradients by finite differences.
// Run: cd packages/router-sparsemixer && npx vitest run src/baselines
import * as T from '@grin-moe/tensor';
import { expectAllClose, gradcheck } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { getRouter, registerRouter, routerNames } from './index.js';

const softmaxRow = (row: number[]) => {
  const m = Math.max(...row);
  const e = row.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('gshard-top2', () => {
  it('takes the two largest probabilities, renormalised', () => {
    const rows = [
      [0.1, 2, -1, 1.5],
      [3, 3, 0, 1],
    ];
    const out = getRouter('gshard-top2').route(T.tensor(rows, { dtype: 'f64' }), { training: true });
    expect(out.experts_TK.toList()).toEqual([
      [1, 3],
      [0, 1],
    ]);
    const p = rows.map(softmaxRow);
    expectAllClose(
      out.weights_TK,
      [p[0]![1]! / (p[0]![1]! + p[0]![3]!), p[0]![3]! / (p[0]![1]! + p[0]![3]!), 0.5, 0.5],
      { atol: 1e-12 },
    );
    expectAllClose(out.probs_TE, p.flat(), { atol: 1e-12 });
  });
  it('gradient flows through the gate values', () => {
    const x = T.tensor(
      [
        [0.3, -0.2, 0.9, 0.1],
        [1.2, 0.4, -0.3, 0.0],
      ],
      { dtype: 'f64', requiresGrad: true },
    );
    gradcheck((a) => getRouter('gshard-top2').route(a, { training: true }).weights_TK, [x]);
  });
});

describe('switch-top1', () => {
  it('weights the top expert by its probability and differentiates through it', () => {
    const rows = [
      [0.1, 2, -1],
      [0, 0.5, 3],
    ];
    const out = getRouter('switch-top1').route(T.tensor(rows, { dtype: 'f64' }), { training: true });
    expect(out.experts_TK.toList()).toEqual([[1], [2]]);
    expectAllClose(out.weights_TK, [softmaxRow(rows[0]!)[1]!, softmaxRow(rows[1]!)[2]!], { atol: 1e-12 });
    const x = T.tensor(rows, { dtype: 'f64', requiresGrad: true });
    gradcheck((a) => getRouter('switch-top1').route(a, { training: true }).weights_TK, [x]);
  });
});

describe('registering a router (the README example)', () => {
  it('a fork adds a router with one object and routes through it', () => {
    registerRouter({
      name: 'uniform-top1-test',
      defaultTopK: 1,
      description: 'always expert 0 with weight 1 (test router)',
      route(logits_TE) {
        const [Tn] = logits_TE.shape as [number];
        return {
          experts_TK: T.zeros([Tn, 1], { dtype: 'i32' }),
          weights_TK: T.ones([Tn, 1], { dtype: logits_TE.dtype }),
          probs_TE: T.softmax(logits_TE, -1),
        };
      },
    });
    expect(routerNames()).toContain('uniform-top1-test');
    const out = getRouter('uniform-top1-test').route(T.zeros([3, 4]), { training: false });
    expect(out.experts_TK.toList()).toEqual([[0], [0], [0]]);
    expect(() => registerRouter({ ...getRouter('gshard-top2'), name: 'Bad Name' })).toThrow(
      /must be lower-case/,
    );
  });
});
