// The collectives of ProcessGroup over the in-process `local` transport, against plain-loop
// references, for 1-4 ranks and lengths that do and do not divide by the rank count; sub-groups;
// and the errors for mismatched sizes, dtypes and shapes.
// Test: cd packages/parallel && npx vitest run src/local-group
import { describe, expect, it } from 'vitest';
import { checkCollectives } from './collectives.reference.js';
import { localWorld } from './local.js';

describe('local process group', () => {
  it.each([
    [1, 10],
    [2, 10],
    [3, 10],
    [4, 1],
    [4, 1001],
    [3, 0],
  ])('%i ranks, %i elements: every collective matches the reference', async (size, length) => {
    await checkCollectives(localWorld(size), length);
  });

  it('sub-groups reduce only among their members', async () => {
    const world = localWorld(4);
    // dp groups {0,2} and {1,3}; tp groups {0,1} and {2,3}
    const dp = world.map((g, r) => g.subgroup(`dp${r % 2}`, r % 2 === 0 ? [0, 2] : [1, 3]));
    const tp = world.map((g, r) => g.subgroup(`tp${r >> 1}`, r < 2 ? [0, 1] : [2, 3]));
    const a = world.map((_, r) => Float32Array.of(r + 1));
    const b = world.map((_, r) => Float32Array.of(10 * (r + 1)));
    await Promise.all(world.map((_, r) => Promise.all([dp[r]!.allReduce(a[r]!), tp[r]!.allReduce(b[r]!)])));
    expect(a.map((x) => x[0])).toEqual([4, 6, 4, 6]);
    expect(b.map((x) => x[0])).toEqual([30, 30, 70, 70]);
    expect(dp.map((g) => g.rank)).toEqual([0, 0, 1, 1]);
  });

  it('refuses a sub-group with a non-member or duplicate', () => {
    const [g] = localWorld(2);
    expect(() => g!.subgroup('x', [0, 5])).toThrow(/must be distinct members of \[0, 1\]/);
    expect(() => g!.subgroup('y', [1])).toThrow(/world rank 0 is not a member/);
  });

  it('a size mismatch fails on every rank, naming sizes', async () => {
    const world = localWorld(2);
    const results = await Promise.allSettled([
      world[0]!.allReduce(new Float32Array(8)),
      world[1]!.allReduce(new Float32Array(6)),
    ]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect(String((r as PromiseRejectedResult).reason)).toMatch(
        /bytes of f32 .* expected \d+ bytes of f32/,
      );
    }
    // The group is then failed for good.
    await expect(world[0]!.barrier()).rejects.toThrow(/rank \d failed/);
  });

  it('a dtype mismatch names both dtypes', async () => {
    const world = localWorld(2);
    const results = await Promise.allSettled([
      world[0]!.allReduce(new Float32Array(4)),
      world[1]!.allReduce(new Float64Array(2)),
    ]);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(
      /bytes of f64 .*expected \d+ bytes of f32|bytes of f32 .*expected \d+ bytes of f64/,
    );
  });

  it('unknown reduce op and bad roots are refused', async () => {
    const [g] = localWorld(1);
    await expect(g!.allReduce(new Float32Array(1), 'min' as 'sum')).rejects.toThrow(
      /unknown reduce op 'min'; valid ops: sum, avg, max/,
    );
    await expect(g!.broadcast(new Float32Array(1), 3)).rejects.toThrow(
      /broadcast root 3 must be a rank in 0..0/,
    );
  });

  it('a receive that never gets its message times out naming the peer', async () => {
    const world = localWorld(2, { timeoutMs: 200 });
    await expect(world[0]!.recv(new Float32Array(1), 1)).rejects.toThrow(
      /timed out after 200 ms waiting for rank 1/,
    );
  });
});
