// Data parallelism against one process on the whole batch: sharded draws equal the single
// process's draws for the same rows, bucketed gradient averages equal the whole-batch gradient
// (parameters unused on one rank or on all included), and GRIN's global load-balancing fractions
// with dp=2 equal those of the concatenated batch.
// Test: cd packages/parallel && npx vitest run src/data-parallel
import { balanceLoss, balanceStats } from '@grin-moe/router-sparsemixer';
import { add, Generator, linear, mean, mul, rand, softmax, sum, type Tensor, tensor } from '@grin-moe/tensor';
import { describe, expect, it } from 'vitest';
import { dataShard, GradientBuckets, globalCounts, ShardedGenerator } from './data-parallel.js';
import { localWorld } from './local.js';

const values = (t: Tensor) => Array.from(t.toArray() as Float32Array);

function expectClose(a: number[], b: number[], tol = 1e-6) {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(b[i]!))));
}

describe('dataShard', () => {
  it('splits the global batch into contiguous equal shards', () => {
    expect([0, 1, 2, 3].map((r) => dataShard(16, 4, r))).toEqual([
      { first: 0, count: 4 },
      { first: 4, count: 4 },
      { first: 8, count: 4 },
      { first: 12, count: 4 },
    ]);
    expect(() => dataShard(10, 4, 0)).toThrow(/batch of 10 rows must divide by the 4 data-parallel ranks/);
  });
});

describe('ShardedGenerator', () => {
  it("each part draws exactly its rows of the whole batch's draws, and the states stay equal", () => {
    const whole = new Generator(99).fork(3);
    const parts = [0, 1, 2].map((i) => new ShardedGenerator(whole, 3, i));
    const wanted = [
      whole.uniform(12, 'f32', 0.5, 1.5),
      whole.exponential(6, 'f64'),
      whole.normal(6),
      whole.bernoulli(9, 0.3),
    ];
    parts.forEach((g, i) => {
      expect([...g.uniform(4, 'f32', 0.5, 1.5)]).toEqual([...wanted[0]!.subarray(4 * i, 4 * i + 4)]);
      expect([...g.exponential(2, 'f64')]).toEqual([...wanted[1]!.subarray(2 * i, 2 * i + 2)]);
      expect([...g.normal(2)]).toEqual([...wanted[2]!.subarray(2 * i, 2 * i + 2)]);
      expect([...g.bernoulli(3, 0.3)]).toEqual([...wanted[3]!.subarray(3 * i, 3 * i + 3)]);
      expect(g.getState()).toEqual(whole.getState());
    });
  });

  it('tensor draws (Philox reservations) of each part equal its rows of the whole draw', () => {
    const whole = rand([8, 6], { generator: new Generator(4) });
    const wholeU = rand([8, 1], { generator: new Generator(4).fork(2) });
    [0, 1].forEach((i) => {
      const g = new ShardedGenerator(new Generator(4), 2, i);
      expect(values(rand([4, 6], { generator: g }))).toEqual(values(whole).slice(24 * i, 24 * i + 24));
      const u = new ShardedGenerator(new Generator(4).fork(2), 2, i);
      expect(values(rand([4, 1], { generator: u }))).toEqual(values(wholeU).slice(4 * i, 4 * i + 4));
    });
  });
});

describe('GradientBuckets', () => {
  // loss = mean over rows of sum(x W1^T) * c + (only rows with a positive first feature use W2)
  function lossOf(x: Tensor, w: Tensor[]): Tensor {
    const [w1, w2, unused] = w as [Tensor, Tensor, Tensor];
    void unused;
    const rows = x.toArray() as Float32Array;
    const [B, D] = x.shape as [number, number];
    const keep = [...Array(B).keys()].filter((b) => rows[b * D]! > 0);
    let total = mean(mul(linear(x, w1!), linear(x, w1!)));
    if (keep.length) {
      const picked = tensor(Float32Array.from(keep.flatMap((b) => [...rows.subarray(b * D, (b + 1) * D)])), {
        shape: [keep.length, D],
      });
      total = add(total, mul(sum(linear(picked, w2!)), 1 / B));
    }
    return total;
  }

  it.each([1, 3, 1 << 20])(
    'bucket size %i bytes: the DP average equals the whole-batch gradient',
    async (bucketBytes) => {
      const D = 5;
      // Rank 0's rows all have a negative first feature: W2 gets no gradient there, only on rank 1.
      const x = tensor(
        Float32Array.from({ length: 4 * D }, (_, i) => (i % D === 0 ? (i < 2 * D ? -1 : 1) : Math.sin(i))),
        { shape: [4, D] },
      );
      const make = () =>
        [
          [3, D],
          [2, D],
          [2, D],
        ].map((shape, k) =>
          tensor(
            Float32Array.from({ length: shape[0]! * shape[1]! }, (_, i) => Math.cos(i + k)),
            { shape, requiresGrad: true },
          ),
        );
      const single = make();
      lossOf(x, single).backward();

      const world = localWorld(2);
      const replicas = [make(), make()];
      const buckets = replicas.map((params, r) => new GradientBuckets(world[r]!, params, bucketBytes));
      await Promise.all(
        replicas.map(async (_params, r) => {
          const tapped = buckets[r]!.tapped();
          const { first, count } = dataShard(4, 2, r);
          lossOf(x.slice([first, first + count]), tapped).backward();
          await buckets[r]!.finish();
        }),
      );
      // The per-rank loss is a mean over its rows: averaging the two equals the whole-batch mean.
      for (const params of replicas) {
        expectClose(values(params[0]!.grad!), values(single[0]!.grad!));
        expectClose(values(params[1]!.grad!), values(single[1]!.grad!));
        expect(params[2]!.grad).toBeNull(); // no rank used it, as in the single process
      }
    },
  );
});

describe('global load balancing', () => {
  it('with dp=2, global f equals f over the concatenated batch; local f does not', async () => {
    const E = 4;
    const logits = tensor(
      Float32Array.from({ length: 8 * E }, (_, i) => Math.sin(i * 1.7)),
      { shape: [8, E] },
    );
    const experts = tensor(Int32Array.from([0, 1, 0, 2, 0, 1, 0, 3, 2, 3, 2, 3, 1, 3, 2, 1]), {
      shape: [8, 2],
      dtype: 'i32',
    });
    const whole = await balanceLoss([balanceStats(experts, softmax(logits, -1))], {
      alpha: 1,
      mode: 'local',
    });
    const world = localWorld(2);
    const perRank = await Promise.all(
      world.map((g, r) => {
        const rows = [4 * r, 4 * r + 4] as [number, number];
        const stats = balanceStats(experts.slice(rows), softmax(logits.slice(rows), -1));
        return Promise.all([
          balanceLoss([stats], { alpha: 1, mode: 'global', allReduce: globalCounts(g) }),
          balanceLoss([stats], { alpha: 1, mode: 'local' }),
        ]);
      }),
    );
    for (const [global, local] of perRank) {
      expectClose(values(global.fractions_LE), values(whole.fractions_LE));
      expect(values(local.fractions_LE)).not.toEqual(values(whole.fractions_LE));
    }
    // The mean of the ranks' global losses is the whole batch's loss (P is a per-rank mean).
    const meanLoss = (perRank[0]![0].loss.item() + perRank[1]![0].loss.item()) / 2;
    expect(meanLoss).toBeCloseTo(whole.loss.item(), 6);
  });
});
