// The load-balancing loss: its value against the closed form, its gradient (through P only), the
// sum over layers (alpha * L at perfect balance; not transformers' pooled form), and the global mode: with an in-process all-reduce over 2-4 ranks, f equals f over the
// concatenated batch; with the summed table of 3 micro-batches (counts_LF), the mean of the
// micro-batches' losses and its gradient equal the concatenated batch's.
// Run: cd packages/router-sparsemixer && npx vitest run src/balance
import * as T from '@grin-moe/tensor';
import { expectAllClose } from '@grin-moe/tensor/testing';
import { describe, expect, it } from 'vitest';
import { type BalanceStats, balanceCounts, balanceLoss, balanceStats, getRouter } from './index.js';

function routeBatch(seed: number, Tn: number, E: number) {
  const logits = T.randn([Tn, E], { dtype: 'f64', generator: new T.Generator(seed) }).setRequiresGrad();
  const out = getRouter('gshard-top2').route(logits, { training: true });
  return { logits, out, stats: balanceStats(out.experts_TK, out.probs_TE) };
}

describe('balance loss', () => {
  it('local mode: alpha * E * sum f_i P_i with f counted over both picks', async () => {
    const { logits, out, stats } = routeBatch(1, 12, 5);
    const { loss, fractions_LE } = await balanceLoss([stats], { alpha: 0.01, mode: 'local' });
    const ids = out.experts_TK.toArray() as Int32Array;
    const p = out.probs_TE.toList() as number[][];
    const f = new Array<number>(5).fill(0);
    for (const id of ids) f[id]! += 1 / (12 * 2);
    const P = [0, 1, 2, 3, 4].map((i) => p.reduce((a, row) => a + row[i]!, 0) / 12);
    expectAllClose(fractions_LE, f, { atol: 1e-15 });
    expectAllClose(loss, [0.01 * 5 * f.reduce((a, fi, i) => a + fi * P[i]!, 0)], { atol: 1e-15 });
    // d/dz_tj of mean_t sum_i f_i p_ti = p_tj (f_j - sum_i f_i p_ti) / T: the counts carry no gradient.
    loss.backward();
    const expected = p.flatMap((row) => {
      const dot = row.reduce((a, v, i) => a + v * f[i]!, 0);
      return row.map((v, j) => (0.01 * 5 * v * (f[j]! - dot)) / 12);
    });
    expectAllClose(logits.grad!, expected, { atol: 1e-15, rtol: 1e-10 });
  });

  it('sums the per-layer losses: alpha * E * sum_l sum_i f_li P_li, alpha * L at perfect balance', async () => {
    const layers = [routeBatch(21, 10, 4), routeBatch(22, 10, 4), routeBatch(23, 10, 4)];
    const { loss } = await balanceLoss(
      layers.map((l) => l.stats),
      { alpha: 0.01, mode: 'local' },
    );
    // the closed form, layer by layer
    let expected = 0;
    for (const { out } of layers) {
      const ids = out.experts_TK.toArray() as Int32Array;
      const p = out.probs_TE.toList() as number[][];
      for (let i = 0; i < 4; i++) {
        const f = ids.filter((id) => id === i).length / (10 * 2);
        const P = p.reduce((a, row) => a + row[i]!, 0) / 10;
        expected += 0.01 * 4 * f * P;
      }
    }
    expectAllClose(loss, [expected], { atol: 1e-15 });
    // transformers' load_balancing_loss_func pools the layers instead (f and P over all layers'
    // tokens at once): a different number, which our alpha does not follow
    const pooled = (() => {
      const ids = layers.flatMap((l) => Array.from(l.out.experts_TK.toArray() as Int32Array));
      const p = layers.flatMap((l) => l.out.probs_TE.toList() as number[][]);
      let sum = 0;
      for (let i = 0; i < 4; i++)
        sum +=
          (ids.filter((id) => id === i).length / ids.length) *
          (p.reduce((a, row) => a + row[i]!, 0) / p.length);
      return 0.01 * 4 * sum;
    })();
    expect(Math.abs((loss.item() as number) / 3 - pooled)).toBeGreaterThan(1e-6);
    // perfectly balanced picks and uniform probabilities: E * sum_i (1/E)(1/E) = 1 per layer
    const uniform = T.full([4, 4], 0.25, { dtype: 'f64' });
    const spread = T.tensor(Int32Array.of(0, 1, 2, 3, 0, 1, 2, 3), { shape: [4, 2], dtype: 'i32' });
    const balanced = await balanceLoss(
      [balanceStats(spread, uniform), balanceStats(spread, uniform), balanceStats(spread, uniform)],
      { alpha: 0.01, mode: 'local' },
    );
    expect(balanced.loss.item()).toBeCloseTo(0.01 * 3, 15);
  });

  it.each([2, 3, 4])(
    'global mode over %i ranks equals local mode over the concatenated batch',
    async (ranks) => {
      const E = 6;
      const parts = Array.from({ length: ranks }, (_, r) => routeBatch(10 + r, 8 + 3 * r, E));
      // in-process all-reduce: every rank receives the sum of all ranks' tables
      const tables: T.Tensor[] = [];
      const gather = async (stats: BalanceStats[], r: number) => {
        let resolveSum!: (t: T.Tensor) => void;
        const ready = new Promise<T.Tensor>((res) => (resolveSum = res));
        const pending = balanceLoss(stats, {
          alpha: 1,
          mode: 'global',
          allReduce: (t) => {
            tables[r] = t;
            return ready;
          },
        });
        return { pending, resolveSum };
      };
      const runs = await Promise.all(parts.map((p, r) => gather([p.stats], r)));
      await new Promise((res) => setTimeout(res, 0));
      const total = tables.reduce((a, b) => T.add(a, b));
      runs.forEach((run) => run.resolveSum(T.clone(total)));
      const results = await Promise.all(runs.map((run) => run.pending));
      const all = T.concat(
        parts.map((p) => p.out.experts_TK),
        0,
      );
      const allProbs = T.concat(
        parts.map((p) => p.out.probs_TE),
        0,
      );
      const reference = await balanceLoss([balanceStats(all, allProbs)], { alpha: 1, mode: 'local' });
      for (const r of results) expectAllClose(r.fractions_LE, reference.fractions_LE, { atol: 1e-15 });
      // each rank's loss uses the global f with its own P
      results.forEach((r, i) => {
        const P = T.mean(parts[i]!.out.probs_TE, 0);
        expectAllClose(
          r.loss,
          [E * (T.sum(T.mul(reference.fractions_LE.reshape([E]), P)).item() as number)],
          { atol: 1e-14 },
        );
      });
    },
  );

  it('micro-batches balanced with the summed table of all of them give the concatenated batch', async () => {
    const E = 5;
    // Two layers, three equal micro-batches of 6 tokens; logits are leaves, as the router weights' gradient flows through them.
    const micros = [0, 1, 2].map((m) => [routeBatch(40 + m, 6, E), routeBatch(50 + m, 6, E)]);
    const summed = micros
      .map((layers) => balanceCounts(layers.map((l) => l.stats)))
      .reduce((a, b) => T.add(a, b));
    let mean: T.Tensor | null = null;
    for (const layers of micros) {
      const { loss } = await balanceLoss(
        layers.map((l) => l.stats),
        { alpha: 0.02, mode: 'global', counts_LF: summed },
      );
      const term = T.div(loss, micros.length);
      mean = mean ? T.add(mean, term) : term;
    }
    mean!.backward();
    const gradients = micros.flatMap((layers) => layers.map((l) => l.logits.grad!.toList() as number[][]));
    // The concatenated batch: each layer's logits joined, routed as one batch (the routers here are
    // deterministic, so the picks are the same).
    const joined = [0, 1].map((layer) =>
      T.concat(
        micros.map((layers) => layers[layer]!.logits.detach()),
        0,
      ).setRequiresGrad(),
    );
    const stats = joined.map((logits) => {
      const out = getRouter('gshard-top2').route(logits, { training: true });
      return balanceStats(out.experts_TK, out.probs_TE);
    });
    const whole = await balanceLoss(stats, { alpha: 0.02, mode: 'local' });
    expectAllClose(mean!, [whole.loss.item() as number], { atol: 1e-15, rtol: 1e-12 });
    whole.loss.backward();
    joined.forEach((logits, layer) => {
      const rows = logits.grad!.toList() as number[][];
      micros.forEach((_, m) =>
        expectAllClose(gradients[m * 2 + layer]!.flat(), rows.slice(m * 6, (m + 1) * 6).flat(), {
          atol: 1e-15,
          rtol: 1e-12,
        }),
      );
    });
  });

  it('refuses bad options', async () => {
    const { stats } = routeBatch(3, 4, 3);
    await expect(balanceLoss([stats], { alpha: 1, mode: 'global' })).rejects.toThrow(/needs an allReduce/);
    await expect(balanceLoss([stats], { alpha: -1, mode: 'local' })).rejects.toThrow(/alpha must be >= 0/);
    await expect(balanceLoss([stats], { alpha: 1, mode: 'lokal' as 'local' })).rejects.toThrow(
      /unknown mode 'lokal'; valid modes: local, global/,
    );
    const table = balanceCounts([stats]);
    await expect(balanceLoss([stats], { alpha: 1, mode: 'local', counts_LF: table })).rejects.toThrow(
      /counts_LF must be a \[1,4\] table \(balanceCounts\) in global mode/,
    );
    await expect(balanceLoss([stats, stats], { alpha: 1, mode: 'global', counts_LF: table })).rejects.toThrow(
      /counts_LF must be a \[2,4\] table/,
    );
  });
});
