// The all-reduce benchmark's pieces on a 3-rank grpc world in this process: bus bytes as nccl-tests
// counts them, rows for every size, and the socket ring (read as 'data' events and into a reused
// buffer) moving exactly the ring's bytes (a short or long read would hang or throw). Test: cd packages/parallel && npx vitest run src/bench.test.ts
import { describe, expect, it } from 'vitest';
import { allReduceBandwidth, ringBytes, socketRingBandwidth } from './bench.js';
import { closeAll, grpcWorlds } from './testing.js';

describe('all-reduce benchmark', () => {
  it('counts the bytes a rank sends in a ring all-reduce: 2(n-1)/n of the message', () => {
    expect(ringBytes(1024, 2)).toBe(1024);
    expect(ringBytes(1200, 3)).toBe(1600);
    expect(ringBytes(1024, 4)).toBe(1536);
  });

  it('times the grpc all-reduce and the socket ring on every rank', async () => {
    const worlds = await grpcWorlds(3);
    try {
      const sizes = [4096, 1 << 20];
      const perRank = await Promise.all(
        worlds.map(async (w) => [
          await allReduceBandwidth(w.group, sizes, 2),
          await socketRingBandwidth(w.group, w.store, sizes, 2, 'events'),
          await socketRingBandwidth(w.group, w.store, sizes, 2, 'reused'),
        ]),
      );
      for (const rows of perRank[0]!) {
        expect(rows.map((r) => r.bytes)).toEqual(sizes);
        for (const row of rows) {
          expect(row.seconds).toBeGreaterThan(0);
          expect(row.busGBps).toBeCloseTo(ringBytes(row.bytes, 3) / row.seconds / 1e9, 9);
        }
      }
    } finally {
      await closeAll(worlds);
    }
  });
});
